"""Which code reads and writes which file: the one place where a file's suffix picks its format.

The engine (``Model.save``, ``Model.export_onnx``, ...) and the loaders look formats up
here and import none of them, so the engine never depends on the tools built on it:
``convscope.saving`` registers the native ``.convscope`` format (the default for every
other suffix) and ``convscope.interop`` registers Keras's ``.keras`` / ``.h5`` files and
the ONNX export when they are imported (``import convscope`` imports both; neither needs
more than NumPy until a file is actually read or written).
"""

from __future__ import annotations

import os

_loaders: dict[str, object] = {}
_exporters: dict[str, object] = {}
_default: dict[str, object] = {}


def register_loader(suffixes, load) -> None:
    """``load(path, compile=...)`` reads files whose name ends with one of ``suffixes`` (lower case)."""
    for suffix in suffixes:
        _loaders[suffix] = load


def register_default(save, load) -> None:
    """The native format: ``save(model, path)`` for every save, ``load`` for suffixes no one else claimed."""
    _default.update(save=save, load=load)


def register_exporter(kind: str, export) -> None:
    """``export(model, path)`` for ``model.save_keras`` ("keras") and ``model.export_onnx`` ("onnx")."""
    _exporters[kind] = export


def loader_for(path):
    name = os.fspath(path).lower()
    for suffix, load in _loaders.items():
        if name.endswith(suffix):
            return load
    return _default["load"]


def saver():
    return _default["save"]


def exporter(kind: str):
    if kind not in _exporters:
        raise ImportError(f"no {kind} exporter is registered: import convscope.interop (pip install 'convscope[interop]')")
    return _exporters[kind]
