"""The compile configuration in Keras files: what ``compile`` was given, in Keras's form, both ways.

Keras 3 ``.keras`` files hold it as ``config.json``'s ``"compile_config"``::

    {"optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {...}, "registered_name": null},
     "loss": "sparse_categorical_crossentropy" | {"module": "keras.losses", "class_name", "config", ...} | [...],
     "loss_weights": null | [...] | {...}, "metrics": ["accuracy", {"module": "keras.metrics", ...}],
     "weighted_metrics": null, "run_eagerly": false, "steps_per_execution": 1, "jit_compile": false}

and legacy HDF5 files as the root attribute ``training_config``: the same keys, the optimizer under
``"optimizer_config"`` and objects as ``{"class_name", "config"}`` (Keras's legacy serialization).
Losses and metrics are written as ``compile`` received them: a name stays a name (Keras resolves
``"accuracy"`` from the loss as convscope does), an object becomes its class and config, a Python
function its name (as Keras writes it: loading then fails, in Keras as here, unless the name is a
built-in loss; ``compile=False`` skips it).

Reading never imports anything the file names: optimizers, losses and metrics are looked up by class
name in convscope's closed registries (``optimizers.get``, ``losses.get``, ``metrics.get``), which read
Keras's configs. The optimizer starts fresh: Keras's optimizer variables are not read (training goes
on with new moments, as after ``compile`` in Keras).
"""

from __future__ import annotations

from .. import losses, metrics, optimizers
from ..errors import ModelFileError

_RUN_OPTIONS = {"weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def keras_compile_config(model, legacy: bool = False):
    """``compile_config`` (or, ``legacy``, ``training_config``) of a compiled model; None if not compiled."""
    if model.optimizer is None:
        return None
    loss, loss_weights, metric_args = model._compile_args
    optimizer = _object(optimizers.serialize(model.optimizer), "keras.optimizers", legacy)
    config = {
        "loss": _each(loss, lambda item: _serialized(item, losses.Loss, losses.serialize, "keras.losses", legacy)),
        "loss_weights": loss_weights,
        "metrics": _each(metric_args, lambda item: _serialized(item, metrics.Metric, _metric_config,
                                                               "keras.metrics", legacy)),
        **_RUN_OPTIONS,
    }
    if legacy:
        return {**config, "optimizer_config": optimizer}
    return {"optimizer": optimizer, **config}


def compile_from_keras(model, config, source: str) -> None:
    """Compile ``model`` as a Keras file's ``compile_config`` / ``training_config`` says; nothing if it has no loss."""
    if not isinstance(config, dict) or config.get("loss") is None:
        return
    try:
        weighted = config.get("weighted_metrics")
        if weighted:
            raise ValueError(f"weighted_metrics {weighted!r} are not supported")
        optimizer = config.get("optimizer", config.get("optimizer_config", "rmsprop"))
        model.compile(
            optimizer=optimizers.get(_plain(optimizer)),
            loss=_each(config["loss"], lambda item: _instance(item, losses.get)),
            metrics=_each(config.get("metrics"), lambda item: _instance(item, metrics.get)),
            loss_weights=config.get("loss_weights"),
        )
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise ModelFileError(
            f"{source}: its compile configuration cannot be restored: {e}. "
            "Load it with compile=False and call compile yourself"
        ) from e


def _each(value, convert):
    """``convert`` applied to each loss / metric in ``value``, nested as ``compile`` takes them (lists, dicts)."""
    if isinstance(value, dict) and "class_name" not in value:
        return {key: _each(item, convert) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_each(item, convert) for item in value]
    return None if value is None else convert(value)


def _metric_config(metric) -> dict:
    # Keras's metrics record their dtype; convscope's results are Python floats, computed in float64.
    return {"class_name": type(metric).__name__, "config": {**metric.get_config(), "dtype": "float32"}}


def _serialized(item, cls, serialize, module: str, legacy: bool):
    if isinstance(item, cls):
        return _object(serialize(item), module, legacy)
    if isinstance(item, dict):
        return _object(item, module, legacy)
    if callable(item):
        # A Python function: Keras too records only its name, which loading must find again (a ModelFileError here).
        name = getattr(item, "__name__", type(item).__name__)
        module = getattr(item, "__module__", None) or ""
        # convscope's own functions (losses.sparse_categorical_crossentropy, ...) are Keras's: Keras writes "builtins"
        module = "builtins" if module.split(".")[0] == "convscope" else module
        return name if legacy else {"module": module, "class_name": "function", "config": name,
                                    "registered_name": "function"}
    return item  # a name: Keras resolves it as convscope did


def _object(spec: dict, module: str, legacy: bool) -> dict:
    spec = {"class_name": spec["class_name"], "config": spec.get("config") or {}}
    return spec if legacy else {"module": module, **spec, "registered_name": None}


def _instance(item, get):
    """A name as it is (``compile`` resolves it, "accuracy" from the loss); an object through the registry ``get``."""
    plain = _plain(item)
    return get(plain) if isinstance(plain, dict) else plain


def _plain(item):
    """A name, or a ``{"class_name", "config"}`` dict for the registries (Keras's module and registry names dropped)."""
    if not isinstance(item, dict):
        return item
    if item.get("class_name") == "function":  # a Keras loss or metric function, serialized by its name
        return item.get("config")
    return {"class_name": item.get("class_name"), "config": item.get("config") or {}}
