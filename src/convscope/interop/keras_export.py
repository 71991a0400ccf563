"""convscope models as Keras 3 ``.keras`` files: ``save_keras(model, path)``.

The archive holds what Keras 3 itself writes for a Sequential model (and reads back with
``keras.models.load_model``):

* ``config.json``: ``{"module": "keras", "class_name": "Sequential", "config": {"name",
  "layers": [InputLayer(batch_shape=[None, *input shape]), each layer as
  ``keras_config.keras_layer_config``]}, "build_config": ...}``. No ``compile_config``:
  an exported model is for inference or for compiling anew in Keras.
* ``metadata.json``: ``{"keras_version", "date_saved"}`` (Keras reads neither when loading).
* ``model.weights.h5``: ``layers/<path>/vars/<i>`` with ``<path>`` from ``keras_paths``
  (the registry's snake-case Keras class name, numbered per class) and the parameters in
  convscope's order, which is Keras's; the arrays are written as they are, since the layouts are
  the same (Normalization's integer ``count`` included: Keras casts it to its own integer type).

Only ``Sequential`` models are written: a functional graph (merging layers, branches) is refused.

Written atomically (``convscope.saving.atomic_write``).
"""

from __future__ import annotations

import datetime
import io
import json
import zipfile

from .. import __version__, backend
from ..saving import atomic_write
from .keras_config import INPUT_LAYER, keras_layer_config
from .keras_import import CONFIG_MEMBER, WEIGHTS_MEMBER
from .keras_weights import import_h5py, keras_paths

KERAS_FORMAT_VERSION = "3.0.0"
"""Written as ``keras_version``: the first Keras release that reads this layout."""


def save_keras(model, path) -> None:
    """Write the built ``model`` to ``path`` as a Keras 3 ``.keras`` file."""
    from ..models import Sequential

    if not isinstance(model, Sequential):
        raise ValueError(
            f'save_keras: model "{model.name}" is a functional {type(model).__name__}; convscope writes Keras '
            "Sequential models only (not yet functional graphs)"
        )
    if not model.built:
        raise ValueError(f'save_keras: model "{model.name}" has not been built; call it on data or give it an Input first')
    config = keras_model_config(model)  # first, so an unsupported layer fails before anything is written
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


def keras_model_config(model) -> dict:
    """The ``config.json`` Keras 3 writes for the same Sequential model."""
    batch_shape = [None, *model.input_shape[1:]]
    input_layer = {
        "module": "keras.layers",
        "class_name": INPUT_LAYER,
        "config": {"batch_shape": batch_shape, "dtype": backend.floatx(), "sparse": False, "name": "input_layer"},
        "registered_name": None,
    }
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": model.name,
            "trainable": True,
            "layers": [input_layer, *(keras_layer_config(layer) for layer in model.layers)],
        },
        "registered_name": None,
        "build_config": {"input_shape": batch_shape},
    }


def _weights_h5(model) -> bytes:
    h5py = import_h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_group("vars").attrs["name"] = model.name  # the model's own variables: none
        for layer, path in zip(model.layers, keras_paths(model.layers)):
            group = f.create_group(f"{path}/vars")
            group.attrs["name"] = layer.name
            for i, param in enumerate(layer.parameters):
                group.create_dataset(str(i), data=param.value)
    return buffer.getvalue()
