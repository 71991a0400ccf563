"""The explorer's arithmetic of one value on awkward geometry (same padding, strides, dilation, groups, average
pooling) held to the loop references, and its receptive fields held to what the output really depends on."""

from __future__ import annotations

import numpy as np
import pytest

import convscope
from convscope import layers, utils
from convscope.explorer import compute
from convscope.explorer.geometry import receptive_field
from convscope.arraymath.reference import avg_pool2d_loops, conv2d_loops


@pytest.fixture(scope="module")
def model():
    utils.set_random_seed(3)
    net = convscope.Sequential([
        convscope.Input(shape=(28, 28, 1)),
        layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh", bias_initializer="random_normal",
                      name="strided"),
        layers.Conv2D(4, 3, dilation_rate=2, padding="same", groups=2, activation="relu",
                      bias_initializer="random_normal", name="dilated"),
        layers.AveragePooling2D(3, strides=2, padding="same", name="avg"),
        layers.Flatten(name="flat"),
        layers.Dense(10, activation="softmax", name="out"),
    ])
    return net


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(4).random((28, 28)) * 255).round()


# Corners and edges reach into the padding; the middle does not.
CELLS = [(0, 0), (0, 13), (13, 13), (6, 7), (13, 0)]


@pytest.mark.parametrize("row, col", CELLS)
@pytest.mark.parametrize("layer_name", ["strided", "dilated"])
def test_conv_cells_equal_the_loop_reference(model, image, layer_name, row, col):
    layer = model.get_layer(layer_name)
    position = model.layers.index(layer)
    x = model.trace(compute.as_input(image))[position].input
    config = layer.get_config()
    kernel, bias = layer.kernel.value, layer.bias.value
    reference = conv2d_loops(x, kernel, bias, config["strides"], config["padding"], config["dilation_rate"],
                             config["groups"])
    for channel in range(4):
        cell = compute.cell(model, image, layer_name, (row, col, channel))
        assert cell["z"] == pytest.approx(float(reference[0, row, col, channel]), rel=1e-5, abs=1e-6)
        assert cell["output"] == pytest.approx(float(layer.activation(reference)[0, row, col, channel]), rel=1e-5, abs=1e-6)
        # The model sums in another order: equal in float32, or apart by no more than float32 rounding allows.
        assert cell["z_matches"] == (cell["z_ulps"] == 0)
        assert abs(cell["z"] - cell["traced_preactivation"]) <= cell["bound"] + 1e-7 * abs(cell["z"])
        # A group sees only its own input channels: filters 0-1 channels 0-1, filters 2-3 channels 2-3.
        if layer_name == "dilated":
            assert cell["input_channels"] == ([0, 2] if channel < 2 else [2, 4])


@pytest.mark.parametrize("row, col", [(0, 0), (3, 3), (6, 6), (6, 0)])
def test_average_pooling_cells_leave_padding_out_of_the_mean(model, image, row, col):
    trace = model.trace(compute.as_input(image))
    reference = avg_pool2d_loops(trace[2].input, (3, 3), (2, 2), "same")
    for channel in range(4):
        cell = compute.cell(model, image, "avg", (row, col, channel))
        assert cell["kind"] == "mean"
        assert cell["output"] == pytest.approx(float(reference[0, row, col, channel]), rel=1e-5)
        assert cell["matches"] == (cell["ulps"] == 0) and cell["ulps"] <= 2


def test_padded_window_cells_are_marked_and_zero(model, image):
    cell = compute.cell(model, image, "strided", (0, 0, 0))
    # Same padding of 28 with kernel 3 stride 2: 1 cell, all at the bottom/right, so row/col 0 is not padded ...
    assert cell["window"]["pads"] == [[0, 1], [0, 1]]
    corner = compute.cell(model, image, "strided", (13, 13, 0))
    # ... and the last window hangs one cell over the bottom and the right edge.
    assert corner["patch_inside"].tolist() == [[True, True, False], [True, True, False], [False, False, False]]
    assert not np.any(corner["patch"][~corner["patch_inside"]])


@pytest.mark.parametrize("layer_name, row, col", [("strided", 5, 9), ("dilated", 0, 0), ("dilated", 7, 7),
                                                  ("avg", 3, 2), ("avg", 0, 6)])
def test_the_receptive_field_holds_everything_the_value_depends_on(model, image, layer_name, row, col):
    """Changing any input pixel outside the receptive field leaves the value exactly as it was."""
    position = [l.name for l in model.layers].index(layer_name)
    field = compute.cell(model, image, layer_name, (row, col, 0))["receptive_field"]
    outside = [(r, c) for r in range(28) for c in range(28)
               if not (field["top"] <= r <= field["bottom"] and field["left"] <= c <= field["right"])]
    batch = np.repeat(compute.as_input(image), len(outside), axis=0)
    for k, (r, c) in enumerate(outside):
        batch[k, r, c, 0] = 1.0 - batch[k, r, c, 0] + 0.5
    values = model.trace(batch)[position].output[:, row, col, 0]
    original = model.trace(compute.as_input(image))[position].output[0, row, col, 0]
    np.testing.assert_array_equal(values, original)


def test_receptive_fields_on_known_geometry(model):
    records = compute.calls(model)
    # strided: output (r, c) reads input rows 2r .. 2r+2 (clipped at 27).
    assert receptive_field(records, "strided", 5, 13, (28, 28)) == {"top": 10, "bottom": 12, "left": 26, "right": 27,
                                                                   "whole": False}
    # dilated 3x3, dilation 2, same padding 2: rows r-2 .. r+2 of "strided", i.e. input rows 2(r-2) .. 2(r+2)+2.
    assert receptive_field(records, "dilated", 7, 7, (28, 28)) == {"top": 10, "bottom": 20, "left": 10, "right": 20,
                                                                  "whole": False}
    # A dense unit reads every pixel.
    assert receptive_field(records, "out", 0, 0, (28, 28))["whole"]


def test_edited_copy_leaves_the_original_alone(model):
    before = model.get_layer("strided").kernel.value.copy()
    edited = compute.edited_copy(model, [{"layer": "strided", "index": [0, 1, 0, 2], "value": 7.0}])
    assert edited.get_layer("strided").kernel.value[0, 1, 0, 2] == 7.0
    np.testing.assert_array_equal(model.get_layer("strided").kernel.value, before)
