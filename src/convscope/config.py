"""Global settings, as in ``keras.config``: the default float type."""

from .backend import floatx, set_floatx

__all__ = ["floatx", "set_floatx"]
