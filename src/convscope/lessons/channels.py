"""Lesson: a conv layer is a bank of filters, each as deep as its input has channels."""

from __future__ import annotations

import numpy as np

from ..layers import Conv2D
from ..arraymath.reference import correlate2d_loops, dilate2d
from ..viz import feature_maps_figure
from . import plots
from .lab import float64, float64_copy, kernel_planes, planes, relative_error

NAME = "channels"
TITLE = "A bank of filters: N filters on C channels give N maps, each filter C deep"
QUESTION = "How does a conv layer turn an input of C channels into N feature maps?"
EXPLANATION = """
A Conv2D layer with N filters on an input of C channels holds a kernel of shape (kh, kw, C, N):
every filter is a stack of C two-dimensional slices, one per input channel. At each position
the filter correlates each channel with its own slice and adds the C results (and its bias)
into ONE number, so each filter makes one output map and N filters make N maps:

    z[:, :, f] = b[f] + Σ_c  x[:, :, c] ⋆ K[:, :, c, f]

The number of output maps is the number of filters, whatever C is; C only sets the depth.
(With "same" padding x is padded with zeros first; with a stride s only every s-th row and
column of the sum is kept; a grouped layer, groups=g, gives each filter C/g slices, for the
channels of its own group.)

The experiment shows it twice: on a 3-channel picture (a test digit coloured into red and
green over a blue ramp) with four hand-made filters whose slices pick channels, and on a conv
layer of the model (--layer, else the second one, which reads the maps of the layers before
it, or the only one), whose every filter is as deep as the input it reads has channels. Each map is rebuilt
channel by channel with the loops of arraymath/reference.py, in float64.
"""


def experiment(lab):
    (_, _), (digits, _) = lab.digits()
    rgb = coloured_digit(digits[0, :, :, 0])
    kernel = hand_made_filters()
    with float64():
        layer = Conv2D(4, 3, name="rgb_filters")
        layer.build((None, *rgb.shape))
        layer.set_weights([kernel, np.zeros(4)])
        maps = layer(rgb[None])[0]
        only_red = rgb * np.array([1.0, 0.0, 0.0])
        red_edges_alone = layer(only_red[None])[0, :, :, 0]
    by_channel = correlate2d_loops(planes(rgb[None])[0][:, None], kernel_planes(kernel))     # (C, F, OH, OW)
    lab.number("RGB picture", f"{rgb.shape} -> kernel {kernel.shape} -> maps {maps.shape}")
    lab.check("RGB: output maps minus filters", maps.shape[2] - kernel.shape[3], "==", 0)
    lab.check("RGB: filter depth minus input channels", kernel.shape[2] - rgb.shape[2], "==", 0)
    lab.check("RGB: each map vs Σ over channels of channel ⋆ slice, relative error",
              relative_error(np.moveaxis(by_channel.sum(axis=0), 0, 2), maps), "<=", 1e-12)
    lab.check("RGB: filter 0 (slices zero on green and blue) on the red channel alone, max |change|",
              np.abs(red_edges_alone - maps[:, :, 0]).max(), "==", 0)

    model = float64_copy(lab.model())
    (_, _), (x_test, _) = lab.data()
    convs = lab.conv_layers(model)
    conv = convs[0] if lab.layer is not None or len(convs) == 1 else convs[1]
    with float64():
        record = next(r for r in model.trace(x_test[:1]) if r.name == conv.name)
    k = conv.kernel.value
    contributions = per_channel_parts(conv, record.input)                        # (depth, F, OH, OW)
    bias = conv.bias.value if conv.use_bias else np.zeros(conv.filters)
    rebuilt = contributions.sum(axis=0) + bias[:, None, None]
    lab.number(f"{conv.name}", f"input {record.input.shape[1:]} -> kernel {k.shape} -> maps {record.output.shape[1:]}"
               + (f"; groups={conv.groups}: each filter sees {k.shape[2]} of the {record.input.shape[3]} channels"
                  if conv.groups > 1 else ""))
    lab.check(f"{conv.name}: output maps minus filters", record.preactivation.shape[3] - k.shape[3], "==", 0)
    lab.check(f"{conv.name}: filter depth x groups minus input channels",
              k.shape[2] * conv.groups - record.input.shape[3], "==", 0)
    lab.check(f"{conv.name}: every map vs b + Σ over {k.shape[2]} channels of channel ⋆ slice, relative error",
              relative_error(np.moveaxis(rebuilt, 0, 2), record.preactivation[0]), "<=", 1e-12)

    lab.picture("channels_rgb_input.png", plots.panels_figure, [
        ("the RGB picture", rgb), ("red channel", rgb[:, :, 0]), ("green channel", rgb[:, :, 1]),
        ("blue channel", rgb[:, :, 2]),
    ], "a test digit coloured into three channels", columns=4)
    lab.picture("channels_rgb_filters.png", plots.panels_figure, [
        (f"filter {f}, {colour} slice", kernel[:, :, c, f]) for f in range(4) for c, colour in enumerate(("red", "green", "blue"))
    ], "4 hand-made filters, each 3 slices deep", columns=3, shared_scale=True, size=1.8,
        note="0: red vertical edges, 1: green horizontal edges, 2: blue blurred, 3: red minus green")
    lab.picture("channels_rgb_maps.png", feature_maps_figure, maps, title="4 filters -> 4 maps (one per filter)")
    f = int(np.abs(record.preactivation[0]).sum(axis=(0, 1)).argmax())
    lab.picture(f"channels_{conv.name}_filter{f}_parts.png", feature_maps_figure, np.moveaxis(contributions[:, f], 0, 2),
                title=f"{conv.name}, filter {f}: input channel c ⋆ slice c, for each of its {k.shape[2]} slices")
    lab.picture(f"channels_{conv.name}_filter{f}_sum.png", plots.panels_figure, [
        (f"Σ of the {k.shape[2]} parts + b (loops)", rebuilt[f]),
        (f"the layer's map {f} (model.trace)", record.preactivation[0, :, :, f]),
    ], f"{conv.name}, filter {f}: the parts add up to one map", columns=2, shared_scale=True)


def per_channel_parts(conv, x):
    """For one image ``x`` (1, H, W, C): each filter's input channels ⋆ their slices, (depth, F, OH, OW), as
    ``conv`` adds them: the input zero-padded as the layer pads it, the slices spread by the dilation,
    every stride-th row and column kept, and each filter reading the channels of its own group."""
    (top, bottom), (left, right) = conv.pads
    channels = planes(np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))))[0]     # (C, H', W')
    kernel = conv.kernel.value
    depth, per_group = kernel.shape[2], conv.filters // conv.groups
    (sh, sw) = conv.strides
    parts = []
    for group in range(conv.groups):
        slices = dilate2d(kernel_planes(kernel[..., group * per_group : (group + 1) * per_group]), conv.dilation_rate)
        seen = channels[group * depth : (group + 1) * depth, None]                       # (depth, 1, H', W')
        parts.append(correlate2d_loops(seen, slices)[..., ::sh, ::sw])
    return np.concatenate(parts, axis=1)


def coloured_digit(digit):
    """(28, 28) digit in [0, 1] -> (28, 28, 3): red = the digit, green = the digit mirrored, blue = a left-to-right ramp."""
    ramp = np.tile(np.linspace(0.0, 1.0, digit.shape[1]), (digit.shape[0], 1))
    return np.stack([digit, digit[:, ::-1], 0.6 * ramp * (1 - np.maximum(digit, digit[:, ::-1]))], axis=2).astype(np.float64)


def hand_made_filters():
    """(3, 3, 3, 4): each filter a stack of three slices (red, green, blue)."""
    sobel_x = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4
    box = np.full((3, 3), 1 / 9)
    kernel = np.zeros((3, 3, 3, 4))
    kernel[:, :, 0, 0] = sobel_x              # 0: vertical edges of the red channel only
    kernel[:, :, 1, 1] = sobel_x.T            # 1: horizontal edges of the green channel only
    kernel[:, :, 2, 2] = box                  # 2: the blue channel, blurred
    kernel[:, :, 0, 3], kernel[:, :, 1, 3] = box, -box   # 3: where red and green differ
    return kernel
