"""Normalization: shift and scale features by a fixed mean and variance (Keras 3's preprocessing layer).

    y = (x - mean) / max(sqrt(variance), 1e-7)          (invert=True: y = mean + x * max(sqrt(variance), 1e-7))

Input and output of any shape (batch, ...), unchanged. ``axis`` (an int, a list of ints, or None
for one scalar mean) names the axes that keep a separate mean and variance per index; the
statistics are taken over every other axis.

* ``mean`` and ``variance`` given to the constructor are constants: broadcast onto the kept axes
  (aligned from the right) at ``build``; the layer then has no weights.
* otherwise ``build`` creates Keras's three non-trainable weights, in this order:
  ``mean`` (zeros) and ``variance`` (ones), both of the shape of the kept axes, and ``count``, a
  scalar integer. Keras creates ``count`` with dtype "int" (int64 on TensorFlow, int32 elsewhere)
  only for old saved models and never updates it; convscope stores it as an int64 scalar, 0.
  ``adapt(data)`` sets ``mean`` and ``variance`` (biased) from one array, accumulating in float64.

The map is affine per element, so dx = dy / std (invert: dy * std); nothing is learned.

Example:
    >>> layer = Normalization(axis=-1)
    >>> layer.adapt(np.array([[0., 7., 4.], [2., 9., 6.], [0., 7., 4.], [2., 9., 6.]]))
    >>> layer(np.array([[0., 7., 4.]]))
    array([[-1., -1., -1.]])
    >>> Normalization(mean=3.0, variance=2.0)(np.array([[1.], [2.], [3.]]))[:, 0]
    array([-1.41421356, -0.70710678,  0.        ])
"""

from __future__ import annotations

from .. import backend
from ..arraymath.normalization import moments, normalize, normalize_backward
from .base import Layer


def _as_numbers(value, arg: str, owner: str):
    try:
        array = backend.xp.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        raise TypeError(f'{owner}: argument "{arg}" must be a number or an array of numbers, received {value!r}')
    except OverflowError:  # an int beyond the float range
        array = backend.xp.asarray([backend.xp.inf])
    if not backend.xp.isfinite(array).all():  # NaN would pass "variance >= 0" and make every output NaN
        raise ValueError(f'{owner}: argument "{arg}" must hold finite numbers, received {value!r}')
    return array


class Normalization(Layer):
    LOOP_REFERENCE = "convscope.arraymath.reference_resample.normalization_loops"

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self._owner = owner = f'Normalization "{self.name}"'
        if axis is None:
            axis = ()
        elif isinstance(axis, int) and not isinstance(axis, bool):
            axis = (axis,)
        elif not isinstance(axis, (list, tuple)) or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in axis
        ):
            raise TypeError(f'{owner}: argument "axis" must be an int, a list of ints or None, received {axis!r}')
        if len(set(axis)) != len(axis):
            raise ValueError(f'{owner}: argument "axis" has duplicate entries, received {axis!r}')
        self.axis = tuple(axis)
        if not isinstance(invert, bool):
            raise TypeError(f'{owner}: argument "invert" must be a bool, received {invert!r}')
        self.invert = invert
        if (mean is None) != (variance is None):
            raise ValueError(
                f'{owner}: when setting values directly, both "mean" and "variance" must be set, '
                f"received mean={mean!r} and variance={variance!r}"
            )
        if mean is not None:
            mean_array = _as_numbers(mean, "mean", owner)
            variance_array = _as_numbers(variance, "variance", owner)
            if mean_array.shape != variance_array.shape:
                raise ValueError(
                    f'{owner}: "mean" and "variance" must have the same shape, received mean shape '
                    f"{mean_array.shape} and variance shape {variance_array.shape}"
                )
            if mean_array.ndim > len(self.axis):
                raise ValueError(
                    f'{owner}: the rank of "mean" must be at most the number of axes ({len(self.axis)}), '
                    f"received mean shape {mean_array.shape} for axis={self.axis}"
                )
            if (variance_array < 0).any():
                raise ValueError(f'{owner}: argument "variance" must be >= 0, received {variance!r}')
        self.input_mean, self.input_variance = mean, variance
        self.adapt_mean = self.adapt_variance = self.count = None
        self._mean = self._variance = None

    # -- shapes ---------------------------------------------------------------
    def _keep_axes(self, input_shape) -> tuple:
        """The kept axes of an input of this shape as sorted non-negative ints (Keras's checks)."""
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(
                f'{self._owner}: all "axis" values must be in the range [-ndim, ndim), received inputs '
                f"with ndim={ndim}, while axis={self.axis}"
            )
        keep = tuple(sorted(a % ndim for a in self.axis))
        for d in keep:
            if input_shape[d] is None:
                raise ValueError(
                    f'{self._owner}: all "axis" values to be kept must have a known size, received '
                    f"axis={self.axis}, input shape={tuple(input_shape)}, with unknown axis at index {d}"
                )
        return keep

    def _broadcast_shape(self, input_shape) -> tuple:
        keep = self._keep_axes(input_shape)
        return tuple(input_shape[d] if d in keep else 1 for d in range(len(input_shape)))

    def param_shapes(self, input_shape) -> dict:
        """mean, variance (the sizes of the kept axes) and count (a scalar), unless mean / variance were given."""
        if self.input_mean is not None:
            return {}
        shape = tuple(input_shape[d] for d in self._keep_axes(input_shape))
        return {"mean": shape, "variance": shape, "count": ()}

    # -- the contract ---------------------------------------------------------
    def build(self, input_shape) -> None:
        broadcast_shape = self._broadcast_shape(input_shape)
        super().build(input_shape)
        self._broadcast_to = broadcast_shape
        if self.input_mean is None:
            shapes = self.param_shapes(input_shape)
            xp = backend.xp
            self.adapt_mean = self.add_parameter("mean", xp.zeros(shapes["mean"]), trainable=False)
            self.adapt_variance = self.add_parameter("variance", xp.ones(shapes["variance"]), trainable=False)
            self.count = self.add_parameter("count", xp.zeros(()), trainable=False)
            # Keras's integer count (add_parameter makes floats): kept as int64, a type the model files accept.
            self.count.value = xp.zeros((), dtype="int64")
            self.count.grad = xp.zeros((), dtype="int64")
            return
        self._mean, self._variance = (self._constant(v, arg, input_shape)
                                      for arg, v in (("mean", self.input_mean), ("variance", self.input_variance)))

    def _constant(self, value, arg: str, input_shape):
        """Keras's broadcast of a given mean / variance: its axes aligned with the last kept axes."""
        array = backend.cast(value)
        keep = self._keep_axes(input_shape)
        expanded = [1] * len(input_shape)
        for i in range(1, array.ndim + 1):
            expanded[keep[-i]] = array.shape[-i]
        try:
            return backend.xp.broadcast_to(array.reshape(expanded), self._broadcast_to).copy()
        except ValueError:
            raise ValueError(
                f'{self._owner}: argument "{arg}" of shape {array.shape} cannot be broadcast to the kept axes '
                f"{keep} of the input shape {tuple(input_shape)} (expected sizes {tuple(input_shape[d] for d in keep)})"
            ) from None

    def adapt(self, data) -> None:
        """Set ``mean`` and ``variance`` to the statistics of ``data`` (one array holding the whole data set)
        over every axis but ``axis``; builds the layer for ``data``'s shape if it is not built yet."""
        xp = backend.xp
        if not isinstance(data, xp.ndarray):
            raise TypeError(
                f"{self._owner}: adapt() takes one array holding the whole data set (concatenate batches "
                f"first), received {type(data).__name__}"
            )
        if data.dtype.kind not in "biuf":
            raise TypeError(f"{self._owner}: adapt() needs numbers, received an array of dtype {data.dtype}")
        if self.input_mean is not None:
            raise ValueError(
                f'{self._owner}: adapt() cannot be used on a layer given "mean" and "variance" in its constructor'
            )
        keep = self._keep_axes(data.shape)
        if not self.built:
            self.build(tuple(None if d == 0 and d not in keep else n for d, n in enumerate(data.shape)))
        elif len(data.shape) != len(self.input_shape) or any(data.shape[d] != self.input_shape[d] for d in keep):
            raise ValueError(
                f"{self._owner}: the layer was built with input_shape={self.input_shape}, but adapt() is being "
                f"called with data with an incompatible shape, data.shape={data.shape}"
            )
        reduce_axes = tuple(d for d in range(data.ndim) if d not in keep)
        if any(data.shape[d] == 0 for d in reduce_axes):
            raise ValueError(f"{self._owner}: adapt() received no values to average: data.shape={data.shape}")
        mean, variance = moments(data, reduce_axes)
        self.adapt_mean.value = backend.cast(mean, self.adapt_mean.value.dtype).reshape(self.adapt_mean.shape)
        self.adapt_variance.value = backend.cast(variance, self.adapt_variance.value.dtype).reshape(
            self.adapt_variance.shape
        )

    def statistics(self, dtype):
        """(mean, variance) in ``dtype``, shaped to broadcast against the input: the adapted weights or the
        constants given to the constructor."""
        if self.input_mean is None:
            mean = self.adapt_mean.value.reshape(self._broadcast_to)
            variance = self.adapt_variance.value.reshape(self._broadcast_to)
        else:
            mean, variance = self._mean, self._variance
        return mean.astype(dtype, copy=False), variance.astype(dtype, copy=False)

    def forward(self, x, training: bool = False):
        if x.dtype.kind != "f":
            x = backend.cast(x)
        mean, self._used_variance = self.statistics(x.dtype)
        return normalize(x, mean, self._used_variance, self.invert)

    def backward(self, dy, need_dx: bool = True):
        return normalize_backward(dy, self._used_variance, self.invert) if need_dx else None

    def get_config(self) -> dict:
        def listed(value):
            return None if value is None else backend.xp.asarray(value).tolist()

        return {
            **super().get_config(),
            "axis": list(self.axis),
            "invert": self.invert,
            "mean": listed(self.input_mean),
            "variance": listed(self.input_variance),
        }
