"""Find and load MNIST-style datasets: the lookup order and the IDX / npz readers behind ``load_data``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import budget
from ..errors import DataFileError
from . import download, idx, npz

#: Folders that system packages install datasets into, searched after the cache.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    # Debian's dataset-fashion-mnist package installs the four standard .gz files here.
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

Split = tuple[np.ndarray, np.ndarray]


def candidate_dirs(name: str) -> list[Path]:
    """Folders searched for dataset ``name``, in order: ``$CONVSCOPE_DATA/<name>``, the cache, system folders."""
    dirs = []
    root = os.environ.get("CONVSCOPE_DATA")
    if root:
        dirs.append(Path(root).expanduser() / name)
    dirs.append(download.cache_dir(name))
    dirs.extend(SYSTEM_DIRS.get(name, ()))
    return dirs


def find_local(name: str) -> Path | None:
    """The first folder in ``candidate_dirs(name)`` holding all four IDX files, or ``None``; never downloads."""
    for folder in candidate_dirs(name):
        if all(download.local_file(folder, f) for f in download.FILE_NAMES):
            return folder
    return None


def load(name: str, path: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """``((x_train, y_train), (x_test, y_test))`` of dataset ``name``: uint8 ``(n, 28, 28)`` images, uint8 ``(n,)`` labels.

    ``path`` names a folder with the four IDX files or a Keras-style ``.npz``;
    without it the local folders are searched, then the files are downloaded
    into the cache.
    """
    if path is None:
        path = find_local(name) or download.download(name)
    path = Path(path)
    if path.is_dir():
        return load_idx_folder(path)
    if path.is_file():
        return load_npz(path)
    raise DataFileError(f"{path}: no such file or folder")


def load_idx_folder(folder: str | os.PathLike) -> tuple[Split, Split]:
    """Read the four standard IDX files (each ``.gz`` or not) from ``folder``."""
    paths = [download.local_file(folder, f) for f in download.FILE_NAMES]
    missing = [f for f, p in zip(download.FILE_NAMES, paths) if p is None]
    if missing:
        raise DataFileError(f"{folder}: missing {', '.join(missing)} (each may be gzip-compressed as .gz)")
    train = _checked(idx.read_pair(paths[0], paths[1]), f"{folder} (train)")
    test = _checked(idx.read_pair(paths[2], paths[3]), f"{folder} (test)")
    return train, test


def load_npz(path: str | os.PathLike, *, max_bytes: int = 4 * idx.MAX_BYTES) -> tuple[Split, Split]:
    """Read a Keras-style ``mnist.npz`` holding uint8 arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    Array headers are checked before anything is allocated (``npz.NpzArchive``), so neither a
    pickled object array, nor a header that claims a huge shape, nor a raw member named like an
    array gets loaded; together the arrays may take at most ``max_bytes`` and the memory budget.
    """
    path = Path(path)
    with npz.NpzArchive(path) as archive:
        missing = [key for key in NPZ_KEYS if key not in archive.members]
        if missing:
            raise DataFileError(f"{path.name}: missing arrays {', '.join(missing)} (expected {', '.join(NPZ_KEYS)})")
        total = sum(archive.header(key, (np.uint8,)).nbytes for key in NPZ_KEYS)
        if total > max_bytes:
            raise DataFileError(f"{path.name}: arrays hold more than the {max_bytes}-byte limit")
        budget.check(total, f"{path.name}: its four arrays", error=DataFileError)
        arrays = {key: archive.read(key, (np.uint8,)) for key in NPZ_KEYS}
    train = _checked((arrays["x_train"], arrays["y_train"]), f"{path.name} (train)")
    test = _checked((arrays["x_test"], arrays["y_test"]), f"{path.name} (test)")
    return train, test


def _checked(split: Split, where: str) -> Split:
    """Check a split is MNIST-shaped: uint8 ``(n, 28, 28)`` images, uint8 ``(n,)`` labels below 10."""
    x, y = split
    if x.dtype != np.uint8 or y.dtype != np.uint8:
        raise DataFileError(f"{where}: expected uint8 arrays, found images {x.dtype}, labels {y.dtype}")
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise DataFileError(f"{where}: expected images shaped (n, 28, 28), found {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataFileError(f"{where}: expected labels shaped ({len(x)},) to match the images, found {y.shape}")
    if y.size and y.max() >= NUM_CLASSES:
        raise DataFileError(f"{where}: labels must lie in [0, {NUM_CLASSES}), found {y.max()}")
    return x, y
