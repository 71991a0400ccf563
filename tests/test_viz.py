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


def title(fig) -> str:
    """The figure's title with its line breaks (wrapped to the figure's width) as spaces."""
    return fig.get_suptitle().replace("\n", " ")


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


def grid_tile(mosaic, row, col, size=3):
    """Tile (row, col) of a filter mosaic: each weight ZOOM x ZOOM pixels, one-pixel gaps between tiles."""
    zoom, tile = figures.ZOOM, size * figures.ZOOM + 1
    return mosaic[tile * row : tile * row + size * zoom : zoom, tile * col : tile * col + size * zoom : zoom]


def test_deeper_filters_default_to_a_readable_subset_and_the_title_says_of_how_many():
    kernel = np.random.default_rng(1).normal(size=(3, 3, 40, 70))
    fig = viz.filters_figure(kernel, title="deep", scale="shared")
    (image,) = colour_images(fig)
    mosaic = np.ma.filled(image.get_array(), np.nan)
    rows, cols, tile = figures.DEFAULT_GRID_FILTERS, figures.DEFAULT_GRID_CHANNELS, 3 * figures.ZOOM + 1
    assert mosaic.shape == (rows * tile - 1, cols * tile - 1)
    np.testing.assert_array_equal(grid_tile(mosaic, 5, 7), kernel[:, :, 7, 5])
    assert np.isnan(mosaic[tile - 1, :]).all()  # the gap between filter rows
    # The colour limit covers the whole kernel, shown or not, so a subset is not re-scaled.
    assert image.norm.vmax == pytest.approx(np.abs(kernel).max())
    assert "deep filters 0-15 of 70, input channels 0-7 of 40 (more: --filters, --channels)" == title(fig)
    assert "input channel" in texts(fig)


def test_chosen_filters_and_channels_are_drawn_in_the_order_asked():
    kernel = np.random.default_rng(3).normal(size=(3, 3, 32, 64))
    fig = viz.filters_figure(kernel, filters=[60, 2, 3, 4], channels=range(28, 32), scale="shared")
    mosaic = np.ma.filled(colour_images(fig)[0].get_array(), np.nan)
    np.testing.assert_array_equal(grid_tile(mosaic, 0, 0), kernel[:, :, 28, 60])
    np.testing.assert_array_equal(grid_tile(mosaic, 3, 3), kernel[:, :, 31, 4])
    assert "filters 60, 2-4 of 64, input channels 28-31 of 32" in title(fig)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["60", "2", "3", "4"]
    whole = viz.filters_figure(kernel, filters=range(64), channels=range(32))   # the whole bank: no subset line
    assert "\n" not in whole.get_suptitle()


def test_first_layer_subset_is_said_in_the_title():
    kernel = np.random.default_rng(4).normal(size=(3, 3, 1, 32))
    fig = viz.filters_figure(kernel, title="conv2d", filters=range(8), scale="shared")
    assert len(colour_images(fig)) == 8
    assert fig.get_suptitle() == "conv2d\nfilters 0-7 of 32 (more: --filters)"
    assert "\n" not in viz.filters_figure(kernel, title="conv2d").get_suptitle()   # all 32 drawn


def test_per_filter_scales_when_one_shared_scale_would_leave_filters_pale():
    kernel = np.random.default_rng(5).normal(size=(3, 3, 8, 16))
    kernel[..., 4:] *= 1e-3          # 12 of 16 filters a thousand times weaker: one scale shows only 4
    own = np.abs(kernel).max(axis=(0, 1, 2))
    fig = viz.filters_figure(kernel, bias=np.zeros(16))
    mosaic = np.ma.filled(colour_images(fig)[0].get_array(), np.nan)
    np.testing.assert_allclose(grid_tile(mosaic, 9, 2), kernel[:, :, 2, 9] / own[9])
    assert np.nanmax(np.abs(mosaic)) == pytest.approx(1.0)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[9] == f"9  b=+0  ±{own[9]:.2g}"
    note = texts(fig)
    assert "each filter on its own scale" in note
    assert f"one shared scale (±{np.abs(kernel).max():.3g}) would leave 12 of the 16 shown filters" in note
    # The same bank with equal filters stays on one scale, and says so.
    even = viz.filters_figure(np.random.default_rng(5).normal(size=(3, 3, 8, 16)))
    assert "one scale for all filters" in texts(even)
    forced = viz.filters_figure(kernel, scale="shared")
    assert colour_images(forced)[0].norm.vmax == pytest.approx(np.abs(kernel).max())
    assert "one scale for all filters" in texts(forced)


def test_first_layer_per_filter_scales_label_each_tile():
    kernel = np.random.default_rng(6).normal(size=(3, 3, 1, 4)) * np.array([1.0, 1e-3, 1e-3, 1e-3])
    fig = viz.filters_figure(kernel)
    images = colour_images(fig)
    for f, im in enumerate(images):
        limit = np.abs(kernel[..., f]).max()
        np.testing.assert_allclose(im.get_array(), kernel[:, :, 0, f] / limit)
        assert im.axes.get_title() == f"#{f}\n±{limit:.2g}"
    assert "would leave 3 of the 4 shown filters" in texts(fig)
    assert "one scale for all filters" in texts(viz.filters_figure(kernel, vmax=2.0))  # vmax: one shared scale


@pytest.mark.parametrize("kwargs, message", [
    ({"filters": [70]}, "filters must be between 0 and 63 (there are 64), received 70"),
    ({"filters": [1, 1]}, "filters: each index once, received 1, 1"),
    ({"filters": []}, "filters: choose at least one"),
    ({"channels": range(33)}, "channels must be between 0 and 31 (there are 32), received 32"),
    ({"filters": range(64), "channels": range(32), "scale": "bold"}, "scale must be one of auto, shared, per-filter"),
    ({"vmax": 1.0, "scale": "per-filter"}, "cannot be combined with scale='per-filter'"),
])
def test_bad_subsets_and_scales_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        viz.filters_figure(np.ones((3, 3, 32, 64)), **kwargs)


def test_channels_of_a_first_layer_are_refused():
    with pytest.raises(ValueError, match="a first layer's filters \\(1 input channel\\) are drawn whole"):
        viz.filters_figure(np.ones((3, 3, 1, 4)), channels=[0])


def test_a_grid_larger_than_one_picture_is_refused():
    with pytest.raises(ValueError, match="one picture draws at most 64, received 65"):
        viz.filters_figure(np.ones((3, 3, 8, 70)), filters=range(65))


def test_index_lists_are_read_as_written():
    from convscope.viz.sources import parse_indices

    assert parse_indices("0-3,8, 10-11", "--filters") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_indices("5", "--filters") == [5] and parse_indices(None, "--filters") is None
    for text in ("", "a", "-3", "1-", "1-2-3", "3.5"):
        with pytest.raises(ValueError, match="--channels must be indices or ranges"):
            parse_indices(text, "--channels")


def test_layers_that_act_only_in_training_are_named():
    from convscope import layers
    from convscope.viz.sources import training_only_layers

    model = convscope.Sequential([convscope.Input((8, 8, 1)), layers.RandomFlip(name="flip"),
                                  layers.Conv2D(2, 3, name="conv"), layers.BatchNormalization(name="bn"),
                                  layers.Flatten(), layers.Dropout(0.25, name="drop"), layers.Dense(2)])
    assert training_only_layers(model) == ["flip (random flip)", "bn (the batch's statistics)", "drop (rate 0.25)"]


def test_indices_are_described_as_ranges():
    assert figures.describe_indices([0, 1, 2, 3, 8, 10, 11]) == "0-3, 8, 10-11"
    assert figures.describe_indices([5]) == "5"


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
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()] == [
        "training, epoch mean (last 0.9000)", "validation, end of epoch (last 0.8500)"]
    note = fig.get_supxlabel().replace("\n", " ")
    assert "the mean over each epoch's batches" in note and "measured once after the epoch" in note
    assert "training accuracy is below validation's in 1 of 3 epochs" in note
    assert "training loss is above validation's in 1 of 3 epochs" in note
    assert "dropout" not in note                              # not known here, so not said


def test_the_history_note_names_the_layers_that_act_only_in_training():
    history = {"loss": [0.5], "val_loss": [0.4]}
    note = figures.training_versus_validation(history, ["dropout (rate 0.5)"])
    assert "in training mode (dropout (rate 0.5) active)" in note and "in inference mode" in note
    assert note.endswith("Both make training look worse than the weights it ends with: here training loss is above "
                         "validation's in 1 of 1 epochs.")
    plain = figures.training_versus_validation(history, [])
    assert "The model has no dropout, batch normalization or augmentation" in plain and "That makes" in plain
    assert viz.curves_figure({"loss": [1.0, 0.5]}).get_supxlabel() == ""   # no validation: nothing to explain


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
    gradient = records[0].grad_input[0, :, :, 0]
    np.testing.assert_allclose(saliency.get_array(), gradient, rtol=1e-6)
    assert saliency.norm.vmin == -saliency.norm.vmax
    kernel = records[0].param_grads["kernel"]
    first = colour_images(named["conv2d_kernel_gradient"])
    scale = 1.0 if "one scale for all filters" in texts(named["conv2d_kernel_gradient"]) else np.abs(kernel[..., 0]).max()
    np.testing.assert_allclose(first[0].get_array() * scale, kernel[:, :, 0, 0], rtol=1e-6)
    shared = dict(model_figures.gradient_figures(model, x[5], int(y[5]), select=lambda path, k: {"scale": "shared"}))
    np.testing.assert_allclose(colour_images(shared["conv2d_kernel_gradient"])[0].get_array(), kernel[:, :, 0, 0],
                               rtol=1e-6)
    only = dict(model_figures.gradient_figures(model, x[5], int(y[5]),
                                               select=lambda path, k: None if path == "conv2d" else {"filters": [3]}))
    assert list(only) == ["saliency", "conv2d_1_kernel_gradient"]
    assert "filters 3 of 64" in title(only["conv2d_1_kernel_gradient"])


def test_saliency_limits_are_a_percentile_and_the_figure_says_so():
    gradient = np.random.default_rng(7).normal(size=(28, 28)) * 1e-6
    gradient[3, 4] = 1e-3                      # one strong pixel: ±max would leave every other pixel white
    probabilities = np.full(10, 1e-6)
    probabilities[7] = 1 - 9e-6
    fig = model_figures.saliency_figure(np.zeros((28, 28)), gradient, 7, probabilities, value_range=(0, 1))
    shown = colour_images(fig)[1]
    limit = np.percentile(np.abs(gradient), model_figures.SALIENCY_PERCENTILE)
    assert shown.norm.vmax == pytest.approx(limit) and limit < 1e-5
    beyond = int(np.sum(np.abs(gradient) > limit))
    note = fig.get_supxlabel()
    assert f"colour limits ±{limit:.3g}, the 99th percentile of |dL/d(pixel)| (largest 0.001; {beyond} pixels beyond" \
        in note
    assert "the model is sure (p(label) = 1.0000)" in note and "--least-confident" in note
    assert "1 − p(label) = 9e-06" in texts(fig)
    probabilities[:] = 0.1
    unsure = model_figures.saliency_figure(np.zeros((28, 28)), gradient, 7, probabilities, value_range=(0, 1))
    assert "the model is unsure (p(label) = 0.1000)" in unsure.get_supxlabel()


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
