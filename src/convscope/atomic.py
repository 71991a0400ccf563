"""Atomic file writes: a crash, a full disk or a signal never leaves a half-written file under the final name.

The content goes to a temporary file in the destination's folder (so the final
``os.replace`` is a rename on one file system, atomic on POSIX and Windows),
is flushed and fsynced, and only then replaces the destination. On any error
the temporary file is removed and the previous file, if any, is untouched.

Only regular files are written. ``os.replace`` renames over whatever the name holds,
so, unchecked, saving to ``/dev/null`` as root would replace the device with a file
holding the model, and a FIFO or a socket would become a regular file. So the
destination is looked at first (``os.lstat``, which needs no permission on the file
itself, root or not):

* nothing there, or a regular file: written;
* a symbolic link: followed, to the end of a chain of links, to the file it names,
  which is then replaced (the link stays a link and points at the new content, as
  ``open(path, "w")`` would). The file it names must be a regular file that exists: a
  link to a device, a FIFO, a socket or a folder, a dangling link and a loop of links
  are refused;
* a folder (``IsADirectoryError``), a character or block device, a FIFO or a socket
  (``OSError``, errno ``EINVAL``): refused, with one line naming the path and what is
  there; nothing is written, nothing is created.

The check and the rename are two steps: a process that can write the destination's
folder could swap in a special file between them. That needs write access to the
folder, which already lets it replace the file itself.

Signals. While a temporary file exists, SIGTERM and SIGHUP (when their action is
the default, which ends the process at once and would leave the temporary file
behind) raise ``Interrupted``, a ``KeyboardInterrupt``, as Ctrl-C does, so the write
is undone like any other failed write and the command reports it (``convscope``
exits 130 with one line, ``train`` names the resume command). A handler of the
program's own, or a signal set to be ignored (``nohup``), is left as it is. Python
can install handlers only in the main thread: the temporary files of writes in
other threads are registered, and removed when the interpreter exits. A SIGKILL
cannot be caught; a run folder's own leftovers are removed by ``convscope train
--resume`` (``runs.remove_stale_temp_files``).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import signal
import stat
import tempfile
import threading

# Signals that by default end the process without running Python's cleanup (SIGHUP does not exist on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))

_live_temp_files: set[str] = set()  # temporary files being written, in any thread
_installed: dict[int, object] = {}  # signal -> the handler it had before ours, while main-thread writes run
_depth = 0  # nested stop_signals_interrupt blocks in the main thread


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP received while a write (or a training run, see ``runs``) was in progress; ``signum``
    says which."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """``with atomic_write(path) as f: f.write(...)``; the file appears only if the block succeeds.

    A failure of the disk (full, read-only, I/O error) at any step raises ``OSError`` with the
    original ``errno`` and one line: ``Cannot write '<path>': <reason>; the previous file is
    unchanged`` (or ``nothing was written`` when there was none). A destination that is not a
    regular file (see the module docstring) is refused the same way before anything is created.
    """
    path = os.fspath(path)
    target = regular_destination(path)
    folder = os.path.dirname(os.path.abspath(target))
    previous = os.path.exists(target)
    with stop_signals_interrupt():
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
        except OSError as e:
            raise _write_error(e, path, previous) from e
        _live_temp_files.add(tmp)
        try:
            with os.fdopen(fd, mode) as f:
                # mkstemp makes 0600; a saved model should get the usual permissions. Some file systems
                # (FAT, some network mounts) refuse chmod: the file then keeps 0600 rather than not being written.
                with contextlib.suppress(OSError):
                    os.chmod(tmp, 0o666 & ~_umask())
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            if isinstance(e, OSError):
                raise _write_error(e, path, previous) from e
            raise
        finally:
            _live_temp_files.discard(tmp)
    _fsync_folder(folder)


def regular_destination(path: str) -> str:
    """The file a write to ``path`` replaces: ``path``, or the regular file a symbolic link there names.

    Raises ``OSError`` (``IsADirectoryError`` for a folder) naming ``path`` and what it holds when that is not
    a regular file, or a link to nothing; nothing is touched.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path  # a new file (a missing folder is reported by mkstemp)
    except OSError as e:
        raise _write_error(e, path, previous=False) from e
    target = path
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        try:
            st = os.stat(path)
        except OSError as e:
            if e.errno == errno.ELOOP:
                reason = "a loop of symbolic links"
            elif e.errno == errno.ENOENT:
                reason = f"a symbolic link to {target!r}, which does not exist"
            else:
                raise _write_error(e, path, previous=False) from e
            raise OSError(errno.EINVAL, f"Cannot write {path!r}: it is {reason}; convscope writes only regular files "
                                        "(nothing was written)") from e
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "an unknown kind of file")
        where = f"a symbolic link to {target!r}, {kind}" if target != path else kind
        code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
        raise OSError(code, f"Cannot write {path!r}: it is {where}, not a regular file; convscope writes only regular "
                            "files (nothing was written)")
    return target


@contextlib.contextmanager
def stop_signals_interrupt():
    """While the block runs, SIGTERM and SIGHUP raise ``Interrupted`` (a ``KeyboardInterrupt``) instead of
    ending the process at once: every ``except`` / ``finally`` on the way out runs, as for Ctrl-C.

    Only signals whose action is the default are taken over (an ignored SIGHUP under ``nohup``, or a handler
    of the program's own, is left as it is), only in the main thread (the only one Python lets install
    handlers; elsewhere the block changes nothing), and the previous actions are restored when the outermost
    block ends. Blocks nest.
    """
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) == signal.SIG_DFL:
                _installed[signum] = signal.signal(signum, _raise_interrupted)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            while _installed:
                signum, previous = _installed.popitem()
                signal.signal(signum, previous)


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


@atexit.register
def remove_live_temp_files() -> None:
    """Remove the temporary files of writes still in progress (threads cut off as the interpreter exits)."""
    for tmp in list(_live_temp_files):
        with contextlib.suppress(OSError):
            os.remove(tmp)
        _live_temp_files.discard(tmp)


def _write_error(e: OSError, path: str, previous: bool) -> OSError:
    """One line naming the path and the reason (an OSError without errno, e.g. io.UnsupportedOperation, included)."""
    reason = e.strerror or str(e) or type(e).__name__
    message = f"Cannot write {path!r}: {reason}; " + ("the previous file is unchanged" if previous else "nothing was written")
    return OSError(e.errno, message) if e.errno is not None else OSError(message)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: str) -> None:
    # Makes the rename itself durable; not every platform can open a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text(path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)
