"""``convscope show ...``: each picture written where asked, what was drawn said on stdout, bad use in one line."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the pictures need the optional [viz] extra (matplotlib)")

from convscope import cli, runs
from convscope.datasets import mnist_sample


@pytest.fixture
def no_full_mnist(monkeypatch, tmp_path):
    """Full MNIST is nowhere to be found, so --dataset mnist must fall back to the offline sample."""
    monkeypatch.setenv("CONVSCOPE_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))


def show(capsys, *args):
    status = cli.main(["show", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def written(out: str) -> list[str]:
    return [line.split("wrote ", 1)[1].split(" (")[0] for line in out.splitlines() if line.startswith("wrote ")]


def is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_filters_of_every_conv_layer_or_one(run_dir, tmp_path, capsys):
    status, out, _ = show(capsys, "filters", run_dir, "--out", tmp_path)
    assert status == 0
    assert [os.path.basename(p) for p in written(out)] == ["filters_conv2d.png", "filters_conv2d_1.png"]
    assert all(is_png(p) for p in written(out))
    status, out, _ = show(capsys, "filters", run_dir / runs.FINAL_MODEL, "--layer", "conv2d_1", "--out", tmp_path / "one")
    assert status == 0 and [os.path.basename(p) for p in written(out)] == ["filters_conv2d_1.png"]


def test_maps_for_a_test_image_say_which_data_set(run_dir, tmp_path, capsys, no_full_mnist):
    status, out, _ = show(capsys, "maps", run_dir, "--index", 3, "--out", tmp_path)
    assert status == 0
    assert "Full MNIST not found locally" in out and "offline sample" in out
    names = [os.path.basename(p) for p in written(out)]
    assert names == [f"maps_mnist-sample-test-image-3_{part}.png" for part in (
        "input", "conv2d_preactivation", "conv2d_output", "max_pooling2d_output", "conv2d_1_preactivation",
        "conv2d_1_output", "max_pooling2d_1_output")]
    assert all(is_png(p) for p in written(out))


def test_maps_and_gradients_of_a_picture_file(run_dir, tmp_path, capsys):
    from PIL import Image

    (_, _), (x, y) = mnist_sample.load_data()
    picture = tmp_path / "digit.png"
    Image.fromarray(255 - np.kron(x[7], np.ones((4, 4), np.uint8))).save(picture)  # dark on light, 112x112
    status, out, _ = show(capsys, "maps", run_dir, picture, "--out", tmp_path / "maps")
    assert status == 0 and len(written(out)) == 7
    status, out, _ = show(capsys, "gradients", run_dir, picture, "--label", int(y[7]), "--out", tmp_path / "grads")
    assert status == 0
    assert [os.path.basename(p) for p in written(out)] == [
        "gradients_digit-png_saliency.png", "gradients_digit-png_conv2d_kernel_gradient.png",
        "gradients_digit-png_conv2d_1_kernel_gradient.png"]


def test_gradients_for_a_test_image(run_dir, tmp_path, capsys):
    status, out, _ = show(capsys, "gradients", run_dir, "--index", 0, "--dataset", "mnist-sample", "--out", tmp_path)
    assert status == 0 and "offline mnist-sample" in out and len(written(out)) == 3


def test_history_and_evolution_of_a_run(run_dir, tmp_path, capsys):
    status, out, _ = show(capsys, "history", run_dir, "--out", tmp_path)
    assert status == 0 and is_png(tmp_path / "history.png")
    status, out, _ = show(capsys, "evolution", run_dir, "--out", tmp_path)
    assert status == 0
    assert is_png(tmp_path / "evolution_conv2d.png")
    assert "evolution_conv2d.gif (3 frames)" in out
    assert (tmp_path / "evolution_conv2d.gif").read_bytes()[:6] == b"GIF89a"


@pytest.mark.parametrize("args, message", [
    (["maps", "{run}"], "give either IMAGE or --index N"),
    (["maps", "{run}", "x.png", "--index", "1"], "give either IMAGE or --index N"),
    (["maps", "{run}", "--index", "1000", "--dataset", "mnist-sample"], "--index must be between 0 and 999"),
    (["gradients", "{run}", "{run}/history.json"], "need its label: add --label"),
    (["gradients", "{run}", "--index", "1", "--label", "3", "--dataset", "mnist-sample"], "--label is only for IMAGE"),
    (["filters", "{run}", "--layer", "dense"], "is a Dense, not a conv layer"),
    (["filters", "{run}", "--layer", "nope"], 'No layer named "nope"'),
    (["filters", "{tmp}"], "without model.convscope or checkpoint.convscope"),
    (["history", "{tmp}"], "no history.json"),
    (["evolution", "{tmp}"], "no filters/ folder"),
    (["maps", "{run}", "{tmp}/missing.png"], "does not exist"),
])
def test_bad_use_is_one_line_with_exit_status_2(run_dir, tmp_path, capsys, args, message):
    args = [a.format(run=run_dir, tmp=tmp_path) for a in args]
    status, out, err = show(capsys, *args, "--out", tmp_path / "out")
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
