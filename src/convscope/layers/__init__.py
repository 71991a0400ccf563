"""Layers with explicit forward and backward passes (see ``layers.base`` for the contract)."""

from .activation import Activation, LeakyReLU, ReLU, Softmax
from .augmentation import (
    RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom,
)
from .base import ActivatedLayer, Layer, Parameter, clear_session
from .conv import Conv2D
from .conv_variants import Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from .dense import Dense
from .dropout import Dropout
from .lambda_layer import Lambda
from .merging import (
    Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add, average, concatenate, maximum, minimum,
    multiply, subtract,
)
from .normalization import BatchNormalization, LayerNormalization
from .pooling import (
    AveragePooling2D,
    AvgPool2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPool2D,
    MaxPooling2D,
)
from .preprocessing import Normalization
from .resampling import UpSampling2D
from .rescaling import Rescaling
from .resizing import CenterCrop, Resizing
from .reshape import Flatten, Input, InputLayer
from .reshaping import Cropping2D, Permute, Reshape, ZeroPadding2D

LAYER_CLASSES = {
    cls.__name__: cls
    for cls in (
        Activation, Add, Average, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Conv2DTranspose,
        Cropping2D, Dense, DepthwiseConv2D, Dropout, Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, InputLayer,
        LayerNormalization, LeakyReLU, Maximum, MaxPooling2D, Minimum, Multiply, Normalization, Permute, ReLU,
        Rescaling, Reshape, SeparableConv2D, Softmax, Subtract, UpSampling2D, ZeroPadding2D,
        CenterCrop, RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation,
        RandomZoom, Resizing,
    )
}
"""The closed list of layer types a model file may name (the registry every layer-dispatching tool reads)."""

MODEL_CLASSES: dict = {}
"""Models a model file may nest as layers ("Functional", "Sequential"), registered by ``convscope.models``."""
_SERIALIZED_NAMES: dict = {}


def register_model_class(name: str, cls) -> None:
    MODEL_CLASSES[name] = cls
    _SERIALIZED_NAMES[cls] = name


def deserialize(spec: dict, custom_objects: dict | None = None) -> Layer:
    """A layer from ``{"class_name": ..., "config": {...}}``: only names in ``LAYER_CLASSES`` or ``MODEL_CLASSES``,
    or in ``custom_objects`` (``{"CustomDense": CustomDense}``: classes the caller hands over, as in Keras; a
    config never makes convscope import anything)."""
    name = spec.get("class_name") if isinstance(spec, dict) else None
    custom = (custom_objects or {}).get(name) if isinstance(name, str) else None
    cls = custom or (LAYER_CLASSES.get(name) or MODEL_CLASSES.get(name) if isinstance(name, str) else None)
    if cls is None:
        raise ValueError(f"Unknown layer type {name!r}; supported: {', '.join(sorted([*LAYER_CLASSES, *MODEL_CLASSES]))}"
                         " (a layer class of your own: pass custom_objects={name: class})")
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise TypeError(f'Layer "{name}": config must be a dict, received {type(config).__name__}')
    layer = cls.from_config(config)
    if custom is not None and "name" not in config and isinstance(spec.get("name"), str):
        layer.name = spec["name"]  # a get_config() of the user's own that leaves the name out
    return layer


def serialize(layer: Layer) -> dict:
    """``{"class_name", "config"}``: the registered name, or the class name of a layer of the user's own (which
    ``deserialize`` rebuilds only from ``custom_objects``, and no model file holds: see ``registered``)."""
    return {"class_name": _SERIALIZED_NAMES.get(type(layer), type(layer).__name__), "config": layer.get_config()}


def registered(layer: Layer) -> bool:
    """Whether a model file may name ``layer``'s class: one of convscope's own, never code of the user's."""
    name = _SERIALIZED_NAMES.get(type(layer), type(layer).__name__)
    return LAYER_CLASSES.get(name) is type(layer) or MODEL_CLASSES.get(name) is type(layer)


__all__ = [
    "Activation", "ActivatedLayer", "Add", "Average", "AveragePooling2D", "AvgPool2D", "BatchNormalization",
    "Concatenate", "Conv2D", "Conv2DTranspose", "Cropping2D", "Dense", "DepthwiseConv2D", "Dropout", "Flatten",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Input", "InputLayer", "Layer", "LayerNormalization", "LeakyReLU",
    "LAYER_CLASSES", "MaxPool2D", "MaxPooling2D", "Maximum", "Minimum", "Multiply", "Normalization", "Parameter",
    "Permute", "ReLU", "Rescaling", "Reshape", "SeparableConv2D", "Softmax", "Subtract", "UpSampling2D",
    "ZeroPadding2D", "CenterCrop", "RandomBrightness", "RandomContrast", "RandomCrop", "RandomFlip",
    "RandomRotation", "RandomTranslation", "RandomZoom", "Resizing", "add", "average", "concatenate", "maximum",
    "minimum", "multiply", "subtract",
    "Lambda", "clear_session", "deserialize", "registered",
    "serialize", "register_model_class", "MODEL_CLASSES",
]
