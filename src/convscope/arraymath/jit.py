"""Compiled loops (Numba) for the memory-bound glue around the matrix products.

Optional: with Numba installed (``pip install convscope[fast]``) im2col, col2im
and max pooling run as compiled loops; without it (or with
``CONVSCOPE_JIT=0``, or ``set_enabled(False)``) the NumPy versions in ``im2col.py``
and ``pool.py`` run. Both paths compute the same numbers and are tested against the
loop references in ``reference.py``. These loops *are* the textbook loops; they run
fast only because Numba compiles them. Arrays must be NumPy arrays (the kernels are
CPU code), so they switch off when ``backend.xp`` is another array library.

Shapes as in ``im2col.py``: padded input (N, Hp, Wp, C); columns (N, OH, OW, KH, KW, C).

Numba keeps each compiled kernel on disk (``cache=True``: ``__pycache__`` beside this file, or
``NUMBA_CACHE_DIR``), so only a process that finds no usable copy compiles: the first run after
installing or changing this file (2-3 s for all four on the 2 shared cores where it was measured,
plus about 1 s of Numba setting itself up). That process says so once on standard error, before
compiling, and ``compile_seconds()`` tells how long it took (``convscope train`` reports it apart
from the training time).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from .. import backend

try:
    import numba
except ImportError:
    numba = None

_enabled = numba is not None and os.environ.get("CONVSCOPE_JIT", "1") != "0"


def enabled() -> bool:
    """True when the compiled kernels are in use."""
    return _enabled and backend.xp is np


def set_enabled(flag: bool) -> None:
    """Switch the compiled kernels on (needs Numba) or off (the NumPy path)."""
    global _enabled
    if flag and numba is None:
        raise ImportError("The compiled kernels need Numba: pip install 'convscope[fast]'")
    _enabled = bool(flag)


def compile_seconds() -> float:
    """Seconds this process has spent compiling the kernels: 0.0 when every one came from Numba's disk cache
    (or without Numba)."""
    return 0.0 if numba is None else _compiling.seconds


COMPILE_NOTICE = "Compiling kernels (first run only, a few seconds)"


def _announce(message: str) -> None:
    """``message`` on standard error, through tqdm when it is installed so that a live progress bar is cleared
    around the line and drawn again below it."""
    try:
        from tqdm import tqdm
    except ImportError:
        print(message, file=sys.stderr, flush=True)
    else:
        tqdm.write(message, file=sys.stderr)


if numba is not None:
    from numba.core import event

    class _CompileWatch(event.Listener):
        """Listens to Numba's "numba:compile" events, which Numba sends only when it compiles (not when it loads
        a kernel from its cache): announces the first of this module's, and adds up their seconds."""

        def __init__(self):
            self.seconds, self.announced, self._started = 0.0, False, 0.0

        def on_start(self, ev):
            if _ours(ev):
                if not self.announced:
                    self.announced = True
                    _announce(COMPILE_NOTICE)
                self._started = time.perf_counter()

        def on_end(self, ev):
            if _ours(ev):
                self.seconds += time.perf_counter() - self._started

    def _ours(ev) -> bool:
        # Other libraries' Numba functions compile through the same events.
        return ev.data["dispatcher"].py_func.__module__ == __name__

    _compiling = _CompileWatch()
    event.register("numba:compile", _compiling)

    # Serial loops: they are bound by memory, not arithmetic, and parallel ones (OpenMP) spin-wait
    # between calls and steal the cores from the BLAS matrix products that follow them.
    _jit = numba.njit(cache=True)

    @_jit
    def im2col(x_padded, cols, strides, dilation):
        """cols[n, oh, ow, i, j, c] = x_padded[n, oh*sh + i*dh, ow*sw + j*dw, c]."""
        n_, oh_, ow_, kh, kw, c_ = cols.shape
        for n in range(n_):
            for oh in range(oh_):
                for ow in range(ow_):
                    for i in range(kh):
                        row = oh * strides[0] + i * dilation[0]
                        for j in range(kw):
                            col = ow * strides[1] + j * dilation[1]
                            for c in range(c_):
                                cols[n, oh, ow, i, j, c] = x_padded[n, row, col, c]

    @_jit
    def col2im(dcols, dx_padded, strides, dilation):
        """dx_padded[n, oh*sh + i*dh, ow*sw + j*dw, c] += dcols[n, oh, ow, i, j, c] (dx_padded zeroed by the caller)."""
        n_, oh_, ow_, kh, kw, c_ = dcols.shape
        for n in range(n_):
            for oh in range(oh_):
                for ow in range(ow_):
                    for i in range(kh):
                        row = oh * strides[0] + i * dilation[0]
                        for j in range(kw):
                            col = ow * strides[1] + j * dilation[1]
                            for c in range(c_):
                                dx_padded[n, row, col, c] += dcols[n, oh, ow, i, j, c]

    @_jit
    def max_pool(x_padded, y, argmax, pool_size, strides):
        """y = max over each window, argmax = the first maximum's row-major index in the window."""
        n_, oh_, ow_, c_ = y.shape
        for n in range(n_):
            for oh in range(oh_):
                for ow in range(ow_):
                    r0, c0 = oh * strides[0], ow * strides[1]
                    for c in range(c_):
                        y[n, oh, ow, c] = x_padded[n, r0, c0, c]
                        argmax[n, oh, ow, c] = 0
                    for i in range(pool_size[0]):
                        for j in range(pool_size[1]):
                            k = i * pool_size[1] + j
                            for c in range(c_):
                                v = x_padded[n, r0 + i, c0 + j, c]
                                if v > y[n, oh, ow, c]:
                                    y[n, oh, ow, c] = v
                                    argmax[n, oh, ow, c] = k

    @_jit
    def max_pool_backward(dy, argmax, dx_padded, pool_size, strides):
        """dx_padded[window's arg-max cell] += dy (dx_padded zeroed by the caller)."""
        n_, oh_, ow_, c_ = dy.shape
        for n in range(n_):
            for oh in range(oh_):
                for ow in range(ow_):
                    for i in range(pool_size[0]):
                        for j in range(pool_size[1]):
                            k = i * pool_size[1] + j
                            row, col = oh * strides[0] + i, ow * strides[1] + j
                            # Multiplying by the 0/1 test instead of branching lets the loop vectorize.
                            for c in range(c_):
                                dx_padded[n, row, col, c] += dy[n, oh, ow, c] * (argmax[n, oh, ow, c] == k)
