"""Lesson: a "convolution" layer computes a cross-correlation."""

from __future__ import annotations

import numpy as np

from ..layers import Conv2D
from ..arraymath.reference import convolve2d_loops, correlate2d_loops, rotate180
from . import plots
from .lab import float64, kernel_planes, planes, relative_error

NAME = "correlation"
TITLE = "Convolution or cross-correlation: the layer slides its kernel unflipped"
QUESTION = "Does a convolution layer compute a convolution?"
EXPLANATION = """
Two operations slide a kernel k over an image x. The textbook convolution, written *, flips
the kernel; the cross-correlation, written ⋆, slides it as it is:

    (x * k)[m, n] = Σ_{p,q} x[m - p, n - q] k[p, q]        convolution
    (x ⋆ k)[i, j] = Σ_{p,q} x[i + p, j + q] k[p, q]        cross-correlation

Deep learning libraries (Keras, PyTorch, convscope) compute the second one and call it
convolution: a Conv2D layer's pre-activation is z = x ⋆ K + b. The two differ by a 180° turn
of the kernel: x ⋆ k = x * rot180(k) wherever the kernel lies inside the image. A 1x1 kernel
is its own turn, so for it the two are the same; any other kernel that is not symmetric under
the turn gives a different result.

For learning this makes no difference: a network built on true convolution, started from the
same kernels turned around, computes the same numbers at every step and so learns the same
kernels turned around. It matters when you compare with signal-processing tools
(scipy.signal.convolve2d flips, scipy.signal.correlate2d does not) or read a formula.

The experiment runs a conv layer of the model (--layer; default: the first Conv2D larger than
1x1), with its kernel at stride 1, without bias and activation, on what the layer reads for a
real test image, and compares it filter by filter with the loop definitions in
arraymath/reference.py: x ⋆ k, x * k, and x * rot180(k).
"""


def experiment(lab):
    model = lab.model()
    convs = lab.conv_layers(model)
    conv = convs[0] if lab.layer is not None else next((c for c in convs if c.kernel_size != (1, 1)), convs[0])
    (_, _), (x_test, _) = lab.data()
    with float64():
        # What the layer reads for one test image: the image itself for a first layer, else earlier maps.
        image = next(r for r in model.trace(x_test[:1]) if r.name == conv.name).input.astype(np.float64)
        kernel = conv.kernel.value.astype(np.float64)
        # The layer itself, without bias or activation: the same kernel in a plain Conv2D.
        layer = Conv2D(kernel.shape[3], kernel.shape[:2], groups=conv.groups, use_bias=False, name="bias_free_copy")
        layer.build((None, *image.shape[1:]))
        layer.set_weights([kernel])
        by_layer = planes(layer(image))[0]                                   # (F, OH, OW)

    channels = planes(image)[0]                                             # (C, H, W)
    k = kernel_planes(kernel)                                               # (depth, F, KH, KW)
    correlation = summed_over_channels(correlate2d_loops, channels, k, conv.groups)
    convolution = summed_over_channels(convolve2d_loops, channels, k, conv.groups)
    convolution_of_rotated = summed_over_channels(convolve2d_loops, channels, rotate180(k), conv.groups)

    lab.number("layer", f"{conv.name}: {kernel.shape[3]} filters of {kernel.shape[0]}x{kernel.shape[1]}x{kernel.shape[2]}")
    lab.check("layer vs correlation loops x ⋆ k, relative error", relative_error(correlation, by_layer), "<=", 1e-12)
    lab.check("layer vs true convolution with the rotated kernel x * rot180(k), relative error",
              relative_error(convolution_of_rotated, by_layer), "<=", 1e-12)
    differences = [relative_error(convolution[f], by_layer[f]) for f in range(len(by_layer))]
    asymmetry = [relative_error(rotate180(k[:, f]), k[:, f]) for f in range(len(by_layer))]
    lab.number("true convolution x * k vs the layer, relative difference per filter (median, max)",
               f"{np.median(differences):.3f}, {max(differences):.3f}")
    lab.number("kernel asymmetry |k - rot180(k)| / |k| (median)", float(np.median(asymmetry)))
    if conv.kernel_size == (1, 1):
        lab.note(f"{conv.name} has 1x1 kernels, which a 180° turn leaves as they are: here x * k and x ⋆ k agree")
        lab.check("1x1 kernels: true convolution x * k vs the layer, largest relative difference over filters",
                  max(differences), "<=", 1e-12)
    else:
        lab.check("true convolution x * k differs from the layer: median relative difference over filters",
                  np.median(differences), ">=", 0.1)
    try:
        from scipy import signal
    except ImportError:
        lab.note("scipy is not installed: the scipy.signal comparison is left out")
    else:
        f = int(np.argmax(differences))
        seen = own_channels(channels, k, conv.groups, f)
        scipy_correlation = sum(signal.correlate2d(seen[c], k[c, f], mode="valid") for c in range(len(seen)))
        scipy_convolution = sum(signal.convolve2d(seen[c], rotate180(k[c, f]), mode="valid") for c in range(len(seen)))
        lab.check(f"scipy.signal.correlate2d(image, k, 'valid') vs the layer (filter {f}), relative error",
                  relative_error(scipy_correlation, by_layer[f]), "<=", 1e-12)
        lab.check(f"scipy.signal.convolve2d(image, rot180(k), 'valid') vs the layer (filter {f}), relative error",
                  relative_error(scipy_convolution, by_layer[f]), "<=", 1e-12)

    f = int(np.argmax(differences))
    channel = f // (len(by_layer) // conv.groups) * k.shape[0]       # the first channel filter f reads
    lab.picture("correlation.png", plots.panels_figure, [
        (f"input of {conv.name}, channel {channel}", channels[channel]),
        (f"kernel of filter {f} (that channel's slice)", k[0, f]),
        ("the kernel rotated 180°", rotate180(k[0, f])),
        (f"the layer, filter {f} (stride 1, no bias)", by_layer[f]),
        ("correlation loops: x ⋆ k", correlation[f]),
        ("true convolution: x * k", convolution[f]),
    ], f"{conv.name}, filter {f}: the layer equals the correlation x ⋆ k, not the convolution x * k", columns=3)


def own_channels(channels, k, groups, f):
    """The input channels filter ``f`` reads: all of them, or those of its group in a grouped layer."""
    depth, per_group = k.shape[0], k.shape[1] // groups
    group = f // per_group
    return channels[group * depth : (group + 1) * depth]


def summed_over_channels(loops, channels, k, groups):
    """Each filter's 2-D results on the channels it reads, added up: (F, OH, OW). ``loops`` is one of the
    reference definitions; ``k`` is (depth, F, KH, KW)."""
    per_group = k.shape[1] // groups
    return np.concatenate([
        loops(own_channels(channels, k, groups, g * per_group)[:, None], k[:, g * per_group : (g + 1) * per_group])
        .sum(axis=0) for g in range(groups)])
