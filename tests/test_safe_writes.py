"""Files written safely (issue 16, "Saving replaces special files"; SIGTERM / SIGHUP mid-write).

* Only regular files are written: a destination that is a folder, a FIFO, a socket or a device is
  refused with one line and is still what it was afterwards (``os.replace`` would have renamed a
  regular file over it: as root, ``convscope export m.convscope --onnx /dev/null`` replaced
  ``/dev/null``). A symbolic link is followed to the regular file it names (the link stays a link);
  a link to anything else, a dangling link and a loop of links are refused. These tests run as
  root here, where permissions would stop nothing.
* SIGTERM and SIGHUP during a write raise ``Interrupted`` (a KeyboardInterrupt), so the temporary
  file is removed and the previous file kept; ``convscope export`` then exits 130 with one line.
  An ignored SIGHUP (``nohup``) or a program's own handler is left alone; a write in another thread
  works (no handler can be installed there) and its temporary file is removed at exit.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import convscope
from convscope import layers
from convscope.saving import atomic_write, save_model, write_text

REPO = Path(__file__).resolve().parents[1]


def kind(path) -> str:
    """What is at ``path`` (not following a link)."""
    mode = os.lstat(path).st_mode
    return next(name for test, name in ((stat.S_ISLNK, "link"), (stat.S_ISREG, "file"), (stat.S_ISDIR, "folder"),
                                        (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "chr"),
                                        (stat.S_ISBLK, "blk")) if test(mode))


def tiny_model():
    model = convscope.Sequential([convscope.Input(shape=(4, 4, 1)), layers.Flatten(), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def make_fifo(folder):
    os.mkfifo(folder / "pipe")
    return folder / "pipe", []


def make_socket(folder):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(folder / "sock"))
    return folder / "sock", [sock]


def make_device(folder):
    try:
        os.mknod(folder / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a second /dev/null
    except (PermissionError, AttributeError):
        pytest.skip("cannot make a device node here (not root, or no mknod)")
    return folder / "null", []


def make_folder(folder):
    (folder / "sub").mkdir()
    return folder / "sub", []


def link_to(maker):
    def make(folder):
        target, keep = maker(folder)
        os.symlink(target.name, folder / "link")
        return folder / "link", keep
    return make


def make_dangling(folder):
    os.symlink("missing", folder / "link")
    return folder / "link", []


def make_loop(folder):
    os.symlink("loop", folder / "loop")
    return folder / "loop", []


# name -> (maker, what the one-line refusal says)
SPECIAL = {
    "fifo": (make_fifo, "a FIFO"), "socket": (make_socket, "a socket"), "device": (make_device, "a character device"),
    "folder": (make_folder, "a folder"), "link-to-fifo": (link_to(make_fifo), "a FIFO"),
    "link-to-folder": (link_to(make_folder), "a folder"),
    "link-to-device": (link_to(make_device), "a character device"),
    "dangling-link": (make_dangling, "does not exist"), "link-loop": (make_loop, "a loop of symbolic links"),
}


def write_model(path):
    save_model(tiny_model(), path)


def write_txt(path):
    write_text(path, "new")


def write_idx_file(path):
    from convscope.datasets.idx import write_idx

    write_idx(path, np.zeros((2, 3), np.uint8))


def write_csv_log(path):
    """CSVLogger appends row by row (no temporary file), so it checks the destination the same way first."""
    from convscope.callbacks import CSVLogger

    logger = CSVLogger(os.fspath(path))
    logger.on_train_begin()
    logger.csv_file.close()


@pytest.mark.parametrize("writer", [write_model, write_txt, write_idx_file, write_csv_log],
                         ids=["model", "text", "idx", "csv-log"])
@pytest.mark.parametrize("special", list(SPECIAL))
def test_a_special_destination_is_refused_and_stays_what_it_was(tmp_path, special, writer):
    maker, needle = SPECIAL[special]
    path, keep = maker(tmp_path)
    before = {name: kind(tmp_path / name) for name in os.listdir(tmp_path)}
    with pytest.raises(OSError) as info:
        writer(path)
    message = str(info.value)
    assert "\n" not in message and repr(str(path)) in message and needle in message, message
    assert "nothing was written" in message, message
    if special.endswith("folder"):
        assert isinstance(info.value, IsADirectoryError)  # what ModelCheckpoint rephrases, as Keras does
    assert {name: kind(tmp_path / name) for name in os.listdir(tmp_path)} == before, "something was replaced or left"
    for sock in keep:
        sock.close()


def test_a_link_to_a_regular_file_is_followed_and_stays_a_link(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_text(elsewhere / "real.txt", "old")
    os.symlink(elsewhere / "real.txt", tmp_path / "first")
    os.symlink("first", tmp_path / "second")  # a chain of links, to its end
    write_text(tmp_path / "second", "new")
    assert kind(tmp_path / "second") == kind(tmp_path / "first") == "link"
    assert (elsewhere / "real.txt").read_text() == "new"
    # The temporary file was made beside the file it replaced (one file system: the rename is atomic).
    assert sorted(os.listdir(elsewhere)) == ["real.txt"] and sorted(os.listdir(tmp_path)) == ["elsewhere", "first",
                                                                                               "second"]


def test_export_to_dev_null_is_refused_and_dev_null_stays_a_device(tmp_path, capsys):
    """The reproduction, as root: ``convscope export m.convscope --onnx /dev/null``."""
    pytest.importorskip("onnx")
    from convscope.cli import main

    model_path = tmp_path / "m.convscope"
    write_model(model_path)
    # Guard first: the same refusal on a FIFO of our own, so that a regression fails here, not on /dev/null.
    os.mkfifo(tmp_path / "pipe")
    assert main(["export", str(model_path), "--onnx", str(tmp_path / "pipe")]) == 2
    if kind(tmp_path / "pipe") != "fifo":
        pytest.fail("a FIFO was replaced by the export: /dev/null not tried")
    capsys.readouterr()
    before = os.lstat("/dev/null")
    assert stat.S_ISCHR(before.st_mode)
    assert main(["export", str(model_path), "--onnx", "/dev/null"]) == 2
    err = capsys.readouterr().err
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert err.count("\n") == 1 and err.startswith("convscope: error:") and "'/dev/null'" in err, err
    assert "a character device" in err, err
    assert not [name for name in os.listdir("/dev") if name.startswith(".null.")], "a temp file was left in /dev"


# ------------------------------------------------------------------------------------------- signals


def run_child(code: str, sig: int, marker: str, timeout: float = 60):
    """Run ``code`` in a fresh interpreter, send ``sig`` once it prints ``marker``; (exit status, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == marker, f"child said {line!r}; stderr: {proc.stderr.read()}"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return proc.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_mid_write_keeps_the_previous_file_and_leaves_no_temp_file(tmp_path, sig):
    path = tmp_path / "history.json"
    code = f"""
        import sys, time
        from convscope.saving import atomic_write, write_text
        write_text({str(path)!r}, "old")
        try:
            with atomic_write({str(path)!r}, "w") as f:
                f.write("new, half written")
                f.flush()
                print("writing", flush=True)
                time.sleep(30)
        except KeyboardInterrupt as e:
            print(type(e).__name__, e, flush=True)
            sys.exit(7)
    """
    rc, out, err = run_child(code, sig, "writing")
    assert rc == 7, f"exit {rc}: the signal ended the process before cleanup\n{err}"
    assert out.strip() == f"Interrupted stopped by {signal.Signals(sig).name}"
    assert os.listdir(tmp_path) == ["history.json"] and path.read_text() == "old"


def test_export_stopped_by_sigterm_mid_write_exits_130_and_leaves_nothing(tmp_path):
    pytest.importorskip("onnx")
    model_path, out = tmp_path / "m.convscope", tmp_path / "out" / "m.onnx"
    write_model(model_path)
    out.parent.mkdir()
    # The file's fsync waits, so that the signal lands mid-write every time.
    code = f"""
        import os, sys, time
        def slow_fsync(fd):
            print("writing", flush=True)
            time.sleep(30)
        os.fsync = slow_fsync
        from convscope.cli import main
        sys.exit(main(["export", {str(model_path)!r}, "--onnx", {str(out)!r}]))
    """
    rc, stdout, err = run_child(code, signal.SIGTERM, "writing")
    assert rc == 130 and err == "convscope: interrupted\n", f"exit {rc}\n{err}"
    assert os.listdir(out.parent) == []


def test_ignored_and_own_handlers_are_left_alone_and_defaults_restored():
    """Under nohup SIGHUP stays ignored; a program's own SIGTERM handler is kept; the defaults come back after."""
    code = """
        import signal
        from convscope.atomic import stop_signals_interrupt, _raise_interrupted
        def own(signum, frame):
            pass
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, own)
        with stop_signals_interrupt():
            print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN, signal.getsignal(signal.SIGTERM) is own)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with stop_signals_interrupt():
            with stop_signals_interrupt():
                pass
            ours = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
            print(ours[0] is _raise_interrupted, ours[1] is _raise_interrupted)
        print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, signal.getsignal(signal.SIGHUP) == signal.SIG_DFL)
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=60)
    assert result.stdout.split() == ["True"] * 6, result.stdout + result.stderr


def test_a_write_in_another_thread_works(tmp_path):
    errors = []

    def write():
        try:
            write_text(tmp_path / "a.txt", "from a thread")
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert errors == [] and (tmp_path / "a.txt").read_text() == "from a thread"


def test_a_thread_cut_off_at_exit_leaves_no_temp_file(tmp_path):
    code = f"""
        import threading, time
        from convscope.saving import atomic_write
        started = threading.Event()
        def write():
            with atomic_write({str(tmp_path / "slow.bin")!r}) as f:
                f.write(b"x" * 1000)
                started.set()
                time.sleep(30)
        threading.Thread(target=write, daemon=True).start()
        started.wait()
        print("exiting")
    """
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=60)
    assert result.stdout.strip() == "exiting" and time.monotonic() - start < 20, result.stderr
    assert os.listdir(tmp_path) == []


def test_a_regular_destination_still_gets_the_usual_write(tmp_path):
    """The checks change nothing for the common case: a new file, then replacing it."""
    path = tmp_path / "m.convscope"
    write_model(path)
    first = path.read_bytes()
    with atomic_write(path) as f:
        f.write(b"replaced")
    assert first[:2] == b"PK" and path.read_bytes() == b"replaced" and os.listdir(tmp_path) == ["m.convscope"]
