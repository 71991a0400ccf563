"""UpSampling2D, Normalization and LayerNormalization: Keras 3's shapes, weights, configs and numbers,
every refusal message, Normalization.adapt against NumPy, and the bilinear resize against
``torch.nn.functional.interpolate`` (the same half-pixel resize as TensorFlow's ``tf.image.resize``).
"""

from __future__ import annotations

import importlib
import json
import warnings

import numpy as np
import pytest

from convscope import backend
from convscope import Input
from convscope.layers.normalization import LayerNormalization
from convscope.layers.preprocessing import Normalization
from convscope.layers.resampling import UpSampling2D

torch = pytest.importorskip("torch", reason="PyTorch is the independent peer for bilinear resizing (the [test] extra)")

NAME = r'"[a-z0-9_]+"'


def _named(owner: str, arg: str) -> str:
    return rf'{owner} {NAME}: argument "{arg}"'


def _randn(*shape, seed=0, dtype="float64"):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture
def float64():
    previous = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(previous)


def _torch_resize(x, size, mode):
    nchw = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    out = torch.nn.functional.interpolate(nchw, size=(x.shape[1] * size[0], x.shape[2] * size[1]), mode=mode, **kwargs)
    return out.numpy().transpose(0, 2, 3, 1)


def _round_trip(layer):
    config = layer.get_config()
    json.dumps(config)
    rebuilt = type(layer).from_config(config)
    assert type(rebuilt) is type(layer) and rebuilt.get_config() == config
    return rebuilt


@pytest.mark.parametrize("cls", [UpSampling2D, Normalization, LayerNormalization])
def test_loop_reference_names_a_function(cls):
    module, _, name = cls.LOOP_REFERENCE.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))


# ================================================================ UpSampling2D
@pytest.mark.parametrize("size, hw, expected", [
    (2, (5, 7), (10, 14)), (3, (3, 3), (9, 9)), ((2, 3), (5, 7), (10, 21)), ((1, 2), (2, 1), (2, 2)),
])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsampling_output_shape(size, hw, expected, interpolation):
    layer = UpSampling2D(size, interpolation=interpolation)
    assert layer.compute_output_shape((None, *hw, 4)) == (None, *expected, 4)
    y = layer(np.zeros((2, *hw, 4), "float32"))
    assert y.shape == (2, *expected, 4) and y.dtype == np.float32
    assert UpSampling2D(size, interpolation=interpolation)(Input(shape=(*hw, 4))).shape == (None, *expected, 4)


def test_upsampling_keras_docstring_example():
    x = np.arange(12).reshape(2, 2, 1, 3)
    y = UpSampling2D(size=(1, 2))(x)
    np.testing.assert_array_equal(y, x.repeat(2, axis=2))
    np.testing.assert_array_equal(y[0, 0], [[0, 1, 2], [0, 1, 2]])


@pytest.mark.parametrize("size", [2, 3, (2, 3)], ids=["2", "3", "2x3"])
def test_upsampling_bilinear_matches_torch(size, float64):
    pair = (size, size) if isinstance(size, int) else size
    x = _randn(2, 5, 7, 3, seed=1)  # odd sizes: the clamped edges and the half-pixel offsets matter
    y = UpSampling2D(size, interpolation="bilinear")(x)
    np.testing.assert_allclose(y, _torch_resize(x, pair, "bilinear"), rtol=0, atol=1e-12)


@pytest.mark.parametrize("size", [2, 3, (2, 3)], ids=["2", "3", "2x3"])
def test_upsampling_bilinear_matches_torch_float32(size):
    pair = (size, size) if isinstance(size, int) else size
    x = _randn(2, 5, 7, 3, seed=2, dtype="float32")
    y = UpSampling2D(size, interpolation="bilinear")(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, _torch_resize(x, pair, "bilinear"), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [2, (2, 3)], ids=["2", "2x3"])
def test_upsampling_nearest_matches_torch(size):
    pair = (size, size) if isinstance(size, int) else size
    x = _randn(2, 5, 7, 3, seed=3, dtype="float32")
    np.testing.assert_array_equal(UpSampling2D(size)(x), _torch_resize(x, pair, "nearest"))


def test_upsampling_bilinear_follows_the_input_dtype(float64):
    layer = UpSampling2D(2, interpolation="bilinear")
    x64 = _randn(1, 3, 3, 1, seed=4)
    layer(x64)
    y32 = layer.forward(x64.astype("float32"))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, layer.forward(x64), rtol=1e-6, atol=1e-6)


def test_upsampling_config_round_trip():
    layer = UpSampling2D((2, 3), interpolation="BILINEAR", name="up")
    assert layer.get_config() == {"name": "up", "trainable": True, "size": [2, 3], "data_format": "channels_last",
                                  "interpolation": "bilinear"}
    _round_trip(layer)
    assert UpSampling2D(data_format="channels_last").get_config()["size"] == [2, 2]
    assert layer.param_shapes((None, 4, 4, 1)) == {} and layer.count_params() == 0


UPSAMPLING_ERRORS = [
    pytest.param(lambda: UpSampling2D(0), ValueError, _named("UpSampling2D", "size") + r" must be >= 1, received 0",
                 id="size-0"),
    pytest.param(lambda: UpSampling2D((2, -1)), ValueError,
                 _named("UpSampling2D", "size") + r" must be >= 1, received \(2, -1\)", id="size-negative"),
    pytest.param(lambda: UpSampling2D("2"), TypeError,
                 _named("UpSampling2D", "size") + r" must be an int or a tuple of 2 ints, received '2'", id="size-str"),
    pytest.param(lambda: UpSampling2D((2, 2, 2)), TypeError,
                 _named("UpSampling2D", "size") + r" must be an int or a tuple of 2 ints, received \(2, 2, 2\)",
                 id="size-3"),
    pytest.param(lambda: UpSampling2D(data_format="channels_first"), ValueError,
                 _named("UpSampling2D", "data_format") + r' "channels_first" is not supported: convscope works on '
                 r"channels_last", id="channels-first"),
    pytest.param(lambda: UpSampling2D(data_format="nhwc"), ValueError,
                 _named("UpSampling2D", "data_format") + r' must be "channels_last" or None, '
                 r"received 'nhwc'", id="data-format-bad"),
    pytest.param(lambda: UpSampling2D(interpolation="bicubic"), ValueError,
                 _named("UpSampling2D", "interpolation") + r" must be one of 'nearest', 'bilinear', received "
                 r"'bicubic' \(Keras also resizes with 'bicubic'; convscope does not implement it\)", id="bicubic"),
    pytest.param(lambda: UpSampling2D(interpolation="lanczos3"), ValueError,
                 r"must be one of 'nearest', 'bilinear', received 'lanczos3' \(Keras also", id="lanczos3"),
    pytest.param(lambda: UpSampling2D(interpolation="cubic"), ValueError,
                 _named("UpSampling2D", "interpolation") + r" must be one of 'nearest', 'bilinear', received 'cubic'$",
                 id="unknown"),
    pytest.param(lambda: UpSampling2D(interpolation=None), ValueError,
                 _named("UpSampling2D", "interpolation") + r" must be one of 'nearest', 'bilinear', received None",
                 id="none"),
]


@pytest.mark.parametrize("factory, exc, match", UPSAMPLING_ERRORS)
def test_upsampling_bad_arguments(factory, exc, match):
    with pytest.raises(exc, match=match):
        factory()


def test_upsampling_refuses_non_images():
    with pytest.raises(ValueError, match=r'Input 0 of layer "[a-z0-9_]+" is incompatible with the layer: '
                                         r"expected ndim=4 .*found shape=\(None, 5, 3\)"):
        UpSampling2D()(np.zeros((2, 5, 3)))


# ================================================================ Normalization
ADAPT_DATA = np.array([[0.0, 7.0, 4.0], [2.0, 9.0, 6.0], [0.0, 7.0, 4.0], [2.0, 9.0, 6.0]], "float32")


def test_normalization_keras_docstring_examples():
    layer = Normalization(axis=None)
    layer.adapt(np.array([1.0, 2.0, 3.0, 4.0, 5.0], "float32"))
    np.testing.assert_allclose(layer(np.array([1.0, 2.0, 3.0], "float32")), [-1.4142135, -0.70710677, 0.0], rtol=1e-6)
    layer = Normalization(axis=-1)
    layer.adapt(ADAPT_DATA)
    np.testing.assert_array_equal(layer(np.array([[0.0, 7.0, 4.0]], "float32")), [[-1.0, -1.0, -1.0]])
    given = Normalization(mean=3.0, variance=2.0)(np.array([[1.0], [2.0], [3.0]], "float32"))
    np.testing.assert_allclose(given, [[-1.4142135], [-0.70710677], [0.0]], rtol=1e-6)
    inverse = Normalization(axis=-1, invert=True)
    inverse.adapt(ADAPT_DATA)
    np.testing.assert_array_equal(inverse(np.array([[1.0, 2.0, 3.0]], "float32")), [[2.0, 10.0, 8.0]])


def test_normalization_weights_as_keras():
    layer = Normalization(axis=(1, 3))
    layer.build((None, 4, 5, 3))
    assert [(p.name, p.shape, p.value.dtype.name, p.trainable) for p in layer.parameters] == [
        (f"{layer.name}/mean", (4, 3), "float32", False),
        (f"{layer.name}/variance", (4, 3), "float32", False),
        (f"{layer.name}/count", (), "int64", False),
    ]
    assert layer.param_shapes((None, 4, 5, 3)) == {"mean": (4, 3), "variance": (4, 3), "count": ()}
    assert layer.trainable_parameters == []
    np.testing.assert_array_equal(layer.adapt_mean.value, 0)
    np.testing.assert_array_equal(layer.adapt_variance.value, 1)
    x = _randn(2, 4, 5, 3, seed=5, dtype="float32")
    np.testing.assert_array_equal(layer(x), x)  # not adapted: mean 0, variance 1
    weights = [np.full((4, 3), 2.0), np.full((4, 3), 4.0), np.array(7)]
    layer.set_weights(weights)
    assert layer.count.value.dtype == np.int64 and int(layer.count.value) == 7
    np.testing.assert_allclose(layer(x), (x - 2) / 2, rtol=1e-6)


def test_normalization_given_has_no_weights():
    layer = Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0])
    layer.build((None, 3, 2))
    assert layer.parameters == [] and layer.param_shapes((None, 3, 2)) == {}


@pytest.mark.parametrize("shape, axis", [((50, 3), -1), ((6, 4, 5, 3), -1), ((6, 4, 5, 3), (1, 3)),
                                         ((6, 4, 5, 3), None), ((6, 4, 5, 3), (-3, -2, -1)), ((9, 4), (0, 1))])
def test_normalization_adapt_is_exact_in_float64(shape, axis, float64):
    data = _randn(*shape, seed=6) * 3 + 5
    layer = Normalization(axis=axis)
    layer.adapt(data)
    keep = () if axis is None else tuple(sorted(a % len(shape) for a in np.atleast_1d(axis)))
    reduce_axes = tuple(d for d in range(len(shape)) if d not in keep)
    np.testing.assert_array_equal(layer.adapt_mean.value, np.mean(data, axis=reduce_axes))
    np.testing.assert_array_equal(layer.adapt_variance.value, np.var(data, axis=reduce_axes))
    assert int(layer.count.value) == 0  # Keras never updates it
    x = _randn(2, *shape[1:], seed=7)
    if 0 in keep:
        x = _randn(*shape, seed=7)
    bshape = [shape[d] if d in keep else 1 for d in range(len(shape))]
    std = np.maximum(np.sqrt(np.var(data, axis=reduce_axes)), 1e-7)  # keeping every axis: variance 0
    expected = (x - np.mean(data, axis=reduce_axes).reshape(bshape)) / std.reshape(bshape)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-14, atol=1e-14)


def test_normalization_adapt_float32_data_is_correctly_rounded():
    data = _randn(1000, 3, seed=8, dtype="float32") * 100 + 1e4
    layer = Normalization()
    layer.adapt(data)
    exact = data.astype("float64")
    assert layer.adapt_mean.value.dtype == np.float32
    np.testing.assert_array_equal(layer.adapt_mean.value, exact.mean(axis=0).astype("float32"))
    np.testing.assert_array_equal(layer.adapt_variance.value, exact.var(axis=0).astype("float32"))


def test_normalization_adapt_integer_data_and_inputs():
    layer = Normalization()
    layer.adapt(np.array([[0, 10], [2, 30]], "uint8"))
    np.testing.assert_array_equal(layer.adapt_mean.value, [1, 20])
    y = layer(np.array([[1, 20]], "uint8"))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[0, 0]])


def test_normalization_adapt_again_after_build():
    layer = Normalization()
    layer(np.zeros((2, 3)))
    layer.adapt(ADAPT_DATA)
    np.testing.assert_array_equal(layer.adapt_mean.value, [1, 8, 5])


def test_normalization_zero_variance_is_floored():
    layer = Normalization()
    layer.adapt(np.array([[1.0, 0.0], [1.0, 2.0]]))
    np.testing.assert_allclose(layer(np.array([[1.0 + 1e-7, 1.0]])), [[1.0, 0.0]], rtol=1e-8)


@pytest.mark.parametrize("mean, variance, axis, shape, expected_mean", [
    (3.0, 1.0, -1, (2, 4, 3), np.full((1, 1, 3), 3.0)),
    ([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], -1, (2, 4, 3), np.array([1.0, 2.0, 3.0]).reshape(1, 1, 3)),
    ([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], (1, 2), (2, 4, 3), np.tile([1.0, 2.0, 3.0], (4, 1)).reshape(1, 4, 3)),
    ([[1.0], [2.0]], [[1.0], [1.0]], (1, 2), (2, 2, 3), np.array([[1.0] * 3, [2.0] * 3]).reshape(1, 2, 3)),
    (5.0, 1.0, None, (2, 4, 3), np.full((1, 1, 1), 5.0)),
])
def test_normalization_given_broadcasts_like_keras(mean, variance, axis, shape, expected_mean, float64):
    layer = Normalization(axis=axis, mean=mean, variance=variance)
    x = _randn(*shape, seed=9)
    np.testing.assert_allclose(layer(x), x - expected_mean, rtol=1e-15, atol=1e-15)


def test_normalization_invert_undoes_normalize(float64):
    data = _randn(20, 3, seed=10) * 2 + 1
    forward, inverse = Normalization(), Normalization(invert=True)
    forward.adapt(data)
    inverse.adapt(data)
    x = _randn(4, 3, seed=11)
    np.testing.assert_allclose(inverse(forward(x)), x, rtol=1e-14, atol=1e-14)


def test_normalization_config_round_trip():
    layer = Normalization(axis=(1, 3), name="norm")
    assert layer.get_config() == {"name": "norm", "trainable": True, "axis": [1, 3], "invert": False, "mean": None,
                                  "variance": None}
    _round_trip(layer)
    assert Normalization(axis=None).get_config()["axis"] == []
    given = Normalization(mean=[1.0, 2.0], variance=np.array([3.0, 4.0]), invert=True)
    assert given.get_config()["mean"] == [1.0, 2.0] and given.get_config()["variance"] == [3.0, 4.0]
    _round_trip(given)
    assert Normalization(mean=3.0, variance=2.0).get_config()["mean"] == 3.0


NORMALIZATION_ERRORS = [
    pytest.param(lambda: Normalization(axis="last"), TypeError,
                 _named("Normalization", "axis") + r" must be an int, a list of ints or None, received 'last'",
                 id="axis-str"),
    pytest.param(lambda: Normalization(axis=[1, 2.0]), TypeError,
                 _named("Normalization", "axis") + r" must be an int, a list of ints or None, received \[1, 2\.0\]",
                 id="axis-float"),
    pytest.param(lambda: Normalization(axis=True), TypeError,
                 _named("Normalization", "axis") + r" must be an int, a list of ints or None, received True",
                 id="axis-bool"),
    pytest.param(lambda: Normalization(axis=(1, 1)), ValueError,
                 _named("Normalization", "axis") + r" has duplicate entries, received \(1, 1\)", id="axis-duplicate"),
    pytest.param(lambda: Normalization(invert=1), TypeError,
                 _named("Normalization", "invert") + r" must be a bool, received 1", id="invert-int"),
    pytest.param(lambda: Normalization(mean=1.0), ValueError,
                 rf'Normalization {NAME}: when setting values directly, both "mean" and "variance" must be set, '
                 r"received mean=1\.0 and variance=None", id="mean-only"),
    pytest.param(lambda: Normalization(variance=[1.0]), ValueError,
                 r'both "mean" and "variance" must be set, received mean=None and variance=\[1\.0\]',
                 id="variance-only"),
    pytest.param(lambda: Normalization(mean=[1.0, 2.0], variance=[1.0]), ValueError,
                 rf'Normalization {NAME}: "mean" and "variance" must have the same shape, received mean shape '
                 r"\(2,\) and variance shape \(1,\)", id="shape-mismatch"),
    pytest.param(lambda: Normalization(mean=[[1.0]], variance=[[1.0]]), ValueError,
                 rf'Normalization {NAME}: the rank of "mean" must be at most the number of axes \(1\), received '
                 r"mean shape \(1, 1\) for axis=\(-1,\)", id="mean-rank"),
    pytest.param(lambda: Normalization(axis=None, mean=[1.0], variance=[1.0]), ValueError,
                 r"the rank of \"mean\" must be at most the number of axes \(0\)", id="mean-rank-scalar-axis"),
    pytest.param(lambda: Normalization(mean="a", variance="b"), TypeError,
                 _named("Normalization", "mean") + r" must be a number or an array of numbers, received 'a'",
                 id="mean-str"),
    pytest.param(lambda: Normalization(mean=1.0, variance=-1.0), ValueError,
                 _named("Normalization", "variance") + r" must be >= 0, received -1\.0", id="variance-negative"),
]


@pytest.mark.parametrize("factory, exc, match", NORMALIZATION_ERRORS)
def test_normalization_bad_arguments(factory, exc, match):
    with pytest.raises(exc, match=match):
        factory()


def test_normalization_build_errors():
    with pytest.raises(ValueError, match=rf'Normalization {NAME}: all "axis" values must be in the range '
                                         r"\[-ndim, ndim\), received inputs with ndim=3, while axis=\(3,\)"):
        Normalization(axis=3).build((None, 4, 5))
    with pytest.raises(ValueError, match=rf'Normalization {NAME}: all "axis" values to be kept must have a known '
                                         r"size, received axis=\(0,\), input shape=\(None, 4\), with unknown axis at "
                                         r"index 0"):
        Normalization(axis=0)(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=rf'Normalization {NAME}: argument "mean" of shape \(2,\) cannot be broadcast '
                                         r"to the kept axes \(2,\) of the input shape \(None, 4, 3\) \(expected sizes "
                                         r"\(3,\)\)"):
        Normalization(mean=[1.0, 2.0], variance=[1.0, 1.0])(np.zeros((2, 4, 3)))


def test_normalization_adapt_errors():
    with pytest.raises(TypeError, match=rf"Normalization {NAME}: adapt\(\) takes one array holding the whole data set "
                                        r"\(concatenate batches first\), received list"):
        Normalization().adapt([np.zeros((2, 3))])
    with pytest.raises(TypeError, match=rf"Normalization {NAME}: adapt\(\) needs numbers, received an array of dtype "
                                        r"<U1"):
        Normalization().adapt(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match=rf'Normalization {NAME}: adapt\(\) cannot be used on a layer given "mean" '
                                         r'and "variance" in its constructor'):
        Normalization(mean=0.0, variance=1.0).adapt(np.zeros((2, 3)))
    built = Normalization()
    built.build((None, 3))
    with pytest.raises(ValueError, match=rf"Normalization {NAME}: the layer was built with input_shape=\(None, 3\), "
                                         r"but adapt\(\) is being called with data with an incompatible shape, "
                                         r"data.shape=\(2, 4\)"):
        built.adapt(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"data with an incompatible shape, data.shape=\(2, 1, 3\)"):
        built.adapt(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=rf"Normalization {NAME}: adapt\(\) received no values to average: "
                                         r"data.shape=\(0, 3\)"):
        Normalization().adapt(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r'all "axis" values must be in the range \[-ndim, ndim\), received inputs '
                                         r"with ndim=1, while axis=\(1,\)"):
        Normalization(axis=1).adapt(np.zeros(3))


# ================================================================ LayerNormalization
def test_layer_normalization_weights_and_shapes():
    layer = LayerNormalization(axis=[1, 2, 3])
    y = layer(np.zeros((8, 5, 5, 16), "float32"))
    assert y.shape == (8, 5, 5, 16) and y.dtype == np.float32
    assert [(p.name.rsplit("/", 1)[1], p.shape, p.trainable) for p in layer.parameters] == [
        ("gamma", (5, 5, 16), True), ("beta", (5, 5, 16), True)]
    assert layer.axis == [1, 2, 3]
    assert LayerNormalization(axis=(-1, 1)).param_shapes((None, 4, 5, 6)) == {"gamma": (4, 6), "beta": (4, 6)}
    assert LayerNormalization(center=False).param_shapes((None, 6)) == {"gamma": (6,)}
    assert LayerNormalization(scale=False).param_shapes((None, 6)) == {"beta": (6,)}
    assert LayerNormalization(center=False, scale=False).param_shapes((None, 6)) == {}
    with pytest.warns(UserWarning, match=r"rms_scaling=True is deprecated in Keras"):
        rms = LayerNormalization(center=True, scale=False, rms_scaling=True)
    assert rms.param_shapes((None, 6)) == {"gamma": (6,)}  # gamma even without scale, never beta
    assert LayerNormalization(axis=-2)(Input(shape=(4, 5))).shape == (None, 4, 5)


@pytest.mark.parametrize("axis", [-1, [1, 2, 3], [2, 3]], ids=["last", "all-but-batch", "w-and-c"])
def test_layer_normalization_matches_torch(axis, float64):
    layer = LayerNormalization(axis=axis, epsilon=1e-3)
    layer.build((None, 3, 4, 5))
    rng = np.random.default_rng(12)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    x = _randn(2, 3, 4, 5, seed=13) * 3 + 1
    shape = tuple(x.shape[d] for d in layer.axis)
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x), shape, torch.from_numpy(layer.gamma.value),
                                              torch.from_numpy(layer.beta.value), eps=1e-3).numpy()
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_layer_normalization_keras_formula(float64):
    """y = x * (gamma * rsqrt(var + eps)) + (beta - mean * gamma * rsqrt(var + eps)), biased variance."""
    layer = LayerNormalization(axis=[1, 3], epsilon=0.5)
    layer.build((None, 3, 2, 4))
    rng = np.random.default_rng(14)
    gamma, beta = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    layer.set_weights([gamma, beta])
    x = _randn(2, 3, 2, 4, seed=15)
    mean = x.mean(axis=(1, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 3), keepdims=True)
    g, b = gamma[:, None, :], beta[:, None, :]
    np.testing.assert_allclose(layer(x), (x - mean) / np.sqrt(var + 0.5) * g + b, rtol=1e-13, atol=1e-13)


def test_layer_normalization_rms_scaling_is_keras_variant(float64):
    """Keras's deprecated rms_scaling: x (not centred) divided by the centred std, times gamma."""
    with pytest.warns(UserWarning):
        layer = LayerNormalization(rms_scaling=True, epsilon=1e-3)
    x = _randn(3, 6, seed=16) + 2
    layer.build((None, 6))
    gamma = np.linspace(0.5, 1.5, 6)
    layer.set_weights([gamma])
    np.testing.assert_allclose(layer(x), x / np.sqrt(x.var(axis=1, keepdims=True) + 1e-3) * gamma, rtol=1e-13)


def test_layer_normalization_float32():
    layer = LayerNormalization()
    x = _randn(4, 10, seed=17, dtype="float32") * 5 + 3
    y = layer(x)
    assert y.dtype == np.float32
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x), (10,), eps=1e-3).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_layer_normalization_config_round_trip():
    layer = LayerNormalization(axis=(1, -1), epsilon=1e-5, center=False, gamma_initializer="glorot_uniform",
                               name="ln")
    config = layer.get_config()
    assert config["axis"] == [1, -1] and config["epsilon"] == 1e-5 and config["rms_scaling"] is False
    assert config["gamma_initializer"]["class_name"] == "GlorotUniform"
    _round_trip(layer)
    layer.build((None, 3, 4))
    assert layer.get_config()["axis"] == [1, 2]  # canonical once built, as Keras
    _round_trip(layer)
    assert LayerNormalization().get_config()["axis"] == -1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _round_trip(LayerNormalization(rms_scaling=True))


LAYER_NORM_ERRORS = [
    pytest.param(lambda: LayerNormalization(axis="last"), TypeError,
                 _named("LayerNormalization", "axis") + r" must be an int or a list/tuple of ints, received 'last'",
                 id="axis-str"),
    pytest.param(lambda: LayerNormalization(axis=[1, "2"]), TypeError,
                 _named("LayerNormalization", "axis") + r" must be an int or a list/tuple of ints, received \[1, '2'\]",
                 id="axis-list-str"),
    pytest.param(lambda: LayerNormalization(axis=None), TypeError,
                 _named("LayerNormalization", "axis") + r" must be an int or a list/tuple of ints, received None",
                 id="axis-none"),
    pytest.param(lambda: LayerNormalization(epsilon=0), ValueError,
                 _named("LayerNormalization", "epsilon") + r" must be a number > 0, received 0", id="epsilon-0"),
    pytest.param(lambda: LayerNormalization(epsilon="small"), ValueError,
                 _named("LayerNormalization", "epsilon") + r" must be a number > 0, received 'small'",
                 id="epsilon-str"),
    pytest.param(lambda: LayerNormalization(center=1), TypeError,
                 _named("LayerNormalization", "center") + r" must be a bool, received 1", id="center-int"),
    pytest.param(lambda: LayerNormalization(scale="yes"), TypeError,
                 _named("LayerNormalization", "scale") + r" must be a bool, received 'yes'", id="scale-str"),
    pytest.param(lambda: LayerNormalization(rms_scaling=None), TypeError,
                 _named("LayerNormalization", "rms_scaling") + r" must be a bool, received None", id="rms-none"),
    pytest.param(lambda: LayerNormalization(gamma_initializer="nope"), ValueError,
                 _named("LayerNormalization", "gamma_initializer") + r" is not valid", id="gamma-initializer"),
    pytest.param(lambda: LayerNormalization(beta_initializer=3), TypeError,
                 _named("LayerNormalization", "beta_initializer") + r" is not valid", id="beta-initializer"),
]


@pytest.mark.parametrize("factory, exc, match", LAYER_NORM_ERRORS)
def test_layer_normalization_bad_arguments(factory, exc, match):
    with pytest.raises(exc, match=match):
        factory()


@pytest.mark.parametrize("axis, match", [
    (3, r"axis 3 is out of bounds for an input of rank 3 \(shape=\(None, 4, 5\)\)"),
    ([-4], r"axis -4 is out of bounds for an input of rank 3"),
    ([-1, 2], r"duplicate axes are not allowed, received axis=\[-1, 2\]"),
    (0, r"the normalized axes need known sizes and cannot include the batch axis, received axis=0 for input "
        r"shape=\(None, 4, 5\)"),
    ([], r'argument "axis" names no axis, received \[\]'),
])
def test_layer_normalization_build_errors(axis, match):
    with pytest.raises(ValueError, match=rf"LayerNormalization {NAME}: " + match):
        LayerNormalization(axis=axis).build((None, 4, 5))
