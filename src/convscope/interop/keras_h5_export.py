"""convscope models as Keras's legacy HDF5 files: ``save_keras_h5(model, path)`` (``.h5`` / ``.hdf5``).

What Keras 3's ``model.save("x.h5")`` writes and ``keras.models.load_model`` reads:

* root attributes ``model_config`` (the model's config as JSON, in Keras's legacy form: objects as
  ``{"class_name", "config"}``, without the ``module`` / ``registered_name`` a ``.keras`` file names),
  ``training_config`` (JSON, only for a compiled model: the compile configuration, see
  ``compile_config``), ``keras_version`` and ``backend``;
* the group ``model_weights``: one group per layer of ``model.layers``, its ``weight_names``
  attribute listing its datasets (a nested model's weights all in its group, trainable ones first),
  plus an empty ``top_level_model_weights`` (``keras_weights.write_legacy``).

The optimizer's state is not written (``optimizer_weights`` is optional: Keras starts fresh).
Written atomically (``convscope.saving.atomic_write``).
"""

from __future__ import annotations

import io
import json

from ..saving import atomic_write
from .compile_config import keras_compile_config
from .keras_export import KERAS_FORMAT_VERSION, full_config
from .keras_weights import import_h5py, write_legacy


def save_keras_h5(model, path) -> None:
    """Write the built ``model`` to ``path`` as a legacy Keras HDF5 model file."""
    config = _legacy_form(full_config(model, "save", legacy=True))  # before anything is written
    training_config = keras_compile_config(model, legacy=True)
    h5py = import_h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["backend"] = "numpy"
        f.attrs["keras_version"] = KERAS_FORMAT_VERSION
        f.attrs["model_config"] = json.dumps(config)
        if training_config is not None:
            f.attrs["training_config"] = json.dumps(training_config)
        write_legacy(f.create_group("model_weights"), model, KERAS_FORMAT_VERSION)
    with atomic_write(path) as out:
        out.write(buffer.getvalue())


def _legacy_form(value):
    """``value`` without the keys Keras's legacy serialization does not write (``module``, ``registered_name``,
    ``build_config``) in any object (a dict with a ``class_name``)."""
    if isinstance(value, list):
        return [_legacy_form(item) for item in value]
    if not isinstance(value, dict):
        return value
    dropped = ("module", "registered_name", "build_config") if "class_name" in value else ()
    return {key: _legacy_form(item) for key, item in value.items() if key not in dropped}
