"""convscope models as Keras 3 files: ``save_keras(model, path)`` (``.keras``) and ``save_keras_weights``.

The ``.keras`` archive holds what Keras 3 itself writes (and reads back with ``keras.models.load_model``):

* ``config.json``: the model's config (``keras_graph.keras_model_config``: Sequential or functional,
  nested models included) and, for a compiled model, ``"compile_config"`` in Keras's form
  (``compile_config``), so that Keras loads the model compiled, ready for ``evaluate`` and ``fit``.
* ``metadata.json``: ``{"keras_version", "date_saved"}`` (Keras reads neither when loading).
* ``model.weights.h5``: ``layers/<path>/vars/<i>`` (``keras_weights.write_keras3``): ``<path>`` is the
  snake-case Keras class name numbered per class (``conv2d``, ``conv2d_1``; a nested model's layers
  under ``sequential/layers/...``), the parameters in convscope's order, which is Keras's; the arrays
  are written as they are, since the layouts are the same (Normalization's integer ``count`` included:
  Keras casts it to its own integer type). The optimizer's state is not written: Keras starts the
  loaded model's optimizer fresh.

A ``.weights.h5`` file (``save_keras_weights``, ``model.save_weights``) is that same HDF5 file alone.
Subclassed models are refused (their ``call`` is Python code). Written atomically
(``convscope.saving.atomic_write``).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zipfile

from .. import __version__
from ..saving import atomic_write
from .compile_config import keras_compile_config
from .keras_graph import keras_model_config
from .keras_import import CONFIG_MEMBER, WEIGHTS_MEMBER
from .keras_weights import import_h5py, write_keras3

KERAS_FORMAT_VERSION = "3.0.0"
"""Written as ``keras_version``: the first Keras release that reads this layout."""
WEIGHTS_SUFFIX = ".weights.h5"


def save_keras(model, path) -> None:
    """Write the built ``model`` to ``path`` as a Keras 3 ``.keras`` file."""
    config = full_config(model, "save_keras")  # first, so an unsupported layer fails before anything is written
    metadata = {
        "keras_version": KERAS_FORMAT_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "saved_by": f"convscope {__version__}",
    }
    weights = _weights_h5(model)
    with atomic_write(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps(metadata))
        zf.writestr(CONFIG_MEMBER, json.dumps(config))
        zf.writestr(WEIGHTS_MEMBER, weights)


def full_config(model, what: str, legacy: bool = False) -> dict:
    """The model's Keras config with its compile configuration (``compile_config``; ``legacy``: none, the
    caller writes ``training_config``); a ValueError naming ``what`` for an unbuilt model."""
    if not model.built:
        raise ValueError(f'{what}: model "{model.name}" has not been built; call it on data or give it an Input first')
    config = keras_model_config(model)
    compile_config = None if legacy else keras_compile_config(model)
    if compile_config is not None:
        config["compile_config"] = compile_config
    return config


def save_keras_weights(model, path) -> None:
    """Write the built ``model``'s weights to ``path`` (``.weights.h5``) as Keras 3's ``save_weights`` does."""
    if not os.fspath(path).endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"The filename must end in `{WEIGHTS_SUFFIX}`. Received: filepath={os.fspath(path)}")
    if not model.built:
        raise ValueError(
            f'save_weights: model "{model.name}" has not been built; call it on data or give it an Input first'
        )
    weights = _weights_h5(model)
    with atomic_write(path) as f:
        f.write(weights)


def _weights_h5(model) -> bytes:
    h5py = import_h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        write_keras3(f, model)
    return buffer.getvalue()
