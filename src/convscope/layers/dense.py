"""Dense: every output unit a weighted sum of every input feature, plus its bias.

Input (batch, ..., in_features) -> output (batch, ..., units); like Keras, the
product acts on the last axis, so a Dense on a (batch, h, w, c) map is a 1x1
convolution. Parameters: ``kernel`` (in_features, units), ``bias`` (units,), each with
its optional regularizer and constraint (``convscope.regularizers`` / ``constraints``).

    z = x @ kernel + bias,   y = activation(z)
    dkernel = x^T @ dz,  dbias = sum of dz,  dx = dz @ kernel^T

Example:
    >>> Dense(10, activation="softmax")(np.zeros((4, 1600), "float32")).shape
    (4, 10)
"""

from __future__ import annotations

from .. import constraints, initializers, regularizers
from .base import ActivatedLayer, lookup, check_positive_int


class Dense(ActivatedLayer):
    LOOP_REFERENCE = "convscope.arraymath.reference.dense_loops"

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activation=activation, activity_regularizer=activity_regularizer, **kwargs)
        owner = f'Dense "{self.name}"'
        self.units = check_positive_int(units, "units", owner)
        if not isinstance(use_bias, bool):
            raise TypeError(f'{owner}: argument "use_bias" must be a bool, received {use_bias!r}')
        self.use_bias = use_bias
        self.kernel_initializer = lookup(initializers.get, kernel_initializer, "kernel_initializer", owner)
        self.bias_initializer = lookup(initializers.get, bias_initializer, "bias_initializer", owner)
        self.kernel_regularizer = lookup(regularizers.get, kernel_regularizer, "kernel_regularizer", owner)
        self.bias_regularizer = lookup(regularizers.get, bias_regularizer, "bias_regularizer", owner)
        self.kernel_constraint = lookup(constraints.get, kernel_constraint, "kernel_constraint", owner)
        self.bias_constraint = lookup(constraints.get, bias_constraint, "bias_constraint", owner)
        self.kernel = self.bias = None

    def build(self, input_shape) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: expected ndim>=2 with a known '
                f"last axis, found shape={tuple(input_shape)}"
            )
        super().build(input_shape)
        shapes = self.param_shapes(input_shape)
        self.kernel = self.add_parameter("kernel", self.kernel_initializer(shapes["kernel"]),
                                         regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_parameter("bias", self.bias_initializer(shapes["bias"]),
                                           regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def param_shapes(self, input_shape) -> dict:
        """kernel (in_features, units) and bias (units,)."""
        shapes = {"kernel": (input_shape[-1], self.units)}
        if self.use_bias:
            shapes["bias"] = (self.units,)
        return shapes

    def compute_output_shape(self, input_shape) -> tuple:
        return (*input_shape[:-1], self.units)

    def forward_linear(self, x, training: bool = False):
        self._x = x
        z = x @ self.kernel.value
        if self.use_bias:
            z += self.bias.value
        return z

    def backward_linear(self, dz, need_dx: bool = True):
        x2 = self._x.reshape(-1, self._x.shape[-1])
        dz2 = dz.reshape(-1, self.units)
        self.kernel.grad += x2.T @ dz2
        if self.use_bias:
            self.bias.grad += dz2.sum(axis=0)
        return dz @ self.kernel.value.T if need_dx else None

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
