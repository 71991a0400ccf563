"""Activation layers: a function applied to every element of the input, shape unchanged.

``Activation("relu")`` wraps any function of ``convscope.activations``.
``ReLU(max_value=None, negative_slope=0.0, threshold=0.0)`` is Keras's ReLU layer:

    f(x) = max_value                       if x >= max_value
         = x                               if threshold <= x < max_value
         = negative_slope * (x - threshold) otherwise
"""

from __future__ import annotations

from .. import activations, backend
from .base import ActivatedLayer


class Activation(ActivatedLayer):
    """y = activation(x), element by element (softmax: along the last axis)."""

    def __init__(self, activation, **kwargs):
        super().__init__(activation=activation, **kwargs)

    def forward_linear(self, x, training: bool = False):
        return x

    def backward_linear(self, dz, need_dx: bool = True):
        return dz


class _ThresholdedReLU(activations.Activation):
    """The ReLU layer's function as an activation object, so that ``Sequential.trace``
    (which applies ``layer.activation.gradient`` and then ``backward(dz, dy_is_preactivation=True)``)
    sends the right gradient through it: dL/dx = dy where threshold <= x < max_value,
    dy * negative_slope where x < threshold, 0 where x >= max_value."""

    name = "relu"

    def __init__(self, max_value, negative_slope, threshold):
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def _forward(self, x):
        xp = backend.xp
        y = xp.where(x >= self.threshold, x, self.negative_slope * (x - self.threshold)).astype(x.dtype, copy=False)
        if self.max_value is not None:
            y = xp.minimum(y, xp.asarray(self.max_value, dtype=x.dtype))
        return y

    def _backward(self, x, y, dy):
        slope = backend.xp.where(x >= self.threshold, 1.0, self.negative_slope).astype(dy.dtype, copy=False)
        if self.max_value is not None:
            slope = slope * (x < self.max_value)
        return dy * slope


class ReLU(ActivatedLayer):
    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        owner = f'ReLU "{self.name}"'
        for arg, value in (("negative_slope", negative_slope), ("threshold", threshold)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f'{owner}: argument "{arg}" must be a number >= 0, received {value!r}')
        if max_value is not None and (isinstance(max_value, bool) or not isinstance(max_value, (int, float)) or max_value < 0):
            raise ValueError(f'{owner}: argument "max_value" must be None or a number >= 0, received {max_value!r}')
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold
        self.activation = _ThresholdedReLU(max_value, negative_slope, threshold)

    def forward_linear(self, x, training: bool = False):
        return x

    def backward_linear(self, dz, need_dx: bool = True):
        return dz

    def get_config(self) -> dict:
        config = super().get_config()
        del config["activation"]
        return {**config, "max_value": self.max_value, "negative_slope": self.negative_slope, "threshold": self.threshold}
