"""Atomic file writes: a crash or a full disk never leaves a half-written file under the final name.

The content goes to a temporary file in the destination's folder (so the final
``os.replace`` is a rename on one file system, atomic on POSIX and Windows),
is flushed and fsynced, and only then replaces the destination. On any error
the temporary file is removed and the previous file, if any, is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """``with atomic_write(path) as f: f.write(...)``; the file appears only if the block succeeds.

    A failure of the disk (full, read-only, I/O error) at any step raises ``OSError`` with the
    original ``errno`` and one line: ``Cannot write '<path>': <reason>; the previous file is
    unchanged`` (or ``nothing was written`` when there was none).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    previous = os.path.exists(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as e:
        raise _write_error(e, path, previous) from e
    try:
        with os.fdopen(fd, mode) as f:
            # mkstemp makes 0600; a saved model should get the usual permissions. Some file systems
            # (FAT, some network mounts) refuse chmod: the file then keeps 0600 rather than not being written.
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o666 & ~_umask())
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise _write_error(e, path, previous) from e
        raise
    _fsync_folder(folder)


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
