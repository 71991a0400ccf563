"""Fault injection: processes killed mid-write, disks that fill up or turn read-only, downloads cut short.

* SIGKILL at random moments and during checkpoint writes (the short version of
  ``scripts/kill_loop.py``): the last complete checkpoint always loads, ``--resume`` always
  continues, no temp file is left, and the final weights equal an uninterrupted run's.
* A failing disk at every step of ``atomic_write`` (temp file creation, chmod, writes that
  hit a full disk after N bytes, flush, close, fsync, rename), simulated by monkeypatching
  the OS calls, then for real on a tiny tmpfs: one clear line naming the path and the
  reason, the previous file byte-identical, no temp file, no leaked descriptor.
* The same through ``convscope train``: a failed checkpoint write exits 2 with one line,
  and the previous checkpoint still loads and resumes.
* Downloads whose connection closes (or is reset, or stalls) after K bytes, for many K:
  the cache never holds a partial file or a temp file, and a later good download succeeds.

This file is also a tiny launcher: ``python tests/test_faults.py FAULT -- convscope-args...``
runs the ``convscope`` command with one fault installed (used by the command-line tests).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import importlib.util
import io
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------- fault helpers
# Kept free of pytest so that the launcher at the bottom can use them in a child process.


def os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class FullDiskFile(io.FileIO):
    """A raw file on a device with ``room`` bytes left: the write that crosses it writes what fits, the next fails."""

    def __init__(self, fd, room: int, code: int):
        super().__init__(fd, "w", closefd=True)
        self.room, self.code = room, code

    def write(self, b):
        if self.room <= 0:
            raise os_error(self.code)
        n = min(len(b), self.room)
        written = super().write(bytes(memoryview(b)[:n]))
        self.room -= written
        return written


class FailingCloseWriter(io.BufferedWriter):
    """Everything is written, then ``close`` reports an error (as NFS does for a write it could not complete)."""

    code = errno.EIO

    def close(self):
        if self.closed:
            return
        super().close()
        raise os_error(self.code)


class Faults:
    """Installs one fault on the OS calls ``atomic_write`` makes (``os``/``tempfile`` are patched module-wide).

    ``point``: mkstemp | chmod | write | close | fsync | replace | folder-fsync. ``match``: only temp files
    (or rename targets) whose base name starts with it count; ``nth``: the fault hits the nth matching
    call (1-based) and every one after it. ``room``: bytes that still fit, for ``write``.
    """

    def __init__(self, point: str, code: int, match: str = "", nth: int = 1, room: int = 0):
        self.point, self.code, self.match, self.nth, self.room = point, code, match, nth, room
        self.calls = 0  # matching calls seen
        self.hits = 0  # faults raised or armed
        self.tmp_by_fd: dict[int, str] = {}
        self.saved: list[tuple[object, str, object]] = []

    def _arm(self, name: str) -> bool:
        if not os.path.basename(name).lstrip(".").startswith(self.match):
            return False
        self.calls += 1
        if self.calls >= self.nth:
            self.hits += 1
            return True
        return False

    def _patch(self, owner, attr, value):
        self.saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)

    def install(self):
        real_mkstemp, real_fdopen, real_replace = tempfile.mkstemp, os.fdopen, os.replace
        real_chmod, real_fsync, real_open = os.chmod, os.fsync, os.open
        faults = self

        def mkstemp(*args, **kwargs):
            prefix = kwargs.get("prefix", "")
            if faults.point == "mkstemp" and faults._arm(prefix):
                raise os_error(faults.code)
            fd, path = real_mkstemp(*args, **kwargs)
            faults.tmp_by_fd[fd] = path
            return fd, path

        def fdopen(fd, mode="r", *args, **kwargs):
            path = faults.tmp_by_fd.get(fd)
            if path is None or faults.point not in ("write", "close", "fsync") or not faults._arm(path):
                return real_fdopen(fd, mode, *args, **kwargs)
            if faults.point == "write":
                buffered = io.BufferedWriter(FullDiskFile(fd, faults.room, faults.code))
            elif faults.point == "close":
                buffered = FailingCloseWriter(io.FileIO(fd, "w", closefd=True))
                buffered.code = faults.code
            else:
                buffered = io.BufferedWriter(io.FileIO(fd, "w", closefd=True))
                faults.fsync_fd = fd
            return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding=kwargs.get("encoding"))

        def chmod(path, *args, **kwargs):
            if faults.point == "chmod" and isinstance(path, str) and faults._arm(path):
                raise os_error(faults.code)
            return real_chmod(path, *args, **kwargs)

        def fsync(fd):
            if faults.point == "fsync" and fd == getattr(faults, "fsync_fd", None):
                raise os_error(faults.code)
            return real_fsync(fd)

        def replace(src, dst, *args, **kwargs):
            if faults.point == "replace" and faults._arm(os.fspath(dst)):
                raise os_error(faults.code)
            return real_replace(src, dst, *args, **kwargs)

        def folder_open(path, flags, *args, **kwargs):
            if faults.point == "folder-fsync" and flags == os.O_RDONLY and os.path.isdir(path):
                faults.hits += 1
                raise os_error(faults.code)
            return real_open(path, flags, *args, **kwargs)

        for owner, attr, value in ((tempfile, "mkstemp", mkstemp), (os, "fdopen", fdopen), (os, "chmod", chmod),
                                   (os, "fsync", fsync), (os, "replace", replace), (os, "open", folder_open)):
            self._patch(owner, attr, value)
        return self

    def remove(self):
        while self.saved:
            owner, attr, value = self.saved.pop()
            setattr(owner, attr, value)

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.remove()
        return False


def parse_fault(spec: str) -> Faults:
    """``POINT:ERRNO_NAME[:MATCH[:NTH[:ROOM]]]``, e.g. ``replace:EROFS:checkpoint.convscope:2``."""
    parts = spec.split(":")
    point, code = parts[0], getattr(errno, parts[1])
    match = parts[2] if len(parts) > 2 else ""
    nth = int(parts[3]) if len(parts) > 3 else 1
    room = int(parts[4]) if len(parts) > 4 else 0
    return Faults(point, code, match, nth, room)


if __name__ == "__main__":
    # python tests/test_faults.py FAULT -- ARGS: ``convscope ARGS`` with FAULT installed.
    fault, _, cli_args = sys.argv[1], sys.argv[2], sys.argv[3:]
    parse_fault(fault).install()
    from convscope.cli import main

    sys.exit(main(cli_args))


# ------------------------------------------------------------------------------------------ the tests

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import convscope  # noqa: E402
from convscope import layers  # noqa: E402
from convscope.datasets import download, idx  # noqa: E402
from convscope.errors import DownloadError  # noqa: E402
from convscope.saving import atomic_write, load_checkpoint, load_model, save_model, write_text  # noqa: E402


def open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: descriptor leaks are not checked
        return None


def child_env(tmp_path_factory=None) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


# ----------------------------------------------------------------------------- 1. SIGKILL, many times


def load_kill_loop():
    spec = importlib.util.spec_from_file_location("kill_loop", REPO / "scripts" / "kill_loop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_loop"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_kill_loop_short(tmp_path):
    """5 SIGKILLs, most of them the moment a checkpoint's temp file appears; then finish and compare."""
    kill_loop = load_kill_loop()
    lines = []
    summary = kill_loop.kill_loop(kills=5, epochs=2, seed=3, kills_per_run=5, max_delay=1.5, work=tmp_path,
                                  rng_seed=20240501, weights=(1, 3, 1), limit=300, log=lines.append)
    report = "\n".join(lines + summary.lines())
    assert summary.kills >= 5, report
    assert summary.kills_during_checkpoint_write >= 1, "no kill landed during a checkpoint write\n" + report
    assert summary.checkpoints_loaded + summary.kills_before_first_checkpoint >= summary.kills, report
    assert summary.unreadable_checkpoints == 0 and summary.damaged_files == 0, report
    assert summary.epochs_went_back == 0, report
    assert summary.leftover_tmp_files == 0, report
    assert summary.rounds >= 1 and summary.identical_runs == summary.rounds, report
    assert summary.problems == [] and summary.ok, report


def test_kill_loop_detects_a_damaged_checkpoint(tmp_path):
    """The loop's checks can fail: a truncated checkpoint and a stray temp file are reported."""
    kill_loop = load_kill_loop()
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "convscope.cli", "train", *kill_loop.TRAIN, "--limit", "100",
                             "--epochs", "1", "--out", run], env=child_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    summary = kill_loop.Summary()
    assert kill_loop.check_files(run, summary, last_epochs=1) == 1 and summary.checkpoints_loaded == 1
    data = (run / "checkpoint.convscope").read_bytes()
    (run / "checkpoint.convscope").write_bytes(data[: len(data) // 2])
    assert kill_loop.check_files(run, summary, last_epochs=1) == -1
    assert summary.unreadable_checkpoints == 1 and not summary.ok
    assert kill_loop.compare_runs(run, run) is None
    (run / ".history.json.x.tmp").write_text("{")
    assert [p.name for p in kill_loop.temp_files(run)] == [".history.json.x.tmp"]


def test_resume_of_a_run_killed_before_its_first_checkpoint(tmp_path):
    """A run killed after writing its config but before its first checkpoint: --resume starts it over, same result."""
    env = child_env()
    args = ["--dataset", "mnist-sample", "--limit", "100", "--batch-size", "64", "--epochs", "1", "--seed", "5",
            "--verbose", "0"]
    ref, run = tmp_path / "ref", tmp_path / "run"
    for out in (ref, run):
        result = subprocess.run([sys.executable, "-m", "convscope.cli", "train", *args, "--out", out],
                                env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    # Make `run` look killed during its first checkpoint write: config.json and a temp file only.
    for name in ("checkpoint.convscope", "model.convscope", "history.json", "history.csv"):
        (run / name).unlink()
    shutil.rmtree(run / "filters")
    (run / ".checkpoint.convscope.killed.tmp").write_bytes(b"PK\x03\x04partial")
    (run / ".unrelated.tmp").write_bytes(b"not ours")  # someone else's file: left alone
    result = subprocess.run([sys.executable, "-m", "convscope.cli", "train", "--resume", run, "--verbose", "0"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "after epoch 0 of 1" in result.stdout
    assert sorted(p.name for p in run.rglob("*.tmp")) == [".unrelated.tmp"]
    for a, b in zip(load_model(ref / "model.convscope").get_weights(), load_model(run / "model.convscope").get_weights()):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------- 2. disk faults in atomic_write


def small_model(seed=0):
    convscope.utils.set_random_seed(seed)
    model = convscope.Sequential([convscope.Input(shape=(12, 12, 1)), layers.Conv2D(8, 3, activation="relu"),
                                  layers.Flatten(), layers.Dense(4, activation="softmax")])  # ~40 KB file
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def changed(model):
    x = np.random.default_rng(0).normal(size=(16, 12, 12, 1)).astype("float32")
    model.fit(x, np.arange(16) % 4, batch_size=8, epochs=1, verbose=0)
    return model


def save_text(path):
    write_text(path, json.dumps({"loss": [1.5, 1.25], "note": "x" * 30000}))


def save_model_file(path):
    save_model(changed(small_model()), path, training_state={"epochs_done": 1})


def save_npz(path):
    with atomic_write(path) as f:
        np.savez(f, kernel=np.arange(8000, dtype="float32"))


WRITERS = {"model": save_model_file, "text": save_text, "npz": save_npz}

# (point, errno, room): room = bytes that still fit for "write" faults (a disk that fills up part-way).
FAULTS = [
    ("mkstemp", errno.ENOSPC, 0), ("mkstemp", errno.EROFS, 0), ("mkstemp", errno.EACCES, 0),
    ("mkstemp", errno.EDQUOT, 0),
    ("write", errno.ENOSPC, 0), ("write", errno.ENOSPC, 1), ("write", errno.ENOSPC, 4096),
    ("write", errno.ENOSPC, 8193), ("write", errno.ENOSPC, 20000), ("write", errno.EIO, 3000),
    ("write", errno.EDQUOT, 10000), ("write", errno.EFBIG, 6000),
    ("close", errno.EIO, 0), ("close", errno.ENOSPC, 0),
    ("fsync", errno.EIO, 0), ("fsync", errno.ENOSPC, 0),
    ("replace", errno.EXDEV, 0), ("replace", errno.EROFS, 0), ("replace", errno.EACCES, 0),
    ("replace", errno.EBUSY, 0), ("replace", errno.EIO, 0),
]


def fault_id(fault):
    point, code, room = fault
    return f"{point}-{errno.errorcode[code]}" + (f"-after{room}B" if point == "write" else "")


def assert_clear_error(exc: BaseException, path, code: int, previous: bool):
    """One line, naming the path and the OS's reason, saying what became of the previous file."""
    message = str(exc)
    assert isinstance(exc, OSError) and exc.errno == code, repr(exc)
    assert "\n" not in message, message
    assert repr(str(path)) in message, message
    assert os.strerror(code) in message, message
    assert ("previous file is unchanged" in message) == previous, message
    assert "None" not in message, message


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("fault", FAULTS, ids=fault_id)
def test_disk_fault_keeps_the_previous_file(tmp_path, writer, fault):
    point, code, room = fault
    path = tmp_path / f"target.{writer}"
    WRITERS[writer](path)
    before = path.read_bytes()
    fds = open_fds()
    with Faults(point, code, match=path.name, room=room) as faults, pytest.raises(OSError) as info:
        WRITERS[writer](path)
    assert faults.hits >= 1, f"the {point} fault was never reached"
    assert_clear_error(info.value, path, code, previous=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name], "a temp file was left behind"
    assert open_fds() == fds, "a file descriptor leaked"
    if writer == "model":
        _, state = load_checkpoint(path)
        assert state == {"epochs_done": 1}
    WRITERS[writer](path)  # the disk is back: the next save works
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("fault", FAULTS[::3], ids=fault_id)
def test_disk_fault_on_a_first_save_leaves_nothing(tmp_path, fault):
    point, code, room = fault
    path = tmp_path / "new.convscope"
    with Faults(point, code, match=path.name, room=room), pytest.raises(OSError) as info:
        save_model_file(path)
    assert_clear_error(info.value, path, code, previous=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("writer", list(WRITERS))
def test_chmod_refused_still_saves(tmp_path, writer):
    """FAT and some network file systems refuse chmod: the file is still written (with mkstemp's 0600)."""
    path = tmp_path / f"target.{writer}"
    fds = open_fds()
    with Faults("chmod", errno.EPERM, match=path.name) as faults:
        WRITERS[writer](path)
    assert faults.hits == 1
    assert os.listdir(tmp_path) == [path.name] and open_fds() == fds
    if writer == "model":
        load_checkpoint(path)


def test_folder_fsync_failure_is_not_an_error(tmp_path):
    """After the rename the file is complete; a folder that cannot be fsynced (some platforms) does not fail the save."""
    path = tmp_path / "m.convscope"
    with Faults("folder-fsync", errno.EINVAL) as faults:
        save_model_file(path)
    assert faults.hits == 1
    load_checkpoint(path)


def test_an_oserror_without_errno_still_reads_clearly(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    write_text(path, "old")

    def broken(fd):
        raise io.UnsupportedOperation("fsync not supported by this file system")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError) as info:
        write_text(path, "new")
    message = str(info.value)
    assert "fsync not supported by this file system" in message and repr(str(path)) in message, message
    assert "None" not in message
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


# ---------------------------------------------------------------- 3. the same through `convscope train`

TRAIN = ["train", "--dataset", "mnist-sample", "--limit", "200", "--batch-size", "64", "--epochs", "2", "--seed", "2",
         "--verbose", "0"]


def run_with_fault(fault: str, args, env):
    cmd = [sys.executable, str(Path(__file__).resolve()), fault, "--", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def one_line_error(result, *needles) -> str:
    detail = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 2, detail
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convscope: error:"), detail
    assert "Traceback" not in result.stderr, detail
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("fault, reason, then_resume", [
    ("write:ENOSPC:checkpoint.convscope:2:100000", "No space left on device", True),
    ("replace:EROFS:checkpoint.convscope:2", "Read-only file system", False),
    ("fsync:EIO:checkpoint.convscope:2", "Input/output error", False),
], ids=["full-disk", "read-only", "io-error"])
def test_cli_checkpoint_write_failure(tmp_path, fault, reason, then_resume):
    """The second checkpoint (after epoch 1) cannot be written: exit 2, one line; the first still loads (and resumes)."""
    env, run = child_env(), tmp_path / "run"
    line = one_line_error(run_with_fault(fault, [*TRAIN, "--out", run], env), reason, str(run / "checkpoint.convscope"),
                          "previous file is unchanged")
    assert line.count("convscope: error:") == 1
    _, state = load_checkpoint(run / "checkpoint.convscope")
    assert state["epochs_done"] == 0
    assert not (run / "model.convscope").exists()
    assert [p.name for p in run.rglob("*.tmp")] == []
    if not then_resume:
        return
    result = subprocess.run([sys.executable, "-m", "convscope.cli", "train", "--resume", run, "--verbose", "0"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    _, state = load_checkpoint(run / "checkpoint.convscope")
    assert state["epochs_done"] == 2 and (run / "model.convscope").exists()


# -------------------------------------------------------------------------------- 4. a real tiny tmpfs


@pytest.fixture
def tmpfs(tmp_path):
    """A mounted tmpfs (root only); ``remount(options)`` changes its size or makes it read-only."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if not mount or not umount:
        pytest.skip("no mount / umount command here, so a real small file system cannot be made")
    result = subprocess.run([mount, "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'mount exit ' + str(result.returncode)}); "
                    "the monkeypatched disk faults above still run")

    def remount(options):
        done = subprocess.run([mount, "-o", f"remount,{options}", str(mount_point)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    try:
        yield mount_point, remount
    finally:
        if subprocess.run([umount, str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run([umount, "-l", str(mount_point)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` to the last byte."""
    with open(folder / "filler", "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e


def test_real_full_and_read_only_tmpfs(tmpfs):
    disk, remount = tmpfs
    path = disk / "m.convscope"
    save_model(small_model(), path)
    before = path.read_bytes()
    fill(disk)
    fds = open_fds()
    with pytest.raises(OSError) as info:
        save_model_file(path)
    assert_clear_error(info.value, path, errno.ENOSPC, previous=True)
    assert path.read_bytes() == before and sorted(os.listdir(disk)) == ["filler", "m.convscope"]
    assert open_fds() == fds
    with pytest.raises(OSError) as info:
        save_text(disk / "history.json")
    assert_clear_error(info.value, disk / "history.json", errno.ENOSPC, previous=False)

    (disk / "filler").unlink()
    remount("ro")
    with pytest.raises(OSError) as info:
        save_model_file(path)
    assert_clear_error(info.value, path, errno.EROFS, previous=True)
    assert path.read_bytes() == before and sorted(os.listdir(disk)) == ["m.convscope"]
    remount("rw")
    save_model_file(path)
    assert path.read_bytes() != before and os.listdir(disk) == ["m.convscope"]


def test_real_full_tmpfs_through_the_cli(tmpfs):
    """A run folder on an 800 KiB tmpfs. Measured: the epoch-0 checkpoint is 145 KB (no Adam slots yet), later
    ones 428 KB, filter snapshots 76 KB; replacing the epoch-1 checkpoint after epoch 2 needs the old one and
    its replacement at once and does not fit: exit 2 in one line, the epoch-1 checkpoint loads; with room
    again, --resume finishes."""
    disk, remount = tmpfs
    remount("size=800k")
    env, run = child_env(), disk / "run"
    result = subprocess.run([sys.executable, "-m", "convscope.cli", *TRAIN, "--out", run], env=env,
                            capture_output=True, text=True, timeout=300)
    one_line_error(result, "No space left on device", "checkpoint.convscope", "previous file is unchanged")
    _, state = load_checkpoint(run / "checkpoint.convscope")
    assert state["epochs_done"] == 1 and len(state["history"]["loss"]) == 1
    assert [p.name for p in run.rglob("*.tmp")] == []
    remount("size=4m")
    result = subprocess.run([sys.executable, "-m", "convscope.cli", "train", "--resume", run, "--verbose", "0"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    _, state = load_checkpoint(run / "model.convscope")
    assert [p.name for p in run.rglob("*.tmp")] == []


# ------------------------------------------------------------------------ 5. downloads cut after K bytes

NAME = "t10k-images-idx3-ubyte"


def images_idx(n=120, seed=0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return idx.IMAGES_MAGIC.to_bytes(4, "big") + struct.pack(">III", n, 28, 28) + pixels.tobytes()


RAW = images_idx()  # 94,096 bytes: more than one 64 KiB read
GZ = gzip.compress(RAW, mtime=0)
SPEC = download.FileSpec(NAME, len(RAW), hashlib.sha256(RAW).hexdigest())


class CutHandler(BaseHTTPRequestHandler):
    """Serves ``server.body``, stopping after ``server.cut`` body bytes: a clean close, a reset, or a stall."""

    def do_GET(self):
        srv = self.server
        srv.hits += 1
        body = srv.body
        self.send_response(200)
        if srv.content_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: srv.cut])
        self.wfile.flush()
        if srv.how == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif srv.how == "stall":
            time.sleep(srv.stall)
        self.close_connection = True

    def log_message(self, *args):
        pass


class CutServer(ThreadingHTTPServer):
    block_on_close = False
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that give up hang up mid-reply; that is the point


@pytest.fixture
def cut_server():
    httpd = CutServer(("127.0.0.1", 0), CutHandler)
    httpd.hits, httpd.body, httpd.cut, httpd.how, httpd.content_length, httpd.stall = 0, GZ, None, "close", True, 0.0
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/m/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def cut_points(size: int, rng: random.Random, n_random: int) -> list[int]:
    edges = {0, 1, 2, 9, 10, 11, 100, 4095, 4096, 8192, 65535, 65536, 65537, size // 2, size - 9, size - 8,
             size - 1}
    return sorted({k for k in edges if 0 <= k < size} | {rng.randrange(size) for _ in range(n_random)})


def fetch(server, dest, **kwargs):
    options = dict(mirrors=(server.url,), files=(SPEC,), timeout=2.0, retries=0, backoff=0.0, progress=False)
    options.update(kwargs)
    return download.download("mnist", dest, **options)


@pytest.mark.parametrize("body, how, content_length, expected", [
    ("gz", "close", True, r"truncated: received \d+ of \d+ bytes"),
    ("gz", "close", False, r"damaged or truncated gzip data|not a gzip|too small|SHA-256|ends"),
    ("gz", "reset", True, r"truncated|reset|Connection"),
    ("raw", "close", False, r"SHA-256|truncated|declares|ends|too small"),
], ids=["gz-close", "gz-close-no-length", "gz-reset", "raw-close-no-length"])
def test_download_cut_after_k_bytes(cut_server, tmp_path, monkeypatch, body, how, content_length, expected):
    """For ~40 cut points K each: DownloadError, the cache holds no partial and no temp file; then a good download."""
    import re

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = download.cache_dir("mnist")
    data = GZ if body == "gz" else RAW
    cut_server.body, cut_server.how, cut_server.content_length = data, how, content_length
    points = cut_points(len(data), random.Random(f"{body}-{how}-{content_length}"), 24)
    assert len(points) >= 35
    for k in points:
        cut_server.cut = k
        with pytest.raises(DownloadError) as info:
            fetch(cut_server, None)
        message = str(info.value)
        assert re.search(expected, message), f"K={k}: {message}"
        assert "To work offline" in message
        assert list(cache.iterdir()) == [], f"K={k}: the cache holds {sorted(os.listdir(cache))}"
        assert download.local_file(cache, NAME) is None
    cut_server.cut = None  # the whole body
    assert fetch(cut_server, None) == cache
    kept = download.local_file(cache, NAME)
    assert kept is not None and sorted(os.listdir(cache)) == [kept.name]
    assert idx.read_idx(kept).tobytes() == RAW[16:]


def test_download_cut_then_retried_on_the_same_mirror(cut_server, tmp_path):
    """The first try is cut, the retry gets the whole file: one call succeeds, nothing partial is ever kept."""
    original = CutHandler.do_GET

    def first_cut(handler):
        handler.server.cut = len(GZ) // 3 if handler.server.hits == 0 else None
        original(handler)

    CutHandler.do_GET = first_cut
    try:
        assert fetch(cut_server, tmp_path, retries=1) == tmp_path
    finally:
        CutHandler.do_GET = original
    assert cut_server.hits == 2
    assert sorted(os.listdir(tmp_path)) == [f"{NAME}.gz"] and (tmp_path / f"{NAME}.gz").read_bytes() == GZ


def test_download_stalled_after_k_bytes_times_out(cut_server, tmp_path):
    cut_server.how, cut_server.stall = "stall", 2.0
    for k in (0, 1000, 70000):
        cut_server.cut = k
        with pytest.raises(DownloadError, match="timed out"):
            fetch(cut_server, tmp_path, timeout=0.3)
        assert list(tmp_path.iterdir()) == []


def test_download_onto_a_full_disk(cut_server, tmp_path):
    """The disk fills while the temp file is written: the reason is in the error, and nothing is left."""
    real_fdopen, real_mkstemp, parts = os.fdopen, tempfile.mkstemp, {}

    def mkstemp(*args, **kwargs):
        fd, path = real_mkstemp(*args, **kwargs)
        parts[fd] = path
        return fd, path

    def fdopen(fd, mode="r", *args, **kwargs):
        if fd in parts:
            return io.BufferedWriter(FullDiskFile(fd, 30000, errno.ENOSPC))
        return real_fdopen(fd, mode, *args, **kwargs)

    tempfile.mkstemp, os.fdopen = mkstemp, fdopen
    try:
        with pytest.raises(DownloadError, match="No space left on device"):
            fetch(cut_server, tmp_path)
    finally:
        tempfile.mkstemp, os.fdopen = real_mkstemp, real_fdopen
    assert parts and list(tmp_path.iterdir()) == []
