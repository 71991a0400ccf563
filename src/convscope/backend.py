"""The one door to array math: the array namespace, the float type and randomness.

Every module of convscope computes with ``backend.xp`` rather than importing
NumPy directly, so that a NumPy-compatible GPU array library can stand in for it
later by changing this file alone.

* ``floatx()`` is the dtype of every new parameter and computation: ``"float32"``
  by default, ``"float64"`` on request (gradient checks need it).
* ``keep_freed_memory()`` asks the C allocator to reuse freed memory (see there).
* ``global_rng()`` is the generator that draws initial weights, dropout masks and
  shuffles when no explicit seed is given; ``set_seed`` makes it reproducible and
  ``get_rng_state`` / ``set_rng_state`` let a checkpoint resume the exact stream.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

xp = np

_FLOAT_TYPES = ("float32", "float64")
_floatx = "float32"
_rng = np.random.default_rng()
_allocator_tuned: bool | None = None
_name_counts: dict[str, int] = {}


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


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of handing it back to the OS; True if it did.

    A training step allocates and frees ~100 MB of temporaries. By default glibc
    maps every array over 128 KB fresh from the OS and unmaps it on free, so each
    batch pays a page fault per 4 KB touched: about a third of a step's time for
    the MNIST convnet. Serving arrays up to 32 MB from the heap and not trimming it
    makes freed memory reusable at once (resident memory then stays at its peak).
    Called by the model before its first forward pass; a no-op where the C library
    has no ``mallopt`` (macOS, Windows, musl) or ``CONVSCOPE_MALLOC_TUNING=0``.
    """
    global _allocator_tuned
    if _allocator_tuned is None:
        _allocator_tuned = False
        if xp is np and os.environ.get("CONVSCOPE_MALLOC_TUNING", "1") != "0":
            try:
                mallopt = ctypes.CDLL(None).mallopt
            except (OSError, AttributeError):
                return False
            m_trim_threshold, m_mmap_threshold = -1, -3
            _allocator_tuned = mallopt(m_mmap_threshold, 32 * 2**20) == 1 and mallopt(m_trim_threshold, 2**30) == 1
    return _allocator_tuned


def unique_name(prefix: str) -> str:
    """Keras's automatic names: ``conv2d``, ``conv2d_1``, ``conv2d_2``, ... (counted per session)."""
    count = _name_counts.get(prefix, 0)
    _name_counts[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session() -> None:
    """Start a new session, as ``keras.backend.clear_session``: automatic names count from zero again."""
    _name_counts.clear()


class Tensor(np.ndarray):
    """What an eager call returns (``model(x)``, ``layer(x)``, ``ops.exp(x)``, ``loss(y, p)``): a NumPy array
    that also answers Keras's ``tensor.numpy()``. ``np.asarray`` turns it back into a plain array."""

    def numpy(self) -> np.ndarray:
        return self.view(np.ndarray)


def eager(value):
    """``value`` (an array, a number, or a list / dict of them) with its arrays viewed as ``Tensor``."""
    if isinstance(value, dict):
        return {k: eager(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(eager(v) for v in value)
    return np.asarray(value).view(Tensor)
