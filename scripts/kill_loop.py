#!/usr/bin/env python
"""Kill ``convscope train`` with SIGKILL at random moments, many times, and check that nothing is ever lost.

Each round trains a small run (the packaged ``mnist-sample``, ``--limit 1000``, batch size 64)
and kills it again and again: sometimes after a random delay, sometimes the moment a
hidden ``.checkpoint.convscope.*.tmp`` (or any atomic-write temp file) appears, so that
many kills land in the middle of writing a checkpoint. After every kill:

* the last complete checkpoint loads (``load_checkpoint``), and its ``epochs_done`` never
  goes backwards; every other file under its final name (config, history, filter
  snapshots, final model) is complete;
* the run continues with ``convscope train --resume DIR`` (or, if it was killed before it
  wrote its config, with the original command), and is killed again ...

until at least ``--kills`` kills have been made. Each round is finally left to finish, and
then no temporary file may remain and the final weights, history and filter snapshots must
equal an uninterrupted run's with the same seed, bit for bit.

    python scripts/kill_loop.py                 # >= 50 kills, prints a summary, exit 1 on any failure
    python scripts/kill_loop.py --kills 5 --epochs 2

``tests/test_faults.py`` runs the short version.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

TRAIN = ["--dataset", "mnist-sample", "--batch-size", "64", "--verbose", "0"]
CHECKPOINT = "checkpoint.convscope"
FINAL = "model.convscope"
MODES = ("random", "checkpoint-write", "any-write")


@dataclass
class Summary:
    rounds: int = 0
    kills: int = 0
    kills_by_mode: dict = field(default_factory=lambda: {m: 0 for m in MODES})
    kills_during_checkpoint_write: int = 0  # a .checkpoint.convscope.*.tmp was left: the kill hit that write
    kills_during_any_write: int = 0  # any .*.tmp was left (checkpoint, snapshot, history, config, final model)
    kills_before_first_checkpoint: int = 0
    kills_after_final_model: int = 0
    checkpoints_loaded: int = 0
    unreadable_checkpoints: int = 0
    damaged_files: int = 0
    epochs_went_back: int = 0
    resumes: int = 0
    restarts: int = 0
    leftover_tmp_files: int = 0
    identical_runs: int = 0
    different_runs: int = 0
    seconds: float = 0.0
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.problems and self.unreadable_checkpoints == 0 and self.damaged_files == 0
                and self.epochs_went_back == 0 and self.leftover_tmp_files == 0 and self.different_runs == 0
                and self.identical_runs == self.rounds > 0)

    def lines(self) -> list[str]:
        modes = ", ".join(f"{m} {n}" for m, n in self.kills_by_mode.items())
        return [
            f"rounds (runs trained to the end):        {self.rounds}",
            f"kills (SIGKILL):                         {self.kills}  ({modes})",
            f"kills during a checkpoint write:         {self.kills_during_checkpoint_write}",
            f"kills during any atomic write:           {self.kills_during_any_write}",
            f"kills before the first checkpoint:       {self.kills_before_first_checkpoint}",
            f"kills after the final model was saved:   {self.kills_after_final_model}",
            f"checkpoints loaded after a kill:         {self.checkpoints_loaded}",
            f"unreadable checkpoints:                  {self.unreadable_checkpoints}",
            f"damaged files under their final name:    {self.damaged_files}",
            f"checkpoints that went back an epoch:     {self.epochs_went_back}",
            f"resumes (--resume) / fresh restarts:     {self.resumes} / {self.restarts}",
            f"leftover tmp files after the runs:       {self.leftover_tmp_files}",
            f"final weights identical to uninterrupted: {self.identical_runs} of {self.rounds} runs"
            + (" (bit for bit, with history and filter snapshots)" if self.identical_runs == self.rounds else ""),
            f"time:                                    {self.seconds:.1f} s",
            "RESULT: " + ("PASS" if self.ok else "FAIL: " + "; ".join(self.problems[:5])),
        ]


def child_env() -> dict:
    env = dict(os.environ)
    # One thread: the same arithmetic in every process (bit-identity), and a quick start.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def train_command(args) -> list[str]:
    return [sys.executable, "-m", "convscope.cli", "train", *map(str, args)]


def temp_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.rglob("*.tmp"))


def _listing(run_dir: Path) -> set[str]:
    names = set()
    for folder in (run_dir, run_dir / "filters"):
        try:
            names.update(e.path for e in os.scandir(folder) if e.name.endswith(".tmp"))
        except FileNotFoundError:
            pass
    return names


def wait_for_temp_file(proc, run_dir: Path, prefix: str | None, skip: int, timeout: float) -> bool:
    """Busy-poll ``run_dir`` until the ``skip + 1``-th new temp file (named ``prefix*`` if given) appears.

    True when it appeared (the caller kills at once), False if the process ended or time ran out.
    """
    seen = _listing(run_dir)  # stale ones from earlier kills do not count
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        for path in _listing(run_dir) - seen:
            seen.add(path)
            if prefix is None or os.path.basename(path).startswith(prefix):
                if skip == 0:
                    return True
                skip -= 1
        polls += 1
        if polls % 64 == 0 and (proc.poll() is not None or time.monotonic() > deadline):
            return False


def check_files(run_dir: Path, summary: Summary, last_epochs: int) -> int:
    """Everything under its final name must be complete; returns the checkpoint's epochs_done (or -1)."""
    import numpy as np

    from convscope.saving import load_checkpoint, load_model

    epochs = -1
    if (run_dir / CHECKPOINT).exists():
        try:
            _, state = load_checkpoint(run_dir / CHECKPOINT)
            epochs = state["epochs_done"]
            summary.checkpoints_loaded += 1
        except Exception as e:  # noqa: BLE001 - any failure to load is what this script counts
            summary.unreadable_checkpoints += 1
            summary.problems.append(f"unreadable checkpoint: {e}")
            shutil.copy(run_dir / CHECKPOINT, run_dir.with_name(run_dir.name + f"-bad-{summary.kills}.convscope"))
        if epochs >= 0 and epochs < last_epochs:
            summary.epochs_went_back += 1
            summary.problems.append(f"checkpoint went back from epoch {last_epochs} to {epochs}")
    checks = [(run_dir / "config.json", lambda p: json.loads(p.read_text())["run"]),
              (run_dir / "history.json", lambda p: json.loads(p.read_text())),
              (run_dir / FINAL, load_model)]
    checks += [(p, lambda p: [a.sum() for a in np.load(p).values()]) for p in sorted((run_dir / "filters").glob("*.npz"))]
    for path, read in checks:
        if path.exists():
            try:
                read(path)
            except Exception as e:  # noqa: BLE001
                summary.damaged_files += 1
                summary.problems.append(f"damaged {path.name}: {type(e).__name__}: {e}")
    return epochs


def run_round(work: Path, seed: int, epochs: int, kill_budget: int, rng: random.Random, summary: Summary,
              max_delay: float, log, weights=(4, 4, 2), limit: int = 1000) -> None:
    """One run killed ``kill_budget`` times (or until it finishes first), then finished and compared."""
    env = child_env()
    args = [*TRAIN, "--limit", limit, "--epochs", epochs, "--seed", seed]
    reference, run_dir = work / f"reference-{seed}", work / f"killed-{seed}"
    done = subprocess.run(train_command([*args, "--out", reference]), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the uninterrupted run failed:\n{done.stderr}")

    last_epochs, kills = -1, 0
    while True:
        if (run_dir / FINAL).exists():
            break
        if (run_dir / "config.json").exists():
            cmd = train_command(["--resume", run_dir, "--verbose", "0"])
            summary.resumes += 1
        else:
            cmd = train_command([*args, "--out", run_dir])
            summary.restarts += int(run_dir.exists())
        if kills >= kill_budget:  # enough: let it finish
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                summary.problems.append(f"the final resume failed ({done.returncode}): {done.stderr.strip()}")
                return
            continue
        mode = rng.choices(MODES, weights=weights)[0]
        before = set(temp_files(run_dir)) if run_dir.exists() else set()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if mode == "random":
            try:
                proc.wait(timeout=rng.uniform(0.0, max_delay))
            except subprocess.TimeoutExpired:
                pass
            fire = proc.poll() is None
        else:
            prefix = f".{CHECKPOINT}." if mode == "checkpoint-write" else None
            fire = wait_for_temp_file(proc, run_dir, prefix, skip=rng.randrange(3 if prefix else 6), timeout=60)
        if fire and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        if proc.returncode != -signal.SIGKILL:
            if proc.returncode != 0:
                summary.problems.append(f"train exited {proc.returncode}: {err.decode(errors='replace').strip()}")
                return
            continue  # it finished before the kill
        kills += 1
        summary.kills += 1
        summary.kills_by_mode[mode] += 1
        left = [p for p in temp_files(run_dir) if p not in before]  # this kill's own, not stale ones
        if any(p.name.startswith(f".{CHECKPOINT}.") for p in left):
            summary.kills_during_checkpoint_write += 1
        if left:
            summary.kills_during_any_write += 1
        if not (run_dir / CHECKPOINT).exists():
            summary.kills_before_first_checkpoint += 1
        if (run_dir / FINAL).exists():
            summary.kills_after_final_model += 1
        epochs_now = check_files(run_dir, summary, last_epochs)
        last_epochs = max(last_epochs, epochs_now)
        log(f"  kill {summary.kills:3d} ({mode:16s}): checkpoint after epoch {epochs_now:2d}, "
            f"left {', '.join(p.name for p in left) or 'no temp file'}")

    summary.rounds += 1
    leftovers = temp_files(run_dir)
    summary.leftover_tmp_files += len(leftovers)
    if leftovers:
        summary.problems.append(f"temp files left after the run finished: {[str(p) for p in leftovers]}")
    problem = compare_runs(reference, run_dir)
    if problem:
        summary.different_runs += 1
        summary.problems.append(f"seed {seed}: {problem}")
    else:
        summary.identical_runs += 1


def compare_runs(a: Path, b: Path) -> str | None:
    """None when run folders ``a`` and ``b`` hold the same final weights, history and snapshots, bit for bit."""
    import numpy as np

    from convscope.saving import load_model

    wa, wb = load_model(a / FINAL).get_weights(), load_model(b / FINAL).get_weights()
    if len(wa) != len(wb) or any(x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y)
                                 for x, y in zip(wa, wb)):
        return "final weights differ from the uninterrupted run's"
    if (a / "history.json").read_bytes() != (b / "history.json").read_bytes():
        return "history.json differs from the uninterrupted run's"
    snaps_a = sorted(p.name for p in (a / "filters").iterdir())
    if snaps_a != sorted(p.name for p in (b / "filters").iterdir()):
        return "the filter snapshots differ in number"
    for name in snaps_a:
        with np.load(a / "filters" / name) as fa, np.load(b / "filters" / name) as fb:
            if fa.files != fb.files or not all(np.array_equal(fa[k], fb[k]) for k in fa.files):
                return f"filter snapshot {name} differs"
    return None


def kill_loop(kills: int = 50, epochs: int = 5, seed: int = 0, kills_per_run: int = 10, max_delay: float = 2.5,
              work: str | os.PathLike | None = None, rng_seed: int | None = None, weights=(4, 4, 2),
              limit: int = 1000, log=print) -> Summary:
    """Run rounds (seeds ``seed``, ``seed + 1``, ...) until ``kills`` kills are made; the summary.

    ``weights``: how often each kill mode (``MODES``: random delay, at a checkpoint write, at any write) is drawn.
    """
    rng = random.Random(rng_seed)
    summary = Summary()
    start = time.perf_counter()
    owned = work is None
    work = Path(tempfile.mkdtemp(prefix="kill_loop-")) if owned else Path(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        while summary.kills < kills and not summary.problems:
            budget = min(kills_per_run, kills - summary.kills)
            log(f"round {summary.rounds + 1}: seed {seed + summary.rounds}, {epochs} epochs, up to {budget} kills")
            run_round(work, seed + summary.rounds, epochs, budget, rng, summary, max_delay, log, weights, limit)
    finally:
        summary.seconds = time.perf_counter() - start
        if owned and not summary.problems:
            shutil.rmtree(work, ignore_errors=True)
        elif summary.problems:
            log(f"work folder kept for inspection: {work}")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="at least this many SIGKILLs in all (default 50)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of the first run (default 0)")
    parser.add_argument("--limit", type=int, default=1000, help="training images (default 1000)")
    parser.add_argument("--kills-per-run", type=int, default=10, help="kills before a run is let finish (default 10)")
    parser.add_argument("--max-delay", type=float, default=2.5, help="longest random delay before a kill, s (default 2.5)")
    parser.add_argument("--rng-seed", type=int, help="seed of the kill schedule (default: random)")
    parser.add_argument("--work", help="folder for the runs (default: a temporary folder, removed on success)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    rng_seed = args.rng_seed if args.rng_seed is not None else random.randrange(2**32)
    print(f"kill loop: --kills {args.kills} --epochs {args.epochs} --limit {args.limit} --seed {args.seed} "
          f"--rng-seed {rng_seed}", flush=True)
    summary = kill_loop(args.kills, args.epochs, args.seed, args.kills_per_run, args.max_delay, args.work, rng_seed,
                        limit=args.limit, log=(lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True)))
    print("\n".join(summary.lines()))
    return 0 if summary.ok and summary.kills >= args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
