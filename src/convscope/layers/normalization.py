"""BatchNormalization over the last (channel) axis, with Keras's defaults.

Input and output (batch, ..., channels). Parameters in Keras's order: ``gamma``,
``beta`` (trainable, (channels,)), ``moving_mean``, ``moving_variance``
(non-trainable, (channels,)).

Training:  mu, var = mean and (biased) variance over every axis but the last;
           x_hat = (x - mu) / sqrt(var + epsilon);  y = gamma * x_hat + beta;
           moving = momentum * moving + (1 - momentum) * batch statistic.
Inference: the same with the moving statistics in place of mu and var.

Backward (training), with m the number of values per channel:
    dx = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))
In inference the op is affine per channel: dx = dy * gamma / sqrt(moving_var + eps).
"""

from __future__ import annotations

from .. import backend, initializers
from .base import Layer, lookup


class BatchNormalization(Layer):
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        owner = f'BatchNormalization "{self.name}"'
        if axis not in (-1, 3):
            raise ValueError(f"{owner}: only the channel axis (-1) is supported, received axis={axis!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ValueError(f'{owner}: argument "momentum" must be in [0, 1), received {momentum!r}')
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon <= 0:
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
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f'Input 0 of layer "{self.name}" needs a known channel axis, found shape={tuple(input_shape)}')
        super().build(input_shape)
        for name, shape in self.param_shapes(input_shape).items():
            trainable = not name.startswith("moving_")
            setattr(self, name, self.add_parameter(name, self.initializers[name](shape), trainable=trainable))

    def param_shapes(self, input_shape) -> dict:
        """gamma, beta (if scale / center), moving_mean, moving_variance: each (channels,), in Keras's order."""
        names = ["gamma"] * self.scale + ["beta"] * self.center + ["moving_mean", "moving_variance"]
        return {name: (input_shape[-1],) for name in names}

    def forward(self, x, training: bool = False):
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
        self._x_hat = (x - mean) * self._inv_std
        y = self._x_hat * self.gamma.value if self.scale else self._x_hat.copy()
        if self.center:
            y += self.beta.value
        return y

    def backward(self, dy):
        axes = tuple(range(dy.ndim - 1))
        if self.center:
            self.beta.grad[...] = dy.sum(axis=axes)
        if self.scale:
            self.gamma.grad[...] = (dy * self._x_hat).sum(axis=axes)
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
        }
