"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a header then raw data: two zero bytes, a type byte (only
``0x08``, unsigned byte, is supported), a byte holding the number of
dimensions, one big-endian uint32 per dimension, then the values in C order.
MNIST image files thus start with the magic number 2051 (``0x00000803``: uint8,
3 dimensions ``(n, rows, cols)``) and label files with 2049 (``0x00000801``:
uint8, 1 dimension ``(n,)``).

Files may be gzip-compressed (recognised by their content, whatever the file
name says). Decompressed content is capped at ``max_bytes`` so that a small
hostile ``.gz`` cannot fill memory; ``read_idx`` reads the header first and
allocates what it declares only within ``max_bytes`` and the memory budget
(``convscope.budget``), so memory never exceeds the declared array plus one
1 MiB chunk, whatever the stream holds after it.
"""

from __future__ import annotations

import gzip
import itertools
import math
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import budget
from ..atomic import atomic_write
from ..errors import DataFileError

UINT8 = 0x08
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
# The largest standard file, MNIST's training images, is 47,040,016 bytes.
MAX_BYTES = 100 * 2**20
MAX_NDIM = 32  # NumPy 1 arrays have at most 32 dimensions (NumPy 2: 64); MNIST files have 1 or 3

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 2**20


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` starts with the gzip signature."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def iter_bytes(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> Iterator[bytes]:
    """Yield the file's content in chunks, decompressed if it is gzip.

    Raises ``DataFileError`` once more than ``max_bytes`` bytes have come out,
    or when the gzip stream is damaged or truncated.
    """
    name = Path(path).name
    gzipped = is_gzip(path)
    opener = gzip.open if gzipped else open
    total = 0
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    what = "decompresses to" if gzipped else "holds"
                    raise DataFileError(f"{name}: {what} more than the {max_bytes}-byte limit")
                yield chunk
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataFileError(f"{name}: damaged or truncated gzip data ({exc})") from exc


def parse_idx(data: bytes | bytearray, name: str = "IDX data") -> np.ndarray:
    """Decode IDX bytes into a uint8 array shaped as the header declares.

    The array shares ``data``'s memory, so it is writable when ``data`` is a
    ``bytearray``. Raises ``DataFileError`` for a bad magic number, an
    unsupported type, a truncated header, or a data size that differs from
    the one the dimensions declare.
    """
    shape, offset = _header(data, name)
    expected = math.prod(shape)  # exact: np.prod in int64 wraps around for dimensions like (65536,) * 4
    _check_size(name, shape, expected, len(data) - offset)
    return _shaped(np.frombuffer(data, dtype=np.uint8, offset=offset), shape, name)


def _header(data, name: str) -> tuple[tuple[int, ...], int]:
    """``(shape, data offset)`` from the start of an IDX file; ``DataFileError`` if it is not a whole IDX header."""
    if len(data) < 4:
        raise DataFileError(f"{name}: {len(data)} bytes is too short for an IDX header")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    magic = int.from_bytes(data[:4], "big")
    if zero != 0:
        raise DataFileError(
            f"{name}: bad magic number 0x{magic:08x}, not an IDX file (its first two bytes must be 0)"
        )
    if dtype != UINT8:
        raise DataFileError(f"{name}: unsupported IDX data type 0x{dtype:02x} (only 0x08, unsigned byte)")
    if ndim == 0:
        raise DataFileError(f"{name}: IDX header declares 0 dimensions")
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise DataFileError(
            f"{name}: truncated header, {ndim} dimensions need {offset} bytes but the file holds {len(data)}"
        )
    return struct.unpack(f">{ndim}I", data[4:offset]), offset


def _check_size(name: str, shape, expected: int, actual: int) -> None:
    if actual != expected:
        problem = "truncated" if actual < expected else "trailing bytes"
        raise DataFileError(
            f"{name}: {problem}: dimensions {shape} declare {expected} data bytes but the file holds {actual}"
        )


def _shaped(flat: np.ndarray, shape, name: str) -> np.ndarray:
    if len(shape) > MAX_NDIM:
        raise DataFileError(f"{name}: IDX header declares {len(shape)} dimensions; arrays have at most {MAX_NDIM}")
    try:
        return flat.reshape(shape)
    except ValueError as exc:  # e.g. (0, 2**31, 2**31, ...): no data, but a shape NumPy cannot describe
        raise DataFileError(f"{name}: dimensions {shape} do not describe an array NumPy can hold ({exc})") from exc


def read_idx(
    path: str | os.PathLike, *, magic: int | None = None, max_bytes: int = MAX_BYTES, max_memory: int | None = None
) -> np.ndarray:
    """Read an IDX file (gzip or not) as a writable uint8 array.

    ``magic``, when given, is the magic number the file must have, e.g.
    ``IMAGES_MAGIC`` for ``(n, rows, cols)`` images or ``LABELS_MAGIC`` for
    ``(n,)`` labels. The header is read first: the array its dimensions
    declare is allocated only if it fits within ``max_bytes`` and the memory
    budget (``convscope.budget``; ``max_memory`` overrides it), and the data
    then fills it; a stream longer than declared is counted, never kept.
    """
    name = Path(path).name
    if not Path(path).is_file():
        raise DataFileError(f"{path}: no such file")
    chunks = iter_bytes(path, max_bytes)
    head = bytearray()
    for chunk in chunks:  # the first chunk (1 MiB) holds any header (at most 4 + 4 * 255 bytes)
        head += chunk
        if len(head) >= 4 and len(head) >= 4 + 4 * head[3]:
            break
    if magic is not None and len(head) >= 4:
        found = int.from_bytes(head[:4], "big")
        if found != magic:
            raise DataFileError(f"{name}: bad magic number {found} (0x{found:08x}), expected {magic} (0x{magic:08x})")
    shape, offset = _header(head, name)
    expected = math.prod(shape)
    if offset + expected > max_bytes:
        # More than the file may hold: it is truncated, or iter_bytes refuses it once max_bytes have come out.
        _check_size(name, shape, expected, len(head) - offset + sum(len(c) for c in chunks))
    budget.check(expected, f"{name}: IDX data of dimensions {shape}", max_memory, error=DataFileError)
    flat = np.empty(expected, np.uint8)
    filled = _fill(flat, memoryview(head)[offset:], chunks)
    if filled < expected:
        _check_size(name, shape, expected, filled)
    rest = filled - expected + sum(len(c) for c in chunks)
    _check_size(name, shape, expected, expected + rest)
    return _shaped(flat, shape, name)


def _fill(flat: np.ndarray, first, chunks) -> int:
    """Copy ``first`` then ``chunks`` into ``flat`` until it is full; how many bytes came (beyond it: counted)."""
    filled = 0
    for piece in itertools.chain((first,), chunks):
        take = min(len(piece), len(flat) - filled)
        flat[filled : filled + take] = np.frombuffer(piece, np.uint8, count=take)
        filled += len(piece)
        if filled >= len(flat):
            break
    return filled


def read_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike, *, max_bytes: int = MAX_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label files as ``(x, y)``: uint8 ``(n, rows, cols)`` and ``(n,)``."""
    x = read_idx(images_path, magic=IMAGES_MAGIC, max_bytes=max_bytes)
    y = read_idx(labels_path, magic=LABELS_MAGIC, max_bytes=max_bytes)
    if len(x) != len(y):
        raise DataFileError(
            f"{Path(images_path).name} holds {len(x)} images but {Path(labels_path).name} holds {len(y)} labels"
        )
    return x, y


def write_idx(path: str | os.PathLike, array) -> None:
    """Write a uint8 array of 1 to 255 dimensions as IDX, gzip-compressed when ``path`` ends in ``.gz``."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"write_idx: expected a uint8 array, received dtype {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: expected 1 to 255 dimensions, received {array.ndim}")
    header = struct.pack(f">HBB{array.ndim}I", 0, UINT8, array.ndim, *array.shape)
    payload = header + np.ascontiguousarray(array).tobytes()
    if str(path).endswith(".gz"):
        # mtime=0 makes the output reproducible byte for byte.
        payload = gzip.compress(payload, mtime=0)
    with atomic_write(path) as f:   # a regular file only, never half written
        f.write(payload)
