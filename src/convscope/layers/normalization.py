"""BatchNormalization (over the channel axis) and LayerNormalization (over chosen axes), Keras's defaults.

BatchNormalization: input and output (batch, ..., channels). Parameters in Keras's order: ``gamma``,
``beta`` (trainable, (channels,)), ``moving_mean``, ``moving_variance``
(non-trainable, (channels,)).

Training:  mu, var = mean and (biased) variance over every axis but the last;
           x_hat = (x - mu) / sqrt(var + epsilon);  y = gamma * x_hat + beta;
           moving = momentum * moving + (1 - momentum) * batch statistic.
Inference (and whenever the layer is frozen, ``trainable=False``, as in Keras): the same with the
moving statistics in place of mu and var.

Backward (training), with m the number of values per channel:
    dx = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))
In inference the op is affine per channel: dx = dy * gamma / sqrt(moving_var + eps).

LayerNormalization: input and output of any shape; statistics per example over ``axis`` (an int
or a list of ints, never the batch axis), the same in training and inference:
    mu, var = mean and (biased) variance over ``axis``;  x_hat = (x - mu) * rsqrt(var + epsilon)
    y = gamma * x_hat + beta                  (rms_scaling=True, Keras's deprecated variant:
                                               y = gamma * x * rsqrt(var + epsilon), no beta)
Parameters in Keras's order: ``gamma`` (if scale or rms_scaling), ``beta`` (if center and not
rms_scaling), both of the shape of the normalized axes. Backward in ``arraymath.normalization``.

Both layers take Keras's ``gamma_regularizer``, ``beta_regularizer``, ``gamma_constraint`` and
``beta_constraint`` (``convscope.regularizers`` / ``constraints``) for their trainable parameters.

Example:
    >>> layer = LayerNormalization(axis=[1, 2, 3])
    >>> layer(np.zeros((8, 5, 5, 16), "float32")).shape, [p.shape for p in layer.parameters]
    ((8, 5, 5, 16), [(5, 5, 16), (5, 5, 16)])
"""

from __future__ import annotations

import warnings

from .. import backend, constraints, initializers, regularizers
from ..arraymath.normalization import layer_norm_backward, layer_norm_forward
from .base import Layer, finite_number, lookup


class _ScaleShiftPenalties:
    """The gamma / beta regularizer and constraint arguments both normalization layers share."""

    def set_penalties(self, owner: str, gamma_regularizer, beta_regularizer, gamma_constraint, beta_constraint):
        self.gamma_regularizer = lookup(regularizers.get, gamma_regularizer, "gamma_regularizer", owner)
        self.beta_regularizer = lookup(regularizers.get, beta_regularizer, "beta_regularizer", owner)
        self.gamma_constraint = lookup(constraints.get, gamma_constraint, "gamma_constraint", owner)
        self.beta_constraint = lookup(constraints.get, beta_constraint, "beta_constraint", owner)

    def penalties(self, name: str) -> dict:
        """``add_parameter``'s regularizer and constraint for parameter ``name`` (none for moving statistics)."""
        if name not in ("gamma", "beta"):
            return {}
        return {"regularizer": getattr(self, f"{name}_regularizer"), "constraint": getattr(self, f"{name}_constraint")}

    def penalties_config(self) -> dict:
        return {
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }


class BatchNormalization(_ScaleShiftPenalties, Layer):
    LOOP_REFERENCE = "convscope.arraymath.reference.batch_normalization_loops"

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        owner = f'BatchNormalization "{self.name}"'
        if axis not in (-1, 3):
            raise ValueError(f"{owner}: only the channel axis (-1) is supported, received axis={axis!r}")
        if not finite_number(momentum) or not 0 <= momentum < 1:
            raise ValueError(f'{owner}: argument "momentum" must be in [0, 1), received {momentum!r}')
        if not finite_number(epsilon) or epsilon <= 0:
            raise ValueError(f'{owner}: argument "epsilon" must be a number > 0, received {epsilon!r}')
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        for arg, value in (("center", center), ("scale", scale)):
            if not isinstance(value, bool):
                raise TypeError(f'{owner}: argument "{arg}" must be a bool, received {value!r}')
        self.center, self.scale = center, scale
        self.initializers = {
            "gamma": lookup(initializers.get, gamma_initializer, "gamma_initializer", owner),
            "beta": lookup(initializers.get, beta_initializer, "beta_initializer", owner),
            "moving_mean": lookup(initializers.get, moving_mean_initializer, "moving_mean_initializer", owner),
            "moving_variance": lookup(
                initializers.get, moving_variance_initializer, "moving_variance_initializer", owner
            ),
        }
        self.set_penalties(owner, gamma_regularizer, beta_regularizer, gamma_constraint, beta_constraint)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f'Input 0 of layer "{self.name}" needs a known channel axis, found shape={tuple(input_shape)}')
        super().build(input_shape)
        for name, shape in self.param_shapes(input_shape).items():
            trainable = not name.startswith("moving_")
            setattr(self, name, self.add_parameter(name, self.initializers[name](shape), trainable=trainable,
                                                   **self.penalties(name)))

    def param_shapes(self, input_shape) -> dict:
        """gamma, beta (if scale / center), moving_mean, moving_variance: each (channels,), in Keras's order."""
        names = ["gamma"] * self.scale + ["beta"] * self.center + ["moving_mean", "moving_variance"]
        return {name: (input_shape[-1],) for name in names}

    def forward(self, x, training: bool = False):
        training = training and self.trainable  # a frozen batch norm keeps its statistics, as in Keras
        axes = tuple(range(x.ndim - 1))
        if training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            m = self.momentum
            self.moving_mean.value = m * self.moving_mean.value + (1 - m) * mean
            self.moving_variance.value = m * self.moving_variance.value + (1 - m) * var
        else:
            mean, var = self.moving_mean.value, self.moving_variance.value
        self._training = training
        self._inv_std = 1.0 / backend.xp.sqrt(var + self.epsilon)
        if not training:
            # Inference: the same arithmetic in place on one new array (bit-identical to the training path's
            # (x - mean) * inv_std * gamma + beta), keeping no normalized copy: backward recomputes x_hat from x.
            self._x, self._mean, self._x_hat = x, mean, None
            y = x - mean
            y *= self._inv_std
            if self.scale:
                y *= self.gamma.value
            if self.center:
                y += self.beta.value
            return y
        self._x_hat = (x - mean) * self._inv_std
        y = self._x_hat * self.gamma.value if self.scale else self._x_hat.copy()
        if self.center:
            y += self.beta.value
        return y

    def backward(self, dy, need_dx: bool = True):
        axes = tuple(range(dy.ndim - 1))
        if self.center:
            self.beta.grad += dy.sum(axis=axes)
        if self._x_hat is None:
            self._x_hat = (self._x - self._mean) * self._inv_std
        if self.scale:
            self.gamma.grad += (dy * self._x_hat).sum(axis=axes)
        dx_hat = dy * self.gamma.value if self.scale else dy
        if not self._training:
            return dx_hat * self._inv_std
        return self._inv_std * (
            dx_hat - dx_hat.mean(axis=axes) - self._x_hat * (dx_hat * self._x_hat).mean(axis=axes)
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **{f"{k}_initializer": initializers.serialize(v) for k, v in self.initializers.items()},
            **self.penalties_config(),
        }


class LayerNormalization(_ScaleShiftPenalties, Layer):
    LOOP_REFERENCE = "convscope.arraymath.reference_resample.layer_normalization_loops"

    def __init__(
        self,
        axis=-1,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        *,
        rms_scaling=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._owner = owner = f'LayerNormalization "{self.name}"'
        if isinstance(axis, (list, tuple)) and all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
            self.axis = list(axis)
        elif isinstance(axis, int) and not isinstance(axis, bool):
            self.axis = axis
        else:
            raise TypeError(f'{owner}: argument "axis" must be an int or a list/tuple of ints, received {axis!r}')
        if not finite_number(epsilon) or epsilon <= 0:
            raise ValueError(f'{owner}: argument "epsilon" must be a number > 0, received {epsilon!r}')
        self.epsilon = float(epsilon)
        for arg, value in (("center", center), ("scale", scale), ("rms_scaling", rms_scaling)):
            if not isinstance(value, bool):
                raise TypeError(f'{owner}: argument "{arg}" must be a bool, received {value!r}')
        if rms_scaling:
            warnings.warn(
                f"{owner}: rms_scaling=True is deprecated in Keras: it scales the input by the variance, not "
                "the root mean square (keras.layers.RMSNormalization does that)",
                UserWarning,
                stacklevel=2,
            )
        self.center, self.scale, self.rms_scaling = center, scale, rms_scaling
        self.gamma_initializer = lookup(initializers.get, gamma_initializer, "gamma_initializer", owner)
        self.beta_initializer = lookup(initializers.get, beta_initializer, "beta_initializer", owner)
        self.set_penalties(owner, gamma_regularizer, beta_regularizer, gamma_constraint, beta_constraint)
        self.gamma = self.beta = None

    def _axes(self, input_shape) -> list:
        """``axis`` as sorted non-negative ints for an input of this shape; refuses out-of-range, repeated,
        batch or unknown-size axes."""
        ndim = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if not axes:
            raise ValueError(f'{self._owner}: argument "axis" names no axis, received {self.axis!r}')
        for a in axes:
            if not -ndim <= a < ndim:
                raise ValueError(
                    f"{self._owner}: axis {a} is out of bounds for an input of rank {ndim} "
                    f"(shape={tuple(input_shape)})"
                )
        canonical = [a % ndim for a in axes]
        if len(set(canonical)) != len(canonical):
            raise ValueError(f"{self._owner}: duplicate axes are not allowed, received axis={self.axis!r}")
        for d in canonical:
            if d == 0 or input_shape[d] is None:
                raise ValueError(
                    f"{self._owner}: the normalized axes need known sizes and cannot include the batch axis, "
                    f"received axis={self.axis!r} for input shape={tuple(input_shape)}"
                )
        return sorted(canonical)

    def compute_output_shape(self, input_shape) -> tuple:
        self._axes(input_shape)
        return tuple(input_shape)

    def param_shapes(self, input_shape) -> dict:
        """gamma (if scale or rms_scaling), beta (if center and not rms_scaling): the normalized axes' sizes."""
        shape = tuple(input_shape[d] for d in self._axes(input_shape))
        names = ["gamma"] * (self.scale or self.rms_scaling) + ["beta"] * (self.center and not self.rms_scaling)
        return {name: shape for name in names}

    def build(self, input_shape) -> None:
        shapes = self.param_shapes(input_shape)
        # Keras keeps the canonical axes once built (and get_config reports them so).
        self.axis = self._axes(input_shape)
        super().build(input_shape)
        if "gamma" in shapes:
            self.gamma = self.add_parameter("gamma", self.gamma_initializer(shapes["gamma"]), **self.penalties("gamma"))
        if "beta" in shapes:
            self.beta = self.add_parameter("beta", self.beta_initializer(shapes["beta"]), **self.penalties("beta"))

    def _broadcast(self, param, x):
        if param is None:
            return None
        shape = [1] * x.ndim
        for d in self.axis:
            shape[d] = x.shape[d]
        return param.value.astype(x.dtype, copy=False).reshape(shape)

    def forward(self, x, training: bool = False):
        if x.dtype.kind != "f":
            x = backend.cast(x)
        y, self._mean, self._inv_std = layer_norm_forward(
            x, self._broadcast(self.gamma, x), self._broadcast(self.beta, x), self.axis, self.epsilon,
            self.rms_scaling,
        )
        self._x = x
        return y

    def backward(self, dy, need_dx: bool = True):
        dx, dgamma, dbeta = layer_norm_backward(
            dy, self._x, self._mean, self._inv_std, self._broadcast(self.gamma, dy), self.axis, self.rms_scaling
        )
        if self.gamma is not None:
            self.gamma.grad += dgamma
        if self.beta is not None:
            self.beta.grad += dbeta
        return dx if need_dx else None

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": list(self.axis) if isinstance(self.axis, list) else self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            **self.penalties_config(),
        }
