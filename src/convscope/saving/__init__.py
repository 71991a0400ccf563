"""Saving and loading models: one zip file, atomic writes, untrusted reads (see ``model_file``)."""

from ..atomic import atomic_write, write_text
from .model_file import declared_parameters, load_checkpoint, load_model, save_model

__all__ = ["atomic_write", "declared_parameters", "load_checkpoint", "load_model", "save_model", "write_text"]
