"""Layers that only move numbers around: InputLayer (declares the input shape) and Flatten.

Flatten: (batch, d1, d2, ...) -> (batch, d1*d2*...), row-major, so a
(batch, h, w, c) map becomes [pixel (0,0) channels..., pixel (0,1) channels..., ...]
exactly as Keras's channels_last Flatten does.
"""

from __future__ import annotations

from .base import Layer


class InputLayer(Layer):
    """The model's declared input: ``shape`` without the batch axis, e.g. ``(28, 28, 1)``."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(shape, (tuple, list)) or not shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise ValueError(f'InputLayer "{self.name}": argument "shape" must be a tuple of positive ints, received {shape!r}')
        self.shape = tuple(shape)

    def forward(self, x, training: bool = False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self) -> dict:
        return {**super().get_config(), "shape": list(self.shape)}


def Input(shape, name: str | None = None) -> InputLayer:
    """``convscope.Input(shape=(28, 28, 1))``: the first element of a ``Sequential`` list, as in Keras."""
    return InputLayer(shape, name=name)


class Flatten(Layer):
    def compute_output_shape(self, input_shape) -> tuple:
        if len(input_shape) < 2 or any(d is None for d in input_shape[1:]):
            raise ValueError(f'Input 0 of layer "{self.name}" needs known non-batch sizes, found shape={tuple(input_shape)}')
        size = 1
        for d in input_shape[1:]:
            size *= d
        return (input_shape[0], size)

    def forward(self, x, training: bool = False):
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._x_shape)
