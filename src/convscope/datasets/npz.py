"""Arrays from a ``.npz`` archive, each ``.npy`` header read and checked before any of its data.

``np.load`` trusts the archive: the shape a member's header declares is allocated before a byte of
data is read (a forged header asks for a terabyte), and ``npz["x"]`` prefers a raw member ``x`` to
``x.npy`` (bytes where an array was expected). ``NpzArchive`` opens the zip itself and

* knows an array only as a member ``<key>.npy``; a second member of that name, or a member ``<key>``
  beside it, is refused, since which one is meant cannot be told;
* parses the header (``.npy`` format 1.0 or 2.0, never a pickle) and accepts only the dtypes its
  caller names;
* requires header plus declared data to be exactly the member's size, so a header can never ask for
  more than the member holds; the caller adds up ``header(key).nbytes`` and checks the total against
  the memory budget (``convscope.budget``) before calling ``read``;
* reads the data in 1 MiB pieces straight into the array it allocated.

Every failure is a one-line ``DataFileError`` naming the file and the array.

    >>> with NpzArchive("mnist.npz") as npz:                        # doctest: +SKIP
    ...     npz.header("x_train", (np.uint8,)).shape
    (60000, 28, 28)
"""

from __future__ import annotations

import lzma
import os
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFileError

_PIECE = 2**20
# What zipfile and numpy's header parser raise for damaged, foreign or unsupported content: NotImplementedError
# for an unknown compression method, RuntimeError for an encrypted member, SyntaxError / TokenError for a
# header numpy cannot tokenize.
_DAMAGED = (zipfile.BadZipFile, OSError, EOFError, ValueError, SyntaxError, tokenize.TokenError, zlib.error,
            lzma.LZMAError, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class Header:
    """What a member's ``.npy`` header declares: ``shape``, ``dtype``, ``fortran_order``, the data's
    ``nbytes``, and ``offset``, where the data starts in the member."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    nbytes: int
    offset: int


class NpzArchive:
    """An open ``.npz`` file whose arrays are read one at a time (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, where: str | None = None):
        self.where = where or Path(path).name
        try:
            self._zip = zipfile.ZipFile(path)
        except _DAMAGED as exc:
            raise DataFileError(f"{self.where}: not a readable .npz file ({exc})") from None
        self.members = self._index()
        self._headers: dict[str, Header] = {}

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def _index(self) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        names = {info.filename for info in infos}
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[: -len(".npy")]
            if key in members:
                self.close()
                raise DataFileError(f"{self.where}: holds two members named {info.filename}; which one is meant "
                                    f"cannot be told")
            if key in names:
                self.close()
                raise DataFileError(f"{self.where}: holds both {key} and {key}.npy; which one is the array "
                                    f"cannot be told")
            members[key] = info
        return members

    def header(self, key: str, dtypes) -> Header:
        """The header of array ``key``, checked: a dtype among ``dtypes``, and data exactly filling the member."""
        if key in self._headers:
            return self._headers[key]
        info = self._member(key)
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise DataFileError(f"{self.where}: {key} uses unsupported .npy format version {version}")
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, fortran_order, dtype = reader(f)
                offset = f.tell()
        except DataFileError:
            raise
        except _DAMAGED as exc:
            raise DataFileError(f"{self.where}: {key} is not a readable .npy array ({exc})") from None
        if any(d < 0 for d in shape):
            raise DataFileError(f"{self.where}: {key} declares shape {tuple(shape)}, with a negative dimension")
        if not any(dtype.newbyteorder("=") == np.dtype(allowed) for allowed in dtypes):
            names = ", ".join(np.dtype(allowed).name for allowed in dtypes)
            raise DataFileError(f"{self.where}: {key} has dtype {dtype}, expected {names}")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize  # exact: int64 wraps for hostile shapes
        held = info.file_size - offset
        if nbytes != held:
            which = "more" if nbytes > held else "fewer"
            raise DataFileError(f"{self.where}: {key} declares shape {tuple(shape)} of {dtype} ({nbytes} bytes), "
                                f"{which} values than its {held} bytes hold")
        self._headers[key] = Header(tuple(shape), dtype, fortran_order, nbytes, offset)
        return self._headers[key]

    def read(self, key: str, dtypes) -> np.ndarray:
        """Array ``key`` (native byte order), allocated as its checked header declares and filled from the member."""
        head = self.header(key, dtypes)
        flat = np.empty(head.nbytes // head.dtype.itemsize, head.dtype)
        buffer = memoryview(flat).cast("B")
        try:
            with self._zip.open(self._member(key)) as f:
                f.read(head.offset)
                filled = 0
                while filled < head.nbytes:
                    piece = f.read(min(_PIECE, head.nbytes - filled))
                    if not piece:
                        raise DataFileError(f"{self.where}: {key} ends after {filled} of its {head.nbytes} bytes")
                    buffer[filled : filled + len(piece)] = piece
                    filled += len(piece)
                f.read(1)  # reaching the end makes zipfile check the member's CRC
        except DataFileError:
            raise
        except _DAMAGED as exc:
            raise DataFileError(f"{self.where}: {key} is damaged ({exc})") from None
        if not head.dtype.isnative:
            flat = flat.astype(head.dtype.newbyteorder("="))
        if head.fortran_order:
            return flat.reshape(head.shape[::-1]).transpose()
        return flat.reshape(head.shape)

    def _member(self, key: str) -> zipfile.ZipInfo:
        if key not in self.members:
            raise DataFileError(f"{self.where}: has no array {key}")
        return self.members[key]
