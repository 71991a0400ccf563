"""The explorer's panels on a graph (strided, dilated-grouped, depthwise, transposed conv, Add, Concatenate,
pooling, Dense softmax): every value a panel recomputes is held to an independent loop reference in float64
and to the model's own traced value, equal in float32 or apart by no more than float32 rounding allows."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import graph_tour_model
from convscope.arraymath.reference import (
    avg_pool2d_backward_loops, conv2d_backward_loops, conv2d_loops, max_pool2d_backward_loops,
)
from convscope.arraymath.reference_conv import (
    conv2d_transpose_loops, depthwise_conv2d_backward_loops, depthwise_conv2d_loops,
)
from convscope.explorer import compute
from convscope.explorer.geometry import receptive_field

LABEL = 4
EPS32 = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def model():
    return graph_tour_model()


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(4).random((28, 28)) * 255).round()


@pytest.fixture(scope="module")
def records(model, image):
    return model.trace(compute.as_input(image), np.array([LABEL]))


def f64(a):
    return np.asarray(a, dtype=np.float64)


def record_of(records, call):
    return next(r for r in records if r.call == call)


def close(shown, exact, result):
    """A panel value within float32 rounding of the exact float64 value (its bound, plus the final rounding)."""
    return abs(shown - exact) <= result.get("bound", 0.0) + 2 * EPS32 * abs(exact) + 1e-12


def check_verdict(result, shown, traced):
    """The panel claims "the same" exactly when the two values are equal in float32."""
    assert result["matches"] == (np.float32(shown) == np.float32(traced))


def test_describe_follows_the_graph_in_execution_order(model):
    rows = compute.describe(model)
    assert [r["call"] for r in rows] == ["strided", "dilated", "dw", "proj", "add", "maxp", "tconv", "cat", "avg",
                                         "block/inner_conv", "block/inner_relu", "block", "flat", "out"]
    inbound = {r["call"]: r["inbound"] for r in rows}
    assert inbound["add"] == ["dilated", "proj"] and inbound["cat"] == ["tconv", "add"]
    assert len(inbound["strided"]) == 1 and inbound["strided"][0] not in inbound  # the model's input
    # The nested model's calls come just before it, read from its input; it reads its last inner call.
    assert inbound["block/inner_conv"] == ["avg"] and inbound["block"] == ["block/inner_relu"]
    explained = {r["call"] for r in rows if r["explained"]}
    assert explained == {"strided", "dilated", "dw", "proj", "add", "maxp", "tconv", "cat", "avg", "block/inner_conv",
                         "block/inner_relu", "out"}
    assert {r["call"]: r["backward"] for r in rows if r["backward"]} == {
        "strided": "conv", "dilated": "conv", "dw": "conv", "proj": "conv", "maxp": "pool", "avg": "pool"}


@pytest.mark.parametrize("index", [(0, 0, 0), (5, 9, 3), (13, 13, 1)])
@pytest.mark.parametrize("call", ["strided", "dilated", "proj"])
def test_conv_cells_equal_the_loop_reference(model, image, records, call, index):
    record, layer = record_of(records, call), model.get_layer(call)
    cfg = layer.get_config()
    z = conv2d_loops(f64(record.input), f64(layer.kernel.value), f64(layer.bias.value), cfg["strides"], cfg["padding"],
                     cfg["dilation_rate"], cfg["groups"])[(0, *index)]
    cell = compute.cell(model, image, call, index)
    assert close(cell["z"], z, cell)
    check_verdict({"matches": cell["z_matches"]}, cell["z"], cell["traced_preactivation"])
    assert cell["z"] == float(np.float32(np.float32(cell["sum"]) + np.float32(cell["bias"])))  # one float32 addition


@pytest.mark.parametrize("index", [(0, 0, 0), (6, 7, 5), (13, 2, 7)])
def test_depthwise_cells_read_one_input_channel(model, image, records, index):
    record, layer = record_of(records, "dw"), model.get_layer("dw")
    z = depthwise_conv2d_loops(f64(record.input), f64(layer.kernel.value), f64(layer.bias.value),
                               padding="same")[(0, *index)]
    cell = compute.cell(model, image, "dw", index)
    assert cell["input_channels"] == [index[2] // 2, index[2] // 2 + 1]  # depth multiplier 2
    assert close(cell["z"], z, cell)


@pytest.mark.parametrize("index", [(0, 0, 0), (4, 5, 2), (13, 13, 1), (7, 6, 0)])
def test_transposed_conv_cells_gather_the_scattered_kernel(model, image, records, index):
    record, layer = record_of(records, "tconv"), model.get_layer("tconv")
    z = conv2d_transpose_loops(f64(record.input), f64(layer.kernel.value), f64(layer.bias.value), strides=(2, 2),
                               padding="same")[(0, *index)]
    cell = compute.cell(model, image, "tconv", index)
    assert close(cell["z"], z, cell)
    # Stride 2: for each axis only taps of one parity land on this output cell; the others have no source.
    landed = (cell["sources"][:, :, 0] >= 0)
    assert 0 < landed.sum() <= 4
    assert not np.any(cell["products"][~landed])


def test_merge_and_concatenate_cells_say_where_each_number_came_from(model, image, records):
    add = compute.cell(model, image, "add", (2, 3, 1))
    dilated, proj = record_of(records, "dilated").output, record_of(records, "proj").output
    assert add["inputs"] == ["dilated", "proj"] and add["operation"] == "+"
    assert add["values"] == [float(dilated[0, 2, 3, 1]), float(proj[0, 2, 3, 1])]
    assert add["output"] == float(np.float32(dilated[0, 2, 3, 1]) + np.float32(proj[0, 2, 3, 1]))
    assert add["matches"]
    first = compute.cell(model, image, "cat", (3, 3, 1))
    second = compute.cell(model, image, "cat", (3, 3, 4))  # tconv has 3 channels: channel 4 is add's channel 1
    assert (first["source"], first["source_index"]) == ("tconv", [3, 3, 1])
    assert (second["source"], second["source_index"]) == ("add", [3, 3, 1])
    assert second["output"] == float(record_of(records, "add").output[0, 3, 3, 1]) and second["matches"]


def test_the_softmax_panel_gives_the_prediction(model, image):
    probabilities = model.predict(compute.as_input(image), verbose=0)[0]
    for unit in range(10):
        cell = compute.cell(model, image, "out", (unit,))
        softmax = cell["softmax"]
        assert len(cell["terms"]) == 12 and cell["rest_count"] == cell["inputs"] - 12 == 7 * 7 * 7 - 12
        sizes = [abs(t["product"]) for t in cell["terms"]]
        assert sizes == sorted(sizes, reverse=True)
        assert softmax["p"][unit] == cell["output"]
        assert abs(cell["output"] - float(probabilities[unit])) <= 4 * EPS32 * max(probabilities[unit], 1e-30)
        check_verdict(cell, cell["output"], probabilities[unit])
        assert sum(softmax["exp"]) == pytest.approx(softmax["total"], rel=1e-6)


@pytest.mark.parametrize("index", [(0, 0, 0, 0), (1, 2, 0, 3), (2, 2, 0, 1)])
def test_the_kernel_gradient_is_the_correlation_of_input_and_dz(model, image, records, index):
    record, layer = record_of(records, "strided"), model.get_layer("strided")
    cfg = layer.get_config()
    _, dkernel = conv2d_backward_loops(f64(record.grad_preactivation), f64(record.input), f64(layer.kernel.value),
                                       cfg["strides"], cfg["padding"], cfg["dilation_rate"])[:2]
    cell = compute.kernel_gradient_cell(model, image, LABEL, "strided", index)
    assert close(cell["sum"], dkernel[index], cell)
    assert abs(cell["sum"] - cell["traced"]) <= cell["bound"] + 2 * EPS32 * abs(cell["traced"])
    check_verdict(cell, cell["sum"], cell["traced"])
    # One product per output position: the 14x14 dL/dz map times the input value the tap sees there.
    assert cell["products"].shape == (14, 14) == cell["gradient_map"].shape


@pytest.mark.parametrize("call, index", [("dilated", (2, 1, 1, 3)), ("dilated", (0, 0, 0, 0)), ("proj", (0, 0, 5, 2)),
                                         ("dw", (0, 1, 2, 1))])
def test_kernel_gradients_of_grouped_pointwise_and_depthwise_convs(model, image, records, call, index):
    record, layer = record_of(records, call), model.get_layer(call)
    cfg = layer.get_config()
    if call == "dw":
        _, dkernel = depthwise_conv2d_backward_loops(f64(record.grad_preactivation), f64(record.input),
                                                     f64(layer.kernel.value), padding="same")[:2]
    else:
        _, dkernel = conv2d_backward_loops(f64(record.grad_preactivation), f64(record.input), f64(layer.kernel.value),
                                           cfg["strides"], cfg["padding"], cfg["dilation_rate"], cfg["groups"])[:2]
    cell = compute.kernel_gradient_cell(model, image, LABEL, call, index)
    assert close(cell["sum"], dkernel[index], cell)
    check_verdict(cell, cell["sum"], cell["traced"])


@pytest.mark.parametrize("call, index", [("strided", (5, 6, 0)), ("strided", (27, 27, 0)), ("strided", (0, 1, 0)),
                                         ("dilated", (3, 4, 2)), ("dw", (7, 8, 3)), ("proj", (2, 2, 5))])
def test_the_input_gradient_is_the_full_convolution_with_the_rotated_kernel(model, image, records, call, index):
    record, layer = record_of(records, call), model.get_layer(call)
    cfg = layer.get_config()
    if call == "dw":
        dx = depthwise_conv2d_backward_loops(f64(record.grad_preactivation), f64(record.input),
                                             f64(layer.kernel.value), padding="same")[0]
    else:
        dx = conv2d_backward_loops(f64(record.grad_preactivation), f64(record.input), f64(layer.kernel.value),
                                   cfg["strides"], cfg["padding"], cfg["dilation_rate"], cfg["groups"])[0]
    cell = compute.input_gradient_cell(model, image, LABEL, call, index)
    assert close(cell["sum"], dx[(0, *index)], cell)
    check_verdict(cell, cell["sum"], cell["traced"])
    kernel = layer.kernel.value
    np.testing.assert_array_equal(cell["rotated_kernel"][0, 0], (kernel[-1, -1, index[2], :] if call == "dw" else
                                                                  kernel[-1, -1, index[2] % kernel.shape[2],
                                                                         cell["filters"]]))


def test_stride_dilation_zeros_and_padding_are_marked(model, image, records):
    """Stride 2, same padding (0, 1): input cell (5, 6) is read by taps whose dL/dz row would be 5/2 (a zero
    that dilation inserted) or 4/2 and 6/2 (real values); at (27, 27) the taps past the last row are padding."""
    cell = compute.input_gradient_cell(model, image, LABEL, "strided", (5, 6, 0))
    status = np.array(cell["status"])
    assert (status == "stride").any() and (status == "value").any()
    np.testing.assert_array_equal(cell["gradient_window"][status != "value"], 0)
    corner = compute.input_gradient_cell(model, image, LABEL, "strided", (27, 27, 0))
    assert (np.array(corner["status"]) == "pad").any()
    dilated = cell["dilated_gradient"]
    assert dilated.shape == (28 + 2, 28 + 2, 4)  # H + d(kh - 1)
    # Padded by d(kh - 1) - top = 2 before: dL/dz[r, q] sits at (2 + 2r, 2 + 2q); every other cell is a zero.
    g = record_of(records, "strided").grad_preactivation[0]
    np.testing.assert_array_equal(dilated[2::2, 2::2], g)
    assert np.count_nonzero(dilated) == np.count_nonzero(g)


def test_max_pooling_routes_the_gradient_to_its_first_maximum(model, image, records):
    record = record_of(records, "maxp")
    dx = max_pool2d_backward_loops(f64(record.grad_output), f64(record.input))
    for index in [(0, 0, 0), (2, 2, 1), (6, 6, 3)]:
        cell = compute.pool_gradient_cell(model, image, LABEL, "maxp", index)
        window = record.input[0, 2 * index[0] : 2 * index[0] + 2, 2 * index[1] : 2 * index[1] + 2, index[2]]
        where = np.unravel_index(np.argmax(window), window.shape)
        assert cell["argmax"] == [int(where[0]), int(where[1])]
        assert np.count_nonzero(cell["routed"]) <= 1 and cell["routed"][where] == cell["dy"]
        assert cell["matches"] and not cell["overlapping"]
        r0, c0 = 2 * index[0], 2 * index[1]
        np.testing.assert_array_equal(cell["traced_dx"], f64(dx[0, r0 : r0 + 2, c0 : c0 + 2, index[2]]))


def test_average_pooling_shares_the_gradient_equally(model, image, records):
    record = record_of(records, "avg")
    dx = avg_pool2d_backward_loops(f64(record.grad_output), f64(record.input), (3, 3), (2, 2), "same")
    cell = compute.pool_gradient_cell(model, image, LABEL, "avg", (0, 0, 5))
    assert cell["pool"] == "mean" and cell["overlapping"]  # 3x3 windows, stride 2
    # Each cell of the window receives the shares of every window that reads it: their sum is the traced dL/dx.
    inside_ = cell["patch_inside"]
    np.testing.assert_allclose(cell["shared_sum"][inside_], cell["traced_dx"][inside_], rtol=1e-6, atol=1e-12)
    assert cell["matches"] == bool(np.array_equal(cell["shared_sum"][inside_].astype(np.float32), cell["traced_dx"][inside_].astype(np.float32)))
    inside = cell["patch_inside"]
    assert np.allclose(cell["routed"][inside], cell["dy"] / inside.sum(), rtol=1e-6)
    # An input cell shared by overlapping windows sums their shares: held to the loop reference.
    shared = compute.input_gradient_cell(model, image, LABEL, "avg", (2, 2, 5))
    assert len(shared["shares"]) == 4
    assert close(shared["sum"], dx[0, 2, 2, 5], shared)


@pytest.mark.parametrize("function, call, index, message", [
    (compute.kernel_gradient_cell, "maxp", (0, 0, 0, 0), "'maxp' is a MaxPooling2D: this gradient is shown for Conv2D"),
    (compute.kernel_gradient_cell, "strided", (3, 0, 0, 0), "kernel index [3, 0, 0, 0] is outside 'strided'"),
    (compute.input_gradient_cell, "add", (0, 0, 0), "'add' is a Add: this gradient is shown for Conv2D"),
    (compute.input_gradient_cell, "strided", (28, 0, 0), "input index [28, 0, 0] is outside 'strided'"),
    (compute.pool_gradient_cell, "strided", (0, 0, 0), "'strided' is a Conv2D: this gradient is shown for MaxPooling2D"),
    (compute.pool_gradient_cell, "maxp", (7, 0, 0), "output index [7, 0, 0] is outside 'maxp'"),
    (compute.kernel_gradient_cell, "nope", (0, 0, 0, 0), "no layer call named 'nope'"),
])
def test_backward_cells_refuse_what_they_cannot_show(model, image, function, call, index, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        function(model, image, LABEL, call, index)


@pytest.mark.parametrize("call, index, message", [
    ("flat", (0,), "'flat' is a Flatten: the page explains conv"),
    ("out", (10,), r"output index \[10\] is outside 'out'"),
    ("add", (0, 0), r"output index \[0, 0\] is outside 'add'"),
])
def test_forward_cells_refuse_what_they_cannot_show(model, image, call, index, message):
    with pytest.raises(ValueError, match=message):
        compute.cell(model, image, call, index)


def test_a_nested_models_layers_are_explained_and_edited_by_path(model, image, records):
    """Inside the nested block: its conv's cell is held to the loop reference on what the block received, its
    receptive field reaches back through the graph, and an edit addressed "block/inner_conv" changes that kernel."""
    inner = model.get_layer("block").get_layer("inner_conv")
    z = conv2d_loops(f64(record_of(records, "block").input), f64(inner.kernel.value), f64(inner.bias.value),
                     padding="same")[0, 3, 4, 2]
    cell = compute.cell(model, image, "block/inner_conv", (3, 4, 2))
    assert close(cell["z"], z, cell) and cell["layer_name"] == "block/inner_conv"
    assert cell["receptive_field"]["whole"] is False
    assert cell["receptive_field"] != compute.cell(model, image, "avg", (3, 4, 2))["receptive_field"]  # wider
    edited = compute.edited_copy(model, [{"layer": "block/inner_conv", "index": [0, 0, 0, 0], "value": 5.0}])
    assert edited.get_layer("block").get_layer("inner_conv").kernel.value[0, 0, 0, 0] == 5.0
    assert sorted(f["name"] for f in compute.filters(model)) == ["block/inner_conv", "dilated", "dw", "proj", "strided"]
    analysis = compute.analyze(model, image, LABEL, backward=True)
    entries = {e["call"]: e for e in analysis["layers"]}
    assert "grad_output" not in entries["block/inner_conv"] and "grad_output" in entries["block"]  # forward only inside
    with pytest.raises(ValueError, match="'block' is a Sequential: the page explains"):
        compute.cell(model, image, "block", (0, 0, 0))


def test_activation_layers_and_a_softmax_layer_are_explained():
    """Dense(10) then Softmax(), the other common Keras ending: the softmax layer's panel gives the prediction;
    a ReLU layer's cell is f(x) of the same cell of its input."""
    import convscope
    from convscope import layers

    inputs = convscope.Input(shape=(28, 28, 1))
    x = layers.ReLU(name="relu")(layers.Conv2D(4, 3, name="conv")(inputs))
    logits = layers.Dense(10, name="logits")(layers.Flatten()(layers.Activation("tanh", name="tanh")(x)))
    net = convscope.Model(inputs, layers.Softmax(name="probabilities")(logits))
    image = (np.random.default_rng(0).random((28, 28)) * 255).round()
    records = {r.call: r for r in net.trace(compute.as_input(image))}
    relu = compute.cell(net, image, "relu", (3, 3, 1))
    assert relu["x"] == float(records["conv"].output[0, 3, 3, 1]) and relu["output"] == max(relu["x"], 0.0)
    assert relu["matches"] and relu["function"] == "relu"
    assert compute.cell(net, image, "tanh", (2, 2, 0))["output"] == float(records["tanh"].output[0, 2, 2, 0])
    probabilities = net.predict(compute.as_input(image), verbose=0)[0]
    for unit in (0, 4, 9):
        cell = compute.cell(net, image, "probabilities", (unit,))
        assert cell["kind"] == "softmax" and cell["unit"] == unit
        assert abs(cell["output"] - probabilities[unit]) <= 4 * EPS32 * probabilities[unit]
        check_verdict(cell, cell["output"], probabilities[unit])
    assert "softmax" not in compute.cell(net, image, "logits", (4,))  # the dense layer itself stops at z


def test_receptive_fields_through_a_concatenation_along_rows():
    """Concatenate on axis 1 stacks two maps: a cell of the lower part reads only the second input's rows."""
    import convscope
    from convscope import layers

    inputs = convscope.Input(shape=(28, 28, 1))
    a = layers.Conv2D(2, 3, name="a")(inputs)                 # 26 rows; row r reads input rows r..r+2
    b = layers.Conv2D(2, (5, 3), strides=(2, 1), name="b")(inputs)  # 12 rows; row r reads input rows 2r..2r+4
    net = convscope.Model(inputs, layers.Concatenate(axis=1, name="rows")([a, b]))
    records = compute.calls(net)
    field = receptive_field(records, "rows", 26 + 5, 3, (28, 28))
    assert (field["top"], field["bottom"], field["left"], field["right"]) == (10, 14, 3, 5)
    field = receptive_field(records, "rows", 4, 3, (28, 28))
    assert (field["top"], field["bottom"], field["left"], field["right"]) == (4, 6, 3, 5)


def test_a_label_the_model_does_not_have_is_refused():
    import convscope
    from convscope import layers

    five = convscope.Sequential([convscope.Input(shape=(28, 28, 1)), layers.Conv2D(2, 3, name="conv"), layers.Flatten(),
                                 layers.Dense(5, activation="softmax")])
    image = np.zeros((28, 28))
    with pytest.raises(ValueError, match="label 7 is not a class of this model: its output has 5 classes, 0-4"):
        compute.analyze(five, image, 7)
    with pytest.raises(ValueError, match="label 5 is not a class"):
        compute.kernel_gradient_cell(five, image, 5, "conv", (0, 0, 0, 0))
    assert compute.analyze(five, image, 4)["label"] == 4


def test_mistakes_lists_exactly_the_misclassified(model):
    rng = np.random.default_rng(0)
    x = (rng.random((40, 28, 28)) * 255).astype(np.uint8)
    predicted = np.argmax(model.predict(x[..., None].astype(np.float32) / 255.0, verbose=0), axis=1)
    y = predicted.copy()
    y[[3, 17, 31]] = (y[[3, 17, 31]] + 1) % 10
    assert compute.mistakes(model, x, y, batch_size=16) == [3, 17, 31]
