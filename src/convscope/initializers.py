"""Weight initializers with Keras 3's names, defaults and formulas.

An initializer is called as ``init(shape, dtype=None)`` and returns an array of
``dtype or backend.floatx()``. A seeded initializer returns the same values on
every call (as in Keras 3); an unseeded one draws from ``backend.global_rng()``,
so ``backend.set_seed`` makes a whole model reproducible.

``get`` turns a Keras name (``"glorot_uniform"``, ``"GlorotUniform"``), a
``{"class_name", "config"}`` dict or an initializer into an initializer;
``serialize`` is its inverse.

Inside ``with placeholders():`` (one thread's block) every initializer here returns zeros and
draws nothing: a model built only to receive the weights a file holds (``load_model``,
``load_keras``) would throw its initial values away, and drawing them is real work for a
hostile file to ask for (an Orthogonal initializer is a QR decomposition, O(rows * cols *
min(rows, cols)) operations: 6.6 s and 787 MB for one 4000 x 4000 kernel).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import math
import numbers
import re

from . import backend, budget

_PLACEHOLDERS = contextvars.ContextVar("convscope_initializer_placeholders", default=False)


@contextlib.contextmanager
def placeholders():
    """Within the block (in this thread only), convscope's initializers check the shape they are given and
    return zeros of it, drawing nothing (``np.zeros``: pages the weights read from a file then replace)."""
    token = _PLACEHOLDERS.set(True)
    try:
        yield
    finally:
        _PLACEHOLDERS.reset(token)

# Std of a standard normal truncated to [-2, 2]; VarianceScaling divides by it
# so that the *truncated* samples have the requested std.
_TRUNCATED_STD = 0.87962566103423978


def compute_fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shape, as Keras's ``compute_fans``.

    Rank 0: (1, 1). Rank 1: (n, n). Rank 2: (shape[0], shape[1]). Higher ranks
    are convolution kernels ``(*spatial, in, out)``: with receptive field
    r = prod(spatial), fan_in = in * r and fan_out = out * r.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _real(owner: str, arg: str, value, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{owner}: argument `{arg}` expected a real number, "
            f"received {value!r} of type {type(value).__name__}"
        )
    if not math.isfinite(value):
        raise ValueError(f"{owner}: argument `{arg}` expected a finite number, received {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{owner}: argument `{arg}` expected a number > 0, received {value!r}")
    return float(value)


def _seed(owner: str, seed) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{owner}: argument `seed` expected an int >= 0 or None, "
            f"received {seed!r} of type {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"{owner}: argument `seed` expected an int >= 0 or None, received {seed!r}")
    return int(seed)


def _choice(owner: str, arg: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{owner}: argument `{arg}` expected one of {allowed}, received {value!r}")
    return value


def _shape(owner: str, shape) -> tuple[int, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{owner}: argument `shape` expected a tuple of ints, received {shape!r}") from None
    if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ValueError(f"{owner}: argument `shape` expected non-negative ints, received {shape!r}")
    return tuple(int(d) for d in dims)


class Initializer:
    """Base class: ``__call__(shape, dtype=None)``, ``get_config()``, ``from_config(config)``.

    convscope's initializers define ``_generate(shape, dtype)`` (the shape checked, the dtype resolved) and,
    where some shapes cannot be filled, ``_check_shape``; one of your own may define ``__call__`` instead, as
    in Keras."""

    def __call__(self, shape, dtype=None):
        shape = _shape(type(self).__name__, shape)
        self._check_shape(shape)
        dtype = dtype or backend.floatx()
        if _PLACEHOLDERS.get():
            return backend.xp.zeros(shape, dtype=dtype)
        return self._generate(shape, dtype)

    def _check_shape(self, shape) -> None:
        """Refuse (ValueError) a shape this initializer cannot fill; every shape by default."""

    def _generate(self, shape, dtype):
        raise NotImplementedError(f"{type(self).__name__} does not implement __call__")

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unexpected = sorted(set(config) - accepted)
        if unexpected:
            raise TypeError(
                f"{cls.__name__}.from_config: unexpected config keys {unexpected}, "
                f"expected a subset of {sorted(accepted)}"
            )
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """w = 0."""

    def _generate(self, shape, dtype):
        return backend.xp.zeros(shape, dtype=dtype)


class Ones(Initializer):
    """w = 1."""

    def _generate(self, shape, dtype):
        return backend.xp.ones(shape, dtype=dtype)


class Constant(Initializer):
    """w = value (a scalar)."""

    def __init__(self, value=0.0):
        self.value = _real("Constant", "value", value)

    def _generate(self, shape, dtype):
        return backend.xp.full(shape, self.value, dtype=dtype)

    def get_config(self) -> dict:
        return {"value": self.value}


class _Random(Initializer):
    """Shared seed handling: one fresh generator per call when seeded, else the global one."""

    def __init__(self, seed=None):
        self.seed = _seed(type(self).__name__, seed)

    def _rng(self):
        return backend.rng_for(self.seed)

    def _draw(self, shape, dtype):
        raise NotImplementedError

    def _generate(self, shape, dtype):
        return backend.xp.asarray(self._draw(shape, self._rng()), dtype=dtype)

    def get_config(self) -> dict:
        return {"seed": self.seed}


def _truncated_normal(rng, shape, mean: float, stddev: float):
    """Normal(mean, stddev) samples, those beyond 2 stddev from the mean redrawn."""
    z = rng.standard_normal(shape)
    outside = backend.xp.abs(z) > 2.0
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = backend.xp.abs(z) > 2.0
    return mean + stddev * z


class RandomNormal(_Random):
    """w ~ Normal(mean, stddev)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = _real("RandomNormal", "mean", mean)
        self.stddev = _real("RandomNormal", "stddev", stddev, positive=True)
        super().__init__(seed)

    def _draw(self, shape, rng):
        return rng.normal(self.mean, self.stddev, shape)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class RandomUniform(_Random):
    """w ~ Uniform[minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval = _real("RandomUniform", "minval", minval)
        self.maxval = _real("RandomUniform", "maxval", maxval)
        if self.minval >= self.maxval:
            raise ValueError(
                f"RandomUniform: argument `maxval` expected a number > minval={self.minval!r}, "
                f"received {maxval!r}"
            )
        super().__init__(seed)

    def _draw(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class TruncatedNormal(_Random):
    """w ~ Normal(mean, stddev) restricted to |w - mean| <= 2 stddev (values beyond redrawn).

    The std of the result is 0.8796 * stddev, as in Keras.
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = _real("TruncatedNormal", "mean", mean)
        self.stddev = _real("TruncatedNormal", "stddev", stddev, positive=True)
        super().__init__(seed)

    def _draw(self, shape, rng):
        return _truncated_normal(rng, shape, self.mean, self.stddev)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class VarianceScaling(_Random):
    """Samples whose variance is scale / n, with n = fan_in, fan_out or (fan_in + fan_out) / 2 (at least 1).

    * ``"truncated_normal"`` (alias ``"normal"``): TruncatedNormal(0, sqrt(scale / n) / 0.8796),
      i.e. cut at 2 * sqrt(scale / n) / 0.8796 so that the std after cutting is sqrt(scale / n);
    * ``"untruncated_normal"``: Normal(0, sqrt(scale / n));
    * ``"uniform"``: Uniform[-limit, limit) with limit = sqrt(3 * scale / n).
    """

    MODES = ("fan_in", "fan_out", "fan_avg")
    DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        owner = type(self).__name__
        self.scale = _real(owner, "scale", scale, positive=True)
        self.mode = _choice(owner, "mode", mode, self.MODES)
        if isinstance(distribution, str):
            distribution = distribution.lower()
        # Keras reads "normal" as the truncated form.
        if distribution == "normal":
            distribution = "truncated_normal"
        self.distribution = _choice(owner, "distribution", distribution, self.DISTRIBUTIONS)
        super().__init__(seed)

    def variance(self, shape) -> float:
        """scale / n for this shape: the variance of the samples."""
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        return self.scale / max(1.0, n)

    def _draw(self, shape, rng):
        variance = self.variance(shape)
        if self.distribution == "truncated_normal":
            return _truncated_normal(rng, shape, 0.0, math.sqrt(variance) / _TRUNCATED_STD)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(variance), shape)
        limit = math.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, shape)

    def get_config(self) -> dict:
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            **super().get_config(),
        }


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling preset: only ``seed`` is configurable."""

    PRESET: dict = {}

    def __init__(self, seed=None):
        super().__init__(**self.PRESET, seed=seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform[-limit, limit) with limit = sqrt(6 / (fan_in + fan_out))."""

    PRESET = {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform"}


class GlorotNormal(_FixedVarianceScaling):
    """w ~ TruncatedNormal(0, sqrt(2 / (fan_in + fan_out)) / 0.8796), cut at 2 of that stddev, so std(w) = sqrt(2 / (fan_in + fan_out))."""

    PRESET = {"scale": 1.0, "mode": "fan_avg", "distribution": "truncated_normal"}


class HeNormal(_FixedVarianceScaling):
    """w ~ TruncatedNormal(0, sqrt(2 / fan_in) / 0.8796), cut at 2 of that stddev, so std(w) = sqrt(2 / fan_in)."""

    PRESET = {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"}


class HeUniform(_FixedVarianceScaling):
    """Uniform[-limit, limit) with limit = sqrt(6 / fan_in)."""

    PRESET = {"scale": 2.0, "mode": "fan_in", "distribution": "uniform"}


class LecunNormal(_FixedVarianceScaling):
    """w ~ TruncatedNormal(0, sqrt(1 / fan_in) / 0.8796), cut at 2 of that stddev, so std(w) = sqrt(1 / fan_in)."""

    PRESET = {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}


class LecunUniform(_FixedVarianceScaling):
    """Uniform[-limit, limit) with limit = sqrt(3 / fan_in)."""

    PRESET = {"scale": 1.0, "mode": "fan_in", "distribution": "uniform"}


class Orthogonal(_Random):
    """w = gain * Q reshaped, Q from the QR decomposition of a standard normal matrix.

    The shape is flattened to (prod(shape[:-1]), shape[-1]); Q has orthonormal
    columns when that matrix is tall, orthonormal rows when it is wide. Q's
    columns are sign-corrected by sign(diag(R)) so that Q is uniformly
    distributed (Haar measure). Needs a shape of rank >= 2.

    The decomposition is computed in float64 and needs about four (max, min) float64 matrices at
    once (the draw, LAPACK's copy, Q and the result): that is checked against the memory budget
    (``convscope.budget``) before anything is drawn.
    """

    def __init__(self, gain=1.0, seed=None):
        self.gain = _real("Orthogonal", "gain", gain)
        super().__init__(seed)

    def _check_shape(self, shape) -> None:
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: argument `shape` expected rank >= 2, received {shape!r}")

    def _draw(self, shape, rng):
        rows, cols = math.prod(shape[:-1]), shape[-1]
        tall = (max(rows, cols), min(rows, cols))
        budget.check(4 * budget.nbytes(tall, 8) + budget.nbytes((tall[1], tall[1]), 8),
                     f"Orthogonal initializer for shape {shape} (a QR decomposition of a {tall[0]} x {tall[1]} matrix)",
                     hint="nothing was drawn")
        q, r = backend.xp.linalg.qr(rng.standard_normal(tall))
        q *= backend.xp.sign(backend.xp.diag(r))  # in place: the matrix may be large
        q *= self.gain
        return (q.T if rows < cols else q).reshape(shape)

    def get_config(self) -> dict:
        return {"gain": self.gain, **super().get_config()}


class Identity(Initializer):
    """w = gain * I for a 2-D shape (rows, cols); ones on the main diagonal when not square."""

    def __init__(self, gain=1.0):
        self.gain = _real("Identity", "gain", gain)

    def _check_shape(self, shape) -> None:
        if len(shape) != 2:
            raise ValueError(f"Identity: argument `shape` expected a 2-D shape, received {shape!r}")

    def _generate(self, shape, dtype):
        return self.gain * backend.xp.eye(*shape, dtype=dtype)

    def get_config(self) -> dict:
        return {"gain": self.gain}


_CLASSES = (
    Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
    GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform,
    Orthogonal, Identity,
)  # fmt: skip


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


_BY_NAME = {cls.__name__: cls for cls in _CLASSES}
_BY_NAME.update({_snake(cls.__name__): cls for cls in _CLASSES})
# Keras's extra names (its aliases and export names).
_BY_NAME.update(
    {
        "uniform": RandomUniform,
        "normal": RandomNormal,
        "one": Ones,
        "zero": Zeros,
        "OrthogonalInitializer": Orthogonal,
        "IdentityInitializer": Identity,
    }
)


def _lookup(name: str) -> type[Initializer]:
    if name not in _BY_NAME:
        raise ValueError(
            f"initializers.get: argument `identifier` expected one of {sorted(_BY_NAME)}, "
            f"received {name!r}"
        )
    return _BY_NAME[name]


def get(identifier) -> Initializer:
    """An initializer from a Keras name, a ``{"class_name", "config"}`` dict, a class or an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if inspect.isclass(identifier) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        if not isinstance(identifier.get("class_name"), str):
            raise ValueError(
                "initializers.get: argument `identifier` expected a dict with a string "
                f"'class_name' and a 'config' dict, received {identifier!r}"
            )
        return _lookup(identifier["class_name"]).from_config(dict(identifier.get("config") or {}))
    raise TypeError(
        "initializers.get: argument `identifier` expected a name, a {'class_name', 'config'} dict "
        f"or an Initializer, received {identifier!r} of type {type(identifier).__name__}"
    )


def serialize(initializer: Initializer) -> dict:
    """``{"class_name": ..., "config": ...}``, which ``get`` turns back into an equal initializer."""
    if not isinstance(initializer, Initializer):
        raise TypeError(
            "initializers.serialize: argument `initializer` expected an Initializer, "
            f"received {initializer!r} of type {type(initializer).__name__}"
        )
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
