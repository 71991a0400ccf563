"""Output sizes and padding of sliding-window ops, exactly as Keras (TensorFlow) computes them.

For one spatial axis of size ``n``, window ``k``, stride ``s`` and dilation ``d``
the window really spans ``k_eff = d * (k - 1) + 1`` cells, and:

* ``"valid"``: no padding, ``out = floor((n - k_eff) / s) + 1``;
* ``"same"``:  ``out = ceil(n / s)``, padding ``total = max((out - 1) * s + k_eff - n, 0)``
  split as ``before = total // 2`` and ``after = total - before``: the odd extra
  row / column goes to the bottom / right, as in TensorFlow.

Example: ``conv_output_length(28, 3, 1, "valid") == 26``; ``same_padding(28, 3, 2)
== (0, 1)`` (output 14).
"""

from __future__ import annotations

PADDINGS = ("valid", "same")


def effective_kernel(k: int, dilation: int = 1) -> int:
    """Cells a dilated window spans: ``d * (k - 1) + 1``."""
    return dilation * (k - 1) + 1


def same_padding(n: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """``(before, after)`` padding of one axis for Keras's ``"same"``."""
    out = -(-n // stride)
    total = max((out - 1) * stride + effective_kernel(k, dilation) - n, 0)
    return total // 2, total - total // 2


def conv_output_length(n: int, k: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Output length of one axis; ``padding`` is ``"valid"`` or ``"same"``."""
    if padding == "same":
        return -(-n // stride)
    return max((n - effective_kernel(k, dilation)) // stride + 1, 0)


def paddings_2d(hw, kernel, strides, padding, dilation=(1, 1)):
    """``((top, bottom), (left, right))`` for an input of spatial size ``hw``."""
    if padding == "valid":
        return (0, 0), (0, 0)
    return tuple(same_padding(n, k, s, d) for n, k, s, d in zip(hw, kernel, strides, dilation))


def output_hw(hw, kernel, strides, padding, dilation=(1, 1)) -> tuple[int, int]:
    """``(out_height, out_width)`` of a 2-D sliding-window op."""
    return tuple(conv_output_length(n, k, s, padding, d) for n, k, s, d in zip(hw, kernel, strides, dilation))


def normalize_tuple(value, n: int, name: str, owner: str, allow_zero: bool = False) -> tuple[int, ...]:
    """An int or a length-``n`` sequence of ints as a tuple, validated for ``owner``'s argument ``name``."""
    if isinstance(value, bool):
        raise TypeError(f'{owner}: argument "{name}" must be an int or a tuple of {n} ints, received {value!r}')
    if isinstance(value, int):
        values = (value,) * n
    elif isinstance(value, (tuple, list)) and len(value) == n and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        values = tuple(value)
    else:
        raise TypeError(f'{owner}: argument "{name}" must be an int or a tuple of {n} ints, received {value!r}')
    low = 0 if allow_zero else 1
    if any(v < low for v in values):
        raise ValueError(f'{owner}: argument "{name}" must be >= {low}, received {value!r}')
    return values


def normalize_padding(value, owner: str) -> str:
    """``"valid"`` or ``"same"`` (any case), else a ``ValueError`` naming ``owner``."""
    if not isinstance(value, str) or value.lower() not in PADDINGS:
        raise ValueError(f'{owner}: argument "padding" must be "valid" or "same", received {value!r}')
    return value.lower()


def normalize_data_format(value, owner: str) -> str:
    """Keras's ``data_format`` for a channels-last library: None or "channels_last" (any case) -> "channels_last"."""
    if value is None or (isinstance(value, str) and value.lower() == "channels_last"):
        return "channels_last"
    if isinstance(value, str) and value.lower() == "channels_first":
        raise ValueError(f'{owner}: argument "data_format" "channels_first" is not supported: convscope works on '
                         'channels_last (batch, height, width, channels) inputs; transpose the input and use '
                         '"channels_last"')
    raise ValueError(f'{owner}: argument "data_format" must be "channels_last" or None, received {value!r}')
