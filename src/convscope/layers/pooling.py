"""Pooling layers: fixed summaries of each window, with no parameters to learn.

MaxPooling2D / AveragePooling2D: (batch, h, w, c) -> (batch, out_h, out_w, c), with
``strides`` defaulting to ``pool_size`` and out size as in ``arraymath.shapes``
("valid": floor((n - k) / s) + 1; "same": ceil(n / s)). Average pooling with
"same" leaves padded cells out of the count, as Keras does.
GlobalAveragePooling2D / GlobalMaxPooling2D: (batch, h, w, c) -> (batch, c).

Example:
    >>> MaxPooling2D(2)(np.zeros((8, 26, 26, 32), "float32")).shape
    (8, 13, 13, 32)
"""

from __future__ import annotations

from .. import backend
from ..arraymath.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    window_counts,
)
from ..arraymath.shapes import normalize_padding, normalize_tuple, output_hw, paddings_2d
from .base import Layer, check_image_input


class _Pooling2D(Layer):
    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        owner = f'{type(self).__name__} "{self.name}"'
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size", owner)
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 2, "strides", owner)
        self.padding = normalize_padding(padding, owner)

    def build(self, input_shape) -> None:
        super().build(input_shape)
        self.pads = paddings_2d(input_shape[1:3], self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape) -> tuple:
        check_image_input(self, input_shape)
        out_h, out_w = output_hw(input_shape[1:3], self.pool_size, self.strides, self.padding)
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f'{type(self).__name__} "{self.name}": input of spatial size {tuple(input_shape[1:3])} is smaller '
                f"than pool_size={self.pool_size} with padding=\"valid\""
            )
        return (input_shape[0], out_h, out_w, input_shape[3])

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }


class MaxPooling2D(_Pooling2D):
    """Max over each window; the gradient goes only to each window's (first) maximum."""

    LOOP_REFERENCE = "convscope.arraymath.reference.max_pool2d_loops"

    def forward(self, x, training: bool = False):
        y, self._argmax = max_pool2d_forward(x, self.pool_size, self.strides, self.pads)
        self._x_shape = x.shape
        return y

    def backward(self, dy, need_dx: bool = True):
        return max_pool2d_backward(dy, self._argmax, self._x_shape, self.pool_size, self.strides, self.pads)


class AveragePooling2D(_Pooling2D):
    """Mean over each window's real cells; the gradient is shared evenly by them."""

    LOOP_REFERENCE = "convscope.arraymath.reference.avg_pool2d_loops"

    def build(self, input_shape) -> None:
        super().build(input_shape)
        self.counts = window_counts(input_shape[1:3], self.pool_size, self.strides, self.pads, backend.floatx())

    def forward(self, x, training: bool = False):
        self._x_shape = x.shape
        return avg_pool2d_forward(x, self.pool_size, self.strides, self.pads, self.counts.astype(x.dtype, copy=False))

    def backward(self, dy, need_dx: bool = True):
        counts = self.counts.astype(dy.dtype, copy=False)
        return avg_pool2d_backward(dy, self._x_shape, self.pool_size, self.strides, self.pads, counts)


class _GlobalPool(Layer):
    """What the global poolings share: ``keepdims`` (Keras's): (batch, channels), or (batch, 1, 1, channels)."""

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        owner = f'{type(self).__name__} "{self.name}"'
        if data_format not in (None, "channels_last"):
            raise ValueError(f'{owner}: only data_format="channels_last" (NHWC) is supported, received {data_format!r}')
        if not isinstance(keepdims, bool):
            raise TypeError(f'{owner}: argument "keepdims" must be a bool, received {keepdims!r}')
        self.keepdims = keepdims

    def compute_output_shape(self, input_shape) -> tuple:
        check_image_input(self, input_shape)
        return (input_shape[0], 1, 1, input_shape[3]) if self.keepdims else (input_shape[0], input_shape[3])

    def _shaped(self, y):
        return y[:, None, None, :] if self.keepdims else y

    def _flat(self, dy):
        return dy.reshape(dy.shape[0], dy.shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPool):
    """y[n, c] = mean over h, w of x[n, h, w, c]; dx = dy / (h*w) at every cell."""

    LOOP_REFERENCE = "convscope.arraymath.reference.global_pool2d_loops"

    def forward(self, x, training: bool = False):
        self._x_shape = x.shape
        return self._shaped(x.mean(axis=(1, 2)))

    def backward(self, dy, need_dx: bool = True):
        n, h, w, c = self._x_shape
        return backend.xp.broadcast_to((self._flat(dy) / (h * w))[:, None, None, :], self._x_shape).copy()


class GlobalMaxPooling2D(_GlobalPool):
    """y[n, c] = max over h, w of x[n, h, w, c]; dx puts dy at the first maximum (row-major)."""

    LOOP_REFERENCE = "convscope.arraymath.reference.global_pool2d_loops"

    def forward(self, x, training: bool = False):
        n, h, w, c = x.shape
        flat = x.reshape(n, h * w, c)
        self._argmax = flat.argmax(axis=1)
        self._x_shape = x.shape
        return self._shaped(backend.xp.take_along_axis(flat, self._argmax[:, None, :], axis=1)[:, 0, :])

    def backward(self, dy, need_dx: bool = True):
        n, h, w, c = self._x_shape
        dx = backend.xp.zeros((n, h * w, c), dtype=dy.dtype)
        backend.xp.put_along_axis(dx, self._argmax[:, None, :], self._flat(dy)[:, None, :], axis=1)
        return dx.reshape(self._x_shape)


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
