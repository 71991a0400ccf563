"""Threads on a busy machine: `convscope train` time, user and system CPU, alone and beside a busy neighbour.

    python benchmarks/bench_threads.py                        # OpenBLAS's wait, convscope's, one thread; 2 repeats
    python benchmarks/bench_threads.py --settings openblas-default,timeout-4,timeout-16 --repeats 3
    python benchmarks/bench_threads.py --dataset mnist --limit 20000   # full MNIST (CONVSCOPE_DATA)

Each run is a fresh ``python -m convscope train --epochs 1`` process (OpenBLAS reads its settings once, when it
loads) with the variables of THREAD_VARS removed from the environment and those of its setting added:
"openblas-default" sets OpenBLAS's own wait (2^28 cycles) explicitly, which the command keeps; "convscope" sets
nothing, so the command chooses (``convscope.blas_env``: it re-executes itself with a 2^10-cycle wait);
"timeout-N" waits 2^N cycles; "threads-1" pins BLAS to one thread. The neighbour is one
``python -c "while True: pass"``, pinned nowhere, started before the run and stopped after it. Settings and
neighbour are interleaved within each repeat, so that the machine's other load falls on all of them alike; the
load average (1 minute) is printed beside each row: rerun when it moves. On a machine shared with other jobs,
``nice -n -10`` (as root) gives these runs and their neighbour the cores first.

Columns: "train s" is the command's own "Training time" (the epoch and its validation pass), "wall s" the
whole process (start-ups, data, the test pass included), "user s" / "sys s" its CPU time (``os.wait4``, all
its threads), "cpu/wall" their sum over the wall time: above 1 the process ran on more than one core, and
beside a neighbour on 2 cores a figure well above 1 is threads burning CPU while they wait (spinning).
Each run's row is printed as it ends (after one untimed warm-up run), then the medians over the repeats.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT", "OPENBLAS_CORETYPE",
               "OPENBLAS_L2_SIZE")
SETTINGS = {  # name -> the variables it sets
    "openblas-default": {"OPENBLAS_THREAD_TIMEOUT": "28"},  # OpenBLAS's built-in wait: 2^28 cycles
    "convscope": {},  # nothing set: the command chooses
    "timeout-4": {"OPENBLAS_THREAD_TIMEOUT": "4"},
    "timeout-10": {"OPENBLAS_THREAD_TIMEOUT": "10"},
    "timeout-16": {"OPENBLAS_THREAD_TIMEOUT": "16"},
    "timeout-20": {"OPENBLAS_THREAD_TIMEOUT": "20"},
    "threads-1": {"OPENBLAS_NUM_THREADS": "1"},
}
TRAINING_TIME = re.compile(r"Training time: ([0-9.]+) s")


def run_once(setting: dict, args, neighbour: bool) -> dict:
    """One training process: its times, and the load average just before it started."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(setting)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if neighbour else None
    try:
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "convscope", "train", "--dataset", args.dataset, "--epochs", "1",
                       "--limit", str(args.limit), "--out", os.path.join(out, "run"), "--verbose", "0"]
            start = time.perf_counter()
            child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            output = child.stdout.read()
            _, status, usage = os.wait4(child.pid, 0)
            status = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - start
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    found = TRAINING_TIME.search(output)
    if status != 0 or found is None:
        sys.exit(f"bench_threads: {' '.join(command)} failed (status {status}):\n{output}")
    return {"train": float(found.group(1)), "wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
            "load": load}


HEADER = (f"{'setting':<18} {'neighbour':<9} {'train s':>8} {'wall s':>7} {'user s':>7} {'sys s':>6} "
          f"{'cpu/wall':>8}  load before")


def format_row(name: str, busy: bool, times: dict, loads: str) -> str:
    cpu = (times["user"] + times["sys"]) / times["wall"]
    return (f"{name:<18} {'yes' if busy else 'no':<9} {times['train']:8.1f} {times['wall']:7.1f} "
            f"{times['user']:7.1f} {times['sys']:6.1f} {cpu:8.2f}  {loads}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="openblas-default,convscope,threads-1",
                        help=f"comma-separated, of {', '.join(SETTINGS)} (default: openblas-default,convscope,"
                             "threads-1)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting and neighbour (default 2)")
    parser.add_argument("--dataset", default="mnist-sample", help="mnist-sample (default, offline), mnist, ...")
    parser.add_argument("--limit", type=int, default=10000, help="training images (default 10000)")
    parser.add_argument("--neighbour", choices=("both", "no", "yes"), default="both",
                        help="run alone, beside the busy neighbour, or both (default)")
    args = parser.parse_args()
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    neighbours = {"both": (False, True), "no": (False,), "yes": (True,)}[args.neighbour]

    print(f"{os.cpu_count()} cores; {args.dataset}, {args.limit} images, 1 epoch")
    print(HEADER)
    run_once(SETTINGS[names[0]], args, False)  # warm-up: the compiled kernels' cache, the files in the page cache
    runs = {(n, b): [] for n in names for b in neighbours}
    for _ in range(args.repeats):
        for busy in neighbours:
            for name in names:
                row = run_once(SETTINGS[name], args, busy)
                runs[name, busy].append(row)
                print(format_row(name, busy, row, f"{row['load']:.1f}"), flush=True)

    print(f"\nmedians of {args.repeats}")
    print(HEADER)
    for (name, busy), rows in runs.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("train", "wall", "user", "sys")}
        print(format_row(name, busy, med, ", ".join(f"{r['load']:.1f}" for r in rows)))


if __name__ == "__main__":
    main()
