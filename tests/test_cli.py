"""The ``convscope`` command line, run as a real subprocess (exit codes, stdout and stderr as a user sees them).

Training runs use the packaged ``mnist-sample`` with ``--limit`` so each takes a few seconds.
Every subprocess runs single-threaded (BLAS/OpenMP) so the suite shares the machine politely
and so the runs compared for bit-identity use the same arithmetic.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import convscope
from convscope.datasets import mnist_sample
from convscope.saving import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
FULL_DATA = Path(os.environ.get("CONVSCOPE_DATA") or REPO.parent / "shared" / "data")
SAMPLE = ["--dataset", "mnist-sample"]
# The run that the resume / Ctrl-C tests reproduce: 3 epochs, ~1 s each.
REFERENCE = ["--dataset", "mnist-sample", "--seed", "1", "--limit", "3000", "--batch-size", "64", "--epochs", "3",
             "--verbose", "2"]
TIMEOUT = 300
def quiet(stderr: str) -> str:
    """``stderr`` without the one-time compile notice: a fresh checkout (CI) compiles the kernels in whichever
    command runs first, and that command must still count as having printed nothing else."""
    from convscope.arraymath.jit import COMPILE_NOTICE

    return "".join(line for line in stderr.splitlines(keepends=True) if line.rstrip("\n") != COMPILE_NOTICE)


PROB_RE = re.compile(r"^(?P<path>.+): (?P<digit>\d)  \(probabilities (?P<probs>(?:\d:\d\.\d{3} ?){10})\)$")


# ----------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    """Environment for the subprocesses: an empty cache, and CONVSCOPE_DATA at an empty folder (no full MNIST)."""
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    env["CONVSCOPE_DATA"] = str(tmp_path_factory.mktemp("no-data"))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def run_cli(args, env, timeout=TIMEOUT, prefix=None):
    cmd = (prefix or [sys.executable, "-m", "convscope.cli"]) + [str(a) for a in args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def popen_cli(args, env, out_path, err_path):
    """Start ``convscope`` in the background, SIGINT restored to its default so Python turns it into Ctrl-C."""
    return subprocess.Popen(
        [sys.executable, "-m", "convscope.cli", *map(str, args)], env=env,
        stdout=open(out_path, "w"), stderr=open(err_path, "w"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def assert_one_line_error(result, *needles):
    """Exit status 2, exactly one line on stderr naming the problem, no traceback, nothing on stdout."""
    detail = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 2, detail
    assert "Traceback" not in result.stderr, detail
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), detail
    assert lines[0].startswith("convscope"), detail
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in {lines[0]!r}"
    assert result.stdout == "", detail
    return lines[0]


def weights(path):
    return convscope.load_model(path).get_weights()


def assert_bit_identical(a, b):
    wa, wb = weights(a), weights(b)
    assert len(wa) == len(wb) == 6
    for i, (x, y) in enumerate(zip(wa, wb)):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y), f"weight {i} differs: max |diff| {np.abs(x - y).max()}"


def read_history(run_dir):
    with open(run_dir / "history.json", encoding="utf-8") as f:
        return json.load(f)


def wait_for(predicate, proc, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)
    return True


def history_rows(run_dir) -> int:
    try:
        with open(run_dir / "history.csv", encoding="utf-8") as f:
            return max(0, len(f.read().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def temp_files(run_dir):
    return sorted(p.name for p in Path(run_dir).rglob("*.tmp"))


def interrupt_during_epoch_2(run_dir, env, sig, tries=2):
    """Start the reference run into ``run_dir``, send ``sig`` while epoch 2 (of 3) is running; the process.

    Waits until epoch 1's history row is on disk (written after its filter snapshot and just
    before its checkpoint), then a little more. If the signal lands too late (epoch 2 already
    done), starts over in a fresh folder once.
    """
    for attempt in range(tries):
        folder = run_dir if attempt == 0 else run_dir.with_name(run_dir.name + f"-retry{attempt}")
        out, err = folder.with_suffix(".out"), folder.with_suffix(".err")
        proc = popen_cli(["train", *REFERENCE, "--out", folder], env, out, err)
        started = wait_for(lambda: history_rows(folder) >= 1, proc, what="epoch 1 to end")
        if started:
            time.sleep(0.3)
        alive = proc.poll() is None
        if alive:
            proc.send_signal(sig)
        rc = proc.wait(timeout=120)
        in_epoch_2 = (alive and not (folder / "filters" / "epoch_002.npz").exists()
                      and not (folder / "model.convscope").exists())
        if in_epoch_2:
            return folder, rc, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")
        assert alive or rc == 0, f"run died on its own with {rc}:\n{err.read_text(encoding='utf-8')}"
    pytest.fail(f"could not deliver signal {sig} during epoch 2 in {tries} tries")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cli_env):
    """One model trained through the CLI on the whole offline sample (2 epochs), shared by several tests."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    result = ok(run_cli(["train", *SAMPLE, "--epochs", "2", "--batch-size", "64", "--seed", "0", "--verbose", "2",
                         "--out", run_dir], cli_env))
    return run_dir, result


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, cli_env):
    """The reference run, never interrupted."""
    run_dir = tmp_path_factory.mktemp("reference") / "A"
    ok(run_cli(["train", *REFERENCE, "--out", run_dir], cli_env))
    return run_dir


# ----------------------------------------------------------------------------------------------- 1. help

HELP_OPTIONS = {
    (): ["train", "evaluate", "summary", "predict"],
    ("train",): ["--dataset", "--model", "--epochs", "--batch-size", "--optimizer", "--learning-rate",
                 "--kernel-initializer", "--activation", "--seed", "--limit", "--out", "--resume", "--verbose",
                 "mnist-sample", "keras-convnet", "lenet5"],
    ("evaluate",): ["model", "--dataset", "--batch-size", "mnist-sample"],
    ("summary",): ["model"],
    ("predict",): ["model", "IMAGE"],
}


@pytest.mark.parametrize("command", list(HELP_OPTIONS), ids=lambda c: " ".join(c) or "top")
def test_help_lists_every_option(command, cli_env):
    result = ok(run_cli([*command, "--help"], cli_env))
    assert quiet(result.stderr) == ""
    assert result.stdout.startswith("usage: convscope")
    for option in HELP_OPTIONS[command]:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.stdout), f"{option} missing from help"


def test_console_script_is_installed(cli_env):
    import shutil

    exe = shutil.which("convscope", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    assert exe, "the convscope console script is not installed"
    result = ok(run_cli(["--help"], cli_env, prefix=[exe]))
    assert "train" in result.stdout


# ----------------------------------------------------------------------------------------------- 2. run folder


def test_train_writes_run_folder(trained):
    run_dir, result = trained
    epochs = 2
    assert quiet(result.stderr) == ""
    lines = result.stdout.splitlines()
    # Summary first (after the one "Training on ..." line), then the test accuracy and the commands to look inside.
    assert lines[0].startswith("Training on 10000 images of mnist-sample"), lines[0]
    assert str(run_dir) in lines[0]
    assert lines[1] == 'Model: "keras_convnet"'
    assert "Total params: 34,826" in result.stdout
    assert result.stdout.index("Total params") < result.stdout.index("Epoch 1/2")
    assert re.fullmatch(r"Test accuracy: (0\.\d{4}|1\.0000) \(loss \d+\.\d{4}\) on 1000 mnist-sample test images",
                        lines[-5])
    run = shlex.quote(str(run_dir))
    assert lines[-4:] == ["Look inside the run:", f"  convscope show filters {run}", f"  convscope explore {run}",
                          f"  convscope lesson run ALL --model {run}"]
    assert sum(line.startswith("Epoch ") for line in lines) == epochs
    accuracy = float(lines[-5].split()[2])
    assert accuracy > 0.9, "2 epochs on the 10,000-image sample should pass 90%"

    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "model.convscope", "checkpoint.convscope", "history.json", "history.csv",
            "filters"} <= names
    assert temp_files(run_dir) == []

    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    run = config["run"]
    assert run["dataset"] == "mnist-sample" and run["model"] == "keras-convnet"
    assert (run["epochs"], run["batch_size"], run["seed"], run["limit"]) == (2, 64, 0, None)
    assert run["optimizer"] == "adam" and run["kernel_initializer"] == "glorot_uniform"
    assert config["convscope"] == convscope.__version__ and config["floatx"] == "float32"

    history = read_history(run_dir)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == epochs for v in history.values())
    with open(run_dir / "history.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["loss"]) for r in rows] == history["loss"]
    assert history["loss"][1] < history["loss"][0]

    snapshots = sorted(p.name for p in (run_dir / "filters").iterdir())
    assert snapshots == [f"epoch_{i:03d}.npz" for i in range(epochs + 1)]
    final = weights(run_dir / "model.convscope")
    previous = None
    for i in range(epochs + 1):
        with np.load(run_dir / "filters" / f"epoch_{i:03d}.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        assert set(arrays) == {"conv2d/kernel", "conv2d/bias", "conv2d_1/kernel", "conv2d_1/bias"}
        assert arrays["conv2d/kernel"].shape == (3, 3, 1, 32)
        assert arrays["conv2d_1/kernel"].shape == (3, 3, 32, 64)
        if i == 0:
            assert not arrays["conv2d/bias"].any(), "biases start at zero"
        else:
            assert not np.array_equal(arrays["conv2d/kernel"], previous), "filters must change every epoch"
        previous = arrays["conv2d/kernel"]
    assert np.array_equal(arrays["conv2d/kernel"], final[0]) and np.array_equal(arrays["conv2d_1/kernel"], final[2])

    # The checkpoint records the completed run.
    _, state = load_checkpoint(run_dir / "checkpoint.convscope")
    assert state["epochs_done"] == epochs and state["history"] == history


def test_train_lenet5_with_options(tmp_path, cli_env):
    run_dir = tmp_path / "lenet"
    result = ok(run_cli(["train", *SAMPLE, "--model", "lenet5", "--limit", "200", "--epochs", "1",
                         "--batch-size", "50", "--optimizer", "sgd", "--learning-rate", "0.05",
                         "--kernel-initializer", "he_normal", "--activation", "relu", "--seed", "7",
                         "--verbose", "0", "--out", run_dir], cli_env))
    assert "Total params: 61,706" in result.stdout
    assert "Epoch 1/1" not in result.stdout  # --verbose 0
    run = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["run"]
    assert run == {"dataset": "mnist-sample", "model": "lenet5", "epochs": 1, "batch_size": 50, "optimizer": "sgd",
                   "learning_rate": 0.05, "kernel_initializer": "he_normal", "activation": "relu", "seed": 7,
                   "limit": 200, "validation_split": 0.1}
    model = convscope.load_model(run_dir / "model.convscope")
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    assert [layer["config"].get("activation") for layer in model.get_config()["layers"]][:3] == ["relu", None, "relu"]
    with np.load(run_dir / "filters" / "epoch_001.npz") as npz:
        assert npz["conv2d/kernel"].shape == (5, 5, 1, 6) and npz["conv2d_1/kernel"].shape == (5, 5, 6, 16)


# ----------------------------------------------------------------------------------------------- 3. resume


def test_resume_after_sigkill_is_bit_identical(reference_run, tmp_path, cli_env):
    run_b, rc, _, _ = interrupt_during_epoch_2(tmp_path / "B", cli_env, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert not (run_b / "model.convscope").exists() and (run_b / "checkpoint.convscope").exists()
    # A kill during an atomic write leaves its hidden temp file; plant one to be sure resume clears it.
    (run_b / ".checkpoint.convscope.killed.tmp").write_bytes(b"partial")
    (run_b / "filters" / ".epoch_002.npz.killed.tmp").write_bytes(b"partial")

    result = ok(run_cli(["train", "--resume", run_b, "--verbose", "2"], cli_env))
    assert re.match(rf"Resuming {re.escape(str(run_b))} after epoch [01] of 3", result.stdout)
    assert "\nTest accuracy:" in result.stdout

    assert_bit_identical(reference_run / "model.convscope", run_b / "model.convscope")
    history_a, history_b = read_history(reference_run), read_history(run_b)
    assert all(len(v) == 3 for v in history_a.values())
    assert history_b == history_a
    assert (run_b / "history.csv").read_text() == (reference_run / "history.csv").read_text()
    assert sorted(p.name for p in (run_b / "filters").iterdir()) == [f"epoch_{i:03d}.npz" for i in range(4)]
    for i in range(4):
        with np.load(reference_run / "filters" / f"epoch_{i:03d}.npz") as fa, \
                np.load(run_b / "filters" / f"epoch_{i:03d}.npz") as fb:
            assert all(np.array_equal(fa[k], fb[k]) for k in fa.files)
    assert temp_files(run_b) == []
    assert json.loads((run_b / "config.json").read_text())["run"] == json.loads(
        (reference_run / "config.json").read_text())["run"]


def test_resume_of_finished_run_is_refused(reference_run, cli_env):
    assert_one_line_error(run_cli(["train", "--resume", reference_run], cli_env), "already finished")


# ----------------------------------------------------------------------------------------------- 4. Ctrl-C


def test_ctrl_c_saves_checkpoint_and_resume_completes(reference_run, tmp_path, cli_env):
    run_c, rc, out, err = interrupt_during_epoch_2(tmp_path / "C", cli_env, signal.SIGINT)
    assert rc == 130, f"exit {rc}\n{err}"
    assert "Traceback" not in err
    assert "--resume" in err and str(run_c) in err
    assert [line for line in err.splitlines() if line.strip()][-1].startswith("Interrupted.")
    assert "Test accuracy" not in out
    assert not (run_c / "model.convscope").exists()
    _, state = load_checkpoint(run_c / "checkpoint.convscope")
    assert state["epochs_done"] in (0, 1)

    result = ok(run_cli(["train", "--resume", run_c, "--verbose", "2"], cli_env))
    assert "Epoch 3/3" in result.stdout and "\nTest accuracy:" in result.stdout
    assert all(len(v) == 3 for v in read_history(run_c).values())
    assert_bit_identical(reference_run / "model.convscope", run_c / "model.convscope")
    assert temp_files(run_c) == []


# ----------------------------------------------------------------------------------------------- 5. predict


@pytest.fixture(scope="module")
def digit_pngs(trained, tmp_path_factory):
    """PNGs of sample test digits the trained model gets right with confidence: ``[(path, label), ...]``."""
    from PIL import Image

    run_dir, _ = trained
    model = convscope.load_model(run_dir / "model.convscope")
    _, (x_test, y_test) = mnist_sample.load_data()
    probs = model.predict(x_test[:300, :, :, None].astype("float32") / 255.0, verbose=0)
    folder = tmp_path_factory.mktemp("pngs")
    pngs = []
    for digit in range(10):
        confident = np.flatnonzero((y_test[:300] == digit) & (probs.argmax(1) == digit) & (probs.max(1) > 0.97))
        assert confident.size, f"the trained model is not confident on any sample test {digit}"
        img = x_test[confident[0]]
        path = folder / f"digit{digit}.png"
        Image.fromarray(img).save(path)
        pngs.append((path, digit))
        if digit in (3, 7):
            big = folder / f"digit{digit}_280.png"
            Image.fromarray(img).resize((280, 280), Image.BICUBIC).save(big)
            pngs.append((big, digit))
        if digit in (2, 5):
            inverted = folder / f"digit{digit}_dark_on_light.png"
            Image.fromarray(255 - img).convert("RGB").save(inverted)
            pngs.append((inverted, digit))
    return pngs


def test_predict_png_digits(trained, digit_pngs, cli_env):
    run_dir, _ = trained
    result = ok(run_cli(["predict", run_dir / "model.convscope", *[p for p, _ in digit_pngs]], cli_env))
    assert quiet(result.stderr) == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(digit_pngs)
    # The printed probabilities are the model's on the picture as MNIST-style floats in [0, 1].
    from convscope.images import load_digit

    model = convscope.load_model(run_dir / "model.convscope", compile=False)
    digits = np.stack([load_digit(p) for p, _ in digit_pngs]).astype("float32")[..., None] / 255.0
    expected = model.predict(digits, verbose=0)
    for line, (path, label), want in zip(lines, digit_pngs, expected):
        m = PROB_RE.match(line)
        assert m, f"unexpected output line {line!r}"
        assert m["path"] == str(path)
        probs = [float(item.split(":")[1]) for item in m["probs"].split()]
        assert [int(item.split(":")[0]) for item in m["probs"].split()] == list(range(10))
        assert sum(probs) == pytest.approx(1.0, abs=0.01)
        assert int(m["digit"]) == int(np.argmax(probs))
        np.testing.assert_allclose(probs, want, atol=0.0006, err_msg=line)
        assert int(m["digit"]) == label, f"{path.name}: predicted {m['digit']}, label {label}\n{line}"


def test_predict_blank_image_does_not_crash_and_is_flagged(trained, tmp_path, cli_env):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("L", (50, 30), 0).save(blank)
    result = ok(run_cli(["predict", trained[0] / "model.convscope", blank], cli_env))
    assert PROB_RE.match(result.stdout.strip())
    assert re.fullmatch(rf"  warning: {re.escape(str(blank))} is blank once fitted to MNIST's 28x28 frame \(0 ink "
                        r"pixels; MNIST's digits have about 150\): this prediction says little\n", result.stderr)


def test_predict_reads_dark_strokes_on_a_transparent_background(trained, digit_pngs, tmp_path, cli_env):
    """A drawing program's PNG: black strokes whose alpha is the ink, RGB black everywhere. Laid on white, it is the
    digit (the same prediction as the opaque picture), not a blank input."""
    from PIL import Image

    from convscope.images import ink_pixels, load_digit

    opaque = digit_pngs[0][0]
    digit = np.asarray(Image.open(opaque).convert("L"))
    ink = digit if digit[0].mean() < 127 else 255 - digit  # the stroke intensity, whatever the picture's polarity
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = ink
    transparent = tmp_path / "transparent.png"
    Image.fromarray(rgba, mode="RGBA").save(transparent)
    assert ink_pixels(load_digit(transparent)) > 50
    np.testing.assert_allclose(load_digit(transparent).astype(float), load_digit(opaque).astype(float), atol=40)
    result = ok(run_cli(["predict", trained[0] / "model.convscope", opaque, transparent], cli_env))
    first, second = [PROB_RE.match(line) for line in result.stdout.splitlines()]
    assert first["digit"] == second["digit"] and quiet(result.stderr) == ""


# ----------------------------------------------------------------------------------------------- 6. evaluate, summary


def test_evaluate_on_sample(trained, cli_env):
    run_dir, train_result = trained
    result = ok(run_cli(["evaluate", run_dir / "model.convscope", *SAMPLE], cli_env))
    m = re.fullmatch(r"mnist-sample test set, 1000 images: loss (\d+\.\d{4}), accuracy (\d\.\d{4})\n", result.stdout)
    assert m, result.stdout
    # Same numbers as the train command's final line.
    assert f"Test accuracy: {m[2]} (loss {m[1]})" in train_result.stdout


def test_evaluate_on_full_mnist(trained, cli_env):
    if not all((FULL_DATA / "mnist" / f"{n}.gz").is_file() for n in
               ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte")):
        pytest.skip(f"full MNIST not found at {FULL_DATA / 'mnist'}")
    env = dict(cli_env, CONVSCOPE_DATA=str(FULL_DATA))
    result = ok(run_cli(["evaluate", trained[0] / "model.convscope", "--batch-size", "500"], env))
    m = re.fullmatch(r"mnist test set, 10000 images: loss \d+\.\d{4}, accuracy (\d\.\d{4})\n", result.stdout)
    assert m, result.stdout
    assert float(m[1]) > 0.9


def test_summary_keras_convnet(trained, cli_env):
    result = ok(run_cli(["summary", trained[0] / "model.convscope"], cli_env))
    out = result.stdout
    assert out.startswith('Model: "keras_convnet"')
    assert "Total params: 34,826" in out and "Trainable params: 34,826" in out
    for layer, shape, params in [("conv2d (Conv2D)", "(None, 26, 26, 32)", "320"),
                                 ("conv2d_1 (Conv2D)", "(None, 11, 11, 64)", "18,496"),
                                 ("dense (Dense)", "(None, 10)", "16,010")]:
        row = next(line for line in out.splitlines() if layer in line)
        assert shape in row and row.split("│")[-2].strip() == params


def test_summary_lenet5(tmp_path, cli_env):
    path = tmp_path / "lenet5.convscope"
    code = "import sys; from convscope.zoo import lenet5; from convscope.saving import save_model; " \
           "save_model(lenet5(), sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(path)], env=cli_env, check=True, timeout=60)
    result = ok(run_cli(["summary", path], cli_env))
    assert result.stdout.startswith('Model: "lenet5"')
    assert "Total params: 61,706" in result.stdout
    assert "(None, 28, 28, 6)" in result.stdout  # the first convolution pads "same"


# ----------------------------------------------------------------------------------------------- 7. bad input

TRAIN_OK = [*SAMPLE, "--limit", "100", "--epochs", "1", "--verbose", "0"]

BAD_ARGS = {
    "unknown subcommand": (["fit"], ["invalid choice", "'fit'"]),
    "no subcommand": ([], ["required", "COMMAND"]),
    "epochs 0": (["train", "--epochs", "0"], ["--epochs", "'0'", "positive integer"]),
    "epochs abc": (["train", "--epochs", "abc"], ["--epochs", "'abc'"]),
    "batch size -1": (["train", "--batch-size", "-1"], ["--batch-size", "'-1'"]),
    "learning rate 0": (["train", "--learning-rate", "0"], ["--learning-rate", "positive number"]),
    "learning rate nan": (["train", "--learning-rate", "nan"], ["--learning-rate", "'nan'"]),
    "limit 0": (["train", "--limit", "0"], ["--limit", "'0'"]),
    "seed -1": (["train", "--seed", "-1"], ["--seed", "'-1'"]),
    "dataset cifar": (["train", "--dataset", "cifar"], ["--dataset", "'cifar'", "mnist-sample"]),
    "model resnet": (["train", "--model", "resnet"], ["--model", "'resnet'", "lenet5"]),
    "verbose 3": (["train", "--verbose", "3"], ["--verbose"]),
    "unknown option": (["train", "--epochz", "3"], ["unrecognized", "--epochz"]),
    "evaluate without model": (["evaluate"], ["model"]),
    "predict without image": (["predict", "model.convscope"], ["IMAGE"]),
    "evaluate dataset cifar": (["evaluate", "m.convscope", "--dataset", "cifar"], ["--dataset", "'cifar'"]),
}


@pytest.mark.parametrize("case", list(BAD_ARGS))
def test_bad_arguments(case, cli_env):
    args, needles = BAD_ARGS[case]
    line = assert_one_line_error(run_cli(args, cli_env), *needles)
    assert "--help" in line


@pytest.mark.parametrize("option, value, needle", [
    ("--optimizer", "adamm", "optimizer"),
    ("--kernel-initializer", "foo", "kernel_initializer"),
    ("--activation", "foo", "activation"),
])
def test_bad_training_settings(option, value, needle, tmp_path, cli_env):
    run_dir = tmp_path / "run"
    line = assert_one_line_error(run_cli(["train", *TRAIN_OK, option, value, "--out", run_dir], cli_env),
                                 needle, f"'{value}'")
    assert "--help" not in line
    assert not run_dir.exists(), "a rejected setting must not leave an empty run folder"


def test_resume_of_folder_that_is_not_a_run(tmp_path, cli_env):
    assert_one_line_error(run_cli(["train", "--resume", tmp_path], cli_env), "not a run folder", str(tmp_path))
    assert_one_line_error(run_cli(["train", "--resume", tmp_path / "missing"], cli_env), "not a run folder")


def test_out_folder_that_holds_a_run(reference_run, cli_env):
    before = {p: p.stat().st_mtime_ns for p in reference_run.rglob("*")}
    assert_one_line_error(run_cli(["train", *TRAIN_OK, "--out", reference_run], cli_env),
                          "already holds a run", str(reference_run), "--resume")
    assert {p: p.stat().st_mtime_ns for p in reference_run.rglob("*")} == before


def test_out_that_is_a_file(tmp_path, cli_env):
    path = tmp_path / "file"
    path.write_text("x")
    assert_one_line_error(run_cli(["train", *TRAIN_OK, "--out", path], cli_env), str(path))
    assert path.read_text() == "x"


@pytest.fixture(scope="module")
def bad_model_files(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-models")
    real = (trained[0] / "model.convscope").read_bytes()
    files = {
        "random": folder / "random.convscope",
        "truncated": folder / "truncated.convscope",
        "text": folder / "text.convscope",
        "empty": folder / "empty.convscope",
    }
    files["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    files["truncated"].write_bytes(real[: len(real) // 2])
    files["text"].write_text("not a model\n")
    files["empty"].write_bytes(b"")
    return files


@pytest.mark.parametrize("command", ["summary", "evaluate", "predict"])
def test_missing_model_file(command, tmp_path, digit_pngs, cli_env):
    missing = tmp_path / "nope.convscope"
    extra = {"summary": [], "evaluate": SAMPLE, "predict": [digit_pngs[0][0]]}[command]
    assert_one_line_error(run_cli([command, missing, *extra], cli_env), "does not exist", str(missing))


@pytest.mark.parametrize("kind", ["random", "truncated", "text", "empty"])
@pytest.mark.parametrize("command", ["summary", "evaluate", "predict"])
def test_corrupt_model_file(command, kind, bad_model_files, digit_pngs, cli_env):
    path = bad_model_files[kind]
    extra = {"summary": [], "evaluate": SAMPLE, "predict": [digit_pngs[0][0]]}[command]
    assert_one_line_error(run_cli([command, path, *extra], cli_env), str(path))


def test_damaged_weights_inside_model_file(trained, tmp_path, cli_env):
    import zipfile

    real = trained[0] / "model.convscope"
    data = bytearray(real.read_bytes())
    with zipfile.ZipFile(real) as zf:
        start = zf.getinfo("weights/0002.npy").header_offset + 200
    data[start:start + 64] = bytes(b ^ 0xFF for b in data[start:start + 64])
    damaged = tmp_path / "damaged.convscope"
    damaged.write_bytes(bytes(data))
    assert_one_line_error(run_cli(["summary", damaged], cli_env), "damaged", "weights/0002.npy")


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("bad-images")
    good = folder / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    files = {"missing": folder / "missing.png", "text": folder / "notes.png", "truncated": folder / "truncated.png",
             "folder": folder / "a-folder.png", "empty": folder / "empty.png"}
    files["text"].write_text("this is not a picture\n")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["folder"].mkdir()
    files["empty"].write_bytes(b"")
    return files


@pytest.mark.parametrize("kind, needle", [("missing", "does not exist"), ("text", "cannot"),
                                          ("truncated", "truncated"), ("folder", "folder"), ("empty", "cannot")])
def test_predict_bad_image(kind, needle, trained, digit_pngs, bad_images, cli_env):
    path = bad_images[kind]
    # The bad picture comes second: one bad file fails the whole command, with no partial output.
    result = run_cli(["predict", trained[0] / "model.convscope", digit_pngs[0][0], path], cli_env)
    assert_one_line_error(result, needle, str(path))


# ----------------------------------------------------------------------------------------------- 8. fallback

# Runs the real CLI with MNIST's download mirrors emptied, so "could not download" is immediate and
# certain whatever the network (convscope has no environment variable for the mirrors).
NO_MIRRORS = [sys.executable, "-c",
              "import sys\n"
              "from convscope.datasets import download\n"
              "download.DATASETS['mnist'] = download.Remote(mirrors=(), files=download.DATASETS['mnist'].files)\n"
              "from convscope.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n"]


@pytest.fixture
def offline_env(cli_env, tmp_path):
    env = dict(cli_env, XDG_CACHE_HOME=str(tmp_path / "empty-cache"))
    env.pop("CONVSCOPE_DATA")
    return env


def test_default_dataset_falls_back_to_sample(tmp_path, offline_env):
    run_dir = tmp_path / "run"
    result = ok(run_cli(["train", "--epochs", "1", "--limit", "600", "--batch-size", "100", "--verbose", "2",
                         "--out", run_dir], offline_env, prefix=NO_MIRRORS))
    lines = result.stdout.splitlines()
    notes = [line for line in lines if "not found" in line.lower()]
    assert len(notes) == 1 and notes[0] == lines[0], result.stdout
    assert "Full MNIST" in notes[0] and "offline sample" in notes[0] and "CONVSCOPE_DATA" in notes[0]
    assert lines[1].startswith("Training on 600 images of mnist-sample")
    assert lines[lines.index("Look inside the run:") - 1].endswith("on 1000 mnist-sample test images")
    assert quiet(result.stderr) == ""
    assert json.loads((run_dir / "config.json").read_text())["run"]["dataset"] == "mnist-sample"
    # Nothing was left behind in the cache by the failed download.
    cache = Path(offline_env["XDG_CACHE_HOME"]) / "convscope" / "mnist"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_explicit_mnist_without_data_is_one_line_error(trained, tmp_path, offline_env):
    # No fallback when MNIST is asked for by name: the download failure (several lines of advice) in one line.
    line = assert_one_line_error(run_cli(["evaluate", trained[0] / "model.convscope"], offline_env,
                                         prefix=NO_MIRRORS), "could not download", "CONVSCOPE_DATA")
    assert str(Path(offline_env["XDG_CACHE_HOME"]) / "convscope" / "mnist") in line
    run_dir = tmp_path / "run"
    assert_one_line_error(run_cli(["train", "--dataset", "mnist", "--epochs", "1", "--out", run_dir], offline_env,
                                  prefix=NO_MIRRORS), "could not download")
    assert not run_dir.exists()


def test_python_dash_m_convscope_is_the_convscope_command():
    """Issue 17: ``python -m convscope`` works where the ``convscope`` script is not on PATH."""
    done = subprocess.run([sys.executable, "-m", "convscope", "lesson", "list"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "backprop" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "convscope", "nosuchcommand"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
