"""Layers with explicit forward and backward passes (see ``layers.base`` for the contract)."""

from .activation import Activation, ReLU
from .base import ActivatedLayer, Layer, Parameter, clear_session
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNormalization
from .pooling import (
    AveragePooling2D,
    AvgPool2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPool2D,
    MaxPooling2D,
)
from .rescaling import Rescaling
from .reshape import Flatten, Input, InputLayer

LAYER_CLASSES = {
    cls.__name__: cls
    for cls in (
        Activation,
        AveragePooling2D,
        BatchNormalization,
        Conv2D,
        Dense,
        Dropout,
        Flatten,
        GlobalAveragePooling2D,
        GlobalMaxPooling2D,
        InputLayer,
        MaxPooling2D,
        ReLU,
        Rescaling,
    )
}
"""The closed list of layer types a model file may name."""


def deserialize(spec: dict) -> Layer:
    """A layer from ``{"class_name": ..., "config": {...}}``; only names in ``LAYER_CLASSES``."""
    name = spec.get("class_name") if isinstance(spec, dict) else None
    if name not in LAYER_CLASSES:
        raise ValueError(f"Unknown layer type {name!r}; supported: {', '.join(sorted(LAYER_CLASSES))}")
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise TypeError(f'Layer "{name}": config must be a dict, received {type(config).__name__}')
    return LAYER_CLASSES[name].from_config(config)


def serialize(layer: Layer) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


__all__ = [
    "Activation", "ActivatedLayer", "AveragePooling2D", "AvgPool2D", "BatchNormalization", "Conv2D", "Dense",
    "Dropout", "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Input", "InputLayer", "Layer",
    "LAYER_CLASSES", "MaxPool2D", "MaxPooling2D", "Parameter", "ReLU", "Rescaling", "clear_session", "deserialize",
    "serialize",
]
