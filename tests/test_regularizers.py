"""convscope.regularizers against the formulas, central differences and real Keras 3 numbers; and the
regularizer / constraint arguments of the layers, their configs and their Keras mapping.

Keras's numbers: ``fixtures/regularizers/keras_values.json``, written by Keras 3.15.1 (torch backend,
CPU) with ``fixtures/regularizers/make_fixtures.py``; no Keras is needed here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convscope import constraints, layers, regularizers
from convscope.interop import keras_config
from convscope.regularizers import L1, L1L2, L2, OrthogonalRegularizer

KERAS = json.loads((Path(__file__).parent / "fixtures" / "regularizers" / "keras_values.json").read_text())


def central_difference(f, x, h=1e-6):
    """d f / d x (f: array -> float) by central differences in float64."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        down = f(x)
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


# ---------------------------------------------------------------------------------------- formulas


def test_l1_l2_by_hand():
    x = np.array([-2.0, 0.0, 3.0])
    assert L1(0.1)(x) == pytest.approx(0.5)
    np.testing.assert_allclose(L1(0.1).gradient(x), [-0.1, 0.0, 0.1])  # sign(0) = 0 at the kink
    assert L2(2.0)(np.ones((5, 5))) == pytest.approx(50.0)
    np.testing.assert_allclose(L2(0.5).gradient(x), [-2.0, 0.0, 3.0])
    assert L1L2(0.1, 0.5)(x) == pytest.approx(0.5 + 0.5 * 13)
    np.testing.assert_allclose(L1L2(0.1, 0.5).gradient(x), [-2.1, 0.0, 3.1])
    assert regularizers.Regularizer()(x) == 0.0 and not regularizers.Regularizer().gradient(x).any()


def test_orthogonal_by_hand():
    # Orthogonal rows: no penalty. Two parallel rows: |cos| = 1 for the one pair, P = factor * 0.5 * 2 / 1.
    assert OrthogonalRegularizer(0.3)(np.array([[1.0, 0.0], [0.0, 2.0]])) == 0.0
    assert OrthogonalRegularizer(0.3)(np.array([[1.0, 2.0], [2.0, 4.0]])) == pytest.approx(0.3)
    # The rows (1, 0), (2, 4) have cos = 1 / sqrt(5); the columns (1, 2), (0, 4) cos = 2 / sqrt(5).
    x = np.array([[1.0, 0.0], [2.0, 4.0]])
    assert OrthogonalRegularizer(1.0, mode="rows")(x) == pytest.approx(1 / np.sqrt(5))
    assert OrthogonalRegularizer(1.0, mode="columns")(x) == pytest.approx(2 / np.sqrt(5))
    assert OrthogonalRegularizer(1.0, mode="rows")(x.T) == pytest.approx(2 / np.sqrt(5))


GRADIENT_CASES = [
    pytest.param(L1(0.03), (4, 3), id="l1"),
    pytest.param(L2(0.02), (4, 3), id="l2"),
    pytest.param(L1L2(0.01, 0.05), (2, 3, 3), id="l1l2"),
    pytest.param(OrthogonalRegularizer(0.1), (5, 3), id="orthogonal-rows"),
    pytest.param(OrthogonalRegularizer(0.2, mode="columns"), (3, 4), id="orthogonal-columns"),
]


@pytest.mark.parametrize("reg, shape", GRADIENT_CASES)
def test_gradient_is_the_derivative(reg, shape):
    x = np.random.default_rng(3).normal(0, 1, shape)  # float64, no entry at a kink
    np.testing.assert_allclose(reg.gradient(x), central_difference(reg, x), rtol=1e-6, atol=1e-9)


def test_orthogonal_gradient_where_the_norm_is_clipped():
    # A row shorter than 1e-7 is divided by 1e-7 (not its norm): there the penalty is linear in the row.
    x = np.random.default_rng(4).normal(0, 1, (4, 3))
    x[1] *= 1e-9
    reg = OrthogonalRegularizer(0.5)
    expected = central_difference(reg, x, h=1e-11)
    np.testing.assert_allclose(reg.gradient(x)[1], expected[1], rtol=1e-4)
    assert np.abs(reg.gradient(x)[1]).max() > 1e5  # 1 / 1e-7 scale: the clipped branch, not the radial one


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_penalty_and_gradient_keep_the_dtype(dtype):
    x = np.random.default_rng(5).normal(0, 1, (4, 3)).astype(dtype)
    for reg in (L1(), L2(), L1L2(0.1, 0.1), OrthogonalRegularizer()):
        assert isinstance(reg(x), float)
        assert reg.gradient(x).dtype == dtype and reg.gradient(x).shape == x.shape


@pytest.mark.parametrize("name", sorted(KERAS["regularizers"]))
def test_values_and_gradients_are_keras(name):
    case = KERAS["regularizers"][name]
    reg = regularizers.deserialize({"class_name": case["class_name"], "config": case["config"]})
    x = np.array(case["x"], dtype="float32")
    assert reg(x) == pytest.approx(case["value"], rel=1e-5)
    np.testing.assert_allclose(reg.gradient(x), np.array(case["gradient"], dtype="float32"), rtol=1e-5, atol=1e-7)


def test_activity_penalty_is_keras_divided_by_the_batch():
    """The contract the training loop follows: loss += activity_regularizer(output) / batch size, as Keras."""
    case = KERAS["activity"]
    y = np.array(case["y"], dtype="float32")
    layer = layers.Dense(3, kernel_initializer="ones", activity_regularizer=L2(case["l2"]))
    np.testing.assert_allclose(layer(np.array(case["x"], dtype="float32")), y, rtol=1e-6)
    assert layer.activity_regularizer(y) / y.shape[0] == pytest.approx(case["loss"], rel=1e-6)


# ---------------------------------------------------------------------------------- names, configs


def test_defaults_and_aliases():
    assert (L1().l1, L2().l2, L1L2().get_config(), OrthogonalRegularizer().get_config()) == (
        0.01, 0.01, {"l1": 0.0, "l2": 0.0}, {"factor": 0.01, "mode": "rows"})
    assert L1(None).l1 == 0.01 and L1L2(None, None).get_config() == {"l1": 0.0, "l2": 0.0}  # None: the default
    assert (regularizers.l1, regularizers.l2, regularizers.l1_l2, regularizers.orthogonal_regularizer) == (
        L1, L2, L1L2, OrthogonalRegularizer)


@pytest.mark.parametrize("identifier, expected", [
    ("l1", L1), ("L1", L1), ("l2", L2), ("l1l2", L1L2), ("L1L2", L1L2),
    ("orthogonal_regularizer", OrthogonalRegularizer), ("regularizer", regularizers.Regularizer),
    (L2, L2), ({"class_name": "L2", "config": {"l2": 0.5}}, L2),
])
def test_get(identifier, expected):
    assert type(regularizers.get(identifier)) is expected


def test_get_passes_none_and_instances_through():
    reg = L1(0.2)
    assert regularizers.get(None) is None and regularizers.get(reg) is reg
    assert regularizers.serialize(None) is None


@pytest.mark.parametrize("key", sorted(k for k in KERAS["serialized"] if not k.startswith(
    ("MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"))))
def test_serialize_writes_what_keras_writes(key):
    theirs = KERAS["serialized"][key]
    reg = regularizers.deserialize(theirs)
    assert regularizers.serialize(reg) == theirs
    assert type(reg).from_config(reg.get_config()).get_config() == reg.get_config()
    assert json.loads(json.dumps(regularizers.serialize(reg))) == theirs


REGULARIZER_ERRORS = [
    pytest.param(lambda: L1(-0.1), ValueError, r"L1: argument `l1` expected a finite number >= 0, received -0\.1",
                 id="negative"),
    pytest.param(lambda: L2(float("inf")), ValueError, r"L2: argument `l2` expected a finite number >= 0, received inf",
                 id="infinite"),
    pytest.param(lambda: L1L2(l2="0.1"), TypeError,
                 r"L1L2: argument `l2` expected a non-negative number, received '0\.1' of type str", id="string"),
    pytest.param(lambda: L1(True), TypeError, r"L1: argument `l1` expected a non-negative number, received True",
                 id="bool"),
    pytest.param(lambda: OrthogonalRegularizer(mode="diagonal"), ValueError,
                 r'OrthogonalRegularizer: argument `mode` expected one of \("rows", "columns"\), received \'diagonal\'',
                 id="orthogonal-mode"),
    pytest.param(lambda: OrthogonalRegularizer()(np.ones((2, 2, 2))), ValueError,
                 r"OrthogonalRegularizer: inputs must have rank 2, received shape \(2, 2, 2\)", id="orthogonal-rank"),
    pytest.param(lambda: OrthogonalRegularizer(mode="columns").gradient(np.ones((4, 1))), ValueError,
                 r'OrthogonalRegularizer: mode="columns" needs at least 2 columns to compare, received shape \(4, 1\)',
                 id="orthogonal-one-column"),
    pytest.param(lambda: regularizers.get("l1_l2"), ValueError,
                 r"regularizers: unknown regularizer 'l1_l2', expected one of \['L1', 'L1L2', .*'l1l2'", id="name"),
    pytest.param(lambda: regularizers.get(0.01), TypeError,
                 r"regularizers\.get: expected None, a name, a serialized dict or a Regularizer, received 0\.01 of "
                 r"type float", id="number"),
    pytest.param(lambda: regularizers.deserialize({"config": {}}), ValueError,
                 r"regularizers\.deserialize: expected a dict with a string 'class_name'", id="no-class-name"),
    pytest.param(lambda: regularizers.deserialize({"module": "mypackage", "class_name": "L2", "config": {}}),
                 ValueError, r"'L2' from module 'mypackage' is not a built-in regularizer", id="foreign-module"),
    pytest.param(lambda: regularizers.deserialize({"class_name": "L2", "config": {"l1": 0.1}}), TypeError,
                 r"L2\.from_config: unexpected config keys \['l1'\], expected a subset of \['l2'\]", id="config-key"),
    pytest.param(lambda: regularizers.serialize("l2"), TypeError,
                 r"regularizers\.serialize: expected a Regularizer or None, received 'l2' of type str", id="serialize"),
]


@pytest.mark.parametrize("factory, error, message", REGULARIZER_ERRORS)
def test_refused_with_a_message(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


# -------------------------------------------------------------------------------- layer arguments
# (class, constructor arguments, {argument prefix: parameter name}, input shape)
LAYERS = [
    pytest.param(layers.Dense, (3,), {"kernel": "kernel", "bias": "bias"}, (2, 4), id="Dense"),
    pytest.param(layers.Conv2D, (2, 3), {"kernel": "kernel", "bias": "bias"}, (1, 5, 5, 2), id="Conv2D"),
    pytest.param(layers.Conv2DTranspose, (2, 3), {"kernel": "kernel", "bias": "bias"}, (1, 4, 4, 2),
                 id="Conv2DTranspose"),
    pytest.param(layers.DepthwiseConv2D, (3,), {"depthwise": "kernel", "bias": "bias"}, (1, 5, 5, 2),
                 id="DepthwiseConv2D"),
    pytest.param(layers.SeparableConv2D, (2, 3),
                 {"depthwise": "depthwise_kernel", "pointwise": "pointwise_kernel", "bias": "bias"}, (1, 5, 5, 2),
                 id="SeparableConv2D"),
    pytest.param(layers.BatchNormalization, (), {"gamma": "gamma", "beta": "beta"}, (2, 3, 3, 2),
                 id="BatchNormalization"),
    pytest.param(layers.LayerNormalization, (), {"gamma": "gamma", "beta": "beta"}, (2, 6), id="LayerNormalization"),
]


@pytest.mark.parametrize("cls, args, params, shape", LAYERS)
def test_layer_attaches_regularizers_and_constraints_to_its_parameters(cls, args, params, shape):
    # A string, Keras's serialized dict and an object, one per parameter in turn.
    regs = ["l2", {"module": "keras.regularizers", "class_name": "L1", "config": {"l1": 0.5},
                   "registered_name": None}, L1L2(0.1, 0.2)]
    cons = [constraints.MaxNorm(3, axis=[0]), "non_neg", {"class_name": "UnitNorm", "config": {"axis": 0}}]
    kwargs = {}
    for i, prefix in enumerate(params):
        kwargs[f"{prefix}_regularizer"] = regs[i]
        kwargs[f"{prefix}_constraint"] = cons[i]
    layer = cls(*args, activity_regularizer="l1", **kwargs)
    layer(np.ones(shape, "float32"))
    by_name = {p.name.rsplit("/", 1)[1]: p for p in layer.parameters}
    for i, (prefix, param) in enumerate(params.items()):
        assert by_name[param].regularizer is getattr(layer, f"{prefix}_regularizer")
        assert regularizers.serialize(by_name[param].regularizer) == regularizers.serialize(regularizers.get(regs[i]))
        assert constraints.serialize(by_name[param].constraint) == constraints.serialize(constraints.get(cons[i]))
    assert all(p.regularizer is None and p.constraint is None for p in layer.parameters if not p.trainable)
    config = layer.get_config()
    assert config["activity_regularizer"] == regularizers.serialize(L1())
    rebuilt = cls.from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config and type(rebuilt.activity_regularizer) is L1


@pytest.mark.parametrize("cls, args, params, shape", LAYERS)
def test_layer_without_penalties_writes_none(cls, args, params, shape):
    layer = cls(*args)
    layer(np.ones(shape, "float32"))
    config = layer.get_config()
    for prefix in params:
        assert config[f"{prefix}_regularizer"] is None and config[f"{prefix}_constraint"] is None
    assert all(p.regularizer is None and p.constraint is None for p in layer.parameters)
    assert layer.activity_regularizer is None and cls.from_config(config).get_config() == config


def test_every_layer_takes_an_activity_regularizer():
    for layer in (layers.MaxPooling2D(activity_regularizer=L2(0.3)), layers.Flatten(activity_regularizer="l1"),
                  layers.Add(activity_regularizer=L1(0.2)), layers.ReLU(activity_regularizer="l2")):
        config = layer.get_config()
        assert config["activity_regularizer"]["module"] == "keras.regularizers"
        assert type(layer).from_config(config).get_config() == config
    assert "activity_regularizer" not in layers.MaxPooling2D().get_config()  # as Keras: written only when set


LAYER_ERRORS = [
    pytest.param(lambda: layers.Dense(3, kernel_regularizer="l3"), ValueError,
                 r'Dense "[a-z0-9_]+": argument "kernel_regularizer" is not valid: regularizers: unknown regularizer '
                 r"'l3', expected one of", id="dense-regularizer-name"),
    pytest.param(lambda: layers.Conv2D(2, 3, kernel_constraint=5), TypeError,
                 r'Conv2D "[a-z0-9_]+": argument "kernel_constraint" is not valid: constraints\.get: expected None, '
                 r"a name, a serialized dict or a Constraint, received 5 of type int", id="conv-constraint-int"),
    pytest.param(lambda: layers.SeparableConv2D(2, 3, pointwise_regularizer=0.5), TypeError,
                 r'SeparableConv2D "[a-z0-9_]+": argument "pointwise_regularizer" is not valid: regularizers\.get: '
                 r"expected None, a name, a serialized dict or a Regularizer, received 0\.5", id="separable-number"),
    pytest.param(lambda: layers.DepthwiseConv2D(3, depthwise_constraint={"class_name": "MaxNorm",
                                                                          "config": {"max_value": -1}}), ValueError,
                 r'DepthwiseConv2D "[a-z0-9_]+": argument "depthwise_constraint" is not valid: MaxNorm: argument '
                 r"`max_value` expected a finite number >= 0, received -1", id="depthwise-bad-config"),
    pytest.param(lambda: layers.Conv2DTranspose(2, 3, bias_regularizer={"class_name": "L2", "config": {"l3": 1}}),
                 TypeError, r'Conv2DTranspose "[a-z0-9_]+": argument "bias_regularizer" is not valid: L2\.from_config: '
                 r"unexpected config keys \['l3'\]", id="transpose-config-key"),
    pytest.param(lambda: layers.BatchNormalization(gamma_regularizer=0.01), TypeError,
                 r'BatchNormalization "[a-z0-9_]+": argument "gamma_regularizer" is not valid: regularizers\.get: '
                 r"expected None, a name, a serialized dict or a Regularizer, received 0\.01", id="bn-number"),
    pytest.param(lambda: layers.LayerNormalization(beta_constraint="positive"), ValueError,
                 r'LayerNormalization "[a-z0-9_]+": argument "beta_constraint" is not valid: constraints: unknown '
                 r"constraint 'positive'", id="ln-constraint-name"),
    pytest.param(lambda: layers.MaxPooling2D(activity_regularizer="l5"), ValueError,
                 r'MaxPooling2D "[a-z0-9_]+": argument "activity_regularizer" is not valid: regularizers: unknown '
                 r"regularizer 'l5'", id="pooling-activity"),
]


@pytest.mark.parametrize("factory, error, message", LAYER_ERRORS)
def test_layer_refuses_bad_penalties(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


# ----------------------------------------------------------------------------------- Keras mapping


@pytest.mark.parametrize("name", sorted(KERAS["layers"]))
def test_keras_layer_configs_carry_penalties_both_ways(name):
    """A Keras layer config with regularizers and constraints: read into convscope's objects on the right
    parameters, and written back as Keras wrote them."""
    case = KERAS["layers"][name]
    spec = {"module": "keras.layers", "class_name": case["class_name"], "config": case["config"],
            "registered_name": None}
    layer = keras_config.layer_from_config(spec, "keras_values.json")
    theirs = case["config"]
    for key, value in theirs.items():
        if key.endswith("_regularizer") or key.endswith("_constraint"):
            module = regularizers if key.endswith("_regularizer") else constraints
            assert module.serialize(getattr(layer, key)) == value, key
    written = keras_config.keras_layer_config(layer)["config"]
    penalties = {k for k in theirs if k.endswith(("_regularizer", "_constraint"))}
    assert penalties <= set(written), f"not written back: {sorted(penalties - set(written))}"
    assert {k: written[k] for k in penalties} == {k: theirs[k] for k in penalties}
    assert {k: v for k, v in written.items() if k != "dtype"} == {k: theirs[k] for k in written if k != "dtype"}


def test_keras_import_attaches_the_penalties_to_the_parameters():
    case = KERAS["layers"]["dense"]
    layer = keras_config.layer_from_config({"class_name": "Dense", "config": case["config"]}, "keras_values.json")
    layer.build((None, 4))
    assert type(layer.kernel.regularizer) is L2 and layer.kernel.regularizer.l2 == 0.01
    assert type(layer.bias.constraint) is constraints.NonNeg
    assert type(layer.activity_regularizer) is L1L2
