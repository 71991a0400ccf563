"""The pictures' Python API: honest colour scales, readable layouts, bounded grids, atomic saving, clear errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the pictures need the optional [viz] extra (matplotlib)")

import convscope
from convscope import runs, viz
from convscope.datasets import mnist_sample
from convscope.viz import evolution, figures, model_figures


def colour_images(fig):
    """Every image drawn in the figure's axes (not the colour bar's)."""
    return [im for ax in fig.axes for im in ax.get_images()]


def texts(fig) -> str:
    found = [fig.get_suptitle(), fig.get_supxlabel()] + [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        labelled = [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels(), *ax.texts]
        found += [t.get_text() for t in labelled]
    return " | ".join(found)


def test_first_layer_filters_are_images_on_a_symmetric_scale():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 1, 12)) + 0.3  # mostly positive: limits must still be ±max
    fig = viz.filters_figure(kernel, title="conv", bias=np.arange(12) / 10)
    images = colour_images(fig)
    assert len(images) == 12
    limit = np.abs(kernel).max()
    for f, im in enumerate(images):
        np.testing.assert_array_equal(im.get_array(), kernel[:, :, 0, f])
        assert im.norm.vmin == pytest.approx(-limit) and im.norm.vmax == pytest.approx(limit)
        assert im.get_cmap().name.startswith(figures.DIVERGING)
    assert len(fig.axes) == 12 + 1  # one per filter, and the colour bar
    assert "conv" in texts(fig) and "b=+1.1" in texts(fig) and "white = 0" in texts(fig)


def test_rgb_first_layer_shows_colour_filters_with_grey_as_zero():
    kernel = np.zeros((5, 5, 3, 4))
    kernel[0, 0, 0, 1] = 2.0
    images = colour_images(viz.filters_figure(kernel))
    assert images[0].get_array().shape == (5, 5, 3)
    np.testing.assert_allclose(images[0].get_array(), 0.5)  # zero weights: grey
    np.testing.assert_allclose(images[1].get_array()[0, 0], [1.0, 0.5, 0.5])


def test_deeper_filters_grid_rows_filters_columns_channels_capped_with_a_note():
    kernel = np.random.default_rng(1).normal(size=(3, 3, 40, 70))
    fig = viz.filters_figure(kernel, title="deep")
    (image,) = colour_images(fig)
    mosaic = np.ma.filled(image.get_array(), np.nan)
    rows, cols, zoom = figures.MAX_GRID_FILTERS, figures.MAX_GRID_CHANNELS, figures.ZOOM
    tile = 3 * zoom + 1  # a 3x3 kernel drawn zoom x zoom per weight, plus a one-pixel gap
    assert mosaic.shape == (rows * tile - 1, cols * tile - 1)
    filter5_channel7 = mosaic[tile * 5 : tile * 5 + 3 * zoom : zoom, tile * 7 : tile * 7 + 3 * zoom : zoom]
    np.testing.assert_array_equal(filter5_channel7, kernel[:, :, 7, 5])
    assert np.isnan(mosaic[tile - 1, :]).all()  # the gap between filter rows
    # The colour limit covers the whole kernel, shown or not, so a capped view is not re-scaled.
    assert image.norm.vmax == pytest.approx(np.abs(kernel).max())
    assert "showing filters 0-63 of 70, input channels 0-31 of 40" in texts(fig)
    assert "input channel" in texts(fig)


def test_feature_maps_share_one_scale_and_pick_the_honest_colour_map():
    maps = np.random.default_rng(2).random((6, 6, 5))
    fig = viz.feature_maps_figure(maps, title="relu")
    images = colour_images(fig)
    assert len(images) == 5
    assert {(im.norm.vmin, im.norm.vmax) for im in images} == {(0.0, maps.max())}
    assert images[0].get_cmap().name == figures.SEQUENTIAL
    signed = viz.feature_maps_figure(maps - 0.8)
    im = colour_images(signed)[0]
    assert im.norm.vmin == -im.norm.vmax == pytest.approx(-np.abs(maps - 0.8).max())
    assert im.get_cmap().name == figures.DIVERGING


def test_feature_maps_are_capped_with_a_note():
    fig = viz.feature_maps_figure(np.ones((4, 4, 70)))
    assert len(colour_images(fig)) == figures.MAX_TILES
    assert "showing maps 0-63 of 70" in texts(fig)


def test_curves_plot_training_and_validation_for_each_metric():
    history = {"loss": [1.0, 0.5, 0.3], "accuracy": [0.5, 0.8, 0.9], "val_loss": [0.9, 0.6, 0.4],
               "val_accuracy": [0.6, 0.7, 0.85]}
    fig = viz.curves_figure(history, title="run")
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "loss" and acc_ax.get_title() == "accuracy"
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), history["val_loss"])
    np.testing.assert_array_equal(acc_ax.lines[0].get_xdata(), [1, 2, 3])
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()] == ["training (last 0.9000)", "validation (last 0.8500)"]


@pytest.mark.parametrize("call, message", [
    (lambda: viz.filters_figure(np.zeros((3, 3, 1))), "kh, kw, in, out"),
    (lambda: viz.filters_figure(np.zeros((3, 3, 1, 4)), bias=np.zeros(3)), "one value per filter"),
    (lambda: viz.filters_figure(np.full((3, 3, 1, 2), np.nan)), "non-finite"),
    (lambda: viz.feature_maps_figure(np.zeros((2, 2, 2, 2))), "(h, w, channels)"),
    (lambda: viz.feature_maps_figure(np.array([[np.inf]])), "NaN or infinite"),
    (lambda: viz.curves_figure({}), "non-empty dict"),
    (lambda: viz.curves_figure({"loss": []}), "non-empty list"),
])
def test_bad_arguments_are_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=re_escape(message)):
        call()


def re_escape(text):
    return re.escape(text)


def test_save_figure_writes_a_png_atomically_and_closes_the_figure(tmp_path):
    import matplotlib.pyplot as plt

    fig = plt.figure()  # a pyplot figure: save_figure must close it
    fig.add_subplot().plot([0, 1])
    path = tmp_path / "curve.png"
    assert viz.save_figure(fig, path) == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    assert os.listdir(tmp_path) == ["curve.png"]  # no temporary file left behind


def test_failed_save_leaves_the_previous_file(tmp_path):
    path = tmp_path / "kept.png"
    path.write_bytes(b"old")
    fig = viz.curves_figure({"loss": [1.0]})
    fig.savefig = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full"))
    with pytest.raises(RuntimeError):
        viz.save_figure(fig, path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["kept.png"]


def test_importing_convscope_and_viz_does_not_import_matplotlib():
    code = "import sys, convscope, convscope.viz, convscope.explorer; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_matplotlib_the_error_says_how_to_install(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'convscope\[viz\]'"):
        viz.filters_figure(np.zeros((3, 3, 1, 2)))


def test_maps_figures_show_every_spatial_layer_before_and_after_activation(run_dir):
    model = convscope.load_model(run_dir / runs.FINAL_MODEL)
    (_, _), (x, y) = mnist_sample.load_data()
    named = dict(model_figures.maps_figures(model, x[0]))
    assert list(named) == ["input", "conv2d_preactivation", "conv2d_output", "max_pooling2d_output",
                           "conv2d_1_preactivation", "conv2d_1_output", "max_pooling2d_1_output"]
    record = model.trace(x[:1, ..., None] / 255.0)[0]
    np.testing.assert_allclose(colour_images(named["conv2d_preactivation"])[3].get_array(),
                               record.preactivation[0, :, :, 3], rtol=1e-6)
    assert "before relu" in texts(named["conv2d_preactivation"]) and "after relu" in texts(named["conv2d_output"])


def test_gradient_figures_hold_the_traced_gradients(run_dir):
    model = convscope.load_model(run_dir / runs.FINAL_MODEL)
    (_, _), (x, y) = mnist_sample.load_data()
    named = dict(model_figures.gradient_figures(model, x[5], int(y[5])))
    assert list(named) == ["saliency", "conv2d_kernel_gradient", "conv2d_1_kernel_gradient"]
    records = model.trace(x[5:6, ..., None] / 255.0, y[5:6].astype(int))
    saliency = colour_images(named["saliency"])[1]
    np.testing.assert_allclose(saliency.get_array(), records[0].grad_input[0, :, :, 0], rtol=1e-6)
    assert saliency.norm.vmin == -saliency.norm.vmax
    first = colour_images(named["conv2d_kernel_gradient"])
    np.testing.assert_allclose(first[0].get_array(), records[0].param_grads["kernel"][:, :, 0, 0], rtol=1e-6)


def test_evolution_reads_every_snapshot_and_draws_one_scale_for_all_epochs(run_dir, tmp_path):
    layer, snapshots = evolution.load_snapshots(run_dir)
    assert layer == "conv2d" and [e for e, _, _ in snapshots] == [0, 1, 2]
    with np.load(run_dir / "filters" / "epoch_002.npz") as npz:
        np.testing.assert_array_equal(snapshots[2][1], npz["conv2d/kernel"])
    fig = evolution.evolution_figure(snapshots, layer)
    (image,) = colour_images(fig)
    limit = max(np.abs(k).max() for _, k, _ in snapshots)
    assert image.norm.vmax == pytest.approx(limit) and image.norm.vmin == pytest.approx(-limit)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["init", "epoch 1", "epoch 2"]
    gif = evolution.save_evolution_gif(snapshots, layer, tmp_path / "e.gif")
    from PIL import Image

    with Image.open(gif) as img:
        assert img.format == "GIF" and img.n_frames == 3


def test_evolution_errors_name_the_problem(run_dir, tmp_path):
    with pytest.raises(ValueError, match="no filters/ folder"):
        evolution.load_snapshots(tmp_path)
    with pytest.raises(ValueError, match="layers there: conv2d, conv2d_1"):
        evolution.load_snapshots(run_dir, "dense")
