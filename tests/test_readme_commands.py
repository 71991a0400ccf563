"""README.md's shell commands, run as written, in order, in one fresh folder, offline (issue 17).

Which lines run: every line of every ```bash block of README.md, in order (a line ending in ``\\`` is joined
with the next; comments and blank lines are dropped by the shell's rules, shlex). Then, for each command:

- skipped, saying why (``SKIPPED``): the install lines ``python3 -m venv ...`` and ``pip install ...``, which
  CI (``.ci/run``) has already carried out for the environment this test runs in; ``pytest``, the suite this
  test is part of; and ``convscope lesson run ALL ...``: every lesson takes minutes, and
  ``tests/test_lessons.py`` runs each lesson (in fast mode and on a run folder);
- shortened, saying so (``SHORT_TRAIN``): ``convscope train`` (not ``--resume``) runs with ``--dataset
  mnist-sample --epochs 1 --limit 512`` in place of its own data and epochs, a few seconds instead of
  minutes on full MNIST; its other options (``--out``, ``--model``) are kept;
- served (``SERVE``): ``convscope explore`` runs with ``--port 0 --no-browser`` added (a free port, no browser
  window), until it prints its address; ``GET /`` must answer the page; Ctrl-C (SIGINT) must end it with
  status 0;
- every other line runs unchanged, with bash.

Any non-zero exit fails the test, naming the command and its output. The list of what ran, was skipped or
was changed is printed (``pytest -s``) and is part of every failure's message.

The folder starts with one file: ``my_digit.png``, the README's stand-in for the reader's own picture (test
image 0 of the offline sample). ``CONVSCOPE_DATA`` names an empty folder and ``XDG_CACHE_HOME`` an empty
cache, so every command uses the bundled sample, and the proxy variables name a closed local port, so an
attempted download fails at once instead of reaching the network.

The README's Python blocks are not run here: the Keras MNIST convnet (15 epochs on full MNIST) is held by
``tests/test_mnist_convnet.py``, which trains the same model for 2 epochs on 10,000 images.
"""

from __future__ import annotations

import http.client
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
TIMEOUT = 300
SKIPPED = {
    ("python3", "-m", "venv"): "install line: CI (.ci/run) has made the environment these commands run in",
    ("pip", "install"): "install line: CI (.ci/run) has installed the checkout with every extra",
    ("pytest",): "the test suite, which this test is part of",
    ("convscope", "lesson", "run", "ALL"): "every lesson takes minutes; tests/test_lessons.py runs each lesson",
}
SHORT_TRAIN = {"--dataset": "mnist-sample", "--epochs": "1", "--limit": "512"}
SERVE = ["--port", "0", "--no-browser"]
ADDRESS = re.compile(r"convscope explorer: (http://127\.0\.0\.1:(\d+)/)")


def readme_lines() -> list[str]:
    """The command lines of README.md's ```bash blocks, in order, continuation lines joined, empty ones dropped."""
    lines = []
    for block in BLOCK.findall(README.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            if shlex.split(line, comments=True):
                lines.append(line)
    return lines


def skip_reason(tokens: list[str]) -> str | None:
    return next((why for start, why in SKIPPED.items() if tuple(tokens[:len(start)]) == start), None)


def is_train(tokens: list[str]) -> bool:
    return tokens[:2] == ["convscope", "train"] and "--resume" not in tokens


def shortened(tokens: list[str]) -> list[str]:
    """A train command with ``SHORT_TRAIN``'s options in place of its own values for them."""
    kept, i = [], 0
    while i < len(tokens):
        option = tokens[i].split("=", 1)[0]
        if option in SHORT_TRAIN:
            i += 1 if "=" in tokens[i] else 2
            continue
        kept.append(tokens[i])
        i += 1
    return kept + [part for option, value in SHORT_TRAIN.items() for part in (option, value)]


def plan() -> list[tuple[str, str, str]]:
    """``(README line, what runs, how)`` for every README command; ``how`` is run / shortened / served / skipped: why."""
    steps = []
    for line in readme_lines():
        tokens = shlex.split(line, comments=True)
        reason = skip_reason(tokens)
        if reason:
            steps.append((line, "", f"skipped: {reason}"))
        elif is_train(tokens):
            steps.append((line, shlex.join(shortened(tokens)), "shortened"))
        elif tokens[:2] == ["convscope", "explore"]:
            steps.append((line, shlex.join(tokens + SERVE), "served"))
        else:
            steps.append((line, line, "run"))
    return steps


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["CONVSCOPE_DATA"] = str(tmp_path_factory.mktemp("no-data"))
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[proxy] = "http://127.0.0.1:9"  # the discard port: nothing listens, a download fails at once
    for bypass in ("no_proxy", "NO_PROXY"):
        env.pop(bypass, None)
    env["PYTHONIOENCODING"], env["PYTHONUNBUFFERED"] = "utf-8", "1"
    return env


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from PIL import Image

    from convscope.datasets import mnist_sample

    work = tmp_path_factory.mktemp("fresh-checkout")
    _, (x_test, _) = mnist_sample.load_data()
    Image.fromarray(x_test[0]).save(work / "my_digit.png")
    return work


def serve(command: str, folder: Path, env: dict) -> tuple[int, str]:
    """Start the explorer, wait for its address, GET / (must be the page), Ctrl-C it: (exit status, output)."""
    process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=folder, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, encoding="utf-8",
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue = queue.Queue()

    def read():  # in a thread, so that waiting for the address line has a deadline
        for text in process.stdout:
            lines.put(text)
        lines.put(None)

    def next_line(deadline):
        try:
            return lines.get(timeout=max(deadline - time.monotonic(), 0.1))
        except queue.Empty:
            return None

    threading.Thread(target=read, daemon=True).start()
    output, answered, deadline = [], False, time.monotonic() + TIMEOUT
    try:
        while not answered and (line := next_line(deadline)) is not None:
            output.append(line)
            address = ADDRESS.search(line)
            if address:
                connection = http.client.HTTPConnection("127.0.0.1", int(address.group(2)), timeout=60)
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read().decode("utf-8", "replace")
                output.append(f"GET / -> {response.status} {response.getheader('Content-Type')}\n")
                if response.status != 200 or "<html" not in body.lower():
                    break
                answered = True
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        status = process.wait(timeout=60)
    deadline = time.monotonic() + 10
    while (line := next_line(deadline)) is not None:
        output.append(line)
    if not answered:
        output.append("no address line, or GET / did not answer the explorer's page\n")
    return (status if answered else 1), "".join(output)


@dataclass
class Step:
    """One README command: the line, what ran (``how``: run / shortened / served / skipped: why), its outcome."""

    line: str
    command: str
    how: str
    status: int = 0
    output: str = ""
    seconds: float = 0.0

    def __str__(self):
        if self.how.startswith("skipped"):
            return f"[{self.how}] {self.line.strip()}"
        text = f"[{self.how}, exit {self.status}, {self.seconds:.1f} s] {self.line.strip()}"
        return text + (f"\n    ran as: {self.command}" if self.how in ("shortened", "served") else "")


@pytest.fixture(scope="module")
def session(folder, env) -> list[Step]:
    """Every step of ``plan()`` carried out in order in ``folder``, each printed as it ends."""
    steps = []
    for line, command, how in plan():
        step, began = Step(line, command, how), time.monotonic()
        if how == "served":
            step.status, step.output = serve(command, folder, env)
        elif not how.startswith("skipped"):
            done = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True,
                                  encoding="utf-8", timeout=TIMEOUT)
            step.status, step.output = done.returncode, done.stdout + done.stderr
        step.seconds = time.monotonic() - began
        steps.append(step)
        print(step, flush=True)
    return steps


def test_every_readme_command_runs_as_written_in_order(session):
    listing = "\n".join(map(str, session))
    failed = [step for step in session if step.status != 0]
    detail = "\n\n".join(f"{step}\n{step.output}" for step in failed)
    assert not failed, f"README commands that failed:\n{detail}\n\nAll commands:\n{listing}"
    assert sum(not step.how.startswith("skipped") for step in session) >= 10, listing


def test_train_names_the_readme_commands_that_look_inside_its_run(session):
    """`convscope train` ends with the commands that look inside the run folder: each is a README command."""
    readme = {tuple(shlex.split(line, comments=True)) for line in readme_lines()}
    trained = [step.output for step in session if step.how == "shortened" and "runs/mnist-full" in step.command]
    assert trained, "no README train command writes runs/mnist-full, the folder the README's pictures use"
    printed = trained[0].split("Look inside the run:\n", 1)[-1].splitlines()
    suggested = [shlex.split(line) for line in printed if line.startswith("  convscope ")]
    assert len(suggested) == 3, trained[0]
    for tokens in suggested:
        assert tuple(tokens) in readme, f"`convscope train` suggests {shlex.join(tokens)!r}, which README.md does not show"


def test_every_exclusion_rule_still_matches_a_readme_line():
    """A rule that no longer matches anything would hide a README change: each must skip a line."""
    for start, why in SKIPPED.items():
        assert any(tuple(shlex.split(line, comments=True)[:len(start)]) == start for line in readme_lines()), (
            f"SKIPPED rule {' '.join(start)!r} ({why}) matches no README command: remove it")
