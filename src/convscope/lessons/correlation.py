"""Lesson: a "convolution" layer computes a cross-correlation."""

from __future__ import annotations

import numpy as np

from ..layers import Conv2D
from ..arraymath.reference import convolve2d_loops, correlate2d_loops, rotate180
from . import plots
from .lab import float64, kernel_planes, planes, relative_error

NAME = "correlation"
TITLE = "Convolution or cross-correlation: the layer slides its kernel unflipped"
EXPLANATION = """
The textbook convolution flips the kernel: (x * k)[m, n] = Σ_{p,q} x[m - p, n - q] k[p, q].
Deep learning libraries (Keras, PyTorch, convscope) slide the kernel as it is:
z[i, j] = Σ_{p,q} x[i + p, j + q] k[p, q], which signal processing calls cross-correlation.
The two differ by a 180° turn of the kernel: correlating with k is convolving with rot180(k).

For learning this makes no difference: a network built on true convolution would learn the
same kernels turned around. It matters when you compare with signal-processing tools
(scipy.signal.convolve2d flips, scipy.signal.correlate2d does not) or read a formula.

The experiment runs a conv layer of the model (--layer; default: the first Conv2D; its kernel,
at stride 1, without bias and activation) on what it reads for a real test image and compares,
filter by filter, with the loop definitions in arraymath/reference.py: correlation, true
convolution, and true convolution with the rotated kernel.
"""


def experiment(lab):
    model = lab.model()
    conv = lab.conv_layers(model)[0]
    (_, _), (x_test, _) = lab.data()
    with float64():
        # What the layer reads for one test image: the image itself for a first layer, else earlier maps.
        image = next(r for r in model.trace(x_test[:1]) if r.name == conv.name).input.astype(np.float64)
        kernel = conv.kernel.value.astype(np.float64)
        # The layer itself, without bias or activation: the same kernel in a plain Conv2D.
        layer = Conv2D(kernel.shape[3], kernel.shape[:2], use_bias=False, name="bias_free_copy")
        layer.build((None, *image.shape[1:]))
        layer.set_weights([kernel])
        by_layer = planes(layer(image))[0]                                   # (F, OH, OW)

    # Sum the per-channel 2-D results over the input channels (one channel for MNIST).
    channels = planes(image)[0][:, None]                                    # (C, 1, H, W)
    k = kernel_planes(kernel)                                               # (C, F, KH, KW)
    correlation = correlate2d_loops(channels, k).sum(axis=0)
    convolution = convolve2d_loops(channels, k).sum(axis=0)
    convolution_of_rotated = convolve2d_loops(channels, rotate180(k)).sum(axis=0)

    lab.number("layer", f"{conv.name}: {kernel.shape[3]} filters of {kernel.shape[0]}x{kernel.shape[1]}x{kernel.shape[2]}")
    lab.check("layer vs correlation loops, relative error", relative_error(correlation, by_layer), "<=", 1e-12)
    lab.check("layer vs true convolution with the rotated kernel, relative error",
              relative_error(convolution_of_rotated, by_layer), "<=", 1e-12)
    differences = [relative_error(convolution[f], by_layer[f]) for f in range(len(by_layer))]
    asymmetry = [relative_error(rotate180(k[:, f]), k[:, f]) for f in range(len(by_layer))]
    lab.number("true convolution vs layer, relative difference per filter (median, max)",
               f"{np.median(differences):.3f}, {max(differences):.3f}")
    lab.number("kernel asymmetry |k - rot180(k)| / |k| (median)", float(np.median(asymmetry)))
    lab.check("true convolution differs from the layer: median relative difference over filters",
              np.median(differences), ">=", 0.1)
    try:
        from scipy import signal
    except ImportError:
        lab.note("scipy is not installed: the scipy.signal comparison is left out")
    else:
        f = int(np.argmax(differences))
        per_channel = range(len(channels))
        scipy_correlation = sum(signal.correlate2d(channels[c, 0], k[c, f], mode="valid") for c in per_channel)
        scipy_convolution = sum(signal.convolve2d(channels[c, 0], rotate180(k[c, f]), mode="valid") for c in per_channel)
        lab.check(f"scipy.signal.correlate2d(image, k, 'valid') vs the layer (filter {f}), relative error",
                  relative_error(scipy_correlation, by_layer[f]), "<=", 1e-12)
        lab.check(f"scipy.signal.convolve2d(image, rot180(k), 'valid') vs the layer (filter {f}), relative error",
                  relative_error(scipy_convolution, by_layer[f]), "<=", 1e-12)

    f = int(np.argmax(differences))
    lab.picture("correlation.png", plots.panels_figure, [
        (f"input of {conv.name}, channel 0", channels[0, 0]),
        (f"kernel of filter {f} (channel 0)", k[0, f]),
        ("the kernel rotated 180°", rotate180(k[0, f])),
        (f"the layer, filter {f} (stride 1, no bias)", by_layer[f]),
        ("correlation loops: image ⋆ k", correlation[f]),
        ("true convolution: image * k", convolution[f]),
    ], f"{conv.name}, filter {f}: the layer equals the correlation, not the convolution", columns=3)
