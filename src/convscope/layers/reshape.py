"""Layers that only move numbers around: InputLayer (declares the input shape) and Flatten.

Flatten: (batch, d1, d2, ...) -> (batch, d1*d2*...), row-major, so a
(batch, h, w, c) map becomes [pixel (0,0) channels..., pixel (0,1) channels..., ...]
exactly as Keras's channels_last Flatten does.
"""

from __future__ import annotations

from .base import Layer
from .node import KerasTensor, Node


class InputLayer(Layer):
    """The model's declared input: ``shape`` without the batch axis, e.g. ``(28, 28, 1)``.

    Its one node has no inputs and one output, the KerasTensor ``convscope.Input`` returns.
    """

    LOOP_REFERENCE = "none: it computes nothing; the model's input arrays pass through it unchanged"
    is_input_layer = True

    def __init__(self, shape, dtype=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise ValueError(f'InputLayer "{self.name}": argument "shape" must be a tuple of positive ints, received {shape!r}')
        if dtype is not None and dtype not in ("float32", "float64"):
            raise ValueError(f'InputLayer "{self.name}": argument "dtype" must be "float32", "float64" or None, '
                             f"received {dtype!r}")
        self.shape, self.dtype = tuple(shape), dtype
        self.build((None, *self.shape))
        tensor = KerasTensor(self.input_shape, dtype, name=self.name)
        self._inbound_nodes.append(Node(self, [], [tensor], as_list=False))

    def forward(self, x, training: bool = False):
        return x

    def backward(self, dy, need_dx: bool = True):
        return dy

    def get_config(self) -> dict:
        config = {**super().get_config(), "shape": list(self.shape)}
        if self.dtype is not None:
            config["dtype"] = self.dtype
        return config


def Input(shape, name: str | None = None, dtype: str | None = None) -> KerasTensor:
    """``convscope.Input(shape=(28, 28, 1))``: a symbolic model input (batch axis left free), as in Keras.

    Start a functional model with it (``x = Input(...)``, ``y = layer(x)``, ``Model(x, y)``) or put it
    first in a ``Sequential`` list to fix the input shape.
    """
    return InputLayer(shape, dtype=dtype, name=name).output


class Flatten(Layer):
    LOOP_REFERENCE = "convscope.arraymath.reference_shape.reshape_loops"

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

    def backward(self, dy, need_dx: bool = True):
        return dy.reshape(self._x_shape)
