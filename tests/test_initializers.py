import json
import math

import numpy as np
import pytest

from convscope import backend, initializers
from convscope.initializers import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Identity,
    LecunNormal,
    LecunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
)

KERNEL = (3, 3, 32, 64)
FAN_IN, FAN_OUT = 3 * 3 * 32, 3 * 3 * 64
FAN_AVG = (FAN_IN + FAN_OUT) / 2
TRUNC = 0.87962566103423978  # std of a standard normal cut at +-2


@pytest.fixture
def restore_backend():
    state = backend.get_rng_state()
    yield
    backend.set_floatx("float32")
    backend.set_rng_state(state)


# (initializer, expected std, bound on |w - mean| or None); all have mean 0 except noted.
STATISTICS = {
    "random_normal": (RandomNormal(seed=1), 0.05, None),
    "random_uniform": (RandomUniform(seed=1), 0.1 / math.sqrt(12), 0.05),
    "truncated_normal": (TruncatedNormal(seed=1), 0.05 * TRUNC, 2 * 0.05),
    "glorot_uniform": (GlorotUniform(seed=1), math.sqrt(1 / FAN_AVG), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    "glorot_normal": (GlorotNormal(seed=1), math.sqrt(1 / FAN_AVG), 2 * math.sqrt(1 / FAN_AVG) / TRUNC),
    "he_normal": (HeNormal(seed=1), math.sqrt(2 / FAN_IN), 2 * math.sqrt(2 / FAN_IN) / TRUNC),
    "he_uniform": (HeUniform(seed=1), math.sqrt(2 / FAN_IN), math.sqrt(6 / FAN_IN)),
    "lecun_normal": (LecunNormal(seed=1), math.sqrt(1 / FAN_IN), 2 * math.sqrt(1 / FAN_IN) / TRUNC),
    "lecun_uniform": (LecunUniform(seed=1), math.sqrt(1 / FAN_IN), math.sqrt(3 / FAN_IN)),
    "vs_untruncated_fan_out": (
        VarianceScaling(0.5, "fan_out", "untruncated_normal", seed=1),
        math.sqrt(0.5 / FAN_OUT),
        None,
    ),
    "vs_uniform_fan_avg": (
        VarianceScaling(3.0, "fan_avg", "uniform", seed=1),
        math.sqrt(3.0 / FAN_AVG),
        math.sqrt(9.0 / FAN_AVG),
    ),
    # Unit columns of a (288, 64) matrix: mean square 1 / 288.
    "orthogonal": (Orthogonal(seed=1), math.sqrt(1 / FAN_IN), None),
}


@pytest.mark.parametrize("name", STATISTICS)
def test_statistics_match_formula(name):
    init, std, bound = STATISTICS[name]
    w = init(KERNEL)
    assert w.shape == KERNEL and w.dtype == np.float32
    assert abs(w.std() - std) < 0.03 * std
    assert abs(w.mean()) < 0.03 * std
    if bound is not None:
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        # The samples reach close to the bound: it is the right one, not a tighter one.
        assert np.abs(w).max() > 0.95 * bound


def test_variance_scaling_truncates_at_two_corrected_stddevs():
    # Keras cuts at 2 * sqrt(scale / n) / 0.8796, beyond 2 * sqrt(scale / n).
    w = HeNormal(seed=3)(KERNEL)
    assert np.abs(w).max() > 2 * math.sqrt(2 / FAN_IN) * 1.05


def test_truncated_normal_mean_and_bound():
    w = TruncatedNormal(mean=1.0, stddev=0.1, seed=0)((20000,))
    assert abs(w.mean() - 1.0) < 0.003
    assert np.all(np.abs(w - 1.0) <= 0.2 + 1e-6)


def test_constant_initializers():
    assert np.array_equal(Zeros()((2, 3)), np.zeros((2, 3)))
    assert np.array_equal(Ones()((4,)), np.ones(4))
    c = Constant(2.5)((2, 2), dtype="float64")
    assert c.dtype == np.float64 and np.all(c == 2.5)
    assert np.all(Constant()((3,)) == 0.0)


@pytest.mark.parametrize(
    "shape, fans",
    [((), (1, 1)), ((5,), (5, 5)), ((3, 7), (3, 7)), ((5, 4, 8), (20, 40)), (KERNEL, (FAN_IN, FAN_OUT))],
)
def test_compute_fans(shape, fans):
    assert initializers.compute_fans(shape) == fans


@pytest.mark.parametrize(
    "mode, n", [("fan_in", FAN_IN), ("fan_out", FAN_OUT), ("fan_avg", FAN_AVG)]
)
def test_variance_scaling_mode_picks_fan(mode, n):
    assert VarianceScaling(2.0, mode).variance(KERNEL) == pytest.approx(2.0 / n)


def test_variance_scaling_normal_means_truncated():
    assert VarianceScaling(distribution="Normal").distribution == "truncated_normal"


def test_seeded_initializer_repeats_itself():
    init = GlorotUniform(seed=7)
    a, b = init((10, 10)), init((10, 10))
    assert np.array_equal(a, b)
    assert np.array_equal(a, GlorotUniform(seed=7)((10, 10)))
    assert not np.array_equal(a, GlorotUniform(seed=8)((10, 10)))


def test_unseeded_initializer_follows_global_generator(restore_backend):
    init = RandomNormal()
    assert not np.array_equal(init((10,)), init((10,)))
    backend.set_seed(3)
    a = init((10,))
    backend.set_seed(3)
    assert np.array_equal(a, init((10,)))


def test_dtype(restore_backend):
    assert RandomNormal(seed=0)((3,), dtype="float64").dtype == np.float64
    backend.set_floatx("float64")
    for init in (Zeros(), Ones(), Constant(1), HeNormal(seed=0), Orthogonal(seed=0), Identity()):
        assert init((4, 4)).dtype == np.float64


def test_orthogonal_tall_has_orthonormal_columns():
    w = Orthogonal(seed=0)(KERNEL, dtype="float64").reshape(-1, KERNEL[-1])
    assert np.allclose(w.T @ w, np.eye(64), atol=1e-10)


def test_orthogonal_wide_has_orthonormal_rows_scaled_by_gain():
    w = Orthogonal(gain=2.0, seed=0)((4, 6), dtype="float64")
    assert np.allclose(w @ w.T, 4.0 * np.eye(4), atol=1e-10)


def test_orthogonal_needs_rank_two():
    with pytest.raises(ValueError, match=r"Orthogonal: argument `shape` expected rank >= 2, received \(5,\)"):
        Orthogonal()((5,))


def test_identity():
    assert np.array_equal(Identity()((3, 3)), np.eye(3))
    assert np.array_equal(Identity(gain=0.5)((2, 4)), 0.5 * np.eye(2, 4))
    with pytest.raises(ValueError, match=r"Identity: argument `shape` expected a 2-D shape, received \(3, 3, 3\)"):
        Identity()((3, 3, 3))


KERAS_NAMES = {
    "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones, "constant": Constant,
    "random_normal": RandomNormal, "normal": RandomNormal, "random_uniform": RandomUniform,
    "uniform": RandomUniform, "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal, "OrthogonalInitializer": Orthogonal, "identity": Identity,
    "IdentityInitializer": Identity,
}  # fmt: skip


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_get_keras_name(name):
    cls = KERAS_NAMES[name]
    assert type(initializers.get(name)) is cls
    assert type(initializers.get(cls.__name__)) is cls


CONFIGURED = [
    Zeros(), Ones(), Constant(3.0), RandomNormal(0.5, 0.2, seed=1), RandomUniform(-1.0, 2.0, seed=2),
    TruncatedNormal(0.1, 0.3, seed=3), VarianceScaling(2.0, "fan_avg", "uniform", seed=4),
    GlorotUniform(seed=5), GlorotNormal(seed=6), HeNormal(seed=7), HeUniform(seed=8),
    LecunNormal(seed=9), LecunUniform(seed=10), Orthogonal(gain=1.5, seed=11), Identity(gain=2.0),
]  # fmt: skip


@pytest.mark.parametrize("init", CONFIGURED, ids=lambda i: type(i).__name__)
def test_serialize_round_trip(init):
    config = json.loads(json.dumps(initializers.serialize(init)))
    assert config["class_name"] == type(init).__name__
    again = initializers.get(config)
    assert type(again) is type(init)
    assert again.get_config() == init.get_config()
    assert type(init).from_config(init.get_config()).get_config() == init.get_config()
    assert np.array_equal(again((6, 6)), init((6, 6)))


def test_get_passes_instances_and_classes_through():
    init = HeNormal(seed=1)
    assert initializers.get(init) is init
    assert type(initializers.get(HeNormal)) is HeNormal


def test_get_unknown_name():
    with pytest.raises(ValueError, match=r"`identifier`.*'glorot_uniform'.*received 'glorot_unifrom'"):
        initializers.get("glorot_unifrom")
    with pytest.raises(ValueError, match=r"received 'Nope'"):
        initializers.get({"class_name": "Nope", "config": {}})


def test_get_bad_identifier_type():
    with pytest.raises(TypeError, match=r"initializers.get: argument `identifier`.*received 42 of type int"):
        initializers.get(42)
    with pytest.raises(ValueError, match=r"'class_name'"):
        initializers.get({"config": {}})


def test_from_config_unexpected_key():
    with pytest.raises(TypeError, match=r"GlorotUniform.from_config: unexpected config keys \['scale'\]"):
        GlorotUniform.from_config({"scale": 2.0, "seed": None})


@pytest.mark.parametrize(
    "make, error, pattern",
    [
        (lambda: RandomNormal(stddev=0), ValueError, r"RandomNormal: argument `stddev` expected a number > 0, received 0"),
        (lambda: TruncatedNormal(stddev=-1.0), ValueError, r"TruncatedNormal: argument `stddev` expected a number > 0"),
        (lambda: RandomNormal(mean="0"), TypeError, r"RandomNormal: argument `mean` expected a real number, received '0'"),
        (lambda: RandomNormal(mean=float("nan")), ValueError, r"argument `mean` expected a finite number"),
        (lambda: RandomUniform(1.0, 1.0), ValueError, r"RandomUniform: argument `maxval` expected a number > minval"),
        (lambda: VarianceScaling(scale=0.0), ValueError, r"VarianceScaling: argument `scale` expected a number > 0, received 0.0"),
        (lambda: VarianceScaling(mode="fan"), ValueError, r"VarianceScaling: argument `mode` expected one of \('fan_in', 'fan_out', 'fan_avg'\), received 'fan'"),
        (lambda: VarianceScaling(distribution="gaussian"), ValueError, r"VarianceScaling: argument `distribution` expected one of .*'uniform'.*received 'gaussian'"),
        (lambda: HeNormal(seed=1.5), TypeError, r"HeNormal: argument `seed` expected an int >= 0 or None, received 1.5"),
        (lambda: Orthogonal(seed=-1), ValueError, r"Orthogonal: argument `seed` expected an int >= 0 or None, received -1"),
        (lambda: Constant([1, 2]), TypeError, r"Constant: argument `value` expected a real number"),
        (lambda: Zeros()("3"), ValueError, r"Zeros: argument `shape` expected non-negative ints, received '3'"),
    ],
)  # fmt: skip
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("cls", [type(i) for i in CONFIGURED])
def test_docstring_states_formula(cls):
    assert cls.__doc__ and any(sym in cls.__doc__ for sym in ("=", "~"))
