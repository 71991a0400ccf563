"""Central-difference gradient checks, in float64, of DepthwiseConv2D, SeparableConv2D and
Conv2DTranspose: dL/dx and dL/d(every weight) over a grid of strides 1/2, "same"/"valid",
odd sizes, dilation 2, depth multipliers 1 and 2, output paddings, batch 2, with and
without bias, on the NumPy and the compiled path (``check_layer`` of test_gradients.py).
"""

from __future__ import annotations

import pytest
from test_gradients import check_layer, randn, randomize

from convscope.layers.conv_variants import Conv2DTranspose, DepthwiseConv2D, SeparableConv2D

pytestmark = pytest.mark.usefixtures("kernel_path", "float64")


BIAS = pytest.mark.parametrize("use_bias, activation", [(True, None), (False, "tanh")], ids=["bias", "nobias-tanh"])

# (hw, channels, depth_multiplier, kernel_size, strides, padding, dilation_rate)
DEPTHWISE_GRID = [
    pytest.param((5, 7), 2, 1, 3, 1, "valid", 1, id="k3-valid"),
    pytest.param((5, 7), 2, 2, 3, 1, "same", 1, id="k3-same-dm2"),
    pytest.param((5, 7), 2, 2, 3, 2, "valid", 1, id="k3-s2-valid-dm2"),
    pytest.param((5, 7), 2, 1, 3, 2, "same", 1, id="k3-s2-same"),
    pytest.param((5, 7), 2, 2, 3, 1, "same", 2, id="k3-d2-same-dm2"),
    pytest.param((5, 7), 1, 2, 2, 1, "valid", 2, id="k2-d2-valid-dm2"),
    pytest.param((5, 7), 1, 2, 3, 2, "same", 2, id="k3-s2-d2-same-dm2"),
]


@BIAS
@pytest.mark.parametrize("hw, channels, dm, kernel_size, strides, padding, dilation", DEPTHWISE_GRID)
def test_depthwise_conv2d(hw, channels, dm, kernel_size, strides, padding, dilation, use_bias, activation):
    layer = DepthwiseConv2D(kernel_size, strides=strides, padding=padding, depth_multiplier=dm,
                            dilation_rate=dilation, use_bias=use_bias, activation=activation)
    layer.build((None, *hw, channels))
    randomize(layer, seed=1)
    check_layer(layer, randn(2, *hw, channels, seed=2))


@BIAS
@pytest.mark.parametrize("hw, channels, dm, kernel_size, strides, padding, dilation", DEPTHWISE_GRID)
def test_separable_conv2d(hw, channels, dm, kernel_size, strides, padding, dilation, use_bias, activation):
    layer = SeparableConv2D(3, kernel_size, strides=strides, padding=padding, dilation_rate=dilation,
                            depth_multiplier=dm, use_bias=use_bias, activation=activation)
    layer.build((None, *hw, channels))
    randomize(layer, seed=3)
    _, _, grads = check_layer(layer, randn(2, *hw, channels, seed=4))
    names = [name.rsplit("/", 1)[1] for name in grads]
    assert names == ["depthwise_kernel", "pointwise_kernel", "bias"][: 2 + use_bias]


# (hw, channels, filters, kernel_size, strides, padding, output_padding, dilation_rate)
TRANSPOSE_GRID = [
    pytest.param((5, 7), 2, 2, 3, 1, "valid", None, 1, id="k3-valid"),
    pytest.param((5, 7), 2, 2, 3, 1, "same", None, 1, id="k3-same"),
    pytest.param((5, 7), 2, 2, 3, 2, "valid", None, 1, id="k3-s2-valid"),
    pytest.param((5, 7), 2, 2, 3, 2, "same", None, 1, id="k3-s2-same"),
    pytest.param((5, 7), 2, 2, 3, 2, "valid", 1, 1, id="k3-s2-valid-op1"),
    pytest.param((5, 7), 2, 2, 3, 2, "same", 0, 1, id="k3-s2-same-op0"),
    pytest.param((5, 7), 2, 2, 2, 2, "same", 1, 1, id="k2-s2-same-op1"),
    pytest.param((5, 7), 1, 2, 1, 3, "valid", None, 1, id="k1-s3-valid-gaps"),
    pytest.param((5, 7), 2, 2, 3, 1, "same", None, 2, id="k3-d2-same"),
    pytest.param((5, 7), 2, 2, 3, 1, "valid", None, 2, id="k3-d2-valid"),
]


@BIAS
@pytest.mark.parametrize("hw, channels, filters, kernel_size, strides, padding, output_padding, dilation",
                         TRANSPOSE_GRID)
def test_conv2d_transpose(hw, channels, filters, kernel_size, strides, padding, output_padding, dilation, use_bias,
                          activation):
    layer = Conv2DTranspose(filters, kernel_size, strides=strides, padding=padding, output_padding=output_padding,
                            dilation_rate=dilation, use_bias=use_bias, activation=activation)
    layer.build((None, *hw, channels))
    randomize(layer, seed=5)
    _, _, grads = check_layer(layer, randn(2, *hw, channels, seed=6))
    assert [name.rsplit("/", 1)[1] for name in grads] == ["kernel", "bias"][: 1 + use_bias]
