"""The crafted hostile files under ``tests/corpus/<reader>/``: each must end in its documented error.

``tests/corpus/manifest.json`` says, for every file, the outcome (``ModelFileError`` /
``DataFileError``, ``loaded`` for hostile-looking files that are valid and must stay bounded, or
``hang`` for the one known HDF5 library spin) and a regex the message must match. The files are
written by ``python scripts/fuzz.py --write-corpus tests/corpus``; each also runs within the
time and memory bounds below.
"""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from convscope.datasets import idx

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
MAX_SECONDS = 2.0
MAX_PEAK_MB = 200.0


def load_harness():
    spec = importlib.util.spec_from_file_location("convscope_fuzz", ROOT / "scripts" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz = load_harness()
CASES = sorted(name for name, entry in MANIFEST.items() if entry["outcome"] != "hang")


def test_every_corpus_file_is_in_the_manifest_and_the_corpus_is_small():
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert on_disk == set(MANIFEST)
    assert {name.split("/")[0] for name in on_disk} == set(fuzz.READERS)
    assert sum((CORPUS / name).stat().st_size for name in on_disk) < 2**20


@pytest.mark.parametrize("name", CASES)
def test_crafted_file_raises_its_documented_error(name, tmp_path):
    entry = MANIFEST[name]
    reader = name.split("/")[0]
    path = CORPUS / name
    suffix = "".join(path.suffixes[-1:]) if reader != "keras" else path.suffix
    # run_one raises fuzz.Escape for anything but the reader's documented class.
    result = fuzz.run_one(reader, path.read_bytes(), suffix, str(tmp_path), idx_max_bytes=idx.MAX_BYTES)
    assert re.fullmatch(entry["outcome"], result["outcome"]), (result["outcome"], result["message"])
    if result["outcome"] != "loaded":
        assert re.search(entry["match"], result["message"]), result["message"]
    if entry.get("over_bounds"):
        return  # a known libhdf5 excess: test_known_hdf5_memory_excess below
    assert result["seconds"] < MAX_SECONDS, result
    if result["peak_mb"] is not None:
        assert result["peak_mb"] < MAX_PEAK_MB, result


def test_documented_classes_are_file_errors():
    from convscope.errors import ConvscopeFileError, DataFileError, ModelFileError

    for reader, cls in fuzz._documented().items():
        assert issubclass(cls, ConvscopeFileError) and issubclass(cls, ValueError)
    assert fuzz._documented()["model"] is ModelFileError and fuzz._documented()["idx"] is DataFileError


def test_harness_reports_an_escape(tmp_path, monkeypatch):
    """The harness itself can fail: a reader that lets a KeyError out is an Escape, not a pass."""

    def broken(reader, path, data, idx_max_bytes):
        raise KeyError("config")

    monkeypatch.setattr(fuzz, "_load", broken)
    with pytest.raises(fuzz.Escape, match="KeyError escaped"):
        fuzz.run_one("model", b"x", ".convscope", str(tmp_path))


@pytest.mark.xfail(strict=True, reason="HDF5 (h5py 3.16's libhdf5) spins forever reading this legacy .h5's "
                   "model_config attribute: two bytes of its global heap changed, found by the fuzzer. "
                   "CPU-bound, memory flat; convscope cannot interrupt the C library in-process.")
def test_known_hdf5_spin_returns_within_seconds():
    code = "from convscope.interop import load_keras\ntry:\n load_keras(%r)\nexcept ValueError:\n pass\n"
    try:
        subprocess.run([sys.executable, "-c", code % str(CORPUS / "keras" / "hdf5_global_heap_spin.h5")],
                       timeout=5, check=False, capture_output=True)
    except subprocess.TimeoutExpired:
        pytest.fail("load_keras still spins inside HDF5 after 5 s")


@pytest.mark.xfail(strict=True, reason="libhdf5 allocates ~700 MB for this legacy .h5 (one damaged metadata size, "
                   "found by the fuzzer) before it reports the damage; convscope sees only the error")
def test_known_hdf5_memory_excess(tmp_path):
    data = (CORPUS / "keras" / "hdf5_heap_size_700mb.h5").read_bytes()
    result = fuzz.run_one("keras", data, ".h5", str(tmp_path))
    if result["peak_mb"] is None:
        pytest.skip("no /proc/self/clear_refs here: the peak cannot be measured per input")
    assert result["peak_mb"] < MAX_PEAK_MB, result
