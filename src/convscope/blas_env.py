"""OpenBLAS's environment for the ``convscope`` command: the waiting policy ``train`` runs with, and the settings
that slow it down, which the command names but never changes.

OpenBLAS reads these variables once, when NumPy loads it; nothing here imports NumPy.

Waiting: after its share of a matrix product, each OpenBLAS worker thread spins (busy-waits) for
2^OPENBLAS_THREAD_TIMEOUT cycles (2^28 by default, about 0.1 s at 2.5 GHz) before it sleeps, so that the next
product finds it awake. Between products, training runs code of its own (im2col, pooling, the optimizer): on an
idle core the spinning costs only power, but beside a busy process it takes a core from the training. So ``train``
runs with 2^10 cycles (well under a microsecond), unless the user set either variable or pinned BLAS to one
thread. Measured by benchmarks/bench_threads.py (README, "Threads"): as fast alone, about a third less time
beside one busy process. (With more load than that, the main thread's own wait for a worker the scheduler set
aside dominates; it has no timeout, and only fewer threads help: the README says how to pin them.) The policy
must be in the environment before NumPy loads, and ``import convscope`` has loaded it, so the command re-executes
itself once (``rerun_with_short_wait``, 0.7-0.9 s of start-up); importing convscope as a library changes nothing.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence

WAIT_VARIABLES = ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")  # OpenBLAS reads either
THREAD_COUNT_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")  # first set one wins
SHORT_WAIT = "10"  # log2 of the cycles an idle thread spins; OpenBLAS clamps it to 4..30
WAITING_COMMANDS = frozenset({"train"})  # where the time goes; elsewhere a second start-up costs more than it saves

# What each setting does, and what it cost on the machine of the README's "BLAS settings" (2-core AMD EPYC,
# OpenBLAS 0.3.31 choosing its Haswell kernels, one thread, a training step of the Keras convnet at batch 128).
SLOW_SETTINGS = {
    "OPENBLAS_CORETYPE": "OpenBLAS runs the kernels of that CPU family instead of those it picks for this CPU: "
                         "older ones are slower (measured on an AMD EPYC, whose own are Haswell's: a training "
                         "step took 1.15x as long with Sandybridge, 2.1x with Nehalem, 2.3x with Prescott) and "
                         "newer ones can crash (SkylakeX there: illegal instruction)",
    "OPENBLAS_L2_SIZE": "OpenBLAS sizes its matrix blocks for an L2 cache of that many KiB instead of the one "
                        "this CPU reports (measured on an AMD EPYC: a training step within 5% from 64 to 4096; "
                        "some set it to avoid an OpenBLAS bug)",
}


def waiting_environment(command: str, environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` with OpenBLAS's short wait for ``command``; None where it should run in ``environ`` as it is:
    another command, a wait the user chose, or BLAS pinned to one thread (no worker thread to wait)."""
    if command not in WAITING_COMMANDS or any(name in environ for name in WAIT_VARIABLES):
        return None
    threads = next((environ[name] for name in THREAD_COUNT_VARIABLES if environ.get(name)), None)
    if threads is not None and threads.strip() == "1":
        return None
    return {**environ, WAIT_VARIABLES[0]: SHORT_WAIT}


def rerun_with_short_wait(command: str) -> None:
    """Replace this process by the same command line (``sys.orig_argv``: interpreter options, script or ``-m``
    included) under ``waiting_environment``, where that differs from the current one. POSIX only: elsewhere
    exec starts a second process and the first one exits. If exec fails, the command goes on as it is."""
    environ = waiting_environment(command, os.environ)
    if environ is None or os.name != "posix":
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, environ)
    except OSError:
        pass  # only speed is at stake: run under OpenBLAS's own wait


def slow_blas_notes(environ: Mapping[str, str], argv: Sequence[str]) -> list[str]:
    """One line for each setting of SLOW_SETTINGS in ``environ``: what it does, what it costs, and the command
    line ``convscope argv`` without it."""
    return [f"convscope: note: {name}={environ[name]} is set, so {effect}; unless it is set on purpose, run "
            f"without it: {shlex.join(['env', '-u', name, 'convscope', *argv])}"
            for name, effect in SLOW_SETTINGS.items() if environ.get(name)]
