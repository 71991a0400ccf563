"""DepthwiseConv2D, SeparableConv2D and Conv2DTranspose: Keras 3's other 2-D convolutions, in NHWC.

* ``DepthwiseConv2D`` filters every input channel on its own, ``depth_multiplier`` (M)
  filters per channel; output channel ``c*M + m`` comes from input channel c and filter m:

      z[n, oh, ow, c*M + m] = bias[c*M + m] + sum_{i, j} x_pad[n, oh*sh + i*dh, ow*sw + j*dw, c] * kernel[i, j, c, m]

  It equals a Conv2D with ``groups = C`` whose kernel (kh, kw, 1, C*M) is this kernel reshaped
  (tested), but runs window position by window position (``arraymath.depthwise``): with only kh*kw
  products per output value a matrix product does not pay for the im2col copy.
  Parameters ``kernel`` (kh, kw, C, M), ``bias`` (C*M,).
* ``SeparableConv2D`` is that depthwise step (no bias) followed by a 1x1 convolution mixing
  the C*M channels into ``filters``, then the bias and the activation (Keras's order).
  Parameters ``depthwise_kernel`` (kh, kw, C, M), ``pointwise_kernel`` (1, 1, C*M, filters),
  ``bias`` (filters,).
* ``Conv2DTranspose`` is the adjoint of a Conv2D: every input cell scatters the kernel,
  scaled by its value, onto the output (see ``arraymath.conv_transpose`` for the math and the padding):

      z[n, i*sh + a*dh - top, j*sw + b*dw - left, f] += x[n, i, j, c] * kernel[a, b, f, c],   then + bias[f]

  Parameters ``kernel`` (kh, kw, filters, C), as Keras stores it, and ``bias`` (filters,).

Output size per axis (n input cells, ``k_eff = d*(k-1) + 1``):

* DepthwiseConv2D, SeparableConv2D: "valid" -> floor((n - k_eff) / s) + 1, "same" -> ceil(n / s),
  as Conv2D;
* Conv2DTranspose: "valid" -> (n-1)*s + k_eff + output_padding (None: max(k_eff, s) - k_eff);
  "same" -> n*s (output_padding None), else (n-1)*s + k_eff % 2 + output_padding.

y = activation(z). Only ``data_format="channels_last"`` (the default, None) is supported.
Every parameter may have a regularizer and a constraint (Keras's ``kernel_`` / ``depthwise_`` /
``pointwise_`` / ``bias_regularizer`` and ``_constraint`` arguments), the output an
``activity_regularizer``.

Example:
    >>> DepthwiseConv2D(3, depth_multiplier=2)(np.zeros((8, 28, 28, 3), "float32")).shape
    (8, 26, 26, 6)
    >>> SeparableConv2D(16, 3, padding="same")(np.zeros((8, 28, 28, 3), "float32")).shape
    (8, 28, 28, 16)
    >>> Conv2DTranspose(4, 3, strides=2, padding="same")(np.zeros((8, 7, 7, 16), "float32")).shape
    (8, 14, 14, 4)
"""

from __future__ import annotations

from .. import constraints, initializers, regularizers
from ..arraymath.conv import conv2d_backward, conv2d_forward
from ..arraymath.depthwise import depthwise_conv2d_backward, depthwise_conv2d_forward
from ..arraymath.conv_transpose import conv2d_transpose_backward, conv2d_transpose_forward, conv_transpose_geometry
from ..arraymath.shapes import normalize_data_format, normalize_padding, normalize_tuple, output_hw, paddings_2d
from .base import ActivatedLayer, check_image_input, check_positive_int, lookup

_NO_PADS = ((0, 0), (0, 0))


class _WindowConv(ActivatedLayer):
    """The arguments every 2-D convolution shares, checked once; subclasses add their own."""

    def __init__(self, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                 bias_regularizer, bias_constraint, **kwargs):
        super().__init__(activation=activation, **kwargs)
        owner = self.owner
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size", owner)
        self.strides = normalize_tuple(strides, 2, "strides", owner)
        self.padding = normalize_padding(padding, owner)
        self.data_format = normalize_data_format(data_format, owner)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate", owner)
        if not isinstance(use_bias, bool):
            raise TypeError(f'{owner}: argument "use_bias" must be a bool, received {use_bias!r}')
        self.use_bias = use_bias
        self.bias_regularizer = self.regularizer_arg(bias_regularizer, "bias_regularizer")
        self.bias_constraint = self.constraint_arg(bias_constraint, "bias_constraint")

    @property
    def owner(self) -> str:
        return f'{type(self).__name__} "{self.name}"'

    def regularizer_arg(self, value, arg: str):
        return lookup(regularizers.get, value, arg, self.owner)

    def constraint_arg(self, value, arg: str):
        return lookup(constraints.get, value, arg, self.owner)

    def add_bias(self, shape) -> None:
        self.bias = self.add_parameter("bias", self.bias_initializer(shape), regularizer=self.bias_regularizer,
                                       constraint=self.bias_constraint)

    def window_output_hw(self, input_shape) -> tuple[int, int]:
        """(OH, OW) of the sliding window over ``input_shape``, refused when "valid" leaves nothing."""
        check_image_input(self, input_shape)
        out_h, out_w = output_hw(input_shape[1:3], self.kernel_size, self.strides, self.padding, self.dilation_rate)
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"{self.owner}: computed output size would be zero or negative: input of spatial size "
                f"{tuple(input_shape[1:3])} is too small for kernel_size={self.kernel_size}, "
                f'dilation_rate={self.dilation_rate}, strides={self.strides} with padding="valid" '
                f"(output would be {out_h}x{out_w})"
            )
        return out_h, out_w

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "use_bias": self.use_bias,
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            # Keras's convolutions write it even when None (other layers only when set).
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }


class DepthwiseConv2D(_WindowConv):
    """Each input channel convolved with its own ``depth_multiplier`` filters (no mixing across channels).

    Input (batch, H, W, C) -> output (batch, OH, OW, C * depth_multiplier); parameters ``kernel``
    (kh, kw, C, depth_multiplier) and ``bias`` (C * depth_multiplier,): (kh*kw + 1) * C * M numbers.
    """

    LOOP_REFERENCE = "convscope.arraymath.reference_conv.depthwise_conv2d_loops"

    def __init__(
        self,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        depth_multiplier=1,
        data_format=None,
        dilation_rate=(1, 1),
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_regularizer, bias_constraint, activity_regularizer=activity_regularizer, **kwargs)
        self.depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier", self.owner)
        self.depthwise_initializer = lookup(initializers.get, depthwise_initializer, "depthwise_initializer",
                                            self.owner)
        self.bias_initializer = lookup(initializers.get, bias_initializer, "bias_initializer", self.owner)
        self.depthwise_regularizer = self.regularizer_arg(depthwise_regularizer, "depthwise_regularizer")
        self.depthwise_constraint = self.constraint_arg(depthwise_constraint, "depthwise_constraint")
        self.kernel = self.bias = None

    def build(self, input_shape) -> None:
        super().build(input_shape)
        shapes = self.param_shapes(input_shape)
        self.kernel = self.add_parameter("kernel", self.depthwise_initializer(shapes["kernel"]),
                                         regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint)
        if self.use_bias:
            self.add_bias(shapes["bias"])
        self.pads = paddings_2d(input_shape[1:3], self.kernel_size, self.strides, self.padding, self.dilation_rate)

    def param_shapes(self, input_shape) -> dict:
        channels = input_shape[3]
        shapes = {"kernel": (*self.kernel_size, channels, self.depth_multiplier)}
        if self.use_bias:
            shapes["bias"] = (channels * self.depth_multiplier,)
        return shapes

    def compute_output_shape(self, input_shape) -> tuple:
        return (input_shape[0], *self.window_output_hw(input_shape), input_shape[3] * self.depth_multiplier)

    def forward_linear(self, x, training: bool = False):
        bias = self.bias.value if self.use_bias else None
        z, self._padded_input = depthwise_conv2d_forward(x, self.kernel.value, bias, self.strides, self.pads,
                                                         self.dilation_rate)
        self._x_shape = x.shape
        return z

    def backward_linear(self, dz, need_dx: bool = True):
        dx, dkernel, dbias = depthwise_conv2d_backward(dz, self._padded_input, self._x_shape, self.kernel.value,
                                                       self.strides, self.pads, self.dilation_rate, need_dx)
        self.kernel.grad += dkernel
        if self.use_bias:
            self.bias.grad += dbias
        return dx

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
        }


class SeparableConv2D(_WindowConv):
    """A depthwise convolution (per channel, ``depth_multiplier`` filters each), then a 1x1 convolution
    mixing the channels into ``filters``, then the bias and the activation.

    Input (batch, H, W, C) -> output (batch, OH, OW, filters); parameters ``depthwise_kernel``
    (kh, kw, C, M), ``pointwise_kernel`` (1, 1, C*M, filters), ``bias`` (filters,):
    kh*kw*C*M + C*M*filters + filters numbers (no bias between the two steps).
    """

    LOOP_REFERENCE = "convscope.arraymath.reference_conv.separable_conv2d_loops"

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        data_format=None,
        dilation_rate=(1, 1),
        depth_multiplier=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        pointwise_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_regularizer, bias_constraint, activity_regularizer=activity_regularizer, **kwargs)
        owner = self.owner
        self.filters = check_positive_int(filters, "filters", owner)
        self.depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier", owner)
        self.depthwise_initializer = lookup(initializers.get, depthwise_initializer, "depthwise_initializer", owner)
        self.pointwise_initializer = lookup(initializers.get, pointwise_initializer, "pointwise_initializer", owner)
        self.bias_initializer = lookup(initializers.get, bias_initializer, "bias_initializer", owner)
        self.depthwise_regularizer = self.regularizer_arg(depthwise_regularizer, "depthwise_regularizer")
        self.pointwise_regularizer = self.regularizer_arg(pointwise_regularizer, "pointwise_regularizer")
        self.depthwise_constraint = self.constraint_arg(depthwise_constraint, "depthwise_constraint")
        self.pointwise_constraint = self.constraint_arg(pointwise_constraint, "pointwise_constraint")
        self.depthwise_kernel = self.pointwise_kernel = self.bias = None

    def build(self, input_shape) -> None:
        super().build(input_shape)
        shapes = self.param_shapes(input_shape)
        self.depthwise_kernel = self.add_parameter(
            "depthwise_kernel", self.depthwise_initializer(shapes["depthwise_kernel"]),
            regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint)
        self.pointwise_kernel = self.add_parameter(
            "pointwise_kernel", self.pointwise_initializer(shapes["pointwise_kernel"]),
            regularizer=self.pointwise_regularizer, constraint=self.pointwise_constraint)
        if self.use_bias:
            self.add_bias(shapes["bias"])
        self.pads = paddings_2d(input_shape[1:3], self.kernel_size, self.strides, self.padding, self.dilation_rate)

    def param_shapes(self, input_shape) -> dict:
        depthwise_channels = input_shape[3] * self.depth_multiplier
        shapes = {
            "depthwise_kernel": (*self.kernel_size, input_shape[3], self.depth_multiplier),
            "pointwise_kernel": (1, 1, depthwise_channels, self.filters),
        }
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def compute_output_shape(self, input_shape) -> tuple:
        return (input_shape[0], *self.window_output_hw(input_shape), self.filters)

    def forward_linear(self, x, training: bool = False):
        depthwise, self._padded_input = depthwise_conv2d_forward(x, self.depthwise_kernel.value, None,
                                                                 self.strides, self.pads, self.dilation_rate)
        bias = self.bias.value if self.use_bias else None
        z, self._pointwise_cols = conv2d_forward(depthwise, self.pointwise_kernel.value, bias, (1, 1), _NO_PADS,
                                                 (1, 1))
        self._x_shape, self._depthwise_shape = x.shape, depthwise.shape
        return z

    def backward_linear(self, dz, need_dx: bool = True):
        ddepthwise, dpointwise, dbias = conv2d_backward(dz, self._pointwise_cols, self._depthwise_shape,
                                                        self.pointwise_kernel.value, (1, 1), _NO_PADS, (1, 1))
        dx, dkernel, _ = depthwise_conv2d_backward(ddepthwise, self._padded_input, self._x_shape,
                                                   self.depthwise_kernel.value, self.strides, self.pads,
                                                   self.dilation_rate, need_dx)
        self.depthwise_kernel.grad += dkernel
        self.pointwise_kernel.grad += dpointwise
        if self.use_bias:
            self.bias.grad += dbias
        return dx

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
            "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
            "pointwise_constraint": constraints.serialize(self.pointwise_constraint),
        }


class Conv2DTranspose(_WindowConv):
    """The transpose (adjoint) of a Conv2D: maps a conv's output shape back to its input shape,
    e.g. upsampling by ``strides``.

    Input (batch, H, W, C) -> output (batch, OH, OW, filters) with OH, OW from Keras's formula
    (module docstring); parameters ``kernel`` (kh, kw, filters, C) and ``bias`` (filters,):
    (kh*kw*C + 1) * filters numbers. The forward pass is a Conv2D's input gradient, the
    backward pass a Conv2D's forward (``arraymath.conv_transpose``).

    Not a subclass of Conv2D, although tinygrad's ConvTranspose2d is one of its Conv2d: code
    that asks ``isinstance(layer, Conv2D)`` (the ONNX export, the lessons) must not mistake it
    for a convolution, and none of Conv2D's methods would carry over unchanged.
    """

    LOOP_REFERENCE = "convscope.arraymath.reference_conv.conv2d_transpose_loops"

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        output_padding=None,
        data_format=None,
        dilation_rate=(1, 1),
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
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_regularizer, bias_constraint, activity_regularizer=activity_regularizer, **kwargs)
        owner = self.owner
        self.filters = check_positive_int(filters, "filters", owner)
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = normalize_tuple(output_padding, 2, "output_padding", owner, allow_zero=True)
            for i, (op, s) in enumerate(zip(self.output_padding, self.strides)):
                if op >= s:
                    raise ValueError(
                        f"{owner}: `output_padding` must be strictly less than `strides` for all dimensions. "
                        f"At dimension {i}, `output_padding` is {op} but `strides` is {s}. "
                        f"Received: output_padding={self.output_padding}, strides={self.strides}"
                    )
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{owner}: `strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.kernel_initializer = lookup(initializers.get, kernel_initializer, "kernel_initializer", owner)
        self.bias_initializer = lookup(initializers.get, bias_initializer, "bias_initializer", owner)
        self.kernel_regularizer = self.regularizer_arg(kernel_regularizer, "kernel_regularizer")
        self.kernel_constraint = self.constraint_arg(kernel_constraint, "kernel_constraint")
        self.kernel = self.bias = None

    def geometry(self, input_shape):
        """((OH, OW), pads) for ``input_shape``; see ``arraymath.conv_transpose``."""
        return conv_transpose_geometry(input_shape[1:3], self.kernel_size, self.strides, self.padding,
                                       self.output_padding, self.dilation_rate)

    def build(self, input_shape) -> None:
        super().build(input_shape)
        shapes = self.param_shapes(input_shape)
        self.kernel = self.add_parameter("kernel", self.kernel_initializer(shapes["kernel"]),
                                         regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.add_bias(shapes["bias"])
        self.out_hw, self.pads = self.geometry(input_shape)

    def param_shapes(self, input_shape) -> dict:
        shapes = {"kernel": (*self.kernel_size, self.filters, input_shape[3])}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def compute_output_shape(self, input_shape) -> tuple:
        check_image_input(self, input_shape)
        return (input_shape[0], *self.geometry(input_shape)[0], self.filters)

    def forward_linear(self, x, training: bool = False):
        bias = self.bias.value if self.use_bias else None
        self._x = x
        return conv2d_transpose_forward(x, self.kernel.value, bias, self.strides, self.pads, self.dilation_rate,
                                        self.out_hw)

    def backward_linear(self, dz, need_dx: bool = True):
        dx, dkernel, dbias = conv2d_transpose_backward(dz, self._x, self.kernel.value, self.strides, self.pads,
                                                       self.dilation_rate, need_dx=need_dx)
        self.kernel.grad += dkernel
        if self.use_bias:
            self.bias.grad += dbias
        return dx

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "output_padding": None if self.output_padding is None else list(self.output_padding),
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
        }
