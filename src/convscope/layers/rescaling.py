"""Rescaling: y = x * scale + offset, element by element, as Keras's preprocessing layer.

Shape unchanged, no parameters. ``scale`` and ``offset`` are numbers, or lists with one
entry per channel (the last axis). ``Rescaling(1 / 255)`` puts 0-255 pixels in [0, 1]
inside the model; ``Rescaling(1 / 127.5, offset=-1)`` in [-1, 1].

Backward: dL/dx = dL/dy * scale.

Example:
    >>> float(Rescaling(1 / 255)(np.full((1, 2, 2, 1), 255.0, "float32"))[0, 0, 0, 0])
    1.0
"""

from __future__ import annotations

from .. import backend
from .base import Layer, finite_number


def _check_factor(value, arg: str, owner: str):
    if finite_number(value):
        return float(value)
    if isinstance(value, (list, tuple)) and value and all(finite_number(v) for v in value):
        return [float(v) for v in value]
    raise TypeError(f'{owner}: argument "{arg}" must be a number or a list of numbers (finite, one per channel), '
                    f"received {value!r}")


class Rescaling(Layer):
    LOOP_REFERENCE = "convscope.arraymath.reference.rescaling_loops"

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        owner = f'Rescaling "{self.name}"'
        self.scale = _check_factor(scale, "scale", owner)
        self.offset = _check_factor(offset, "offset", owner)

    def build(self, input_shape) -> None:
        for arg, value in (("scale", self.scale), ("offset", self.offset)):
            if isinstance(value, list) and len(value) != input_shape[-1]:
                raise ValueError(
                    f'Rescaling "{self.name}": argument "{arg}" has {len(value)} entries, '
                    f"the input has {input_shape[-1]} channels"
                )
        super().build(input_shape)

    def forward(self, x, training: bool = False):
        dtype = x.dtype if x.dtype.kind == "f" else backend.floatx()
        xp = backend.xp
        return xp.asarray(x, dtype) * xp.asarray(self.scale, dtype) + xp.asarray(self.offset, dtype)

    def backward(self, dy, need_dx: bool = True):
        return dy * backend.xp.asarray(self.scale, dy.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
