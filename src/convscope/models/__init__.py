"""Models: graphs of layer calls (``Model``), chains (``Sequential``), and their inspection (``LayerTrace``)."""

from .. import formats
from ..layers import register_model_class
from .model import INFERENCE_SLICE, Model
from .sequential import Sequential
from .trace import LayerTrace

register_model_class("Functional", Model)
register_model_class("Sequential", Sequential)


def load_model(path, compile: bool = True):
    """The model saved at ``path`` (``keras.models.load_model``); raises ``ModelFileError`` for anything
    damaged, foreign or unsafe. The file's suffix picks the reader (``convscope.formats``): Keras files
    (``.keras``, ``.h5``) go to ``convscope.interop.load_keras`` (uncompiled), everything else to the
    convscope reader (``convscope.saving``). ``convscope.load_model`` is this same function."""
    return formats.loader_for(path)(path, compile=compile)


__all__ = ["INFERENCE_SLICE", "LayerTrace", "Model", "Sequential", "load_model"]
