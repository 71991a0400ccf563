"""ONNX export of every layer and of graph models: onnxruntime predicts what convscope predicts (<= 1e-5).

Each layer runs twice where its input is an image map: straight on the NHWC input, and after a 1x1
Conv2D, where the exporter holds the map in NCHW (so every axis, constant and padding the layer maps
into the NCHW layout is exercised). Sizes are odd on purpose (7 x 5 maps, 3 channels, batch 3).
"""

from __future__ import annotations

import numpy as np
import pytest

import convscope
from convscope import activations, backend, layers
from convscope.interop import export_onnx, onnx_export
from convscope.layers.activation import LeakyReLU, Softmax
from convscope.layers.conv_variants import Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from convscope.layers.merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from convscope.layers.normalization import LayerNormalization
from convscope.layers.preprocessing import Normalization
from convscope.layers.resampling import UpSampling2D
from convscope.layers.reshaping import Cropping2D, Permute, Reshape, ZeroPadding2D
from convscope.layers.augmentation import (
    RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom,
)
from convscope.layers.resizing import CenterCrop, Resizing

onnx = pytest.importorskip("onnx", reason="onnx is the optional [interop] extra that writes ONNX graphs")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime (in the [test] extra) runs the exported graphs")

# Two cases build Keras's deprecated rms_scaling variant of LayerNormalization on purpose.
pytestmark = [pytest.mark.filterwarnings("ignore:.*rms_scaling=True is deprecated"), pytest.mark.usefixtures("fresh_state")]

TOLERANCE = 1e-5
IMAGE = (7, 5, 3)
SEQUENCE = (6, 5)


def data(shape, scale=1.0, seed=1):
    return (np.random.default_rng(seed).normal(0.0, scale, (3, *shape))).astype("float32")


def randomize(model, seed=0):
    """Random weights (variances positive), so every weight's place in the ONNX graph is checked."""
    rng = np.random.default_rng(seed)
    for p in model.parameters:
        if p.value.dtype.kind != "f":
            continue
        if "variance" in p.name:
            p.value = rng.uniform(0.5, 2.0, p.shape).astype(p.value.dtype)
        else:
            p.value = rng.normal(0.0, 0.5, p.shape).astype(p.value.dtype)
    return model


def run(model, xs, tmp_path, name="model.onnx"):
    """(onnxruntime's outputs, convscope's outputs) as lists, after exporting ``model``."""
    path = tmp_path / name
    export_onnx(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = dict(zip([i.name for i in session.get_inputs()], xs))
    theirs = session.run(None, feeds)
    ours = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return theirs, ours if isinstance(ours, list) else [ours]


def assert_same(model, xs, tmp_path):
    theirs, ours = run(model, xs, tmp_path)
    assert len(theirs) == len(ours)
    for t, o in zip(theirs, ours):
        assert t.shape == o.shape
        assert np.abs(t - o).max() <= TOLERANCE, np.abs(t - o).max()
    return onnx.load(str(tmp_path / "model.onnx")).graph


def op_types(graph) -> list:
    return [n.op_type for n in graph.node]


def adapted(layer, shape):
    layer.adapt(data(shape, scale=2.0, seed=5) + 1.0)
    return layer


# (id, a fresh layer, its input shape (no batch), the input's scale).
IMAGE_CASES = [
    ("conv2d", lambda: layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"), 1.0),
    ("depthwise_same_stride2", lambda: DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2,
                                                       activation="tanh"), 1.0),
    ("depthwise_dilated_no_bias", lambda: DepthwiseConv2D((2, 3), dilation_rate=2, use_bias=False), 1.0),
    ("separable_same", lambda: SeparableConv2D(4, 3, padding="same", depth_multiplier=2, activation="relu"), 1.0),
    ("separable_stride2_no_bias", lambda: SeparableConv2D(5, (3, 2), strides=2, use_bias=False), 1.0),
    ("transpose_same_stride2", lambda: Conv2DTranspose(4, 3, strides=2, padding="same"), 1.0),
    ("transpose_stride_past_kernel", lambda: Conv2DTranspose(4, 2, strides=3), 1.0),  # bias-only rows
    ("transpose_valid_output_padding", lambda: Conv2DTranspose(2, 3, strides=2, output_padding=1), 1.0),
    ("transpose_same_output_padding", lambda: Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
     1.0),
    ("transpose_even_kernel_same", lambda: Conv2DTranspose(3, 4, padding="same", output_padding=0), 1.0),
    ("transpose_dilated", lambda: Conv2DTranspose(2, 3, dilation_rate=2, padding="same"), 1.0),
    ("transpose_rect", lambda: Conv2DTranspose(3, (3, 2), strides=(2, 3), padding="same", activation="sigmoid"),
     1.0),
    ("max_pool", lambda: layers.MaxPooling2D(2), 1.0),
    ("average_pool_same", lambda: layers.AveragePooling2D(3, strides=2, padding="same"), 1.0),
    ("global_average_pool", lambda: layers.GlobalAveragePooling2D(), 1.0),
    ("global_max_pool", lambda: layers.GlobalMaxPooling2D(), 1.0),
    ("global_average_pool_keepdims", lambda: layers.GlobalAveragePooling2D(keepdims=True), 1.0),
    ("global_max_pool_keepdims", lambda: layers.GlobalMaxPooling2D(keepdims=True), 1.0),
    ("upsampling_nearest", lambda: UpSampling2D((2, 3)), 1.0),
    ("upsampling_bilinear", lambda: UpSampling2D(2, interpolation="bilinear"), 1.0),
    ("upsampling_bilinear_3x1", lambda: UpSampling2D((3, 1), interpolation="bilinear"), 1.0),
    ("upsampling_bilinear_1x4", lambda: UpSampling2D((1, 4), interpolation="bilinear"), 1.0),
    ("zero_padding", lambda: ZeroPadding2D(((1, 2), (0, 3))), 1.0),
    ("zero_padding_int", lambda: ZeroPadding2D(1), 1.0),
    ("cropping", lambda: Cropping2D(((1, 0), (2, 1))), 1.0),
    ("cropping_int", lambda: Cropping2D(1), 1.0),
    ("reshape_to_rank3", lambda: Reshape((-1, 3)), 1.0),
    ("reshape_rank4", lambda: Reshape((5, 7, 3)), 1.0),
    ("permute_hw", lambda: Permute((2, 1, 3)), 1.0),
    ("permute_channels_first", lambda: Permute((3, 1, 2)), 1.0),
    ("flatten", lambda: layers.Flatten(), 1.0),
    ("dense_on_map", lambda: layers.Dense(4, activation="elu"), 1.0),
    ("batch_norm", lambda: layers.BatchNormalization(), 1.0),
    ("layer_norm_channels", lambda: LayerNormalization(), 1.0),
    ("layer_norm_all", lambda: LayerNormalization(axis=[1, 2, 3]), 1.0),
    ("layer_norm_hw", lambda: LayerNormalization(axis=[1, 2]), 1.0),
    ("layer_norm_width_no_center", lambda: LayerNormalization(axis=2, center=False), 1.0),
    ("layer_norm_h_c_no_scale", lambda: LayerNormalization(axis=[1, 3], scale=False), 1.0),
    ("layer_norm_rms", lambda: LayerNormalization(rms_scaling=True), 1.0),
    ("layer_norm_rms_wc", lambda: LayerNormalization(axis=[2, 3], rms_scaling=True), 1.0),
    ("normalization_adapted", lambda: adapted(Normalization(), IMAGE), 1.0),
    ("normalization_hw_adapted", lambda: adapted(Normalization(axis=(1, 2)), IMAGE), 1.0),
    ("normalization_scalar", lambda: Normalization(axis=None, mean=0.5, variance=2.0), 1.0),
    ("normalization_invert_zero_variance", lambda: Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 2.0, 0.0],
                                                                 invert=True), 1.0),
    ("leaky_relu", lambda: LeakyReLU(0.2), 1.0),
    ("relu_max", lambda: layers.ReLU(max_value=6.0), 4.0),
    ("relu_threshold", lambda: layers.ReLU(negative_slope=0.1, threshold=0.5, max_value=3.0), 2.0),
    ("softmax_last", lambda: Softmax(), 2.0),
    ("softmax_height", lambda: Softmax(axis=1), 2.0),
    ("softmax_width_negative", lambda: Softmax(axis=-2), 2.0),
    ("softmax_hw", lambda: Softmax(axis=[1, 2]), 2.0),
    ("softmax_h_c", lambda: Softmax(axis=[3, 1]), 2.0),
    ("rescaling_per_channel", lambda: layers.Rescaling([0.5, 2.0, -1.0], offset=[0.1, 0.2, 0.3]), 1.0),
    ("rescaling", lambda: layers.Rescaling(2.0, offset=-1.0), 1.0),
    ("dropout", lambda: layers.Dropout(0.5), 1.0),
    ("gelu_tanh", lambda: layers.Activation(activations.GELU(approximate=True)), 2.0),
    ("random_flip", lambda: RandomFlip(), 1.0),
    ("random_rotation", lambda: RandomRotation(0.2), 1.0),
    ("random_zoom", lambda: RandomZoom(0.2), 1.0),
    ("random_translation", lambda: RandomTranslation(0.1, 0.2), 1.0),
    ("random_contrast", lambda: RandomContrast(0.3), 1.0),
    ("random_brightness", lambda: RandomBrightness(0.3), 1.0),
    ("random_crop", lambda: RandomCrop(3, 4), 1.0),
    ("center_crop", lambda: CenterCrop(3, 4), 1.0),
    ("center_crop_smart_resize", lambda: CenterCrop(9, 4), 1.0),
    ("resizing_bilinear", lambda: Resizing(9, 5), 1.0),
    ("resizing_nearest", lambda: Resizing(4, 11, interpolation="nearest"), 1.0),
    ("resizing_crop_aspect", lambda: Resizing(3, 6, crop_to_aspect_ratio=True), 1.0),
    ("resizing_pad_aspect", lambda: Resizing(6, 3, pad_to_aspect_ratio=True, fill_value=0.5), 1.0),
] + [
    (f"activation_{act.name}", lambda act=act: layers.Activation(act.name), 4.0)
    for act in {id(a): a for a in vars(activations).values() if isinstance(a, activations.Activation)}.values()
]

SEQUENCE_CASES = [
    ("dense_rank3", lambda: layers.Dense(4, activation="softmax")),
    ("dense_rank3_no_bias", lambda: layers.Dense(3, use_bias=False)),
    ("batch_norm_rank3", lambda: layers.BatchNormalization(center=False)),
    ("layer_norm_rank3", lambda: LayerNormalization(axis=1)),
    ("softmax_rank3", lambda: Softmax(axis=1)),
    ("permute_rank3", lambda: Permute((2, 1))),
    ("reshape_rank3", lambda: Reshape((3, 10))),
    ("normalization_rank3", lambda: adapted(Normalization(axis=1), SEQUENCE)),
    ("flatten_rank3", lambda: layers.Flatten()),
    ("activation_rank3", lambda: layers.Activation("softmax")),
]


@pytest.mark.parametrize("placement", ["nhwc", "nchw"])
@pytest.mark.parametrize("make, scale", [c[1:] for c in IMAGE_CASES], ids=[c[0] for c in IMAGE_CASES])
def test_image_layer(tmp_path, make, scale, placement):
    x = convscope.Input(shape=IMAGE)
    h = x if placement == "nhwc" else layers.Conv2D(IMAGE[-1], 1)(x)
    model = convscope.Model(x, make()(h))
    randomize(model)
    graph = assert_same(model, [data(IMAGE, scale)], tmp_path)
    assert op_types(graph).count("Transpose") <= 2, op_types(graph)  # at most one conversion each way


@pytest.mark.parametrize("make", [c[1] for c in SEQUENCE_CASES], ids=[c[0] for c in SEQUENCE_CASES])
def test_sequence_layer(tmp_path, make):
    x = convscope.Input(shape=SEQUENCE)
    model = randomize(convscope.Model(x, make()(x)))
    graph = assert_same(model, [data(SEQUENCE, 2.0)], tmp_path)
    transposes = [n.name for n in graph.node if n.op_type == "Transpose"]
    assert transposes == ([f"{model.layers[-1].name}/transpose"] if isinstance(model.layers[-1], Permute) else [])


def test_dense_on_a_matrix_is_one_gemm(tmp_path):
    x = convscope.Input(shape=(5,))
    model = randomize(convscope.Model(x, layers.Dense(3, activation="hard_silu")(layers.Dense(4)(x))))
    graph = assert_same(model, [data((5,), 3.0)], tmp_path)
    assert op_types(graph) == ["Gemm", "Gemm", "HardSwish", "Identity"]


def test_layouts_are_converted_lazily(tmp_path):
    """Element-wise layers, padding, cropping and normalization stay in NCHW between convolutions."""
    x = convscope.Input(shape=IMAGE)
    h = layers.Conv2D(4, 3, padding="same")(x)
    for layer in (ZeroPadding2D(1), Cropping2D(((0, 1), (1, 0))), LayerNormalization(), Softmax(),
                  layers.Rescaling(2.0), LeakyReLU(), adapted(Normalization(), (8, 6, 4)), layers.BatchNormalization(),
                  DepthwiseConv2D(3, padding="same"), UpSampling2D(2)):
        h = layer(h)
    model = randomize(convscope.Model(x, layers.Conv2D(2, 1)(h)))
    graph = assert_same(model, [data(IMAGE)], tmp_path)
    perms = [list(n.attribute[0].ints) for n in graph.node if n.op_type == "Transpose"]
    assert perms == [[0, 3, 1, 2], [0, 2, 3, 1]]


@pytest.mark.parametrize("axis, after_conv, op", [
    (-1, False, "LayerNormalization"),  # the trailing NHWC axis
    ([1, 2], True, "LayerNormalization"),  # h, w: the trailing NCHW axes
    ([1, 2, 3], True, "LayerNormalization"),
    (-1, True, "ReduceMean"),  # the channels of an NCHW map: axis 1, not trailing
    ([1, 2], False, "ReduceMean"),
])
def test_layer_normalization_uses_the_onnx_op_on_trailing_axes(tmp_path, axis, after_conv, op):
    x = convscope.Input(shape=IMAGE)
    h = layers.Conv2D(3, 1)(x) if after_conv else x
    model = randomize(convscope.Model(x, LayerNormalization(axis=axis)(h)))
    types = op_types(assert_same(model, [data(IMAGE)], tmp_path))
    assert op in types and ("LayerNormalization" in types) == (op == "LayerNormalization")


def test_conv_transpose_attributes(tmp_path):
    x = convscope.Input(shape=IMAGE)
    model = randomize(convscope.Model(x, Conv2DTranspose(4, 2, strides=3)(x)))  # scatter 20 rows, output 21
    graph = assert_same(model, [data(IMAGE)], tmp_path)
    (node,) = [n for n in graph.node if n.op_type == "ConvTranspose"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["pads"] == [0, 0, 0, 0] and attrs["output_padding"] == [1, 1] and attrs["strides"] == [3, 3]


def test_resize_attributes(tmp_path):
    x = convscope.Input(shape=IMAGE)
    model = convscope.Model(x, [UpSampling2D((2, 3))(x), UpSampling2D(2, interpolation="bilinear")(x)])
    graph = assert_same(model, [data(IMAGE)], tmp_path)
    modes = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
             for n in graph.node if n.op_type == "Resize"]
    assert modes == [
        {"mode": b"nearest", "coordinate_transformation_mode": b"asymmetric", "nearest_mode": b"floor"},
        {"mode": b"linear", "coordinate_transformation_mode": b"half_pixel"},
    ]


# -- merging ---------------------------------------------------------------------------------------
def three_branches():
    """The input in NHWC and two convolutions of it in NCHW: merges must bring them into one layout."""
    x = convscope.Input(shape=IMAGE)
    return x, [layers.Conv2D(3, 1)(x), x, layers.Conv2D(3, 3, padding="same")(x)]


@pytest.mark.parametrize("merge", [Add, Multiply, Average, Maximum, Minimum, Concatenate])
def test_merges_of_three(tmp_path, merge):
    x, branches = three_branches()
    model = randomize(convscope.Model(x, merge()(branches)))
    assert_same(model, [data(IMAGE)], tmp_path)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_subtract_in_either_order(tmp_path, order):
    x, branches = three_branches()
    model = randomize(convscope.Model(x, Subtract()([branches[i] for i in order])))
    assert_same(model, [data(IMAGE)], tmp_path)


@pytest.mark.parametrize("axis", [-1, 1, 2, 3, -3, -2])
def test_concatenate_axes(tmp_path, axis):
    x = convscope.Input(shape=IMAGE)
    grown = [0, 0, 0]
    grown[axis % 4 - 1] = 2
    padded = ZeroPadding2D(((grown[0], 0), (0, grown[1])))(layers.Conv2D(3 + grown[2], 1)(x))  # NCHW
    model = randomize(convscope.Model(x, Concatenate(axis=axis)([x, padded, x])))
    assert_same(model, [data(IMAGE)], tmp_path)


def test_concatenate_rank3(tmp_path):
    x = convscope.Input(shape=SEQUENCE)
    model = randomize(convscope.Model(x, Concatenate(axis=1)([x, layers.Dense(5)(x)])))
    assert_same(model, [data(SEQUENCE)], tmp_path)


# -- graph models ------------------------------------------------------------------------------------
def test_residual_block_with_projection(tmp_path):
    x = convscope.Input(shape=(9, 7, 3))
    h = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    h = layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same", use_bias=False)(h))
    shortcut = layers.BatchNormalization()(layers.Conv2D(8, 1, strides=2, use_bias=False)(x))
    y = layers.ReLU()(Add()([h, shortcut]))
    model = randomize(convscope.Model(x, layers.Dense(4)(layers.GlobalAveragePooling2D()(y))))
    graph = assert_same(model, [data((9, 7, 3))], tmp_path)
    assert op_types(graph).count("Transpose") == 1 and op_types(graph).count("Add") == 1


def test_concatenate_branches(tmp_path):
    x = convscope.Input(shape=IMAGE)
    a = layers.Conv2D(4, 1, activation="relu")(x)
    b = layers.MaxPooling2D(3, strides=1, padding="same")(layers.Conv2D(2, 3, padding="same")(x))
    c = layers.AveragePooling2D(3, strides=1, padding="same")(x)
    joined = Concatenate()([a, b, c])
    model = randomize(convscope.Model(x, layers.Flatten()(layers.Conv2D(3, 3)(joined))))
    graph = assert_same(model, [data(IMAGE)], tmp_path)
    (concat,) = [n for n in graph.node if n.op_type == "Concat"]
    assert concat.attribute[0].i == 1  # the channels of the NCHW maps


def test_shared_layer_on_two_branches(tmp_path):
    x = convscope.Input(shape=IMAGE)
    shared = layers.Conv2D(3, 3, padding="same", activation="tanh")
    left = shared(layers.Conv2D(3, 1)(x))
    right = shared(UpSampling2D(1)(x))
    model = randomize(convscope.Model(x, Add()([left, right, shared(left)])))
    graph = assert_same(model, [data(IMAGE)], tmp_path)
    assert op_types(graph).count("Conv") == 4
    assert [i.name for i in graph.initializer].count(f"{shared.name}/kernel") == 1  # written once
    assert len(graph.initializer) == 5  # the shared kernel and bias, the 1x1 conv's two, the resize's scales


def test_nested_model_called_twice(tmp_path):
    inner_x = convscope.Input(shape=(7, 5, 4))
    inner = convscope.Model(inner_x, layers.BatchNormalization()(layers.Conv2D(4, 3, padding="same",
                                                                              activation="relu")(inner_x)),
                            name="block")
    head = convscope.Sequential([layers.GlobalMaxPooling2D(), layers.Dense(3)], name="head")
    x = convscope.Input(shape=IMAGE)
    h = layers.Conv2D(4, 1)(x)
    model = randomize(convscope.Model(x, head(inner(inner(h)))))
    graph = assert_same(model, [data(IMAGE)], tmp_path)
    assert op_types(graph).count("Conv") == 3 and op_types(graph).count("BatchNormalization") == 2
    assert any(n.name.startswith("block/") for n in graph.node) and any(n.name.startswith("head/") for n in graph.node)
    assert sum(i.name.endswith("/kernel") for i in graph.initializer) == 3  # the nested conv's kernel once


def test_nested_model_with_two_inputs_and_outputs(tmp_path):
    a, b = convscope.Input(shape=IMAGE, name="a"), convscope.Input(shape=IMAGE, name="b")
    inner = convscope.Model([a, b], [Subtract()([a, b]), Multiply()([a, layers.Conv2D(3, 1)(b)])], name="pair")
    x = convscope.Input(shape=IMAGE)
    difference, product = inner([layers.Conv2D(3, 3, padding="same")(x), x])
    model = randomize(convscope.Model(x, Concatenate()([difference, product, Maximum()([difference, product])])))
    assert_same(model, [data(IMAGE)], tmp_path)


def test_two_inputs_and_two_outputs(tmp_path):
    image = convscope.Input(shape=IMAGE, name="image")
    extra = convscope.Input(shape=(4,), name="extra")
    features = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, padding="same", activation="relu")(image))
    mixed = layers.Dense(4, activation="tanh", name="mixed")(Concatenate()([features, extra]))
    logits = layers.Dense(3, activation="softmax", name="logits")(mixed)
    decoded = Conv2DTranspose(2, 3, strides=2, padding="same", name="decoded")(
        layers.Conv2D(2, 3, strides=2, padding="same")(image))
    model = randomize(convscope.Model([image, extra], [logits, mixed, decoded]))
    xs = [data(IMAGE), data((4,), seed=2)]
    export_onnx(model, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "extra"]
    assert [o.name for o in session.get_outputs()] == ["logits", "mixed", "decoded"]
    assert [o.shape for o in session.get_outputs()] == [["batch", 3], ["batch", 4], ["batch", 8, 6, 2]]
    graph = assert_same(model, xs, tmp_path)
    assert [i.name for i in graph.input] == ["image", "extra"]


def test_repeated_output_names_are_made_distinct(tmp_path):
    x, y = convscope.Input(shape=(4,), name="x"), convscope.Input(shape=(4,), name="y")
    shared = layers.Dense(4, name="shared")
    model = randomize(convscope.Model([x, y], [shared(x), shared(y), x]))  # a layer's two calls, an input
    export_onnx(model, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["shared", "shared_1", "x_1"]
    assert_same(model, [data((4,)), data((4,), seed=2)], tmp_path)


def test_subclassed_model(tmp_path):
    class Net(convscope.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv2D(3, 3, padding="same", activation="relu")
            self.pool = layers.GlobalAveragePooling2D()
            self.out = layers.Dense(2)

        def call(self, x):
            h = self.conv(x)
            return self.out(self.pool(Add()([h, self.conv(h)])))

    x = data(IMAGE)
    net = Net()
    net.predict(x, verbose=0)
    randomize(net)
    assert_same(net, [x], tmp_path)
    outer_x = convscope.Input(shape=IMAGE)
    assert_same(convscope.Model(outer_x, net(outer_x)), [x], tmp_path)


def test_float64_graph_exports_in_float32(tmp_path):
    backend.set_floatx("float64")
    x, branches = three_branches()
    model = randomize(convscope.Model(x, LayerNormalization()(Average()(branches))))
    export_onnx(model, tmp_path / "model.onnx")
    assert {i.data_type for i in onnx.load(str(tmp_path / "model.onnx")).graph.initializer} == {
        onnx.TensorProto.FLOAT}
    assert_same(model, [data(IMAGE)], tmp_path)


# -- refusals ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: layers.Dropout(0.5), 'Dropout "[^"]+" is called with training=True, where it drops values at random'),
    (lambda: layers.BatchNormalization(), "BatchNormalization .* normalizes with the batch's statistics"),
])
def test_training_calls_are_refused(tmp_path, make, message):
    x = convscope.Input(shape=IMAGE)
    model = convscope.Model(x, make()(x, training=True))
    with pytest.raises(ValueError, match=message + ".*inference only"):
        export_onnx(model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_training_mode_reaches_into_nested_models(tmp_path):
    inner_x = convscope.Input(shape=IMAGE)
    inner = convscope.Model(inner_x, layers.Dropout(0.2, name="inner_dropout")(inner_x))
    x = convscope.Input(shape=IMAGE)
    with pytest.raises(ValueError, match='Dropout "inner_dropout" is called with training=True'):
        export_onnx(convscope.Model(x, inner(x, training=True)), tmp_path / "model.onnx")
    frozen = layers.BatchNormalization(trainable=False)
    model = randomize(convscope.Model(x, frozen(layers.Dropout(0.0)(x, training=True), training=True)))
    assert_same(model, [data(IMAGE)], tmp_path)  # a frozen batch norm and a rate-0 dropout train as they infer


def test_not_supported_layer_names_the_reason(tmp_path, monkeypatch):
    monkeypatch.delitem(onnx_export.ONNX_EMITTERS, Permute)
    monkeypatch.setitem(onnx_export.NOT_SUPPORTED, Permute, "a reason given here")
    x = convscope.Input(shape=IMAGE)
    model = convscope.Model(x, Permute((2, 1, 3), name="swap")(x))
    with pytest.raises(ValueError, match=r'layer "swap" \(Permute\) has no ONNX export: a reason given here'):
        export_onnx(model, tmp_path / "model.onnx")


def test_unknown_layer_class_is_refused(tmp_path):
    class Doubling(layers.Layer):
        def forward(self, x, training=False):
            return 2 * x

    x = convscope.Input(shape=IMAGE)
    model = convscope.Model(x, Doubling(name="twice")(x))
    with pytest.raises(ValueError, match=r'layer "twice" \(Doubling\) has no ONNX export \(exportable: .*Conv2D'):
        export_onnx(model, tmp_path / "model.onnx")


def test_unknown_activation_is_refused(tmp_path):
    class Cube(activations.Activation):
        name = "cube"

        def _forward(self, x):
            return x**3

    x = convscope.Input(shape=(4,))
    model = convscope.Model(x, layers.Dense(2, activation=Cube(), name="d")(x))
    with pytest.raises(ValueError, match=r'layer "d": activation \'cube\' \(Cube\) has no ONNX export'):
        export_onnx(model, tmp_path / "model.onnx")


# -- the registry ------------------------------------------------------------------------------------
def test_every_registered_layer_has_an_emitter_or_a_reason():
    missing = [name for name, cls in layers.LAYER_CLASSES.items()
               if cls not in onnx_export.ONNX_EMITTERS and cls not in onnx_export.NOT_SUPPORTED]
    assert missing == []
    for cls, reason in onnx_export.NOT_SUPPORTED.items():
        assert isinstance(reason, str) and len(reason) > 10, cls
    assert not set(onnx_export.ONNX_EMITTERS) & set(onnx_export.NOT_SUPPORTED)


def test_every_exportable_layer_is_tested_here():
    layer_classes = {type(make()) for _, make, _ in IMAGE_CASES} | {type(make()) for _, make in SEQUENCE_CASES}
    layer_classes |= {Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate}  # the merge tests
    untested = {cls.__name__ for cls in layers.LAYER_CLASSES.values()} - {c.__name__ for c in layer_classes}
    assert untested == {"InputLayer"}  # the identity; every graph has one


def test_every_activation_has_an_emitter():
    instances = [v for v in vars(activations).values() if isinstance(v, activations.Activation)]
    assert {type(a) for a in instances} <= set(onnx_export.ACTIVATION_EMITTERS)
