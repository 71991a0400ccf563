"""Which code reads and writes which file: the one place where a file's suffix picks its format.

The engine (``Model.save``, ``Model.save_weights``, ``Model.export_onnx``, ...) and the loaders
look formats up here and import none of them, so the engine never depends on the tools built on
it: ``convscope.saving`` registers the native ``.convscope`` format and ``convscope.interop``
registers Keras's ``.keras`` / ``.h5`` / ``.hdf5`` files, Keras's ``.weights.h5`` weights files and
the ONNX export when they are imported (``import convscope`` imports both; neither needs more
than NumPy until a file is actually read or written).

``model.save(path)`` chooses by suffix, as Keras 3 does, and refuses a name with no registered
suffix (a ValueError listing them); ``load_model`` reads any file no loader claims with the
native reader, which says clearly when a file is not one of its own.
"""

from __future__ import annotations

import os

_loaders: dict[str, object] = {}
_savers: dict[str, object] = {}
_exporters: dict[str, object] = {}
_default: dict[str, object] = {}


def register_loader(suffixes, load) -> None:
    """``load(path, compile=...)`` reads files whose name ends with one of ``suffixes`` (lower case)."""
    for suffix in suffixes:
        _loaders[suffix] = load


def register_saver(suffixes, save) -> None:
    """``save(model, path)`` writes files whose name ends with one of ``suffixes`` (lower case)."""
    for suffix in suffixes:
        _savers[suffix] = save


def register_default(save, load, suffix: str) -> None:
    """The native format: ``save(model, path)`` for ``suffix``, ``load`` for suffixes no one else claimed."""
    _default["load"] = load
    register_saver((suffix,), save)


def register_exporter(kind: str, export) -> None:
    """``export(model, path)`` for ``model.save_keras`` ("keras"), ``model.export_onnx`` ("onnx"),
    ``model.save_weights`` ("weights"); ``export(model, path)`` that reads for ``model.load_weights``
    ("load_weights")."""
    _exporters[kind] = export


def _matching(table: dict, path):
    name = os.fspath(path).lower()
    # The longest suffix first: ".weights.h5" before ".h5".
    for suffix in sorted(table, key=len, reverse=True):
        if name.endswith(suffix):
            return table[suffix]
    return None


def loader_for(path):
    return _matching(_loaders, path) or _default["load"]


def saver_for(path):
    """The writer ``model.save(path)`` uses, or a ValueError naming the suffixes that have one."""
    save = _matching(_savers, path)
    if save is None:
        raise ValueError(
            f"Invalid filepath extension for saving: {os.fspath(path)!r}. Use one of "
            f"{', '.join(sorted(_savers))} (.convscope: convscope's own file, with the optimizer's state; "
            ".keras: a Keras 3 archive; .h5 / .hdf5: Keras's legacy HDF5 file)"
        )
    return save


def exporter(kind: str):
    if kind not in _exporters:
        raise ImportError(f"no {kind} exporter is registered: import convscope.interop (pip install 'convscope[interop]')")
    return _exporters[kind]
