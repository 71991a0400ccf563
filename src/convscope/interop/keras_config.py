"""Keras model configs <-> convscope layers, read as data: no code, no imports named by the file.

``KERAS_MAPPINGS`` is the registry: for each convscope layer class (exact type), its Keras 3 twin
(a ``KerasMapping``: Keras class name, config keys, ``data_format``, weights path, Keras 2 spellings,
integer weights). Export looks the layer's class up; import reads the same registry the other way
(``KERAS_CLASSES``: Keras name -> class). ``NOT_SUPPORTED`` gives the reason for any registered
class Keras cannot express.

A Keras config is JSON: ``{"class_name": "Sequential" | "Functional" | "Model", "config":
{"name", "layers": [{"class_name", "config", ...}, ...], ...}}``. Each layer's class name
is looked up in ``KERAS_CLASSES`` and only the keys its mapping lists are read; anything else
is refused with a ``ModelFileError`` naming the layer and listing what is supported.

* Sequential: the layers in order; the input shape from a leading InputLayer
  (``batch_shape`` in Keras 3, ``batch_input_shape`` in Keras 2) or ``build_input_shape``.
* Functional ("Functional", Keras 2's "Model") models, and models inside models, are read
  by ``keras_graph``, which reads each of their layers with ``layer_from_config``.
* Arguments that change the result and that convscope does not implement must have
  their neutral value (``REQUIRED_VALUES``: channels_last, no renorm, ...);
  initializers only matter for training from scratch and are ignored (the weights come
  from the file). Regularizers and constraints (``kernel_regularizer``, ``gamma_constraint``,
  every layer's ``activity_regularizer``, ...) are read and written in Keras's serialized
  form, so that training a loaded model goes on as in Keras.
* Layers compute in float32 or float64 (a ``mixed_float16`` / ``bfloat16`` policy is refused).

``keras_layer_config`` goes the other way, for ``save_keras``: the same argument names,
plus ``data_format="channels_last"`` where Keras has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .. import backend
from ..errors import ModelFileError
from ..layers import (
    Activation, Add, Average, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Conv2DTranspose, Cropping2D,
    Dense, DepthwiseConv2D, Dropout, Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, InputLayer,
    LayerNormalization, LeakyReLU, Maximum, MaxPooling2D, Minimum, Multiply, Normalization, Permute, ReLU, Rescaling,
    Reshape, SeparableConv2D, Softmax, Subtract, UpSampling2D, ZeroPadding2D,
)
from ..layers import (
    CenterCrop, RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation,
    RandomZoom, Resizing,
)


@dataclass(frozen=True)
class KerasMapping:
    """How one convscope layer class is written as a Keras 3 layer, and read back from Keras 3 and 2 files.

    * ``keras_name``: the Keras class name (``class_name`` in configs).
    * ``weights_path``: Keras 3's ``naming.to_snake_case`` of that name, the ``<path>`` of the class's
      variables ``layers/<path>``, ``layers/<path>_1``, ... in weights files (see ``keras_weights.keras_paths``).
    * ``keys``: the config keys read and written. convscope's ``get_config`` writes them with Keras 3's
      names and values (lists for tuples, ``[[top, bottom], [left, right]]`` pads, 1-based Permute
      dims, Normalization's ``axis`` list and ``mean`` / ``variance`` as nested lists or None), so
      they pass unchanged both ways; ``tests/test_interop_keras_layers.py`` checks each against Keras's own.
    * ``data_format``: Keras has that argument; export writes ``"channels_last"``, import accepts only that.
    * ``keras2_keys``: Keras 2 names of arguments -> convscope's (read only).
    * ``from_keras``: turns the kwargs read into convscope's where Keras 2 wrote other values.
    * ``integer_weights``: the weights Keras stores as integers (all others must be floats).
    * ``merges``: the layer takes a list of tensors, so it lives in functional graphs only.
    * ``model_level``: not a layer of the list; the model code writes and reads it (InputLayer).
    """

    keras_name: str
    weights_path: str
    keys: tuple = ()
    data_format: bool = False
    keras2_keys: dict = field(default_factory=dict)
    from_keras: Callable[[dict], dict] | None = None
    integer_weights: tuple = ()
    merges: bool = False
    model_level: bool = False

    def kwargs_from_keras(self, config: dict) -> dict:
        """The convscope constructor kwargs of a Keras layer config (name and trainable aside)."""
        kwargs = {ours: config[theirs] for theirs, ours in self.keras2_keys.items() if theirs in config}
        if config.get("activity_regularizer") is not None:  # Keras's base-layer argument: any layer may set it
            kwargs["activity_regularizer"] = config["activity_regularizer"]
        kwargs.update({key: config[key] for key in self.keys if key in config})
        return self.from_keras(kwargs) if self.from_keras else kwargs


def _unlisted_axis(kwargs: dict) -> dict:
    if isinstance(kwargs.get("axis"), list) and len(kwargs["axis"]) == 1:
        kwargs["axis"] = kwargs["axis"][0]  # Keras 2 wrote BatchNormalization's axis as a list
    return kwargs


_POOLING = ("pool_size", "strides", "padding")
# Keras's convolutions write activity_regularizer even when None; other layers only when set.
_PENALTIES = ("kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint")
_CONV_PENALTIES = (*_PENALTIES, "activity_regularizer")
_SCALE_SHIFT_PENALTIES = ("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint")
KERAS_MAPPINGS = {
    Activation: KerasMapping("Activation", "activation", ("activation",)),
    Add: KerasMapping("Add", "add", merges=True),
    Average: KerasMapping("Average", "average", merges=True),
    AveragePooling2D: KerasMapping("AveragePooling2D", "average_pooling2d", _POOLING, data_format=True),
    BatchNormalization: KerasMapping("BatchNormalization", "batch_normalization",
                                     ("axis", "momentum", "epsilon", "center", "scale", *_SCALE_SHIFT_PENALTIES),
                                     from_keras=_unlisted_axis),
    Concatenate: KerasMapping("Concatenate", "concatenate", ("axis",), merges=True),
    Conv2D: KerasMapping("Conv2D", "conv2d", (
        "filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "activation", "use_bias",
        *_CONV_PENALTIES), data_format=True),
    Conv2DTranspose: KerasMapping("Conv2DTranspose", "conv2d_transpose", (
        "filters", "kernel_size", "strides", "padding", "output_padding", "dilation_rate", "activation", "use_bias",
        *_CONV_PENALTIES), data_format=True),
    Cropping2D: KerasMapping("Cropping2D", "cropping2d", ("cropping",), data_format=True),
    Dense: KerasMapping("Dense", "dense", ("units", "activation", "use_bias", *_PENALTIES)),
    DepthwiseConv2D: KerasMapping("DepthwiseConv2D", "depthwise_conv2d", (
        "kernel_size", "strides", "padding", "depth_multiplier", "dilation_rate", "activation", "use_bias",
        "depthwise_regularizer", "bias_regularizer", "activity_regularizer", "depthwise_constraint", "bias_constraint"),
        data_format=True),
    Dropout: KerasMapping("Dropout", "dropout", ("rate", "noise_shape", "seed")),
    Flatten: KerasMapping("Flatten", "flatten", data_format=True),
    GlobalAveragePooling2D: KerasMapping("GlobalAveragePooling2D", "global_average_pooling2d", ("keepdims",),
                                         data_format=True),
    GlobalMaxPooling2D: KerasMapping("GlobalMaxPooling2D", "global_max_pooling2d", ("keepdims",), data_format=True),
    InputLayer: KerasMapping("InputLayer", "input_layer", model_level=True),
    LayerNormalization: KerasMapping("LayerNormalization", "layer_normalization",
                                     ("axis", "epsilon", "center", "scale", "rms_scaling", *_SCALE_SHIFT_PENALTIES)),
    LeakyReLU: KerasMapping("LeakyReLU", "leaky_re_lu", ("negative_slope",), keras2_keys={"alpha": "negative_slope"}),
    Maximum: KerasMapping("Maximum", "maximum", merges=True),
    MaxPooling2D: KerasMapping("MaxPooling2D", "max_pooling2d", _POOLING, data_format=True),
    Minimum: KerasMapping("Minimum", "minimum", merges=True),
    Multiply: KerasMapping("Multiply", "multiply", merges=True),
    # Adapted: three weights, the last Keras's integer count; given mean / variance: constants, no weights.
    Normalization: KerasMapping("Normalization", "normalization", ("axis", "mean", "variance", "invert"),
                                integer_weights=("count",)),
    Permute: KerasMapping("Permute", "permute", ("dims",)),
    ReLU: KerasMapping("ReLU", "re_lu", ("max_value", "negative_slope", "threshold")),
    Rescaling: KerasMapping("Rescaling", "rescaling", ("scale", "offset")),
    Reshape: KerasMapping("Reshape", "reshape", ("target_shape",)),
    SeparableConv2D: KerasMapping("SeparableConv2D", "separable_conv2d", (
        "filters", "kernel_size", "strides", "padding", "dilation_rate", "depth_multiplier", "activation", "use_bias",
        "depthwise_regularizer", "pointwise_regularizer", "bias_regularizer", "activity_regularizer",
        "depthwise_constraint", "pointwise_constraint", "bias_constraint"), data_format=True),
    Softmax: KerasMapping("Softmax", "softmax", ("axis",)),
    Subtract: KerasMapping("Subtract", "subtract", merges=True),
    UpSampling2D: KerasMapping("UpSampling2D", "up_sampling2d", ("size", "interpolation"), data_format=True),
    ZeroPadding2D: KerasMapping("ZeroPadding2D", "zero_padding2d", ("padding",), data_format=True),
    # Augmentation (identity at inference) and resizing layers: no weights; Keras writes every key below.
    RandomFlip: KerasMapping("RandomFlip", "random_flip", ("mode", "seed"), data_format=True),
    RandomRotation: KerasMapping("RandomRotation", "random_rotation", (
        "factor", "fill_mode", "fill_value", "interpolation", "seed"), data_format=True),
    RandomZoom: KerasMapping("RandomZoom", "random_zoom", (
        "height_factor", "width_factor", "fill_mode", "fill_value", "interpolation", "seed"), data_format=True),
    RandomTranslation: KerasMapping("RandomTranslation", "random_translation", (
        "height_factor", "width_factor", "fill_mode", "fill_value", "interpolation", "seed"), data_format=True),
    RandomContrast: KerasMapping("RandomContrast", "random_contrast", ("factor", "value_range", "seed"),
                                 data_format=True),
    RandomBrightness: KerasMapping("RandomBrightness", "random_brightness", ("factor", "value_range", "seed"),
                                   data_format=True),
    RandomCrop: KerasMapping("RandomCrop", "random_crop", ("height", "width", "seed"), data_format=True),
    Resizing: KerasMapping("Resizing", "resizing", (
        "height", "width", "interpolation", "crop_to_aspect_ratio", "pad_to_aspect_ratio", "fill_mode", "fill_value",
        "antialias"), data_format=True),
    CenterCrop: KerasMapping("CenterCrop", "center_crop", ("height", "width"), data_format=True),
}
"""convscope layer class (exact type: a subclass may compute something else) -> its Keras 3 twin."""
NOT_SUPPORTED: dict = {}
"""Registered convscope layer classes Keras cannot express, with the reason: none so far."""
INPUT_LAYER = KERAS_MAPPINGS[InputLayer].keras_name
KERAS_CLASSES = {m.keras_name: cls for cls, m in KERAS_MAPPINGS.items() if not m.model_level}
"""Keras class name -> convscope class, for reading files: the same registry read the other way."""
REQUIRED_VALUES = {
    # Keras arguments convscope does not implement: accepted only at the value that means "off".
    "data_format": ("channels_last", None),
    "renorm": (False, None),
    "virtual_batch_size": (None,),
    "adjustment": (None,),
    "lora_rank": (None,),
    "quantization_config": (None,),
}
FLOAT_POLICIES = ("float32", "float64")
SUPPORTED = ", ".join(sorted(m.keras_name for m in KERAS_MAPPINGS.values() if not m.merges))
"""The Keras layers a Sequential model or a chain may hold (merging layers need functional graphs)."""
MERGING = ", ".join(sorted(m.keras_name for m in KERAS_MAPPINGS.values() if m.merges))
SUPPORTED_ALL = f"{SUPPORTED}; in functional models also the merging layers {MERGING}"
"""What a refusal of a layer lists: every Keras layer convscope reads."""


def keras_mapping(layer) -> KerasMapping:
    """The registry entry of ``layer``'s exact class, or a ValueError saying Keras has no such layer."""
    mapping, kind = KERAS_MAPPINGS.get(type(layer)), type(layer).__name__
    if mapping is None:
        reason = NOT_SUPPORTED.get(type(layer))
        raise ValueError(
            f'Layer "{layer.name}" ({kind}) has no Keras equivalent{f" ({reason})" if reason else ""}; '
            f"Keras has: {SUPPORTED}"
        )
    if mapping.model_level:
        raise ValueError(f'Layer "{layer.name}" ({kind}) is a model input, written from the model, not as a layer')
    return mapping


class KerasArchitecture:
    """What a Keras config describes, as convscope objects: a name, the input shape (no batch axis), the layers."""

    def __init__(self, name: str, input_shape: tuple, layers: list):
        self.name, self.input_shape, self.layers = name, input_shape, layers


def architecture_from_config(config, source: str) -> KerasArchitecture:
    """The convscope layers of a Keras model config (the parsed ``config.json`` or ``model_config``)."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ModelFileError(f"{source}: the model config is not a Keras model description")
    kind, body = config.get("class_name"), config["config"]
    check_builtin(config, kind, source)
    specs = body.get("layers")
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ModelFileError(f"{source}: the model config has no list of layers")
    if kind != "Sequential":
        raise ModelFileError(f"{source}: a Keras {kind!r} model; functional models are read by keras_graph")
    specs, input_shape = _sequential(specs, body, config, source)
    name = body.get("name") if isinstance(body.get("name"), str) else None
    layers = [layer_from_config(spec, source) for spec in specs]
    for layer in layers:
        if KERAS_MAPPINGS[type(layer)].merges:
            raise ModelFileError(
                f'{source}: layer "{layer.name}" ({type(layer).__name__}) merges several inputs; convscope reads '
                "Keras Sequential models and single-input chains; a merge needs a functional model"
            )
    return KerasArchitecture(name, input_shape, layers)


def keras_layer_config(layer) -> dict:
    """The Keras 3 serialization (``{"module", "class_name", "config", "registered_name"}``) of a convscope layer."""
    mapping = keras_mapping(layer)
    ours = layer.get_config()
    config = {"name": layer.name, "trainable": layer.trainable, "dtype": _dtype_of(layer)}
    if ours.get("activity_regularizer") is not None:
        config["activity_regularizer"] = ours["activity_regularizer"]
    config.update({key: ours[key] for key in mapping.keys})
    if mapping.data_format:
        config["data_format"] = "channels_last"
    return {"module": "keras.layers", "class_name": mapping.keras_name, "config": config, "registered_name": None}


def _dtype_of(layer) -> str:
    """The layer's float type: that of its float weights (Normalization's count is an integer), else floatx."""
    floats = [p.value.dtype.name for p in layer.parameters if p.value.dtype.kind == "f"]
    return floats[0] if floats else backend.floatx()


def check_builtin(spec: dict, kind, source: str) -> None:
    """Refuse objects that Keras itself would import from a module or a registry named by the file."""
    module, registered = spec.get("module"), spec.get("registered_name")
    if not isinstance(kind, str):
        raise ModelFileError(f"{source}: a layer or model without a class name: {str(spec)[:200]}")
    if ">" in kind and registered is None:
        registered = kind  # a legacy .h5 names a registered class "package>Name" in class_name itself
    if (module is not None and not (isinstance(module, str) and module.split(".")[0] == "keras")) or (
        registered not in (None, kind) or ">" in kind
    ):
        config = spec.get("config")
        name = config.get("name") if isinstance(config, dict) else None
        which = f'layer "{name}": ' if isinstance(name, str) else ""
        raise ModelFileError(
            f"{source}: {which}{kind!r} is a custom class (module {module!r}, registered as {registered!r}), "
            f"whose code is not in the file and which convscope never imports; convscope reads only built-in "
            f"Keras layers: {SUPPORTED_ALL}"
        )


def _sequential(specs, body, config, source):
    if specs and specs[0].get("class_name") == INPUT_LAYER:
        check_builtin(specs[0], INPUT_LAYER, source)
        return specs[1:], input_layer_shape(specs[0].get("config"), source)
    first = specs[0].get("config") if specs else None
    for candidate in (body.get("build_input_shape"), (config.get("build_config") or {}).get("input_shape")):
        if candidate is not None:
            return specs, batch_shape_sizes(candidate, source)
    if isinstance(first, dict) and ("batch_input_shape" in first or "batch_shape" in first):
        return specs, input_layer_shape(first, source)  # Keras 2 put the input shape on the first layer
    raise ModelFileError(f"{source}: the Sequential model declares no input shape")


def input_layer_shape(config, source) -> tuple:
    if not isinstance(config, dict):
        raise ModelFileError(f"{source}: malformed InputLayer config")
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            return batch_shape_sizes(config[key], source)
    if config.get("shape") is not None:
        return batch_shape_sizes([None, *config["shape"]], source)
    raise ModelFileError(f"{source}: the InputLayer declares no shape")


def batch_shape_sizes(value, source) -> tuple:
    """A batch shape ``[None, d1, d2, ...]`` -> ``(d1, d2, ...)``, every size a positive int."""
    if (
        not isinstance(value, list)
        or len(value) < 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value[1:])
    ):
        raise ModelFileError(f"{source}: the input shape must be [batch, known positive sizes...], received {value!r}")
    return tuple(value[1:])


def layer_from_config(spec: dict, source: str):
    """The convscope layer of one Keras layer spec ``{"class_name", "config", ...}``, unbuilt.

    Only built-in Keras classes in the registry are read, and of their config only the registry's
    keys; ``source`` names the file in error messages.
    """
    kind, config = spec.get("class_name"), spec.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    where = f'{source}: layer "{name}" ({kind})'
    if kind == "Lambda":
        raise ModelFileError(
            f'{source}: layer "{name}" is a Lambda layer: it holds Python code, which convscope never runs '
            f"from a file. Supported layers: {SUPPORTED_ALL}"
        )
    check_builtin(spec, kind, source)
    cls = KERAS_CLASSES.get(kind)
    if kind == INPUT_LAYER:
        raise ModelFileError(f"{where}: an InputLayer can only be a model's input, not one of its layers")
    if cls is None:
        raise ModelFileError(f'{source}: layer "{name}" has type {kind}, which convscope does not support. '
                             f"Supported layers: {SUPPORTED_ALL}")
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
    try:
        return cls(name=name, trainable=config.get("trainable", True), **KERAS_MAPPINGS[cls].kwargs_from_keras(config))
    except (TypeError, ValueError, OverflowError) as e:
        raise ModelFileError(f"{where}: {e}") from e
