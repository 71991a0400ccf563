"""Models: graphs of layer calls (``Model``), chains (``Sequential``), and their inspection (``LayerTrace``)."""

from ..layers import register_model_class
from .model import INFERENCE_SLICE, Model
from .sequential import Sequential
from .trace import LayerTrace

register_model_class("Functional", Model)
register_model_class("Sequential", Sequential)

__all__ = ["INFERENCE_SLICE", "LayerTrace", "Model", "Sequential"]
