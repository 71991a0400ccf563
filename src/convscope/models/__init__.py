"""Models: graphs of layer calls (``Model``), chains (``Sequential``), and their inspection (``LayerTrace``)."""

from .. import formats
from ..layers import register_model_class
from ..layers.base import register_call_runner
from . import call_runner
from .model import INFERENCE_SLICE, Functional, Model
from .sequential import Sequential
from .trace import LayerTrace

register_model_class("Functional", Functional)
register_model_class("Sequential", Sequential)
register_call_runner(call_runner)


def load_model(path, compile: bool = True):
    """The model saved at ``path`` (``keras.models.load_model``); raises ``ModelFileError`` for anything
    damaged, foreign or unsafe. The file's suffix picks the reader (``convscope.formats``): Keras files
    (``.keras``, ``.h5``, ``.hdf5``) go to ``convscope.interop.load_keras``, everything else to the convscope
    reader (``convscope.saving``); both compile the model as the file says unless ``compile=False``.
    ``convscope.load_model`` is this same function."""
    return formats.loader_for(path)(path, compile=compile)


__all__ = ["INFERENCE_SLICE", "Functional", "LayerTrace", "Model", "Sequential", "load_model"]
