"""Keras model configs <-> convscope layers, read as data: no code, no imports named by the file.

A Keras config is JSON: ``{"class_name": "Sequential" | "Functional" | "Model", "config":
{"name", "layers": [{"class_name", "config", ...}, ...], ...}}``. Each layer's class name
is looked up in ``KERAS_LAYERS`` (the Keras layers convscope has, with the same names and
the same meaning) and only the arguments listed there are read; anything else is
refused with a ``ModelFileError`` naming the layer and listing what is supported.

* Sequential: the layers in order; the input shape from a leading InputLayer
  (``batch_shape`` in Keras 3, ``batch_input_shape`` in Keras 2) or ``build_input_shape``.
* Functional ("Functional", Keras 2's "Model"): only a simple chain, one input, one
  output, every layer fed by exactly the one before it (Keras 3 ``inbound_nodes``
  ``[{"args": [tensor], "kwargs": {}}]``, Keras 2 ``[[[name, 0, 0, {}]]]``).
* Arguments that change the result and that convscope does not implement must have
  their neutral value (``REQUIRED_VALUES``: channels_last, no keepdims, no renorm, ...);
  regularizers, constraints and initializers only matter for training from scratch
  and are ignored (the weights come from the file).
* Layers compute in float32 or float64 (a ``mixed_float16`` / ``bfloat16`` policy is refused).

``keras_layer_config`` goes the other way, for ``save_keras``: the same argument names,
plus ``data_format="channels_last"`` where Keras has one.
"""

from __future__ import annotations

from .. import backend
from ..errors import ModelFileError
from ..layers import LAYER_CLASSES

_IMAGE = ("data_format",)
KERAS_LAYERS = {
    # Keras class name: the config keys convscope's layer of the same name takes.
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "activation", "use_bias"),
    "Dense": ("units", "activation", "use_bias"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    "GlobalAveragePooling2D": (),
    "GlobalMaxPooling2D": (),
    "Flatten": (),
    "Dropout": ("rate", "noise_shape", "seed"),
    "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "Rescaling": ("scale", "offset"),
}
HAS_DATA_FORMAT = {"Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten"}
REQUIRED_VALUES = {
    # Keras arguments convscope does not implement: accepted only at the value that means "off".
    "data_format": ("channels_last", None),
    "keepdims": (False, None),
    "renorm": (False, None),
    "virtual_batch_size": (None,),
    "adjustment": (None,),
    "lora_rank": (None,),
    "quantization_config": (None,),
}
FLOAT_POLICIES = ("float32", "float64")
SUPPORTED = ", ".join(sorted([*KERAS_LAYERS, "InputLayer"]))


class KerasArchitecture:
    """What a Keras config describes, as convscope objects: a name, the input shape (no batch axis), the layers."""

    def __init__(self, name: str, input_shape: tuple, layers: list):
        self.name, self.input_shape, self.layers = name, input_shape, layers


def architecture_from_config(config, source: str) -> KerasArchitecture:
    """The convscope layers of a Keras model config (the parsed ``config.json`` or ``model_config``)."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ModelFileError(f"{source}: the model config is not a Keras model description")
    kind, body = config.get("class_name"), config["config"]
    _check_builtin(config, kind, source)
    specs = body.get("layers")
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ModelFileError(f"{source}: the model config has no list of layers")
    if kind == "Sequential":
        specs, input_shape = _sequential(specs, body, config, source)
    elif kind in ("Functional", "Model"):
        specs, input_shape = _chain(specs, body, source)
    else:
        raise ModelFileError(f"{source}: a Keras {kind!r} model; convscope reads Sequential and Functional models")
    name = body.get("name") if isinstance(body.get("name"), str) else None
    return KerasArchitecture(name, input_shape, [_layer(spec, source) for spec in specs])


def keras_layer_config(layer) -> dict:
    """The Keras 3 serialization (``{"module", "class_name", "config", "registered_name"}``) of a convscope layer."""
    kind = type(layer).__name__
    if kind not in KERAS_LAYERS:
        raise ValueError(f'Layer "{layer.name}" ({kind}) has no Keras equivalent; Keras has: {SUPPORTED}')
    ours = layer.get_config()
    config = {"name": layer.name, "trainable": layer.trainable, "dtype": _dtype_of(layer)}
    config.update({key: ours[key] for key in KERAS_LAYERS[kind]})
    if kind in HAS_DATA_FORMAT:
        config["data_format"] = "channels_last"
    return {"module": "keras.layers", "class_name": kind, "config": config, "registered_name": None}


def _dtype_of(layer) -> str:
    return layer.parameters[0].value.dtype.name if layer.parameters else backend.floatx()


def _check_builtin(spec: dict, kind, source: str) -> None:
    """Refuse objects that Keras itself would import from a module or a registry named by the file."""
    module, registered = spec.get("module"), spec.get("registered_name")
    if not isinstance(kind, str):
        raise ModelFileError(f"{source}: a layer or model without a class name: {str(spec)[:200]}")
    if (module is not None and not (isinstance(module, str) and module.split(".")[0] == "keras")) or (
        registered not in (None, kind)
    ):
        raise ModelFileError(
            f"{source}: {kind!r} is a custom class (module {module!r}, registered as {registered!r}); "
            f"convscope reads only built-in Keras layers: {SUPPORTED}"
        )


def _sequential(specs, body, config, source):
    if specs and specs[0].get("class_name") == "InputLayer":
        _check_builtin(specs[0], "InputLayer", source)
        return specs[1:], _input_shape(specs[0].get("config"), source)
    first = specs[0].get("config") if specs else None
    for candidate in (body.get("build_input_shape"), (config.get("build_config") or {}).get("input_shape")):
        if candidate is not None:
            return specs, _shape(candidate, source)
    if isinstance(first, dict) and ("batch_input_shape" in first or "batch_shape" in first):
        return specs, _input_shape(first, source)  # Keras 2 put the input shape on the first layer
    raise ModelFileError(f"{source}: the Sequential model declares no input shape")


def _chain(specs, body, source):
    """The layers of a functional model in order, when it is a single chain from its input to its output."""
    by_name = {}
    for spec in specs:
        name = _spec_name(spec)
        if not isinstance(name, str) or name in by_name:
            raise ModelFileError(f"{source}: functional model layers need unique names, found {name!r}")
        by_name[name] = spec
    inputs, outputs = _endpoints(body.get("input_layers"), source), _endpoints(body.get("output_layers"), source)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelFileError(
            f"{source}: a functional model with {len(inputs)} inputs and {len(outputs)} outputs; "
            "convscope reads single-input, single-output chains"
        )
    chain, name = [], outputs[0]
    while name != inputs[0]:
        spec = by_name.get(name)
        if spec is None or len(chain) > len(specs):
            raise ModelFileError(f"{source}: the functional model's layers do not lead from its input to its output")
        chain.append(spec)
        name = _only_parent(spec, source)
    first = by_name[inputs[0]]
    if first.get("class_name") != "InputLayer":
        raise ModelFileError(f"{source}: the functional model's input {inputs[0]!r} is not an InputLayer")
    _check_builtin(first, "InputLayer", source)
    if len(chain) + 1 != len(specs):
        unused = sorted(set(by_name) - {_spec_name(s) for s in chain} - {inputs[0]})
        raise ModelFileError(
            f"{source}: the functional model has branches or unused layers ({', '.join(unused)}); "
            "convscope reads simple chains"
        )
    return chain[::-1], _input_shape(first.get("config"), source)


def _endpoints(value, source) -> list:
    """Layer names of ``input_layers`` / ``output_layers``: Keras 3 may write one ``[name, 0, 0]``, Keras 2 a list of them."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, list) and v and isinstance(v[0], str) for v in value):
        raise ModelFileError(f"{source}: malformed input_layers / output_layers: {str(value)[:200]}")
    return [v[0] for v in value]


def _only_parent(spec, source) -> str:
    """The one layer feeding ``spec``: exactly one call, with one tensor and no keyword argument that matters."""
    name, nodes = _spec_name(spec), spec.get("inbound_nodes")
    if not isinstance(nodes, list) or len(nodes) != 1:
        count = len(nodes) if isinstance(nodes, list) else "no"
        raise ModelFileError(f'{source}: layer "{name}" is called {count} times; convscope reads simple chains')
    parent, kwargs = _call_of(nodes[0])
    if parent is None:
        raise ModelFileError(f'{source}: layer "{name}" does not take exactly one input; convscope reads simple chains')
    # Keras 3 records ``training=False`` / ``mask=None`` on plain calls; anything set beyond that changes the layer.
    if not isinstance(kwargs, dict) or any(v is not None and (k, v) != ("training", False) for k, v in kwargs.items()):
        raise ModelFileError(f'{source}: layer "{name}" is called with arguments {kwargs!r}; convscope reads plain calls')
    return parent


def _call_of(node) -> tuple:
    """(name of the layer whose output a call reads, the call's keyword arguments); (None, {}) unless one tensor."""
    history, kwargs = None, {}
    if isinstance(node, dict):  # Keras 3: {"args": [{"class_name": "__keras_tensor__", ...}], "kwargs": {...}}
        args, kwargs = node.get("args"), node.get("kwargs", {})
        if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
            tensor = args[0].get("config")
            if args[0].get("class_name") == "__keras_tensor__" and isinstance(tensor, dict):
                history = tensor.get("keras_history")
    elif isinstance(node, list) and len(node) == 1 and isinstance(node[0], list):  # Keras 2: [[name, 0, 0, kwargs]]
        history = node[0]
        kwargs = history[3] if len(history) > 3 else {}
    if isinstance(history, list) and history and isinstance(history[0], str):
        return history[0], kwargs
    return None, {}


def _spec_name(spec: dict):
    config = spec.get("config")
    return spec.get("name", config.get("name") if isinstance(config, dict) else None)


def _input_shape(config, source) -> tuple:
    if not isinstance(config, dict):
        raise ModelFileError(f"{source}: malformed InputLayer config")
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            return _shape(config[key], source)
    if config.get("shape") is not None:
        return _shape([None, *config["shape"]], source)
    raise ModelFileError(f"{source}: the InputLayer declares no shape")


def _shape(value, source) -> tuple:
    """A batch shape ``[None, d1, d2, ...]`` -> ``(d1, d2, ...)``, every size a positive int."""
    if (
        not isinstance(value, list)
        or len(value) < 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value[1:])
    ):
        raise ModelFileError(f"{source}: the input shape must be [batch, known positive sizes...], received {value!r}")
    return tuple(value[1:])


def _layer(spec: dict, source: str):
    kind, config = spec.get("class_name"), spec.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    where = f'{source}: layer "{name}" ({kind})'
    if kind == "Lambda":
        raise ModelFileError(
            f'{source}: layer "{name}" is a Lambda layer: it holds Python code, which convscope never runs '
            f"from a file. Supported layers: {SUPPORTED}"
        )
    _check_builtin(spec, kind, source)
    if kind not in KERAS_LAYERS:
        raise ModelFileError(f'{source}: layer "{name}" has type {kind}, which convscope does not support. '
                             f"Supported layers: {SUPPORTED}")
    if not isinstance(config, dict) or not isinstance(name, str):
        raise ModelFileError(f"{where}: malformed config")
    for key, allowed in REQUIRED_VALUES.items():
        if config.get(key) not in allowed:
            raise ModelFileError(f"{where}: {key}={config[key]!r} is not supported (convscope needs {allowed[0]!r})")
    policy = config.get("dtype")
    if isinstance(policy, dict):
        policy = (policy.get("config") or {}).get("name")
    if policy not in (None, *FLOAT_POLICIES):
        raise ModelFileError(f"{where}: computes in {policy!r}; convscope imports float32 / float64 layers")
    kwargs = {key: config[key] for key in KERAS_LAYERS[kind] if key in config}
    if kind == "BatchNormalization" and isinstance(kwargs.get("axis"), list) and len(kwargs["axis"]) == 1:
        kwargs["axis"] = kwargs["axis"][0]  # Keras 2 wrote the axis as a list
    try:
        return LAYER_CLASSES[kind](name=name, trainable=config.get("trainable", True), **kwargs)
    except (TypeError, ValueError, OverflowError) as e:
        raise ModelFileError(f"{where}: {e}") from e
