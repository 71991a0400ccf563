"""The explorer under load (issue #8): the short version of ``scripts/load_test.py`` (2 clients x 100
prediction requests on 127.0.0.1, a burst of bad requests during the load). Every good request must
succeed, every bad one must get its 4xx as a JSON error, and the server must still answer afterwards.
The full run (4 clients x 1000 requests) is ``python scripts/load_test.py``; its figures are in
docs/reliability.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("flask", reason="the explorer needs the optional [explorer] extra (Flask)")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "load_test.py"


@pytest.fixture(scope="module")
def load_test():
    spec = importlib.util.spec_from_file_location("load_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_explorer_serves_a_short_load_without_errors(load_test):
    result = load_test.run(clients=2, requests=100, model="small", server="thread", max_seconds=120)
    report = load_test.report(result)
    assert result["requests"] == 200 and not result["stopped_by_deadline"], report
    assert result["errors"] == 0, report
    assert 0 <= result["prediction"] <= 9
    assert len(result["abuse"]) >= 10 and result["abuse_ok"], report
    assert {a["status"] for a in result["abuse"]} <= {400, 403, 404, 413, 415}, report
    assert result["answers_afterwards"] and result["passed"], report
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"] <= result["max_ms"]


def test_the_load_test_reports_failures(load_test, monkeypatch):
    """The harness can fail: a server that answers a prediction with 500 now and then is counted."""
    from convscope.explorer import compute

    calls = {"n": 0}
    analyze = compute.analyze

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] % 7 == 0:
            raise RuntimeError("injected failure")
        return analyze(*args, **kwargs)

    monkeypatch.setattr(compute, "analyze", flaky)
    result = load_test.run(clients=2, requests=10, model="small", server="thread", abuse=False, max_seconds=60)
    assert result["errors"] >= 2 and not result["passed"]
    assert result["first_errors"][0].startswith("status 500")
