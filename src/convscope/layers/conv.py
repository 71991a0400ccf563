"""Conv2D: a bank of learned filters slid over the input.

Input (batch, height, width, channels) -> output (batch, out_h, out_w, filters).
Parameters: ``kernel`` (kh, kw, channels // groups, filters), ``bias`` (filters,):
one bias per filter, added to every cell of that filter's feature map. Each may have a
regularizer and a constraint (``MaxNorm(axis=[0, 1, 2])`` caps each filter's norm).

    z[n, oh, ow, f] = bias[f] + sum_{i, j, c} x_pad[n, oh*sh + i*dh, ow*sw + j*dw, c] * kernel[i, j, c, f]
    y = activation(z)                                     (element-wise)

Output size per axis: "valid" -> floor((n - (d*(k-1)+1)) / s) + 1; "same" -> ceil(n / s),
zero padding split with the odd cell at the bottom / right (as Keras).

Example:
    >>> layer = Conv2D(32, 3, activation="relu")
    >>> layer(np.zeros((8, 28, 28, 1), "float32")).shape
    (8, 26, 26, 32)
    >>> layer.kernel.value.shape, layer.bias.value.shape
    ((3, 3, 1, 32), (32,))
"""

from __future__ import annotations

from .. import constraints, initializers, regularizers
from ..arraymath.conv import conv2d_backward, conv2d_forward
from ..arraymath.shapes import normalize_padding, normalize_tuple, output_hw, paddings_2d
from .base import ActivatedLayer, lookup, check_image_input, check_positive_int


class Conv2D(ActivatedLayer):
    LOOP_REFERENCE = "convscope.arraymath.reference.conv2d_loops"

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        groups=1,
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
        owner = f'Conv2D "{self.name}"'
        self.filters = check_positive_int(filters, "filters", owner)
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size", owner)
        self.strides = normalize_tuple(strides, 2, "strides", owner)
        self.padding = normalize_padding(padding, owner)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate", owner)
        self.groups = check_positive_int(groups, "groups", owner)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{owner}: strides > 1 not supported in conjunction with dilation_rate > 1, "
                f"received strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        if self.filters % self.groups:
            raise ValueError(
                f'{owner}: "filters" must be divisible by "groups", received filters={self.filters}, groups={self.groups}'
            )
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
        check_image_input(self, input_shape)
        channels = input_shape[3]
        if channels % self.groups:
            raise ValueError(
                f'Conv2D "{self.name}": input channels must be divisible by "groups", '
                f"received {channels} channels and groups={self.groups}"
            )
        super().build(input_shape)
        shapes = self.param_shapes(input_shape)
        self.kernel = self.add_parameter("kernel", self.kernel_initializer(shapes["kernel"]),
                                         regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_parameter("bias", self.bias_initializer(shapes["bias"]),
                                           regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        # Padding depends only on the input size, so it is fixed once here rather than per batch.
        self.pads = paddings_2d(input_shape[1:3], self.kernel_size, self.strides, self.padding, self.dilation_rate)

    def param_shapes(self, input_shape) -> dict:
        """kernel (kh, kw, channels // groups, filters) and bias (filters,): (kh*kw*channels/groups + 1) * filters numbers."""
        shapes = {"kernel": (*self.kernel_size, input_shape[3] // self.groups, self.filters)}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def compute_output_shape(self, input_shape) -> tuple:
        check_image_input(self, input_shape)
        out_h, out_w = output_hw(input_shape[1:3], self.kernel_size, self.strides, self.padding, self.dilation_rate)
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f'Conv2D "{self.name}": input of spatial size {tuple(input_shape[1:3])} is too small for '
                f"kernel_size={self.kernel_size}, dilation_rate={self.dilation_rate} with padding=\"valid\" "
                f"(output would be {out_h}x{out_w})"
            )
        return (input_shape[0], out_h, out_w, self.filters)

    def forward_linear(self, x, training: bool = False):
        bias = self.bias.value if self.use_bias else None
        z, self._cols = conv2d_forward(
            x, self.kernel.value, bias, self.strides, self.pads, self.dilation_rate, self.groups
        )
        self._x_shape = x.shape
        return z

    def backward_linear(self, dz, need_dx: bool = True):
        dx, dkernel, dbias = conv2d_backward(
            dz, self._cols, self._x_shape, self.kernel.value, self.strides, self.pads, self.dilation_rate, self.groups,
            need_dx=need_dx,
        )
        self.kernel.grad += dkernel
        if self.use_bias:
            self.bias.grad += dbias
        return dx

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "dilation_rate": list(self.dilation_rate),
            "groups": self.groups,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            # Keras's convolutions write it even when None (other layers only when set).
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
