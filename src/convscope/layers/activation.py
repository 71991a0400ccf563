"""Activation layers: a function applied to every element of the input, shape unchanged.

``Activation("relu")`` wraps any function of ``convscope.activations``.
``ReLU(max_value=None, negative_slope=0.0, threshold=0.0)`` is Keras's ReLU layer:

    f(x) = max_value                       if x >= max_value
         = x                               if threshold < x < max_value
         = negative_slope * (x - threshold) otherwise (so 0 at x == threshold, as Keras)

``LeakyReLU(negative_slope=0.3)`` (Keras 3's layer default; the function's is 0.2):

    f(x) = x if x > 0 else negative_slope * x

``Softmax(axis=-1)`` normalizes along ``axis`` (an int or a list of ints, never the batch axis):

    y[..., i, ...] = exp(x_i - max_axis x) / sum_j exp(x_j - max_axis x)       (i, j along ``axis``)
    dx = y * (dy - sum_axis(dy * y))

Example:
    >>> Softmax(axis=1)(np.zeros((2, 4, 3), "float32"))[0, :, 0]     # sums to 1 down axis 1
    array([0.25, 0.25, 0.25, 0.25], dtype=float32)
"""

from __future__ import annotations

from .. import activations, backend
from .base import ActivatedLayer, finite_number


class _ElementWise(ActivatedLayer):
    """A layer that is only its activation: z = x (forward_linear and backward_linear are the identity)."""

    def forward_linear(self, x, training: bool = False):
        return x

    def backward_linear(self, dz, need_dx: bool = True):
        return dz


class _OwnFunction(_ElementWise):
    """An activation layer whose function comes from its own arguments, not an "activation" name."""

    def get_config(self) -> dict:
        config = super().get_config()
        del config["activation"]
        return config


class Activation(_ElementWise):
    """y = activation(x), element by element (softmax: along the last axis)."""

    LOOP_REFERENCE = "none: an element-wise function; its activations.* object (value and derivative) is the definition"

    def __init__(self, activation, **kwargs):
        super().__init__(activation=activation, **kwargs)



class _ThresholdedReLU(activations.Activation):
    """The ReLU layer's function as an activation object, so that the layer backpropagates through it as
    through any activation: dL/dx = dy where threshold < x < max_value, dy * negative_slope where
    x < threshold, 0 where x >= max_value. At x == threshold the output is 0 (Keras keeps x only where
    x > threshold), and so is the gradient."""

    name = "relu"

    def __init__(self, max_value, negative_slope, threshold):
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def _forward(self, x):
        xp = backend.xp
        if self.threshold == 0 and self.negative_slope == 0:  # ReLU / ReLU6: one pass, no temporaries
            return xp.clip(x, 0, None if self.max_value is None else xp.asarray(self.max_value, dtype=x.dtype))
        y = xp.where(x > self.threshold, x, self.negative_slope * (x - self.threshold)).astype(x.dtype, copy=False)
        if self.max_value is not None:
            y = xp.minimum(y, xp.asarray(self.max_value, dtype=x.dtype))
        return y

    def _backward(self, x, y, dy):
        slope = ((x > self.threshold) + self.negative_slope * (x < self.threshold)).astype(dy.dtype, copy=False)
        if self.max_value is not None:
            slope = slope * (x < self.max_value)
        return dy * slope


class ReLU(_OwnFunction):
    LOOP_REFERENCE = "none: an element-wise function; _ThresholdedReLU (value and derivative) is its definition"

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        owner = f'ReLU "{self.name}"'
        for arg, value in (("negative_slope", negative_slope), ("threshold", threshold)):
            if not finite_number(value) or value < 0:
                raise ValueError(f'{owner}: argument "{arg}" must be a number >= 0, received {value!r}')
        if max_value is not None and (not finite_number(max_value) or max_value < 0):
            raise ValueError(f'{owner}: argument "max_value" must be None or a number >= 0, received {max_value!r}')
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold
        plain = max_value is None and negative_slope == 0 and threshold == 0
        # The plain case is exactly activations.relu: the same fast function, and fusable with a max pooling.
        self.activation = activations.relu if plain else _ThresholdedReLU(max_value, negative_slope, threshold)


    def get_config(self) -> dict:
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(_OwnFunction):
    """Keras's LeakyReLU layer: f(x) = x if x > 0 else negative_slope * x (no parameters)."""

    LOOP_REFERENCE = "none: an element-wise function; activations.LeakyReLU is its definition"

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        if not finite_number(negative_slope) or negative_slope < 0:
            raise ValueError(f'LeakyReLU "{self.name}": argument "negative_slope" must be a number >= 0, '
                             f"received {negative_slope!r}")
        self.negative_slope = negative_slope
        self.activation = activations.LeakyReLU(negative_slope)


    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class _AxisSoftmax(activations.Activation):
    """Softmax along the tuple of ints ``axis``. Its name is not "softmax", so the model never
    fuses it with a cross-entropy, which takes its logits along the last axis."""

    name = "softmax_along_axis"

    def __init__(self, axis):
        self.axis = axis

    def _forward(self, x):
        xp = backend.xp
        e = xp.exp(x - xp.max(x, axis=self.axis, keepdims=True))
        return e / xp.sum(e, axis=self.axis, keepdims=True)

    def _backward(self, x, y, dy):
        return y * (dy - backend.xp.sum(dy * y, axis=self.axis, keepdims=True))


class Softmax(_OwnFunction):
    """Keras's Softmax layer along ``axis`` (default -1, the last axis; a list of ints normalizes over
    several axes together). The batch axis is refused: each sample's output must not depend on the others."""

    LOOP_REFERENCE = "convscope.arraymath.reference_softmax.softmax_loops"

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        is_int = isinstance(axis, int) and not isinstance(axis, bool)
        is_ints = isinstance(axis, (list, tuple)) and len(axis) > 0 and all(
            isinstance(a, int) and not isinstance(a, bool) for a in axis)
        if not (is_int or is_ints):
            raise TypeError(f'Softmax "{self.name}": argument "axis" must be an int or a non-empty list of ints, '
                            f"received {axis!r}")
        self.axis = axis if is_int else list(axis)
        axes = (axis,) if is_int else tuple(axis)
        # The last axis keeps the shared softmax, which a final layer may fuse with cross-entropy.
        self.activation = activations.softmax if axes == (-1,) else _AxisSoftmax(axes)

    def compute_output_shape(self, input_shape) -> tuple:
        rank = len(input_shape)
        axes = [self.axis] if isinstance(self.axis, int) else self.axis
        resolved = [a % rank for a in axes if -rank <= a < rank]
        if len(resolved) != len(axes) or 0 in resolved or len(set(resolved)) != len(resolved):
            raise ValueError(
                f'Softmax "{self.name}": argument "axis" must name distinct non-batch axes of the rank-{rank} input, '
                f"received axis={self.axis!r} for input shape {tuple(input_shape)}"
            )
        return tuple(input_shape)


    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}
