"""The memory budget every reader and every run checks before it allocates.

A hostile file can be honest about its sizes: a 1 MB model that declares 784 x 340,000
zero weights, deflated, is consistent and still asks for gigabytes. So readers compute what
they will allocate from the declared shapes (and dtypes) and call ``check`` before they
inflate or read anything; models check one batch's activation memory before they run.

The budget is ``DEFAULT_BYTES`` (1 GiB), raised (or lowered) for a whole process with the
environment variable ``CONVSCOPE_MAX_BYTES`` (bytes, or with a K/M/G/T suffix); ``check`` and ``limit`` take
``max_bytes=`` for one call (``datasets.idx.read_idx`` passes its ``max_memory=`` through).

    >>> check(nbytes((784, 1_000_000), 4), "dense/kernel (784, 1000000) float32")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: dense/kernel (784, 1000000) float32 would take 3.14 GB, above the memory budget of 1.07 GB ...
"""

from __future__ import annotations

import math
import os
import re

DEFAULT_BYTES = 2**30
ENVIRONMENT = "CONVSCOPE_MAX_BYTES"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def limit(max_bytes: int | None = None) -> int:
    """The budget in bytes: ``max_bytes`` if given, else ``$CONVSCOPE_MAX_BYTES``, else ``DEFAULT_BYTES``."""
    if max_bytes is not None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive integer number of bytes, received {max_bytes!r}")
        return max_bytes
    text = os.environ.get(ENVIRONMENT)
    if not text:
        return DEFAULT_BYTES
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"${ENVIRONMENT} must be a number of bytes (e.g. 4G, 512M, 2000000000), received {text!r}")
    size = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if size <= 0:
        raise ValueError(f"${ENVIRONMENT} must be a positive number of bytes (e.g. 4G, 512M), received {text!r}")
    return size


def nbytes(shape, itemsize: int) -> int:
    """Bytes of an array of ``shape`` and ``itemsize`` (exact integers: no overflow for hostile shapes)."""
    return math.prod(int(n) for n in shape) * int(itemsize)


FILE_HINT = "a file that declares more than it can honestly need is refused before anything is read"


def check(size: int, what: str, max_bytes: int | None = None, error=ValueError, hint: str = FILE_HINT) -> None:
    """Raise ``error`` (a reader passes its own: ``ModelFileError``, ``DataFileError``) naming ``what`` if ``size``
    bytes exceed the budget; nothing has been allocated yet. ``hint`` says why the check is made (by default:
    a file's declared sizes)."""
    budget = limit(max_bytes)
    if size > budget:
        raise error(f"{what} would take {human(size)}, above the memory budget of {human(budget)} ({hint}; for a "
                    f"genuinely big model raise the budget with ${ENVIRONMENT}, e.g. {ENVIRONMENT}=8G)")


def human(size: int) -> str:
    if size >= 10**18:  # a hostile shape's product may be beyond any float
        return f"about 10^{len(str(size)) - 1} bytes"
    return f"{size / 1e9:.3g} GB" if size >= 1e9 else f"{size / 1e6:.3g} MB" if size >= 1e6 else f"{size} bytes"
