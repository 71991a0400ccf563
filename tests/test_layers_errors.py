"""Every layer refuses bad hyperparameters and inputs with a message that names the layer (or
its argument), what was expected and what was received; and every layer's config round-trips.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from convscope import layers


def _named(owner: str, arg: str) -> str:
    """The start of a message about argument ``arg`` of a layer of class ``owner`` (any automatic name)."""
    return rf'{owner} "[a-z0-9_]+": argument "{arg}"'


# ---------------------------------------------------------------- constructor arguments
# (factory, exception, regex the message must match)
CONSTRUCTOR_ERRORS = [
    # Conv2D
    pytest.param(lambda: layers.Conv2D(0, 3), ValueError,
                 _named("Conv2D", "filters") + r" must be a positive int, received 0", id="conv-filters-0"),
    pytest.param(lambda: layers.Conv2D(-4, 3), ValueError,
                 _named("Conv2D", "filters") + r" must be a positive int, received -4", id="conv-filters-negative"),
    pytest.param(lambda: layers.Conv2D(2.0, 3), ValueError,
                 _named("Conv2D", "filters") + r" must be a positive int, received 2\.0", id="conv-filters-float"),
    pytest.param(lambda: layers.Conv2D(4, "3"), TypeError,
                 _named("Conv2D", "kernel_size") + r" must be an int or a tuple of 2 ints, received '3'",
                 id="conv-kernel-str"),
    pytest.param(lambda: layers.Conv2D(4, 3.0), TypeError,
                 _named("Conv2D", "kernel_size") + r" must be an int or a tuple of 2 ints, received 3\.0",
                 id="conv-kernel-float"),
    pytest.param(lambda: layers.Conv2D(4, (3, 3, 3)), TypeError,
                 _named("Conv2D", "kernel_size") + r" must be an int or a tuple of 2 ints, received \(3, 3, 3\)",
                 id="conv-kernel-3-tuple"),
    pytest.param(lambda: layers.Conv2D(4, True), TypeError,
                 _named("Conv2D", "kernel_size") + r" must be an int or a tuple of 2 ints, received True",
                 id="conv-kernel-bool"),
    pytest.param(lambda: layers.Conv2D(4, (3, 0)), ValueError,
                 _named("Conv2D", "kernel_size") + r" must be >= 1, received \(3, 0\)", id="conv-kernel-0"),
    pytest.param(lambda: layers.Conv2D(4, 3, strides=0), ValueError,
                 _named("Conv2D", "strides") + r" must be >= 1, received 0", id="conv-strides-0"),
    pytest.param(lambda: layers.Conv2D(4, 3, padding="full"), ValueError,
                 _named("Conv2D", "padding") + r' must be "valid" or "same", received \'full\'', id="conv-padding-full"),
    pytest.param(lambda: layers.Conv2D(4, 3, padding=1), ValueError,
                 _named("Conv2D", "padding") + r' must be "valid" or "same", received 1', id="conv-padding-int"),
    pytest.param(lambda: layers.Conv2D(4, 3, dilation_rate=0), ValueError,
                 _named("Conv2D", "dilation_rate") + r" must be >= 1, received 0", id="conv-dilation-0"),
    pytest.param(lambda: layers.Conv2D(4, 3, strides=2, dilation_rate=2), ValueError,
                 r'Conv2D "[a-z0-9_]+": strides > 1 not supported in conjunction with dilation_rate > 1, '
                 r"received strides=\(2, 2\) and dilation_rate=\(2, 2\)", id="conv-strides-and-dilation"),
    pytest.param(lambda: layers.Conv2D(4, 3, strides=(1, 2), dilation_rate=(2, 1)), ValueError,
                 r"strides > 1 not supported in conjunction with dilation_rate > 1, "
                 r"received strides=\(1, 2\) and dilation_rate=\(2, 1\)", id="conv-strides-and-dilation-mixed"),
    pytest.param(lambda: layers.Conv2D(4, 3, groups=3), ValueError,
                 r'Conv2D "[a-z0-9_]+": "filters" must be divisible by "groups", received filters=4, groups=3',
                 id="conv-groups-filters"),
    pytest.param(lambda: layers.Conv2D(4, 3, groups=0), ValueError,
                 _named("Conv2D", "groups") + r" must be a positive int, received 0", id="conv-groups-0"),
    pytest.param(lambda: layers.Conv2D(4, 3, use_bias="yes"), TypeError,
                 _named("Conv2D", "use_bias") + r" must be a bool, received 'yes'", id="conv-use-bias"),
    pytest.param(lambda: layers.Conv2D(4, 3, activation="relux"), ValueError,
                 _named("Conv2D", "activation") + r" is not valid: .*expected one of .*'relu'.*received 'relux'",
                 id="conv-activation"),
    pytest.param(lambda: layers.Conv2D(4, 3, kernel_initializer="nope"), ValueError,
                 _named("Conv2D", "kernel_initializer") + r" is not valid: .*glorot_uniform.*received 'nope'",
                 id="conv-initializer"),
    # Dense
    pytest.param(lambda: layers.Dense(0), ValueError,
                 _named("Dense", "units") + r" must be a positive int, received 0", id="dense-units-0"),
    pytest.param(lambda: layers.Dense("10"), ValueError,
                 _named("Dense", "units") + r" must be a positive int, received '10'", id="dense-units-str"),
    pytest.param(lambda: layers.Dense(3, use_bias=1), TypeError,
                 _named("Dense", "use_bias") + r" must be a bool, received 1", id="dense-use-bias"),
    pytest.param(lambda: layers.Dense(3, activation=3), TypeError,
                 _named("Dense", "activation") + r" is not valid: .*expected None, a name or an Activation, received 3",
                 id="dense-activation-type"),
    pytest.param(lambda: layers.Dense(3, bias_initializer="nope"), ValueError,
                 _named("Dense", "bias_initializer") + r" is not valid: .*received 'nope'", id="dense-initializer"),
    # Dropout
    pytest.param(lambda: layers.Dropout(1.0), ValueError,
                 _named("Dropout", "rate") + r" must be a number in \[0, 1\), received 1\.0", id="dropout-rate-1"),
    pytest.param(lambda: layers.Dropout(-0.1), ValueError,
                 _named("Dropout", "rate") + r" must be a number in \[0, 1\), received -0\.1", id="dropout-rate-negative"),
    pytest.param(lambda: layers.Dropout("0.5"), ValueError,
                 _named("Dropout", "rate") + r" must be a number in \[0, 1\), received '0\.5'", id="dropout-rate-str"),
    pytest.param(lambda: layers.Dropout(0.5, noise_shape="abc"), TypeError,
                 _named("Dropout", "noise_shape") + r" must be None or a tuple of ints, received 'abc'",
                 id="dropout-noise-shape"),
    pytest.param(lambda: layers.Dropout(0.5, seed=1.5), TypeError,
                 _named("Dropout", "seed") + r" must be None or an int, received 1\.5", id="dropout-seed"),
    # BatchNormalization
    pytest.param(lambda: layers.BatchNormalization(momentum=1.0), ValueError,
                 _named("BatchNormalization", "momentum") + r" must be in \[0, 1\), received 1\.0", id="bn-momentum-1"),
    pytest.param(lambda: layers.BatchNormalization(momentum=-0.5), ValueError,
                 _named("BatchNormalization", "momentum") + r" must be in \[0, 1\), received -0\.5",
                 id="bn-momentum-negative"),
    pytest.param(lambda: layers.BatchNormalization(epsilon=0), ValueError,
                 _named("BatchNormalization", "epsilon") + r" must be a number > 0, received 0", id="bn-epsilon-0"),
    pytest.param(lambda: layers.BatchNormalization(axis=1), ValueError,
                 r'BatchNormalization "[a-z0-9_]+": only the channel axis \(-1\) is supported, received axis=1',
                 id="bn-axis"),
    pytest.param(lambda: layers.BatchNormalization(center="no"), TypeError,
                 _named("BatchNormalization", "center") + r" must be a bool, received 'no'", id="bn-center"),
    pytest.param(lambda: layers.BatchNormalization(gamma_initializer="nope"), ValueError,
                 _named("BatchNormalization", "gamma_initializer") + r" is not valid: .*received 'nope'",
                 id="bn-initializer"),
    # ReLU
    pytest.param(lambda: layers.ReLU(negative_slope=-1), ValueError,
                 _named("ReLU", "negative_slope") + r" must be a number >= 0, received -1", id="relu-negative-slope"),
    pytest.param(lambda: layers.ReLU(threshold=-0.5), ValueError,
                 _named("ReLU", "threshold") + r" must be a number >= 0, received -0\.5", id="relu-threshold"),
    pytest.param(lambda: layers.ReLU(max_value=-1), ValueError,
                 _named("ReLU", "max_value") + r" must be None or a number >= 0, received -1", id="relu-max-value"),
    # Activation
    pytest.param(lambda: layers.Activation("nope"), ValueError,
                 _named("Activation", "activation") + r" is not valid: .*received 'nope'", id="activation-name"),
    # pooling
    pytest.param(lambda: layers.MaxPooling2D(0), ValueError,
                 _named("MaxPooling2D", "pool_size") + r" must be >= 1, received 0", id="maxpool-size-0"),
    pytest.param(lambda: layers.MaxPooling2D("2"), TypeError,
                 _named("MaxPooling2D", "pool_size") + r" must be an int or a tuple of 2 ints, received '2'",
                 id="maxpool-size-str"),
    pytest.param(lambda: layers.AveragePooling2D((2, 2, 2)), TypeError,
                 _named("AveragePooling2D", "pool_size") + r" must be an int or a tuple of 2 ints, received \(2, 2, 2\)",
                 id="avgpool-size-3-tuple"),
    pytest.param(lambda: layers.AveragePooling2D(2, strides=(1, 0)), ValueError,
                 _named("AveragePooling2D", "strides") + r" must be >= 1, received \(1, 0\)", id="avgpool-strides-0"),
    pytest.param(lambda: layers.MaxPooling2D(2, padding="full"), ValueError,
                 _named("MaxPooling2D", "padding") + r' must be "valid" or "same", received \'full\'',
                 id="maxpool-padding"),
    # InputLayer and the base class
    pytest.param(lambda: layers.InputLayer((0, 3)), ValueError,
                 _named("InputLayer", "shape") + r" must be a tuple of positive ints, received \(0, 3\)", id="input-shape"),
    pytest.param(lambda: layers.Dense(3, name=""), TypeError,
                 r'Dense: argument "name" must be a non-empty string, received \'\'', id="name-empty"),
    pytest.param(lambda: layers.Flatten(trainable="yes"), TypeError,
                 r'Flatten: argument "trainable" must be a bool, received \'yes\'', id="trainable"),
]


@pytest.mark.parametrize("factory, exc, pattern", CONSTRUCTOR_ERRORS)
def test_constructor_errors(factory, exc, pattern):
    with pytest.raises(exc, match=pattern):
        factory()


def test_valid_edge_values_are_accepted():
    """The boundaries of the checks above are open or closed exactly as the messages say."""
    assert layers.Dropout(0.0).rate == 0.0
    assert layers.BatchNormalization(momentum=0.0).momentum == 0.0
    assert layers.ReLU(negative_slope=0, threshold=0, max_value=0).max_value == 0
    assert layers.Conv2D(4, 3, strides=2, dilation_rate=1).strides == (2, 2)
    assert layers.Conv2D(4, 3, strides=1, dilation_rate=2).dilation_rate == (2, 2)
    assert layers.Conv2D(6, 3, groups=3).groups == 3
    assert layers.MaxPooling2D(2, padding="SAME").padding == "same"


# ---------------------------------------------------------------- build and call errors
def test_conv_groups_must_divide_input_channels():
    layer = layers.Conv2D(4, 3, groups=2)
    with pytest.raises(
        ValueError, match=r'Conv2D "[a-z0-9_]+": input channels must be divisible by "groups", received 3 channels and groups=2'
    ):
        layer.build((None, 8, 8, 3))


@pytest.mark.parametrize(
    "layer, shape, pattern",
    [
        (lambda: layers.Conv2D(2, 5), (1, 3, 3, 1),
         r'Conv2D "[a-z0-9_]+": input of spatial size \(3, 3\) is too small for kernel_size=\(5, 5\), '
         r'dilation_rate=\(1, 1\) with padding="valid" \(output would be 0x0\)'),
        (lambda: layers.Conv2D(2, 3, dilation_rate=2), (1, 4, 6, 1),
         r"input of spatial size \(4, 6\) is too small for kernel_size=\(3, 3\), dilation_rate=\(2, 2\) "
         r'with padding="valid" \(output would be 0x2\)'),
        (lambda: layers.MaxPooling2D(3), (1, 2, 5, 1),
         r'MaxPooling2D "[a-z0-9_]+": input of spatial size \(2, 5\) is smaller than pool_size=\(3, 3\) with padding="valid"'),
        (lambda: layers.AveragePooling2D((1, 4)), (1, 5, 3, 1),
         r'AveragePooling2D "[a-z0-9_]+": input of spatial size \(5, 3\) is smaller than pool_size=\(1, 4\)'),
    ],
    ids=["conv", "conv-dilated", "maxpool", "avgpool"],
)
def test_input_too_small(layer, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer()(np.zeros(shape, dtype=np.float32))


def test_same_padding_is_never_too_small():
    assert layers.Conv2D(2, 5, padding="same")(np.zeros((1, 2, 3, 1), np.float32)).shape == (1, 2, 3, 2)
    assert layers.MaxPooling2D(3, padding="same")(np.zeros((1, 2, 2, 1), np.float32)).shape == (1, 1, 1, 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: layers.Conv2D(2, 3),
        lambda: layers.MaxPooling2D(2),
        lambda: layers.AveragePooling2D(2),
        lambda: layers.GlobalAveragePooling2D(),
        lambda: layers.GlobalMaxPooling2D(),
        lambda: layers.BatchNormalization(),
        lambda: layers.Flatten(),
        lambda: layers.Dense(2),
    ],
    ids=["conv", "maxpool", "avgpool", "gap", "gmp", "bn", "flatten", "dense"],
)
def test_built_layer_refuses_an_unbatched_image(make):
    """Built for (None, 6, 6, 2), called with one image (6, 6, 2): Keras's message, naming the layer and both shapes."""
    layer = make()
    batch = np.zeros((3, 6, 6, 2), dtype=np.float32)
    layer(batch)
    pattern = (
        rf'Input 0 of layer "{re.escape(layer.name)}" is incompatible with the layer: '
        r"expected shape=\(None, 6, 6, 2\), found shape=\(6, 6, 2\)"
    )
    with pytest.raises(ValueError, match=pattern):
        layer(batch[0])


def test_built_layer_refuses_other_spatial_sizes_and_nchw():
    layer = layers.Conv2D(2, 3)
    layer(np.zeros((2, 5, 5, 1), np.float32))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 5, 5, 1\), found shape=\(2, 6, 5, 1\)"):
        layer(np.zeros((2, 6, 5, 1), np.float32))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 5, 5, 1\), found shape=\(2, 1, 5, 5\)"):
        layer(np.zeros((2, 1, 5, 5), np.float32))


@pytest.mark.parametrize(
    "make, shape, pattern",
    [
        (lambda: layers.Conv2D(2, 3), (6, 6, 1),
         r"expected ndim=4 \(batch, height, width, channels\), found shape=\(None, 6, 1\)"),
        (lambda: layers.MaxPooling2D(2), (2, 6), r"expected ndim=4 .*found shape=\(None, 6\)"),
        (lambda: layers.GlobalAveragePooling2D(), (2, 3), r"expected ndim=4 .*found shape=\(None, 3\)"),
        (lambda: layers.GlobalMaxPooling2D(), (2, 3, 4), r"expected ndim=4 .*found shape=\(None, 3, 4\)"),
        (lambda: layers.Dense(2), (3,), r"expected ndim>=2 with a known last axis, found shape=\(None,\)"),
        (lambda: layers.BatchNormalization(), (3,), r"needs a known channel axis, found shape=\(None,\)"),
        (lambda: layers.Flatten(), (3,), r"needs known non-batch sizes, found shape=\(None,\)"),
    ],
    ids=["conv", "maxpool", "gap", "gmp", "dense", "bn", "flatten"],
)
def test_unbuilt_layer_refuses_the_wrong_rank(make, shape, pattern):
    layer = make()
    with pytest.raises(ValueError, match=rf'Input 0 of layer "{re.escape(layer.name)}" .*' + pattern):
        layer(np.zeros(shape, np.float32))
    assert not layer.built


def test_set_weights_errors_name_the_layer_and_shapes():
    layer = layers.Dense(3)
    layer.build((None, 4))
    with pytest.raises(ValueError, match=rf'Layer "{layer.name}" expects 2 weights, received 1'):
        layer.set_weights([np.zeros((4, 3))])
    with pytest.raises(ValueError, match=rf'Layer "{layer.name}" weight ".*kernel" expects shape \(4, 3\), received \(3, 4\)'):
        layer.set_weights([np.zeros((3, 4)), np.zeros(3)])


# ---------------------------------------------------------------- get_config round trips
CONFIG_LAYERS = [
    pytest.param(lambda: layers.Conv2D(8, (3, 2), strides=(2, 1), padding="same", groups=2, activation="relu",
                                       use_bias=False, kernel_initializer="he_normal"), id="Conv2D"),
    pytest.param(lambda: layers.Conv2D(4, 3, dilation_rate=2, activation="softmax", name="my_conv", trainable=False),
                 id="Conv2D-dilated"),
    pytest.param(lambda: layers.Dense(5, activation="tanh", bias_initializer="ones"), id="Dense"),
    pytest.param(lambda: layers.MaxPooling2D(3, strides=2, padding="same"), id="MaxPooling2D"),
    pytest.param(lambda: layers.AveragePooling2D((2, 3)), id="AveragePooling2D"),
    pytest.param(lambda: layers.GlobalAveragePooling2D(), id="GlobalAveragePooling2D"),
    pytest.param(lambda: layers.GlobalMaxPooling2D(), id="GlobalMaxPooling2D"),
    pytest.param(lambda: layers.Flatten(), id="Flatten"),
    pytest.param(lambda: layers.Activation("gelu"), id="Activation"),
    pytest.param(lambda: layers.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5), id="ReLU"),
    pytest.param(lambda: layers.Dropout(0.3, noise_shape=(None, 1, 1, 4), seed=7), id="Dropout"),
    pytest.param(lambda: layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False,
                                                   gamma_initializer="random_normal"), id="BatchNormalization"),
    pytest.param(lambda: layers.InputLayer((28, 28, 1)), id="InputLayer"),
]


@pytest.mark.parametrize("make", CONFIG_LAYERS)
def test_get_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    text = json.dumps(config)
    assert json.loads(text) == config
    rebuilt = type(layer)(**config)
    assert type(rebuilt) is type(layer)
    assert rebuilt.get_config() == config
    assert layers.deserialize(json.loads(json.dumps(layers.serialize(layer)))).get_config() == config


@pytest.mark.parametrize("make", CONFIG_LAYERS)
def test_get_config_is_unchanged_by_building(make):
    layer = make()
    before = layer.get_config()
    if not isinstance(layer, layers.InputLayer):
        shape = (2, 6, 6, 4)
        layer(np.zeros(shape, np.float32))
    assert layer.get_config() == before
    json.dumps(layer.get_config())


def test_rebuilt_layers_compute_the_same_function():
    """Same config and same weights give the same outputs (the ReLU layer's parameters survive the round trip)."""
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 4)).astype(np.float32) * 3
    for layer in (layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5),
                  layers.Conv2D(4, 3, groups=2, padding="same", activation="tanh")):
        y = layer(x)
        rebuilt = type(layer)(**{**layer.get_config(), "name": layer.name + "_copy"})
        rebuilt.build(layer.input_shape)
        rebuilt.set_weights(layer.get_weights())
        np.testing.assert_array_equal(rebuilt(x), y)


def test_config_values_are_normalized():
    config = layers.Conv2D(4, 3, padding="SAME").get_config()
    assert config["kernel_size"] == [3, 3] and config["strides"] == [1, 1] and config["dilation_rate"] == [1, 1]
    assert config["padding"] == "same"
    assert config["activation"] == "linear"
    assert layers.MaxPooling2D(2).get_config()["strides"] == [2, 2]  # strides default to pool_size
