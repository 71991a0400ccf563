"""DepthwiseConv2D, SeparableConv2D and Conv2DTranspose as layers: Keras 3's arguments, defaults,
output shapes, weight shapes and order, config round trip, every error message, and their
relation to Conv2D (a depthwise conv is a grouped Conv2D, a separable one a depthwise then a
1x1 Conv2D, a transposed conv the adjoint of a Conv2D).
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

import convscope
from convscope import backend
from convscope.layers.conv import Conv2D
from convscope.layers.conv_variants import Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from convscope.arraymath import reference_conv

CLASSES = [DepthwiseConv2D, SeparableConv2D, Conv2DTranspose]


@pytest.fixture
def float64():
    previous = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(previous)


def named(cls, arg: str) -> str:
    return rf'{cls.__name__} "[a-z0-9_]+": argument "{arg}"'


def randomized(layer, input_shape, seed=0):
    layer.build((None, *input_shape))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    return layer


# ---------------------------------------------------------------- Keras's signatures and defaults
@pytest.mark.parametrize("cls, expected", [
    (DepthwiseConv2D, [("kernel_size", inspect.Parameter.empty), ("strides", (1, 1)), ("padding", "valid"),
                       ("depth_multiplier", 1), ("data_format", None), ("dilation_rate", (1, 1)),
                       ("activation", None), ("use_bias", True), ("depthwise_initializer", "glorot_uniform"),
                       ("bias_initializer", "zeros")]),
    (SeparableConv2D, [("filters", inspect.Parameter.empty), ("kernel_size", inspect.Parameter.empty),
                       ("strides", (1, 1)), ("padding", "valid"), ("data_format", None), ("dilation_rate", (1, 1)),
                       ("depth_multiplier", 1), ("activation", None), ("use_bias", True),
                       ("depthwise_initializer", "glorot_uniform"), ("pointwise_initializer", "glorot_uniform"),
                       ("bias_initializer", "zeros")]),
    (Conv2DTranspose, [("filters", inspect.Parameter.empty), ("kernel_size", inspect.Parameter.empty),
                       ("strides", (1, 1)), ("padding", "valid"), ("output_padding", None), ("data_format", None),
                       ("dilation_rate", (1, 1)), ("activation", None), ("use_bias", True),
                       ("kernel_initializer", "glorot_uniform"), ("bias_initializer", "zeros")]),
])
def test_signature_is_kerass(cls, expected):
    weights = {DepthwiseConv2D: ["depthwise"], SeparableConv2D: ["depthwise", "pointwise"]}.get(cls, ["kernel"])
    expected = expected + [(f"{w}_regularizer", None) for w in [*weights, "bias", "activity"]] + [
        (f"{w}_constraint", None) for w in [*weights, "bias"]]  # Keras's order after the initializers
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    assert [(p.name, p.default) for p in params[:-1]] == expected
    assert params[-1].kind is inspect.Parameter.VAR_KEYWORD


@pytest.mark.parametrize("cls", CLASSES)
def test_loop_reference_names_an_existing_function(cls):
    module, function = cls.LOOP_REFERENCE.rsplit(".", 1)
    assert module == "convscope.arraymath.reference_conv"
    assert callable(getattr(reference_conv, function))


def test_automatic_names():
    convscope.layers.clear_session()
    assert [DepthwiseConv2D(3).name, SeparableConv2D(2, 3).name, Conv2DTranspose(2, 3).name,
            DepthwiseConv2D(3).name] == ["depthwise_conv2d", "separable_conv2d", "conv2d_transpose",
                                         "depthwise_conv2d_1"]


# ---------------------------------------------------------------- output shapes (Keras's formulas)
@pytest.mark.parametrize("layer, input_shape, expected", [
    (lambda: DepthwiseConv2D(3), (10, 10, 12), (10 - 2, 10 - 2, 12)),  # Keras's docstring example
    (lambda: DepthwiseConv2D(3, depth_multiplier=2), (5, 7, 3), (3, 5, 6)),
    (lambda: DepthwiseConv2D(3, strides=2, padding="same"), (5, 7, 2), (3, 4, 2)),  # ceil(n / s)
    (lambda: DepthwiseConv2D(3, strides=2), (5, 7, 2), (2, 3, 2)),  # floor((n - k) / s) + 1
    (lambda: DepthwiseConv2D(3, dilation_rate=2), (5, 7, 2), (1, 3, 2)),  # k_eff = 5
    (lambda: DepthwiseConv2D(3, strides=2, dilation_rate=2, padding="same", depth_multiplier=3), (5, 7, 1),
     (3, 4, 3)),
    (lambda: DepthwiseConv2D((1, 3), strides=(1, 2)), (5, 7, 2), (5, 3, 2)),
    (lambda: SeparableConv2D(4, 3), (5, 7, 3), (3, 5, 4)),
    (lambda: SeparableConv2D(4, 3, strides=2, padding="same", depth_multiplier=2), (5, 7, 3), (3, 4, 4)),
    (lambda: SeparableConv2D(4, 3, dilation_rate=2, padding="same"), (5, 7, 3), (5, 7, 4)),
    (lambda: Conv2DTranspose(32, 2, 2), (10, 8, 128), (20, 16, 32)),  # Keras's docstring example
    (lambda: Conv2DTranspose(4, 3), (5, 7, 2), (7, 9, 4)),  # (n-1)*s + k
    (lambda: Conv2DTranspose(4, 3, strides=2), (5, 7, 2), (11, 15, 4)),  # (n-1)*s + max(k, s)
    (lambda: Conv2DTranspose(4, 1, strides=3), (5, 7, 2), (15, 21, 4)),  # stride wider than the kernel
    (lambda: Conv2DTranspose(4, 3, strides=2, output_padding=1), (5, 7, 2), (12, 16, 4)),  # + output_padding
    (lambda: Conv2DTranspose(4, 3, strides=2, padding="same"), (5, 7, 2), (10, 14, 4)),  # n*s
    (lambda: Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=0), (5, 7, 2), (9, 13, 4)),
    (lambda: Conv2DTranspose(4, 4, strides=2, padding="same", output_padding=1), (5, 7, 2), (9, 13, 4)),
    (lambda: Conv2DTranspose(4, 3, strides=(2, 3), padding="same", output_padding=(1, 2)), (5, 7, 2), (10, 21, 4)),
    (lambda: Conv2DTranspose(4, 3, dilation_rate=2), (5, 7, 2), (9, 11, 4)),  # k_eff = 5
    (lambda: Conv2DTranspose(4, 3, dilation_rate=2, padding="same"), (5, 7, 2), (5, 7, 4)),
])
def test_output_shape(layer, input_shape, expected):
    layer = layer()
    assert layer.compute_output_shape((None, *input_shape)) == (None, *expected)
    assert layer(np.zeros((2, *input_shape), "float32")).shape == (2, *expected)
    assert layer(convscope.Input(shape=input_shape)).shape == (None, *expected)


# ---------------------------------------------------------------- weights
@pytest.mark.parametrize("layer, input_shape, expected", [
    (lambda: DepthwiseConv2D((3, 2), depth_multiplier=2), (5, 7, 3), {"kernel": (3, 2, 3, 2), "bias": (6,)}),
    (lambda: DepthwiseConv2D(3, use_bias=False), (5, 7, 3), {"kernel": (3, 3, 3, 1)}),
    (lambda: SeparableConv2D(4, (3, 2), depth_multiplier=2), (5, 7, 3),
     {"depthwise_kernel": (3, 2, 3, 2), "pointwise_kernel": (1, 1, 6, 4), "bias": (4,)}),
    (lambda: SeparableConv2D(4, 3, use_bias=False), (5, 7, 3),
     {"depthwise_kernel": (3, 3, 3, 1), "pointwise_kernel": (1, 1, 3, 4)}),
    (lambda: Conv2DTranspose(4, (3, 2)), (5, 7, 3), {"kernel": (3, 2, 4, 3), "bias": (4,)}),
    (lambda: Conv2DTranspose(4, 3, use_bias=False), (5, 7, 3), {"kernel": (3, 3, 4, 3)}),
])
def test_weights_in_kerass_order(layer, input_shape, expected):
    layer = layer()
    assert layer.param_shapes((None, *input_shape)) == expected
    layer.build((None, *input_shape))
    assert [(p.name.rsplit("/", 1)[1], p.shape) for p in layer.parameters] == list(expected.items())
    assert layer.count_params() == sum(int(np.prod(s)) for s in expected.values())
    assert all(p.value.dtype == np.float32 for p in layer.parameters)


def test_parameter_counts_as_keras_summary():
    """kh*kw*C*M + C*M; kh*kw*C*M + C*M*F + F; kh*kw*F*C + F."""
    for layer, count in [(DepthwiseConv2D(3, depth_multiplier=2), 9 * 3 * 2 + 6),
                         (SeparableConv2D(8, 3, depth_multiplier=2), 9 * 3 * 2 + 6 * 8 + 8),
                         (Conv2DTranspose(8, 3), 9 * 8 * 3 + 8)]:
        layer.build((None, 6, 6, 3))
        assert layer.count_params() == count


def test_default_initializers():
    layer = SeparableConv2D(4, 3)
    layer.build((None, 5, 5, 3))
    assert not layer.bias.value.any()
    bound = np.sqrt(6 / (9 * 3 + 9 * 1))  # glorot_uniform on (3, 3, 3, 1): fans 27 and 9
    assert 0 < np.abs(layer.depthwise_kernel.value).max() <= bound


# ---------------------------------------------------------------- what the layers compute
def test_depthwise_is_a_grouped_conv2d(float64):
    """Output channel c*M + m comes from input channel c and multiplier m (TensorFlow's order)."""
    x = np.random.default_rng(1).standard_normal((2, 5, 7, 3))
    layer = randomized(DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2), (5, 7, 3))
    conv = Conv2D(6, 3, strides=2, padding="same", groups=3)
    conv.build((None, 5, 7, 3))
    conv.set_weights([layer.kernel.value.reshape(3, 3, 1, 6), layer.bias.value])
    np.testing.assert_allclose(layer(x), conv(x), rtol=1e-12, atol=1e-12)
    expected = reference_conv.depthwise_conv2d_loops(x, layer.kernel.value, layer.bias.value, (2, 2), "same")
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_separable_is_depthwise_then_pointwise_then_bias_then_activation(float64):
    x = np.random.default_rng(2).standard_normal((2, 5, 7, 3))
    layer = randomized(SeparableConv2D(4, 3, padding="same", depth_multiplier=2, activation="tanh"), (5, 7, 3))
    depthwise_kernel, pointwise_kernel, bias = layer.get_weights()
    depthwise = DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False)
    depthwise.build((None, 5, 7, 3))
    depthwise.set_weights([depthwise_kernel])
    pointwise = Conv2D(4, 1, activation="tanh")
    pointwise.build((None, 5, 7, 6))
    pointwise.set_weights([pointwise_kernel, bias])
    np.testing.assert_allclose(layer(x), pointwise(depthwise(x)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.preactivation, reference_conv.separable_conv2d_loops(
        x, depthwise_kernel, pointwise_kernel, bias, (1, 1), "same"), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("strides, padding, output_padding", [(2, "same", None), (2, "valid", 1), (1, "same", None)])
def test_transpose_is_the_adjoint_of_conv2d(float64, strides, padding, output_padding):
    """<Conv2D(u), x> == <u, Conv2DTranspose(x)> with the same kernel and no bias; and the transposed
    layer's input gradient is that Conv2D's output."""
    x = np.random.default_rng(3).standard_normal((2, 4, 5, 3))
    layer = randomized(Conv2DTranspose(2, 3, strides=strides, padding=padding, output_padding=output_padding,
                                       use_bias=False), (4, 5, 3))
    y = layer(x)
    conv = Conv2D(3, 3, strides=strides, padding=padding, use_bias=False)
    conv.build((None, *y.shape[1:]))
    conv.set_weights([layer.kernel.value])
    u = np.random.default_rng(4).standard_normal(y.shape)
    np.testing.assert_allclose(np.sum(conv(u) * x), np.sum(u * y), rtol=1e-12)
    np.testing.assert_allclose(layer.backward(u), conv(u), rtol=1e-12, atol=1e-12)


def test_transpose_upsamples_an_impulse_into_the_kernel(float64):
    """With stride 2 and "valid" padding, input cell (i, j) stamps the kernel at (2i, 2j) of the output."""
    layer = Conv2DTranspose(1, 3, strides=2, use_bias=False)
    layer.build((None, 3, 3, 1))
    kernel = np.arange(9.0).reshape(3, 3, 1, 1)
    layer.set_weights([kernel])
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 2, 0] = 1.0
    y = layer(x)[0, :, :, 0]
    assert y.shape == (7, 7)
    np.testing.assert_array_equal(y[2:5, 4:7], kernel[:, :, 0, 0])
    assert y.sum() == kernel.sum()


@pytest.mark.parametrize("layer", [
    lambda: DepthwiseConv2D(3, padding="same", depth_multiplier=2),
    lambda: SeparableConv2D(2, 3, strides=2),
    lambda: Conv2DTranspose(2, 3, strides=2, padding="same"),
])
def test_backward_adds_to_the_gradients_and_skips_dx_on_request(float64, layer):
    layer = randomized(layer(), (5, 7, 2))
    x = np.random.default_rng(5).standard_normal((2, 5, 7, 2))
    dy = np.random.default_rng(6).standard_normal(layer(x).shape)
    dx = layer.backward(dy)
    assert dx.shape == x.shape
    once = [p.grad.copy() for p in layer.parameters]
    assert layer.backward(dy, need_dx=False) is None
    for p, g in zip(layer.parameters, once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_output_follows_the_float_type(dtype):
    previous = backend.floatx()
    backend.set_floatx(dtype)
    try:
        for layer in (DepthwiseConv2D(3), SeparableConv2D(2, 3), Conv2DTranspose(2, 3, strides=2)):
            y = layer(np.ones((1, 5, 5, 2), dtype))
            assert y.dtype == dtype
            assert layer.backward(np.ones_like(y)).dtype == dtype
    finally:
        backend.set_floatx(previous)


# ---------------------------------------------------------------- config
@pytest.mark.parametrize("layer", [
    lambda: DepthwiseConv2D((3, 2), strides=(2, 1), padding="same", depth_multiplier=3, data_format="channels_last",
                            dilation_rate=1, activation="relu", use_bias=False, depthwise_initializer="he_normal",
                            bias_initializer="ones", name="dw", trainable=False),
    lambda: DepthwiseConv2D(3),
    lambda: SeparableConv2D(5, 3, strides=2, padding="same", dilation_rate=1, depth_multiplier=2, activation="tanh",
                            use_bias=False, depthwise_initializer="ones", pointwise_initializer="he_uniform",
                            bias_initializer="ones", name="sep"),
    lambda: SeparableConv2D(5, 3, dilation_rate=2),
    lambda: Conv2DTranspose(4, (3, 2), strides=(2, 3), padding="same", output_padding=(1, 2), activation="sigmoid",
                            use_bias=False, kernel_initializer="lecun_normal", bias_initializer="ones", name="up"),
    lambda: Conv2DTranspose(4, 3, dilation_rate=2),
])
def test_config_round_trip(layer):
    layer = layer()
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config["data_format"] == "channels_last"
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    layer.build((None, 8, 9, 2))
    rebuilt.build((None, 8, 9, 2))
    assert rebuilt.param_shapes((None, 8, 9, 2)) == layer.param_shapes((None, 8, 9, 2))
    assert rebuilt.output_shape == layer.output_shape


def test_config_values():
    assert Conv2DTranspose(4, 3).get_config()["output_padding"] is None
    assert Conv2DTranspose(4, 3, strides=2, output_padding=1).get_config()["output_padding"] == [1, 1]
    assert DepthwiseConv2D(3, data_format="CHANNELS_LAST").data_format == "channels_last"
    config = SeparableConv2D(4, 3, depth_multiplier=2).get_config()
    assert (config["filters"], config["depth_multiplier"], config["kernel_size"]) == (4, 2, [3, 3])


# ---------------------------------------------------------------- errors
CONSTRUCTOR_ERRORS = [
    pytest.param(lambda: DepthwiseConv2D(3, depth_multiplier=0), ValueError,
                 named(DepthwiseConv2D, "depth_multiplier") + " must be a positive int, received 0", id="dw-dm-0"),
    pytest.param(lambda: DepthwiseConv2D(3, depth_multiplier=-2), ValueError,
                 named(DepthwiseConv2D, "depth_multiplier") + " must be a positive int, received -2", id="dw-dm-neg"),
    pytest.param(lambda: DepthwiseConv2D(3, depth_multiplier=1.5), ValueError,
                 named(DepthwiseConv2D, "depth_multiplier") + r" must be a positive int, received 1\.5",
                 id="dw-dm-float"),
    pytest.param(lambda: SeparableConv2D(4, 3, depth_multiplier=True), ValueError,
                 named(SeparableConv2D, "depth_multiplier") + " must be a positive int, received True",
                 id="sep-dm-bool"),
    pytest.param(lambda: SeparableConv2D(0, 3), ValueError,
                 named(SeparableConv2D, "filters") + " must be a positive int, received 0", id="sep-filters-0"),
    pytest.param(lambda: Conv2DTranspose(-1, 3), ValueError,
                 named(Conv2DTranspose, "filters") + " must be a positive int, received -1", id="tr-filters-neg"),
    pytest.param(lambda: DepthwiseConv2D((3, 0)), ValueError,
                 named(DepthwiseConv2D, "kernel_size") + r" must be >= 1, received \(3, 0\)", id="dw-kernel-0"),
    pytest.param(lambda: SeparableConv2D(4, "3"), TypeError,
                 named(SeparableConv2D, "kernel_size") + " must be an int or a tuple of 2 ints, received '3'",
                 id="sep-kernel-str"),
    pytest.param(lambda: Conv2DTranspose(4, 3, strides=0), ValueError,
                 named(Conv2DTranspose, "strides") + " must be >= 1, received 0", id="tr-strides-0"),
    pytest.param(lambda: DepthwiseConv2D(3, padding="full"), ValueError,
                 named(DepthwiseConv2D, "padding") + " must be \"valid\" or \"same\", received 'full'",
                 id="dw-padding"),
    pytest.param(lambda: SeparableConv2D(4, 3, dilation_rate=0), ValueError,
                 named(SeparableConv2D, "dilation_rate") + " must be >= 1, received 0", id="sep-dilation-0"),
    pytest.param(lambda: DepthwiseConv2D(3, use_bias=1), TypeError,
                 named(DepthwiseConv2D, "use_bias") + " must be a bool, received 1", id="dw-use-bias"),
    pytest.param(lambda: DepthwiseConv2D(3, depthwise_initializer="nope"), ValueError,
                 named(DepthwiseConv2D, "depthwise_initializer") + " is not valid: .*received 'nope'",
                 id="dw-initializer"),
    pytest.param(lambda: SeparableConv2D(4, 3, pointwise_initializer="nope"), ValueError,
                 named(SeparableConv2D, "pointwise_initializer") + " is not valid: .*received 'nope'",
                 id="sep-pointwise-initializer"),
    pytest.param(lambda: Conv2DTranspose(4, 3, kernel_initializer="nope"), ValueError,
                 named(Conv2DTranspose, "kernel_initializer") + " is not valid: .*received 'nope'",
                 id="tr-kernel-initializer"),
    pytest.param(lambda: Conv2DTranspose(4, 3, bias_initializer="nope"), ValueError,
                 named(Conv2DTranspose, "bias_initializer") + " is not valid: .*received 'nope'",
                 id="tr-bias-initializer"),
    pytest.param(lambda: SeparableConv2D(4, 3, activation="nope"), ValueError,
                 named(SeparableConv2D, "activation") + " is not valid: .*received 'nope'", id="sep-activation"),
    pytest.param(lambda: Conv2DTranspose(4, 3, strides=2, output_padding=2), ValueError,
                 r'Conv2DTranspose "[a-z0-9_]+": `output_padding` must be strictly less than `strides` for all '
                 r"dimensions\. At dimension 0, `output_padding` is 2 but `strides` is 2\. "
                 r"Received: output_padding=\(2, 2\), strides=\(2, 2\)", id="tr-output-padding-eq-strides"),
    pytest.param(lambda: Conv2DTranspose(4, 3, strides=(3, 2), output_padding=(2, 3)), ValueError,
                 r"At dimension 1, `output_padding` is 3 but `strides` is 2\. "
                 r"Received: output_padding=\(2, 3\), strides=\(3, 2\)", id="tr-output-padding-gt-strides"),
    pytest.param(lambda: Conv2DTranspose(4, 3, output_padding=1), ValueError,
                 r"At dimension 0, `output_padding` is 1 but `strides` is 1", id="tr-output-padding-stride-1"),
    pytest.param(lambda: Conv2DTranspose(4, 3, strides=2, output_padding=-1), ValueError,
                 named(Conv2DTranspose, "output_padding") + " must be >= 0, received -1", id="tr-output-padding-neg"),
    pytest.param(lambda: Conv2DTranspose(4, 3, strides=2, output_padding="1"), TypeError,
                 named(Conv2DTranspose, "output_padding") + " must be an int or a tuple of 2 ints, received '1'",
                 id="tr-output-padding-str"),
    pytest.param(lambda: Conv2DTranspose(4, 3, strides=2, dilation_rate=2), ValueError,
                 r'Conv2DTranspose "[a-z0-9_]+": `strides > 1` not supported in conjunction with '
                 r"`dilation_rate > 1`\. Received: strides=\(2, 2\) and dilation_rate=\(2, 2\)",
                 id="tr-strides-and-dilation"),
    pytest.param(lambda: Conv2DTranspose(4, 3, strides=(1, 2), dilation_rate=(2, 1)), ValueError,
                 r"Received: strides=\(1, 2\) and dilation_rate=\(2, 1\)", id="tr-strides-and-dilation-mixed"),
]
for cls, args in [(DepthwiseConv2D, (3,)), (SeparableConv2D, (4, 3)), (Conv2DTranspose, (4, 3))]:
    CONSTRUCTOR_ERRORS += [
        pytest.param(lambda cls=cls, args=args: cls(*args, data_format="channels_first"), ValueError,
                     named(cls, "data_format") + ' "channels_first" is not supported: convscope works on '
                     r"channels_last \(batch, height, width, channels\) inputs", id=f"{cls.__name__}-channels-first"),
        pytest.param(lambda cls=cls, args=args: cls(*args, data_format="nhwc"), ValueError,
                     named(cls, "data_format") + r' must be "channels_last" or None, received \'nhwc\'',
                     id=f"{cls.__name__}-data-format-unknown"),
        pytest.param(lambda cls=cls, args=args: cls(*args, data_format=1), ValueError,
                     named(cls, "data_format") + r" must be .*received 1", id=f"{cls.__name__}-data-format-int"),
        pytest.param(lambda cls=cls, args=args: cls(*args, name=""), TypeError,
                     rf'{cls.__name__}: argument "name" must be a non-empty string', id=f"{cls.__name__}-name"),
    ]


@pytest.mark.parametrize("factory, exception, message", CONSTRUCTOR_ERRORS)
def test_constructor_errors(factory, exception, message):
    with pytest.raises(exception, match=message):
        factory()


@pytest.mark.parametrize("cls", [DepthwiseConv2D, SeparableConv2D])
def test_depthwise_and_separable_accept_strides_with_dilation_as_keras(cls, float64):
    """Keras 3 refuses strides > 1 with dilation_rate > 1 for Conv2D and Conv2DTranspose only; for these
    two its TensorFlow backend decomposes the op, so they compute it (and so does convscope)."""
    layer = cls(*((2,) if cls is SeparableConv2D else ()), 3, strides=2, dilation_rate=2, padding="same")
    layer = randomized(layer, (5, 7, 2))
    x = np.random.default_rng(7).standard_normal((2, 5, 7, 2))
    weights = layer.get_weights()
    if cls is DepthwiseConv2D:
        expected = reference_conv.depthwise_conv2d_loops(x, *weights, (2, 2), "same", (2, 2))
    else:
        expected = reference_conv.separable_conv2d_loops(x, *weights, (2, 2), "same", (2, 2))
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layer, input_shape, message", [
    (lambda: DepthwiseConv2D(3), (5, 7),
     r'Input 0 of layer "[a-z0-9_]+" is incompatible with the layer: expected ndim=4 \(batch, height, width, '
     r"channels\), found shape=\(None, 5, 7\)"),
    (lambda: SeparableConv2D(2, 3), (None, 7, 2), r"expected ndim=4 .*found shape=\(None, None, 7, 2\)"),
    (lambda: Conv2DTranspose(2, 3), (4, 5, 6, 2), r"expected ndim=4 .*found shape=\(None, 4, 5, 6, 2\)"),
    (lambda: DepthwiseConv2D(3), (2, 7, 2),
     r'DepthwiseConv2D "[a-z0-9_]+": computed output size would be zero or negative: input of spatial size '
     r'\(2, 7\) is too small for kernel_size=\(3, 3\), dilation_rate=\(1, 1\), strides=\(1, 1\) with '
     r'padding="valid" \(output would be 0x5\)'),
    (lambda: SeparableConv2D(2, 3, dilation_rate=2), (5, 4, 2),
     r'SeparableConv2D "[a-z0-9_]+": computed output size would be zero or negative: .*dilation_rate=\(2, 2\).*'
     r"\(output would be 1x0\)"),
])
def test_input_shape_errors(layer, input_shape, message):
    with pytest.raises(ValueError, match=message):
        layer().build((None, *input_shape))


def test_input_must_match_the_built_shape():
    layer = Conv2DTranspose(2, 3)
    layer(np.zeros((1, 5, 7, 2), "float32"))
    with pytest.raises(ValueError, match=r'Input 0 of layer "conv2d_transpose[a-z0-9_]*" is incompatible with the '
                                         r"layer: expected shape=\(None, 5, 7, 2\), found shape=\(1, 5, 7, 3\)"):
        layer(np.zeros((1, 5, 7, 3), "float32"))
