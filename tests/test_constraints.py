"""convscope.constraints against the formulas and real Keras 3 numbers; names, configs and errors.

Keras's numbers: ``fixtures/regularizers/keras_values.json`` (see ``make_fixtures.py`` there).
The layers' constraint arguments are tested with their regularizer arguments in test_regularizers.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convscope import constraints
from convscope.constraints import MaxNorm, MinMaxNorm, NonNeg, UnitNorm

KERAS = json.loads((Path(__file__).parent / "fixtures" / "regularizers" / "keras_values.json").read_text())
EPSILON = 1e-7  # Keras's backend.epsilon()


def norms(w, axis):
    return np.sqrt((w ** 2).sum(axis=tuple(axis) if isinstance(axis, list) else axis))


def test_by_hand():
    np.testing.assert_allclose(MaxNorm(1.0)(np.array([[3.0], [4.0]])), [[0.6], [0.8]], rtol=1e-6)
    np.testing.assert_allclose(MaxNorm(10.0)(np.array([[3.0], [4.0]])), [[3.0], [4.0]], rtol=1e-6)  # inside: kept
    np.testing.assert_array_equal(NonNeg()(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 2.0])
    np.testing.assert_allclose(UnitNorm()(np.array([[3.0], [4.0]])), [[0.6], [0.8]], rtol=1e-6)
    # MinMaxNorm rate 0.5 moves norm 5 half way to the interval's top 2: norm 3.5.
    np.testing.assert_allclose(MinMaxNorm(1.0, 2.0, rate=0.5)(np.array([[3.0], [4.0]])), [[2.1], [2.8]], rtol=1e-6)
    np.testing.assert_allclose(MinMaxNorm(1.0, 2.0)(np.array([[0.3], [0.4]])), [[0.6], [0.8]], rtol=1e-6)
    w = np.array([1.0, -2.0])
    np.testing.assert_array_equal(constraints.Constraint()(w), w)


def test_exact_formula_with_the_epsilon():
    w = np.array([[3.0, 0.1], [4.0, 0.0]])
    n = norms(w, 0)
    np.testing.assert_array_equal(MaxNorm(2.0)(w), w * (np.clip(n, 0, 2.0) / (EPSILON + n)))
    np.testing.assert_array_equal(UnitNorm()(w), w / (EPSILON + n))
    np.testing.assert_array_equal(MinMaxNorm(0.5, 1.0, 0.3)(w),
                                  w * ((0.3 * np.clip(n, 0.5, 1.0) + 0.7 * n) / (EPSILON + n)))
    assert not MaxNorm(2.0)(np.zeros((3, 2))).any()  # zero vectors stay zero (the epsilon), no NaN


def test_axis_semantics_dense_and_conv():
    rng = np.random.default_rng(0)
    dense = rng.normal(0, 3, (20, 4))  # (in, units): axis=0 caps each unit's incoming vector
    assert norms(MaxNorm(1.5, axis=0)(dense), 0).max() <= 1.5 + 1e-6
    conv = rng.normal(0, 3, (3, 3, 2, 5))  # (kh, kw, in, filters): axis=[0, 1, 2] caps each filter
    capped = MaxNorm(1.5, axis=[0, 1, 2])(conv)
    np.testing.assert_allclose(norms(capped, [0, 1, 2]), np.minimum(norms(conv, [0, 1, 2]), 1.5), rtol=1e-6)
    np.testing.assert_allclose(norms(UnitNorm(axis=(0, 1, 2))(conv), [0, 1, 2]), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.sqrt((UnitNorm(axis=None)(conv) ** 2).sum()), 1.0, rtol=1e-6)
    np.testing.assert_allclose(norms(MaxNorm(1.5, axis=-1)(dense), 1), np.minimum(norms(dense, 1), 1.5), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_projection_keeps_shape_and_dtype_and_is_idempotent(dtype):
    w = np.random.default_rng(1).normal(0, 2, (3, 3, 2, 4)).astype(dtype)
    for constraint in (MaxNorm(1.0, axis=[0, 1, 2]), MinMaxNorm(0.5, 1.0, axis=[0, 1, 2]), NonNeg(),
                       UnitNorm(axis=[0, 1, 2])):
        projected = constraint(w)
        assert projected.shape == w.shape and projected.dtype == dtype
        np.testing.assert_allclose(constraint(projected), projected, rtol=1e-5, atol=1e-6)
    assert not np.shares_memory(MaxNorm()(w), w)  # a new array: the training loop assigns it into the parameter


@pytest.mark.parametrize("name", sorted(KERAS["constraints"]))
def test_projection_is_keras(name):
    case = KERAS["constraints"][name]
    constraint = constraints.deserialize({"class_name": case["class_name"], "config": case["config"]})
    projected = constraint(np.array(case["w"], dtype="float32"))
    np.testing.assert_allclose(projected, np.array(case["projected"], dtype="float32"), rtol=1e-6, atol=1e-7)


def test_defaults_and_aliases():
    assert MaxNorm().get_config() == {"max_value": 2, "axis": 0}
    assert MinMaxNorm().get_config() == {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0}
    assert UnitNorm().get_config() == {"axis": 0} and NonNeg().get_config() == {}
    assert MaxNorm(axis=(0, 1, 2)).get_config()["axis"] == [0, 1, 2]  # JSON has no tuples
    assert (constraints.max_norm, constraints.min_max_norm, constraints.non_neg, constraints.unit_norm) == (
        MaxNorm, MinMaxNorm, NonNeg, UnitNorm)


@pytest.mark.parametrize("identifier, expected", [
    ("max_norm", MaxNorm), ("MaxNorm", MaxNorm), ("min_max_norm", MinMaxNorm), ("non_neg", NonNeg),
    ("NonNeg", NonNeg), ("unit_norm", UnitNorm), ("constraint", constraints.Constraint), (UnitNorm, UnitNorm),
    ({"class_name": "MaxNorm", "config": {"max_value": 3, "axis": [0, 1, 2]}}, MaxNorm),
])
def test_get(identifier, expected):
    assert type(constraints.get(identifier)) is expected


def test_get_passes_none_and_instances_through():
    constraint = NonNeg()
    assert constraints.get(None) is None and constraints.get(constraint) is constraint
    assert constraints.serialize(None) is None


@pytest.mark.parametrize("key", sorted(k for k in KERAS["serialized"] if k.startswith(
    ("MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"))))
def test_serialize_writes_what_keras_writes(key):
    theirs = KERAS["serialized"][key]
    constraint = constraints.deserialize(theirs)
    assert constraints.serialize(constraint) == theirs
    assert type(constraint).from_config(constraint.get_config()).get_config() == constraint.get_config()


CONSTRAINT_ERRORS = [
    pytest.param(lambda: MaxNorm(-1), ValueError, r"MaxNorm: argument `max_value` expected a finite number >= 0, "
                 r"received -1", id="negative"),
    pytest.param(lambda: MaxNorm("2"), TypeError, r"MaxNorm: argument `max_value` expected a number, received '2' of "
                 r"type str", id="string"),
    pytest.param(lambda: UnitNorm(axis="0"), TypeError, r"UnitNorm: argument `axis` expected an int, a non-empty list "
                 r"of ints or None, received '0'", id="axis-string"),
    pytest.param(lambda: UnitNorm(axis=[]), TypeError, r"UnitNorm: argument `axis` expected an int, a non-empty list",
                 id="axis-empty"),
    pytest.param(lambda: MaxNorm(axis=[0, 0]), ValueError, r"MaxNorm: argument `axis` has repeated axes, received "
                 r"\[0, 0\]", id="axis-repeated"),
    pytest.param(lambda: MinMaxNorm(2.0, 1.0), ValueError, r"MinMaxNorm: argument `min_value` must be <= `max_value`, "
                 r"received min_value=2\.0, max_value=1\.0", id="min-above-max"),
    pytest.param(lambda: MinMaxNorm(rate=1.5), ValueError, r"MinMaxNorm: argument `rate` expected a number in "
                 r"\[0, 1\], received 1\.5", id="rate"),
    pytest.param(lambda: MaxNorm(axis=[0, 1, 2])(np.ones((4, 3))), ValueError, r"MaxNorm: axis=\[0, 1, 2\] is out "
                 r"of bounds for a weight of shape \(4, 3\)", id="axis-out-of-bounds"),
    pytest.param(lambda: constraints.get("positive"), ValueError, r"constraints: unknown constraint 'positive', "
                 r"expected one of \['Constraint', 'MaxNorm'", id="name"),
    pytest.param(lambda: constraints.get(lambda w: w), TypeError, r"is a plain callable, which a model file cannot "
                 r"name; subclass convscope\.constraints\.Constraint", id="function"),
    pytest.param(lambda: constraints.deserialize({"module": "mine", "class_name": "NonNeg", "config": {}}),
                 ValueError, r"'NonNeg' from module 'mine' is not a built-in constraint", id="foreign-module"),
    pytest.param(lambda: constraints.deserialize({"class_name": "NonNeg", "config": {"axis": 0}}), TypeError,
                 r"NonNeg\.from_config: unexpected config keys \['axis'\], expected a subset of \[\]", id="config-key"),
]


@pytest.mark.parametrize("factory, error, message", CONSTRAINT_ERRORS)
def test_refused_with_a_message(factory, error, message):
    with pytest.raises(error, match=message):
        factory()
