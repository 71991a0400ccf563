"""Runs locked and validated, compute within a budget (issue 16: runs, "--resume on a tampered run folder",
SIGTERM / SIGHUP, and the honest 3.9 MB model that needs 3.1 GB per image).

* One process per run folder: a second ``train`` into a live run, or a ``--resume`` of it, is refused
  naming the holder's PID, and its in-flight temp files are left alone; the lock of a killed run is
  taken over.
* A tampered run folder is refused in one line before anything trains: ``{}`` as config or as
  checkpoint state, a config without ``"run"``, an RNG state without ``"state"``, history values that
  are not lists, ``limit -5``, an unknown dataset, NaN, an optimizer that claims 2**63 - 1 steps.
* SIGTERM and SIGHUP stop training as Ctrl-C does: exit 130, the resume command printed, the
  checkpoint and ``history.json`` agreeing, no temp file.
* ``predict`` and ``evaluate`` slice batches to the memory budget, computed from the layers' shapes,
  and refuse a model whose one image does not fit, naming the layer and the bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import convscope
from convscope import layers, runs
from convscope.saving import load_checkpoint, save_model

REPO = Path(__file__).resolve().parents[1]
SETTINGS = dict(dataset="mnist-sample", epochs=2, batch_size=32, limit=64, validation_split=0.0)


def child_env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHONIOENCODING": "utf-8", **extra}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def cli(args, **extra):
    return subprocess.run([sys.executable, "-m", "convscope.cli", *map(str, args)], capture_output=True, text=True,
                          env=child_env(**extra), timeout=120)


def one_line_error(result, *needles) -> str:
    detail = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 2 and "Traceback" not in result.stderr, detail
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convscope: error:"), detail
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n)


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A run folder after one epoch of two (config, checkpoint, history), its lock released: what a killed run
    leaves."""
    folder = tmp_path_factory.mktemp("template") / "run"
    model = runs.start(runs.RunConfig(**SETTINGS), folder)
    x, y = data()
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[runs.RunRecorder(folder)], verbose=0)
    runs.unlock_run(folder)
    return folder


@pytest.fixture
def run_folder(one_epoch_run, tmp_path):
    """A copy of ``one_epoch_run`` to tamper with."""
    folder = tmp_path / "run"
    shutil.copytree(one_epoch_run, folder)
    yield folder
    runs.unlock_run(folder)


# ------------------------------------------------------------------------------------------ the lock


def hold_lock(folder, start: bool):
    """A child process that starts a run in ``folder`` (or only locks it) and waits; it prints "locked" first."""
    cfg = ", ".join(f"{k}={v!r}" for k, v in SETTINGS.items())
    take = f"runs.start(runs.RunConfig({cfg}), {str(folder)!r})" if start else f"runs.lock_run({str(folder)!r})"
    code = f"import time\nfrom convscope import runs\n{take}\nprint('locked', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=child_env())
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_train_or_resume_of_a_live_run_is_refused_naming_its_pid(tmp_path):
    folder = tmp_path / "live"
    holder = hold_lock(folder, start=True)
    try:
        in_flight = folder / ".checkpoint.convscope.abc123.tmp"  # the live run's checkpoint being written
        in_flight.write_bytes(b"PK\x03\x04 half")
        for attempt in (lambda: runs.start(runs.RunConfig(**SETTINGS), folder), lambda: runs.resume(folder)):
            with pytest.raises(ValueError, match=rf"in use by another convscope train \(PID {holder.pid}\)"):
                attempt()
        one_line_error(cli(["train", "--dataset", "mnist-sample", "--limit", "64", "--epochs", "1", "--out", folder]),
                       f"PID {holder.pid}", str(folder))
        assert in_flight.exists(), "a refused run deleted the live run's temp file"
        assert (folder / runs.LOCK).read_text().strip() == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()
    # SIGKILL: the lock file stays, holding a dead PID; the kernel dropped the lock, so it is taken over.
    assert (folder / runs.LOCK).read_text().strip() == str(holder.pid)
    cfg, _, epochs_done, _ = runs.resume(folder)
    assert (cfg.limit, epochs_done) == (64, 0)
    assert (folder / runs.LOCK).read_text().strip() == str(os.getpid())
    assert not in_flight.exists(), "the dead run's temp file is removed once the folder is ours"
    runs.unlock_run(folder)
    assert not (folder / runs.LOCK).exists()


def test_the_lock_is_released_by_a_refusal_and_is_never_a_planted_link(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / runs.CHECKPOINT).write_bytes(b"")
    with pytest.raises(ValueError, match="already holds a run"):
        runs.start(runs.RunConfig(**SETTINGS), folder)
    assert not (folder / runs.LOCK).exists()
    holder = hold_lock(folder, start=False)  # the refused start did not keep the folder
    holder.kill()
    holder.wait()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.remove(folder / runs.LOCK)
    os.symlink(victim, folder / runs.LOCK)  # would be truncated if the lock followed links
    with pytest.raises(ValueError, match="cannot take the run folder's lock"):
        runs.lock_run(folder)
    assert victim.read_text() == "precious"


# -------------------------------------------------------------------------------- a tampered folder


def edit_config(folder, change):
    path = folder / runs.CONFIG
    record = json.loads(path.read_text())
    path.write_text(json.dumps(change(record)) if callable(change) else change)


def edit_state(folder, change):
    model, state = load_checkpoint(folder / runs.CHECKPOINT)
    save_model(model, folder / runs.CHECKPOINT, training_state=change(state))


def with_run(**settings):
    return lambda record: {**record, "run": {**record["run"], **settings}}


CONFIGS = {
    "{} as config": ("{}", 'whose "run" holds the settings'),
    "no run": (lambda r: {k: v for k, v in r.items() if k != "run"}, 'whose "run" holds the settings'),
    "empty run": (lambda r: {**r, "run": {}}, "missing setting(s) 'dataset'"),
    "limit -5": (with_run(limit=-5), "setting 'limit' must be an integer >= 1 or null, found -5"),
    "unknown dataset": (with_run(dataset="cifar10"), "setting 'dataset' must be one of mnist, fashion-mnist"),
    "NaN learning rate": ('{"run": {"learning_rate": NaN}}', "NaN is not a finite number"),
    "string epochs": (with_run(epochs="15"), "setting 'epochs' must be an integer >= 1, found \"15\""),
    "huge seed": (with_run(seed=2**40), "setting 'seed' must be an integer from 0 to 2**32 - 1"),
    "unknown setting": (with_run(shell="rm -rf /"), "unknown setting(s) 'shell'"),
    "not JSON": ("{run", "is not a run's config.json"),
    "a list": ("[1, 2]", "found list"),
    "too big": (" " * (runs.CONFIG_MAX_BYTES + 1) + "{}", "a run's config.json is a few KB"),
}

STATES = {
    "{} as state": (lambda s: {}, "must hold epochs_done, rng_state, history"),
    "no state in rng": (lambda s: {**s, "rng_state": {"bit_generator": "PCG64"}}, "rng_state is not the state of"),
    "history not lists": (lambda s: {**s, "history": {"loss": 0.5}}, "history 'loss' must be a list of 1 numbers"),
    "history one ahead": (lambda s: {**s, "history": {k: v * 2 for k, v in s["history"].items()}},
                          "must be a list of 1 numbers (one per epoch done), found a list of 2"),
    "epochs done beyond the run": (lambda s: {**s, "epochs_done": 9}, "epochs_done must be an integer from 0 to"),
    "epochs done negative": (lambda s: {**s, "epochs_done": -1}, "found -1"),
    "history missing": (lambda s: {**s, "history": {}}, "history must be an object of per-epoch lists"),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_a_tampered_config_is_refused_in_one_line(run_folder, case):
    change, needle = CONFIGS[case]
    edit_config(run_folder, change)
    with pytest.raises(ValueError) as info:
        runs.resume(run_folder)
    message = str(info.value)
    assert "\n" not in message and needle in message and str(run_folder / runs.CONFIG) in message, message
    assert not (run_folder / runs.LOCK).exists(), "a refused resume keeps no lock"


@pytest.mark.parametrize("case", list(STATES))
def test_a_tampered_checkpoint_state_is_refused_in_one_line(run_folder, case):
    change, needle = STATES[case]
    edit_state(run_folder, change)
    with pytest.raises(ValueError) as info:
        runs.resume(run_folder)
    message = str(info.value)
    assert "\n" not in message and needle in message and str(run_folder / runs.CHECKPOINT) in message, message


def test_a_tampered_folder_through_the_cli_trains_nothing(run_folder):
    edit_config(run_folder, with_run(limit=-5))
    before = {p.name: p.read_bytes() for p in run_folder.iterdir() if p.is_file()}
    result = cli(["train", "--resume", run_folder, "--verbose", "0"])
    one_line_error(result, "'limit'", "found -5")
    assert result.stdout == ""
    assert {p.name: p.read_bytes() for p in run_folder.iterdir() if p.is_file()} == before


def test_an_optimizer_claiming_2_63_steps_is_refused_before_the_first_batch(run_folder):
    model, state = load_checkpoint(run_folder / runs.CHECKPOINT)
    model.optimizer.iterations = 2**63 - 1  # one more step overflows int64 when the next checkpoint is saved
    save_model(model, run_folder / runs.CHECKPOINT, training_state=state)
    checkpoint, history = (run_folder / runs.CHECKPOINT).read_bytes(), (run_folder / "history.json").read_bytes()
    cfg, model, epochs_done, saved_history = runs.resume(run_folder)
    weights = model.get_weights()
    x, y = data()
    with pytest.raises(ValueError) as info:
        model.fit(x, y, batch_size=32, epochs=cfg.epochs, initial_epoch=epochs_done,
                  callbacks=[runs.RunRecorder(run_folder, saved_history)], verbose=0)
    message = str(info.value)
    assert f"has made {2**63 - 1} steps, but 1 epochs of 2 batches make 2" in message, message
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights())), "a batch was trained"
    assert (run_folder / runs.CHECKPOINT).read_bytes() == checkpoint
    assert (run_folder / "history.json").read_bytes() == history


def test_an_untampered_folder_resumes(run_folder):
    """The checks refuse only what does not add up: the real folder resumes and finishes."""
    cfg, model, epochs_done, history = runs.resume(run_folder)
    assert (epochs_done, len(history["loss"])) == (1, 1)
    x, y = data()
    recorder = runs.RunRecorder(run_folder, history)
    model.fit(x, y, batch_size=32, epochs=cfg.epochs, initial_epoch=epochs_done, callbacks=[recorder], verbose=0)
    _, state = load_checkpoint(run_folder / runs.CHECKPOINT)
    assert state["epochs_done"] == 2 and json.loads((run_folder / "history.json").read_text()) == state["history"]
    assert model.optimizer.iterations == 4


def test_a_checkpoint_write_that_fails_leaves_history_json_with_the_checkpoint(run_folder, monkeypatch):
    """history.json is written after the checkpoint, and the recorder's history grows only once it is on disk."""
    cfg, model, epochs_done, history = runs.resume(run_folder)
    before = (run_folder / "history.json").read_bytes()
    recorder = runs.RunRecorder(run_folder, history)
    monkeypatch.setattr(runs, "save_model", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    x, y = data()
    with pytest.raises(OSError):
        model.fit(x, y, batch_size=32, epochs=cfg.epochs, initial_epoch=epochs_done, callbacks=[recorder], verbose=0)
    assert recorder.epochs_recorded == 1 and (run_folder / "history.json").read_bytes() == before


# ------------------------------------------------------------------------------------ SIGTERM, SIGHUP

TRAIN = ["train", "--dataset", "mnist-sample", "--limit", "640", "--batch-size", "64", "--epochs", "3", "--seed", "2",
         "--verbose", "2"]


def train_child(out, marker, slow_write: str):
    """``convscope TRAIN --out out`` in a child whose fsync of the ``slow_write``-th checkpoint write touches
    ``marker`` and waits (so a signal lands mid-write), through /proc/self/fd."""
    code = f"""
        import os, sys, time
        real, seen = os.fsync, []
        def fsync(fd):
            name = os.path.basename(os.readlink(f"/proc/self/fd/{{fd}}"))
            if name.startswith(".checkpoint.convscope."):
                seen.append(name)
                if len(seen) == {slow_write}:
                    open({str(marker)!r}, "w").close()
                    time.sleep(60)
            return real(fd)
        os.fsync = fsync
        from convscope.cli import main
        sys.exit(main({[*TRAIN, "--out", str(out)]!r}))
    """
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env())


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to see which file is being written")
def test_sigterm_during_a_checkpoint_write_stops_like_ctrl_c(tmp_path):
    """(SIGHUP takes the same path: tests/test_safe_writes.py sends both to a write.)"""
    out, marker = tmp_path / "run", tmp_path / "writing"
    proc = train_child(out, marker, slow_write=2)  # the 2nd checkpoint: the one after epoch 1
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), proc.communicate()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, f"exit {proc.returncode}\n{stderr}"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("Interrupted. The checkpoint after epoch 0 is saved"), last
    assert f"continue with: convscope train --resume {out}" in last
    _, state = load_checkpoint(out / runs.CHECKPOINT)
    assert state["epochs_done"] == 0 and not (out / "history.json").exists(), "history.json ran ahead"
    assert sorted(p.name for p in out.rglob("*.tmp")) == [] and not (out / runs.LOCK).exists()


# -------------------------------------------------------------------------------------- compute budget


def wide_model(filters: int, name="wide"):
    """The issue's honest model: a Conv2D of ``filters`` 1x1 filters, then a grouped 1x1 conv back to 10."""
    return convscope.Sequential([
        convscope.Input(shape=(28, 28, 1)), layers.Conv2D(filters, 1, activation="relu", name="wide_conv"),
        layers.Conv2D(10, 1, groups=10, name="back_to_10"), layers.GlobalAveragePooling2D(name="average"),
        layers.Activation("softmax", name="softmax"),
    ], name=name)


def test_the_3_9_mb_model_needing_3_1_gb_per_image_is_refused_naming_the_layer(tmp_path):
    """The reproduction: ``convscope predict`` of 8 images on a 3.9 MB file (327,680 filters): a MemoryError before."""
    from PIL import Image

    path = tmp_path / "wide.convscope"
    save_model(wide_model(327_680), path)
    assert path.stat().st_size < 5_000_000
    pictures = []
    for i in range(8):
        pictures.append(tmp_path / f"digit{i}.png")
        Image.fromarray((np.arange(28 * 28).reshape(28, 28) * (i + 1) % 256).astype(np.uint8)).save(pictures[-1])
    code = f"""
        import resource, sys, time, io, contextlib
        from convscope.cli import main
        from convscope.saving import load_model
        load_model({str(path)!r})  # what loading takes is not what is measured
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        err = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stderr(err):
            rc = main(["predict", {str(path)!r}, *{list(map(str, pictures))!r}])
        seconds = time.perf_counter() - start
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(rc, f"{{seconds:.3f}}", f"{{grown:.1f}}")
        print(err.getvalue(), end="")
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env=child_env(), timeout=120)
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout + result.stderr
    rc, seconds, grown = lines[0].split()
    figures = f"refused in {float(seconds):.2f} s, peak memory +{float(grown):.0f} MB"
    print(figures)
    assert rc == "2" and float(seconds) < 2 and float(grown) < 200, figures + "\n" + result.stdout
    error = lines[1]
    assert error.startswith('convscope: error: Sequential "wide": one sample needs 5.14 GB of activations '
                            "(float32): 3.08 GB that its layers keep, and 2.06 GB more while the largest, layer "
                            "'wide_conv' (Conv2D, output (None, 28, 28, 327680)), replaces what it kept; above the "
                            "memory budget of 1.07 GB"), error
    assert "CONVSCOPE_MAX_BYTES" in error, error


def test_predict_and_evaluate_slice_batches_to_the_budget(monkeypatch):
    model = wide_model(330)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    steps = dict(model.activation_bytes())
    # Each conv: 2 x its output (the output and its pre-activation) + its unfolded input (1x1 windows over 1, then
    # 330 channels).
    assert steps["wide_conv"] == (2 * 28 * 28 * 330 + 28 * 28 * 1) * 4
    assert steps["back_to_10"] == (2 * 28 * 28 * 10 + 28 * 28 * 330) * 4
    per_sample = sum(steps.values()) + max(steps.values())  # what stays, and the largest layer's while it reruns
    x, y = data(12)
    expected = model.predict(x, batch_size=12, verbose=0)  # the default budget: one slice of 12
    loss = model.evaluate(x, y, batch_size=12, verbose=0)
    monkeypatch.setenv("CONVSCOPE_MAX_BYTES", "16M")
    assert model.inference_batch() == 16 * 2**20 // per_sample == 3
    tracemalloc.start()
    try:
        got = model.predict(x, batch_size=12, verbose=0)
        _, peak_predict = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert model.evaluate(x, y, batch_size=12, verbose=0) == pytest.approx(loss, rel=1e-6)
        _, peak_evaluate = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    budget = 16 * 2**20
    print(f"peak {peak_predict / 1e6:.1f} MB (predict), {peak_evaluate / 1e6:.1f} MB (evaluate), budget 16.8 MB, "
          f"{12 * sum(steps.values()) / 1e6:.1f} MB kept by one unsliced batch of 12")
    assert peak_predict < budget and peak_evaluate < budget


def test_one_sample_over_the_budget_is_refused_before_anything_runs(monkeypatch):
    model = wide_model(330)
    monkeypatch.setenv("CONVSCOPE_MAX_BYTES", "2M")
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        'Sequential "wide": one sample needs 5.24 MB of activations (float32): 3.17 MB that its layers keep, and '
        "2.07 MB more while the largest, layer 'wide_conv' (Conv2D, output (None, 28, 28, 330)), replaces what it "
        "kept; above the memory budget of 2.1 MB"), message
    assert peak < 1_000_000, f"{peak} bytes allocated before the refusal"
    with pytest.raises(ValueError, match="one sample needs"):
        model.inference_batch()


def test_a_trace_over_the_budget_is_refused_before_anything_runs(monkeypatch):
    """The explorer and the lessons trace on every request: an honest model with a huge layer took 5.2 GB in one
    explorer request. One sample's trace keeps every layer's tensors (twice with gradients), checked first."""
    model = wide_model(330)
    monkeypatch.setenv("CONVSCOPE_MAX_BYTES", "8M")
    one = np.zeros((1, 28, 28, 1), np.float32)
    assert len(model.trace(one)) == len(model.layers)            # 1 sample without gradients fits in 8 MB
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            model.trace(np.zeros((4, 28, 28, 1), np.float32), np.zeros(4, int))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        'Sequential "wide".trace() of 4 sample(s) with gradients would take '), message
    assert "above the memory budget of 8.39 MB" in message
    assert peak < 1_000_000, f"{peak} bytes allocated before the refusal"


def test_the_estimate_bounds_what_a_real_convnet_takes():
    """The formula counts what layers keep: about twice the measured peak of the MNIST convnet, never below it."""
    from convscope import zoo

    model = zoo.keras_convnet()
    per_sample = sum(n for _, n in model.activation_bytes())
    x, _ = data(64)
    model.predict(x[:1], verbose=0)
    tracemalloc.start()
    try:
        model.predict(x, batch_size=64, verbose=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak / 64 < per_sample < 3 * peak / 64, (peak / 64, per_sample)


def test_an_unknown_data_set_is_refused_not_read_as_fashion_mnist():
    """``load_dataset`` sent every name but "mnist" and "mnist-sample" to Fashion-MNIST's loader."""
    from convscope.cli import load_dataset

    with pytest.raises(ValueError, match=r"unknown data set 'cifar10'; expected one of mnist, fashion-mnist, mnist-sample"):
        load_dataset("cifar10")
