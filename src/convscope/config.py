"""Global settings, as in ``keras.config``: the default float type and the image layout (NHWC only)."""

from .backend import floatx, set_floatx


def image_data_format() -> str:
    """Always ``"channels_last"``: convscope's images are (batch, height, width, channels), as Keras's default."""
    return "channels_last"


def set_image_data_format(data_format: str) -> None:
    if data_format != "channels_last":
        raise ValueError(f'convscope.config: only "channels_last" (NHWC) is supported, received {data_format!r}')


def backend() -> str:
    """The name of the array library behind convscope (``keras.config.backend()`` names Keras's)."""
    return "numpy"


def enable_traceback_filtering() -> None:
    """Keras shortens its tracebacks; convscope's are plain Python and need no filtering (a no-op)."""


def disable_traceback_filtering() -> None:
    """A no-op, as ``enable_traceback_filtering``."""


def is_traceback_filtering_enabled() -> bool:
    return False


__all__ = ["backend", "disable_traceback_filtering", "enable_traceback_filtering", "floatx", "image_data_format",
           "is_traceback_filtering_enabled", "set_floatx", "set_image_data_format"]
