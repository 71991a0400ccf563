"""The compiled kernels say once, on standard error, that they are compiling, and only when Numba's disk cache
has no usable copy; the seconds spent are counted (convscope train reports them apart)."""

import os
import subprocess
import sys
import types

import pytest

from convscope.arraymath import jit

pytestmark = pytest.mark.skipif(jit.numba is None, reason="Numba is not installed (the optional [fast] extra)")

# One small kernel, called twice: only the first call can compile.
CALL_TWICE = """
import numpy as np
from convscope.arraymath import jit
x = np.zeros((1, 4, 4, 1), np.float32)
for _ in range(2):
    jit.max_pool(x, np.zeros((1, 2, 2, 1), np.float32), np.zeros((1, 2, 2, 1), np.int64), (2, 2), (2, 2))
print(jit.compile_seconds() > 0)
"""


def test_a_cold_cache_compiles_once_with_the_notice_and_a_warm_one_says_nothing(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"), CONVSCOPE_JIT="1")
    runs = [subprocess.run([sys.executable, "-c", CALL_TWICE], env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    cold, warm = runs
    assert (cold.stdout, cold.stderr) == ("True\n", jit.COMPILE_NOTICE + "\n"), cold
    assert (warm.stdout, warm.stderr) == ("False\n", ""), warm  # loaded from the cache the first run wrote


def compile_event(status, module=jit.__name__):
    from numba.core import event

    dispatcher = types.SimpleNamespace(py_func=types.SimpleNamespace(__module__=module))
    return event.Event("numba:compile", status, data={"dispatcher": dispatcher})


def test_the_watch_announces_the_first_compile_only_and_adds_up_the_seconds(monkeypatch, capsys):
    from numba.core.event import EventStatus

    ticks = iter([10.0, 12.5, 20.0, 21.0])
    monkeypatch.setattr(jit, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    watch = jit._CompileWatch()
    for _ in range(2):
        watch.on_start(compile_event(EventStatus.START))
        watch.on_end(compile_event(EventStatus.END))
    assert capsys.readouterr() == ("", jit.COMPILE_NOTICE + "\n")
    assert watch.seconds == 3.5


def test_the_watch_ignores_other_modules_numba_functions(capsys):
    from numba.core.event import EventStatus

    watch = jit._CompileWatch()
    watch.on_start(compile_event(EventStatus.START, module="someone_else"))
    watch.on_end(compile_event(EventStatus.END, module="someone_else"))
    assert capsys.readouterr() == ("", "") and watch.seconds == 0.0 and not watch.announced
