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


def test_filters_subset_of_each_layer_says_what_a_layer_lacks(run_dir, tmp_path, capsys):
    status, out, _ = show(capsys, "filters", run_dir, "--filters", "30-33", "--channels", "0,31,40", "--out", tmp_path)
    assert status == 0
    assert "conv2d: has 32 filters, --filters asks for 30-33: showing 30-31" in out
    assert "conv2d: its filters have 1 input channel, drawn whole" in out
    assert "conv2d_1: has 32 input channels, --channels asks for 0, 31, 40: showing 0, 31" in out
    assert [os.path.basename(p) for p in written(out)] == ["filters_conv2d.png", "filters_conv2d_1.png"]
    status, out, _ = show(capsys, "filters", run_dir, "--filters", "40-47", "--out", tmp_path / "deep")
    assert status == 0 and "conv2d: has 32 filters, --filters asks for 40-47: left out" in out
    assert [os.path.basename(p) for p in written(out)] == ["filters_conv2d_1.png"]


def test_the_filters_asked_for_are_the_ones_drawn(run_dir, monkeypatch, tmp_path, capsys):
    from convscope.viz import figures

    drawn = []
    real = figures.filters_figure
    monkeypatch.setattr(figures, "filters_figure", lambda kernel, **kw: drawn.append(kw) or real(kernel, **kw))
    status, _, _ = show(capsys, "filters", run_dir, "--layer", "conv2d_1", "--filters", "0-2,9", "--channels", "5",
                        "--scale", "per-filter", "--out", tmp_path)
    assert status == 0
    assert [(kw["filters"], kw["channels"], kw["scale"]) for kw in drawn] == [([0, 1, 2, 9], [5], "per-filter")]


def test_kernel_gradients_take_the_same_subset(run_dir, tmp_path, capsys):
    status, out, _ = show(capsys, "gradients", run_dir, "--dataset", "mnist-sample", "--filters", "40-41",
                          "--out", tmp_path)
    assert status == 0 and "conv2d: has 32 filters, --filters asks for 40-41: left out" in out
    assert [os.path.basename(p) for p in written(out)] == ["gradients_mnist-sample-test-image-0_saliency.png",
                                                         "gradients_mnist-sample-test-image-0_conv2d_1_kernel_gradient.png"]


def test_maps_default_to_test_image_0(run_dir, tmp_path, capsys, no_full_mnist):
    status, out, _ = show(capsys, "maps", run_dir, "--layer", "conv2d", "--out", tmp_path)
    assert status == 0
    assert [os.path.basename(p) for p in written(out)] == [
        f"maps_mnist-sample-test-image-0_{part}.png" for part in ("input", "conv2d_preactivation", "conv2d_output")]


def test_least_confident_picks_the_lowest_top_probability(run_dir, tmp_path, capsys):
    from convscope.viz.sources import open_model

    (_, _), (x, y) = mnist_sample.load_data()
    top = open_model(run_dir).predict(x[..., None].astype("float32") / 255.0, verbose=0).max(axis=1)
    index = int(top.argmin())
    status, out, _ = show(capsys, "gradients", run_dir, "--least-confident", "--dataset", "mnist-sample",
                          "--out", tmp_path)
    assert status == 0
    assert (f"Least confident: mnist-sample test image {index} (largest probability {top[index]:.3f}, "
            f"label {int(y[index])})") in out
    assert os.path.basename(written(out)[0]) == f"gradients_mnist-sample-test-image-{index}_saliency.png"


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
        "gradients_digit.png_saliency.png", "gradients_digit.png_conv2d_kernel_gradient.png",
        "gradients_digit.png_conv2d_1_kernel_gradient.png"]


def test_gradients_for_a_test_image(run_dir, tmp_path, capsys):
    status, out, _ = show(capsys, "gradients", run_dir, "--index", 0, "--dataset", "mnist-sample", "--out", tmp_path)
    assert status == 0 and "offline mnist-sample" in out and len(written(out)) == 3


def test_history_and_evolution_of_a_run(run_dir, tmp_path, capsys, monkeypatch):
    from convscope.viz import figures

    notes = []
    real = figures.training_versus_validation
    monkeypatch.setattr(figures, "training_versus_validation", lambda *a: notes.append(real(*a)) or notes[-1])
    status, out, _ = show(capsys, "history", run_dir, "--out", tmp_path)
    assert status == 0 and is_png(tmp_path / "history.png")
    assert "in training mode (dropout (rate 0.5) active)" in notes[0]     # the run's model has Dropout(0.5)
    status, out, _ = show(capsys, "evolution", run_dir, "--out", tmp_path)
    assert status == 0
    assert is_png(tmp_path / "evolution_conv2d.png")
    assert "drawing 3 snapshots of conv2d (epochs 0-2)" in out and "GIF frames: 3/3" in out
    assert "evolution_conv2d.gif (3 frames)" in out
    assert (tmp_path / "evolution_conv2d.gif").read_bytes()[:6] == b"GIF89a"


@pytest.mark.parametrize("args, message", [
    (["maps", "{run}", "x.png", "--index", "1"], "give one input: IMAGE, --index N or --least-confident"),
    (["gradients", "{run}", "--index", "1", "--least-confident"], "give one input: IMAGE, --index N or"),
    (["filters", "{run}", "--filters", "0-3,x"], "--filters must be indices or ranges such as 0-7 or 0,3,5"),
    (["filters", "{run}", "--channels", "7-2"], "--channels: a range runs from low to high (e.g. 0-7), received '7-2'"),
    (["filters", "{run}", "--filters", "99"], "no conv layer has the filters and input channels"),
    (["filters", "{run}", "--layer", "conv2d_1", "--filters", "0-63,0"], "filters: each index once"),
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
