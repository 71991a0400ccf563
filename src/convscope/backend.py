"""The one door to array math: the array namespace, the float type and randomness.

Every module of convscope computes with ``backend.xp`` rather than importing
NumPy directly, so that a NumPy-compatible GPU array library can stand in for it
later by changing this file alone.

* ``floatx()`` is the dtype of every new parameter and computation: ``"float32"``
  by default, ``"float64"`` on request (gradient checks need it).
* ``global_rng()`` is the generator that draws initial weights, dropout masks and
  shuffles when no explicit seed is given; ``set_seed`` makes it reproducible and
  ``get_rng_state`` / ``set_rng_state`` let a checkpoint resume the exact stream.
"""

from __future__ import annotations

import numpy as np

xp = np

_FLOAT_TYPES = ("float32", "float64")
_floatx = "float32"
_rng = np.random.default_rng()


def floatx() -> str:
    """The default float type's name: ``"float32"`` or ``"float64"``."""
    return _floatx


def set_floatx(name: str) -> None:
    """Make ``name`` (``"float32"`` or ``"float64"``) the type of new parameters and inputs."""
    global _floatx
    if name not in _FLOAT_TYPES:
        raise ValueError(f"floatx: expected one of {_FLOAT_TYPES}, received {name!r}")
    _floatx = name


def cast(x, dtype: str | None = None):
    """``x`` as an array of ``dtype`` (default ``floatx()``); no copy when it already is one."""
    return xp.asarray(x, dtype=dtype or _floatx)


def global_rng() -> np.random.Generator:
    """The process-wide generator used whenever no seed is given."""
    return _rng


def set_seed(seed: int) -> None:
    """Restart the global generator from ``seed``."""
    global _rng
    _rng = np.random.default_rng(seed)


def rng_for(seed: int | None) -> np.random.Generator:
    """A generator of its own for an explicit ``seed``, else the global one."""
    return _rng if seed is None else np.random.default_rng(seed)


def get_rng_state() -> dict:
    """The global generator's state as plain JSON-able data (for checkpoints)."""
    return _rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Continue the global generator from a state returned by ``get_rng_state``."""
    global _rng
    bitgen = np.random.PCG64()
    bitgen.state = state
    _rng = np.random.Generator(bitgen)
