"""Depthwise, separable and transposed convolution: the fast ops agree with the plain loops.

The layers of ``layers.conv_variants`` compute with ``ops.conv`` (groups = channels for the
depthwise step, a 1x1 convolution for the pointwise step) and ``ops.conv_transpose``; here
their forward and every backward output are held to ``ops.reference_conv`` in float64 over
a grid of strides, paddings, odd sizes, dilations, depth multipliers and output paddings.
The transposed convolution's output size and padding are checked against hand-computed
values of Keras's formula, against the padding Keras hands its JAX backend (an independent
derivation), and its numbers against PyTorch's ``conv_transpose2d`` cropped as Keras's
PyTorch backend crops it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from convscope.arraymath import reference_conv
from convscope.arraymath.conv import conv2d, conv2d_backward, conv2d_forward
from convscope.arraymath.depthwise import depthwise_conv2d_backward, depthwise_conv2d_forward
from convscope.arraymath.conv_transpose import (
    conv2d_transpose,
    conv2d_transpose_backward,
    conv2d_transpose_forward,
    conv_transpose_geometry,
    conv_transpose_output_length,
    conv_transpose_padding,
)
from convscope.arraymath.shapes import output_hw, paddings_2d

pytestmark = pytest.mark.usefixtures("kernel_path")

TOL = dict(rtol=1e-12, atol=1e-12)
NO_PADS = ((0, 0), (0, 0))


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def close(actual, expected):
    assert actual.dtype == np.float64
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, **TOL)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def as_grouped(kernel):
    """The depthwise kernel (kh, kw, C, M) as the kernel (kh, kw, 1, C*M) of a Conv2D with groups = C."""
    kh, kw, c, m = kernel.shape
    return kernel.reshape(kh, kw, 1, c * m)


# ---------------------------------------------------------------- depthwise and separable
# (hw, channels, depth_multiplier, kernel_size, strides, padding, dilation_rate)
DEPTHWISE_GRID = [
    pytest.param((5, 7), 3, 1, 3, 1, "valid", 1, id="k3-valid"),
    pytest.param((5, 7), 3, 2, 3, 1, "same", 1, id="k3-same-dm2"),
    pytest.param((5, 7), 2, 2, 3, 2, "valid", 1, id="k3-s2-valid-dm2"),
    pytest.param((5, 7), 2, 1, 3, 2, "same", 1, id="k3-s2-same"),
    pytest.param((5, 7), 2, 2, 3, 1, "same", 2, id="k3-d2-same-dm2"),
    pytest.param((5, 7), 2, 1, 2, 1, "valid", 2, id="k2-d2-valid"),
    pytest.param((5, 7), 2, 2, (2, 3), (2, 1), "same", 1, id="k2x3-s2x1-same-dm2"),
    pytest.param((5, 7), 1, 2, 3, 2, "same", 2, id="k3-s2-d2-same"),  # Keras accepts strides and dilation here
    pytest.param((5, 7), 3, 1, 1, 1, "valid", 1, id="k1"),
]


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("hw, channels, dm, kernel_size, strides, padding, dilation", DEPTHWISE_GRID)
def test_depthwise_matches_loops(hw, channels, dm, kernel_size, strides, padding, dilation, use_bias):
    strides, dilation, ks = pair(strides), pair(dilation), pair(kernel_size)
    x = randn(2, *hw, channels, seed=1)
    kernel = randn(*ks, channels, dm, seed=2)
    bias = randn(channels * dm, seed=3) if use_bias else None
    pads = paddings_2d(hw, ks, strides, padding, dilation)
    y, cols = conv2d_forward(x, as_grouped(kernel), bias, strides, pads, dilation, groups=channels)
    close(y, reference_conv.depthwise_conv2d_loops(x, kernel, bias, strides, padding, dilation))
    dy = randn(*y.shape, seed=4)
    dx, dkernel, dbias = conv2d_backward(dy, cols, x.shape, as_grouped(kernel), strides, pads, dilation, channels)
    dkernel = dkernel.reshape(kernel.shape)
    dx_ref, dkernel_ref, dbias_ref = reference_conv.depthwise_conv2d_backward_loops(dy, x, kernel, strides, padding,
                                                                                    dilation)
    close(dx, dx_ref)
    close(dkernel, dkernel_ref)
    close(dbias, dbias_ref)
    # The op the layers run (window position by window position) gives the same numbers.
    y_taps, x_padded = depthwise_conv2d_forward(x, kernel, bias, strides, pads, dilation)
    close(y_taps, y)
    taps = depthwise_conv2d_backward(dy, x_padded, x.shape, kernel, strides, pads, dilation)
    for got, expected in zip(taps, (dx_ref, dkernel_ref, dbias_ref)):
        close(got, expected)
    assert depthwise_conv2d_backward(dy, x_padded, x.shape, kernel, strides, pads, dilation, need_dx=False)[0] is None


def test_depthwise_channel_order_is_tensorflows():
    """Output channel c*M + m is input channel c filtered by kernel[..., c, m] (each channel alone)."""
    x = randn(1, 4, 5, 3, seed=5)
    kernel = randn(3, 3, 3, 2, seed=6)
    y = reference_conv.depthwise_conv2d_loops(x, kernel)
    for c, m in itertools.product(range(3), range(2)):
        alone = conv2d(x[..., c : c + 1], kernel[:, :, c : c + 1, m : m + 1])
        np.testing.assert_allclose(y[..., c * 2 + m], alone[..., 0], **TOL)


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("hw, channels, dm, kernel_size, strides, padding, dilation", DEPTHWISE_GRID)
def test_separable_matches_loops(hw, channels, dm, kernel_size, strides, padding, dilation, use_bias):
    """Depthwise then a 1x1 conv, both through ``ops.conv`` (as the layer runs them), against the loops."""
    strides, dilation, ks = pair(strides), pair(dilation), pair(kernel_size)
    filters = 3
    x = randn(2, *hw, channels, seed=7)
    depthwise = randn(*ks, channels, dm, seed=8)
    pointwise = randn(1, 1, channels * dm, filters, seed=9)
    bias = randn(filters, seed=10) if use_bias else None
    pads = paddings_2d(hw, ks, strides, padding, dilation)
    z, z_cols = conv2d_forward(x, as_grouped(depthwise), None, strides, pads, dilation, groups=channels)
    y, y_cols = conv2d_forward(z, pointwise, bias, (1, 1), NO_PADS, (1, 1))
    close(y, reference_conv.separable_conv2d_loops(x, depthwise, pointwise, bias, strides, padding, dilation))
    dy = randn(*y.shape, seed=11)
    dz, dpointwise, dbias = conv2d_backward(dy, y_cols, z.shape, pointwise, (1, 1), NO_PADS, (1, 1))
    dx, ddepthwise, _ = conv2d_backward(dz, z_cols, x.shape, as_grouped(depthwise), strides, pads, dilation, channels)
    ddepthwise = ddepthwise.reshape(depthwise.shape)
    ref = reference_conv.separable_conv2d_backward_loops(dy, x, depthwise, pointwise, strides, padding, dilation)
    for actual, expected in zip((dx, ddepthwise, dpointwise, dbias), ref):
        close(actual, expected)


# ---------------------------------------------------------------- transposed convolution: sizes and padding
@pytest.mark.parametrize(
    "n, k, s, padding, output_padding, d, expected",
    [
        (10, 2, 2, "valid", None, 1, 20),  # Keras's docstring example: (4, 10, 8, 128) -> (4, 20, 16, 32)
        (7, 3, 2, "valid", None, 1, 15),  # (n-1)*s + max(k, s)
        (7, 3, 2, "valid", 1, 1, 16),  # (n-1)*s + k + output_padding
        (7, 1, 3, "valid", None, 1, 21),  # stride wider than the kernel: (n-1)*s + s
        (7, 3, 1, "valid", None, 1, 9),
        (5, 3, 1, "valid", None, 2, 9),  # k_eff = 5
        (7, 3, 2, "same", None, 1, 14),  # n*s
        (7, 3, 2, "same", 0, 1, 13),  # (n-1)*s + k%2 + output_padding
        (7, 3, 2, "same", 1, 1, 14),
        (7, 4, 2, "same", 1, 1, 13),
        (7, 4, 2, "same", 0, 1, 12),
        (5, 4, 3, "same", 2, 1, 14),
        (5, 3, 1, "same", None, 2, 5),
        (1, 3, 2, "same", None, 1, 2),
    ],
)
def test_conv_transpose_output_length(n, k, s, padding, output_padding, d, expected):
    assert conv_transpose_output_length(n, k, s, padding, output_padding, d) == expected


@pytest.mark.parametrize(
    "n, out, k, s, padding, expected",
    [
        (7, 15, 3, 2, "valid", (0, 0)),  # the whole scatter, 6*2 + 3 = 15 cells
        (7, 16, 3, 2, "valid", (0, -1)),  # output_padding 1: one row past the scatter
        (7, 21, 1, 3, "valid", (0, -2)),  # stride 3 over 1 cell: two empty rows at the bottom
        (7, 14, 3, 2, "same", (0, 1)),  # span 15, 1 trimmed: the odd cell at the bottom, as Conv2D pads
        (7, 14, 4, 2, "same", (1, 1)),
        (7, 7, 5, 1, "same", (2, 2)),
        (7, 13, 3, 2, "same", (1, 1)),
        (7, 12, 4, 2, "same", (2, 2)),
        (5, 14, 4, 3, "same", (1, 1)),
        (5, 15, 1, 3, "same", (0, -2)),  # output_padding 2 past a 1-cell kernel: "same" trims nothing
    ],
)
def test_conv_transpose_padding(n, out, k, s, padding, expected):
    assert conv_transpose_padding(n, out, k, s, padding) == expected


def keras_jax_padding(k, s, d, padding, output_padding):
    """The (left, right) padding of the stride-dilated input that Keras gives JAX's transposed conv
    (``_convert_conv_transpose_padding_args_from_keras_to_jax``, restated)."""
    k = (k - 1) * d + 1
    if padding == "valid":
        extra = max(k, s) - k if output_padding is None else output_padding
        return k - 1, k - 1 + extra
    total = s + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, k - 1)
    return left, total - left


def test_conv_transpose_geometry_agrees_with_kerass_jax_padding():
    """JAX pads the stride-dilated input by (left, right) and correlates with the flipped kernel, so
    it keeps k_eff - 1 - left cells fewer at the top than the whole scatter, and its length is
    (n-1)*s + 1 + left + right - k_eff + 1. Both must equal our (top, OH) everywhere."""
    checked = 0
    for n, k, s, d, padding in itertools.product(range(1, 8), range(1, 6), range(1, 5), (1, 2), ("valid", "same")):
        if s > 1 and d > 1:
            continue
        for output_padding in [None, *range(s)]:
            op = None if output_padding is None else (output_padding, output_padding)
            (out, _), ((top, bottom), _) = conv_transpose_geometry((n, n), (k, k), (s, s), padding, op, (d, d))
            left, right = keras_jax_padding(k, s, d, padding, output_padding)
            k_eff = (k - 1) * d + 1
            assert out == (n - 1) * s + 1 + left + right - k_eff + 1, (n, k, s, d, padding, output_padding)
            assert top == k_eff - 1 - left, (n, k, s, d, padding, output_padding)
            assert -s < bottom, "an output row past the scatter would hold a whole window"
            checked += 1
    assert checked > 500


# ---------------------------------------------------------------- transposed convolution: numbers
# (hw, channels, filters, kernel_size, strides, padding, output_padding, dilation_rate)
TRANSPOSE_GRID = [
    pytest.param((5, 7), 2, 3, 3, 1, "valid", None, 1, id="k3-valid"),
    pytest.param((5, 7), 2, 3, 3, 1, "same", None, 1, id="k3-same"),
    pytest.param((5, 7), 2, 3, 3, 2, "valid", None, 1, id="k3-s2-valid"),
    pytest.param((5, 7), 2, 3, 3, 2, "same", None, 1, id="k3-s2-same"),
    pytest.param((5, 7), 2, 3, 3, 2, "valid", 1, 1, id="k3-s2-valid-op1"),
    pytest.param((5, 7), 2, 3, 3, 2, "same", 0, 1, id="k3-s2-same-op0"),
    pytest.param((5, 7), 2, 3, 3, 2, "same", 1, 1, id="k3-s2-same-op1"),
    pytest.param((5, 7), 2, 3, 2, 2, "same", 1, 1, id="k2-s2-same-op1"),
    pytest.param((5, 7), 2, 3, 2, 2, "same", 0, 1, id="k2-s2-same-op0"),
    pytest.param((5, 7), 2, 3, 4, 2, "same", None, 1, id="k4-s2-same"),
    pytest.param((5, 7), 2, 3, 1, 3, "valid", None, 1, id="k1-s3-valid-gaps"),
    pytest.param((5, 7), 2, 3, 3, 1, "same", None, 2, id="k3-d2-same"),
    pytest.param((5, 7), 2, 3, 3, 1, "valid", None, 2, id="k3-d2-valid"),
    pytest.param((5, 7), 2, 3, (3, 2), (2, 1), "same", (1, 0), 1, id="k3x2-s2x1-same-op1x0"),
    pytest.param((4, 5), 1, 2, 2, 3, "same", 2, 1, id="k2-s3-same-op2"),
]


def transpose_case(hw, channels, filters, kernel_size, use_bias, seed=20):
    x = randn(2, *hw, channels, seed=seed)
    kernel = randn(*pair(kernel_size), filters, channels, seed=seed + 1)
    bias = randn(filters, seed=seed + 2) if use_bias else None
    return x, kernel, bias


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("hw, channels, filters, kernel_size, strides, padding, output_padding, dilation",
                         TRANSPOSE_GRID)
def test_conv2d_transpose_matches_loops(hw, channels, filters, kernel_size, strides, padding, output_padding,
                                        dilation, use_bias):
    strides, dilation = pair(strides), pair(dilation)
    op = None if output_padding is None else pair(output_padding)
    x, kernel, bias = transpose_case(hw, channels, filters, kernel_size, use_bias)
    out_hw, pads = conv_transpose_geometry(hw, kernel.shape[:2], strides, padding, op, dilation)
    y = conv2d_transpose_forward(x, kernel, bias, strides, pads, dilation, out_hw)
    assert y.flags.c_contiguous
    close(y, reference_conv.conv2d_transpose_loops(x, kernel, bias, strides, padding, op, dilation))
    dy = randn(*y.shape, seed=30)
    dx, dkernel, dbias = conv2d_transpose_backward(dy, x, kernel, strides, pads, dilation)
    ref = reference_conv.conv2d_transpose_backward_loops(dy, x, kernel, strides, padding, op, dilation)
    for actual, expected in zip((dx, dkernel, dbias), ref):
        close(actual, expected)
    assert conv2d_transpose_backward(dy, x, kernel, strides, pads, dilation, need_dx=False)[0] is None


@pytest.mark.parametrize("hw, channels, filters, kernel_size, strides, padding, output_padding, dilation",
                         TRANSPOSE_GRID)
def test_conv2d_transpose_matches_torch(hw, channels, filters, kernel_size, strides, padding, output_padding,
                                        dilation):
    """PyTorch's conv_transpose2d without padding gives the whole scatter; Keras's PyTorch backend crops
    (top, left) from it and pads zeros where the output reaches past it."""
    torch = pytest.importorskip("torch")
    strides, dilation = pair(strides), pair(dilation)
    op = None if output_padding is None else pair(output_padding)
    x, kernel, bias = transpose_case(hw, channels, filters, kernel_size, True)
    full = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(kernel).permute(3, 2, 0, 1),
        stride=strides, dilation=dilation,
    ).permute(0, 2, 3, 1).numpy()
    (oh, ow), ((top, _), (left, _)) = conv_transpose_geometry(hw, kernel.shape[:2], strides, padding, op, dilation)
    framed = np.zeros((2, max(full.shape[1], top + oh), max(full.shape[2], left + ow), filters))
    framed[:, : full.shape[1], : full.shape[2]] = full
    expected = framed[:, top : top + oh, left : left + ow] + bias
    close(conv2d_transpose(x, kernel, bias, strides, padding, op, dilation), expected)


@pytest.mark.parametrize("hw, kernel_size, strides, padding, output_padding", [
    ((4, 5), 3, 2, "same", None), ((4, 5), 3, 2, "valid", None), ((4, 5), 3, 2, "valid", 1),
    ((4, 5), 2, 2, "same", 1), ((4, 5), 4, 1, "same", None), ((4, 5), 3, 2, "same", 1),
])
def test_conv2d_transpose_is_the_adjoint_of_conv2d(hw, kernel_size, strides, padding, output_padding):
    """<conv2d(u), x> == <u, conv2d_transpose(x)> for the conv from the transpose's output size back to
    its input size, with the same padding rule and the same kernel array read as (kh, kw, in, out)."""
    op = None if output_padding is None else pair(output_padding)
    x = randn(2, *hw, 2, seed=40)
    kernel = randn(kernel_size, kernel_size, 3, 2, seed=41)
    y = conv2d_transpose(x, kernel, None, strides, padding, op)
    assert output_hw(y.shape[1:3], kernel.shape[:2], pair(strides), padding) == hw
    u = randn(*y.shape, seed=42)
    np.testing.assert_allclose(np.sum(conv2d(u, kernel, None, strides, padding) * x), np.sum(u * y), rtol=1e-12)


def test_conv2d_transpose_backward_refuses_inconsistent_pads():
    x, kernel, _ = transpose_case((3, 3), 1, 1, 3, False)
    with pytest.raises(ValueError, match=r"conv2d_transpose_backward: dy of shape \(2, 9, 9, 1\) .* gives \(4, 4\) "
                                         r"windows, the input has \(3, 3\)"):
        conv2d_transpose_backward(randn(2, 9, 9, 1), x, kernel, (2, 2), ((0, 0), (0, 0)), (1, 1))
