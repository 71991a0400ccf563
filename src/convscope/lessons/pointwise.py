"""Lesson: a 1x1 convolution is a Dense layer applied at every pixel; a kernel the size of its input is a Dense layer."""

from __future__ import annotations

import numpy as np

from ..layers import Conv2D, Dense, Flatten
from . import plots
from .lab import float64, float64_copy, relative_error

NAME = "pointwise"
TITLE = "1x1 convolution = a Dense layer across channels, at every pixel"
QUESTION = "What does a 1x1 convolution compute, and when is a convolution a Dense layer?"
EXPLANATION = """
A 1x1 kernel sees one pixel at a time, all of its C channels: z[n, i, j, :] = x[n, i, j, :] @ W + b
with W of shape (C, F). That is exactly a Dense layer with kernel W, applied to every pixel's
channel vector (at stride 1; a stride skips pixels); it mixes channels and never looks at
neighbours. Networks use it to change the number of channels cheaply: C·F weights, where a
kh x kw kernel needs kh·kw·C·F.

At the other extreme, a kernel as large as its input has a single window position: it is a
Dense layer on the flattened input, W reshaped from (H, W, C, F) to (H·W·C, F). The Keras MNIST
convnet's last layer is one: Flatten + Dense(10) on its 5x5x64 pooled maps (Dropout passes
them unchanged at inference) is a 5x5 convolution with 10 filters.

The experiment copies weights between the two forms and compares outputs on real feature maps,
in float64: a 1x1 Conv2D on the studied conv layer's maps (the first, or --layer) against a
Dense on the same maps; the model's own Dense layer against a Conv2D whose kernel covers its
whole input.
"""


def experiment(lab):
    model = float64_copy(lab.model())
    (_, _), (x_test, _) = lab.data()
    x = x_test[: 8 if lab.fast else 64]
    first_conv = lab.conv_layers(model)[0]
    with float64():
        records = model.trace(x)
        maps = next(r for r in records if r.name == first_conv.name).output

        # A 1x1 convolution with random weights, and a Dense layer holding the same numbers.
        pointwise = Conv2D(16, 1, name="pointwise_1x1")           # weights drawn from the lesson's seed
        pointwise.build((None, *maps.shape[1:]))
        pointwise.bias.value[...] = np.linspace(-0.5, 0.5, 16)  # a visible bias, to be copied too
        dense = Dense(16, name="dense_per_pixel")
        dense.build((None, *maps.shape[1:]))   # Dense acts on the last axis: the channels of each pixel
        dense.set_weights([pointwise.kernel.value[0, 0], pointwise.bias.value])   # (1, 1, C, 16) -> (C, 16)
        by_conv, by_dense = pointwise(maps), dense(maps)
        lab.number("1x1 conv", f"kernel {pointwise.kernel.value.shape} on {first_conv.name}'s maps {maps.shape[1:]}"
                   f" -> Dense kernel {dense.kernel.value.shape}")
        lab.check("1x1 Conv2D vs Dense at every pixel, relative error", relative_error(by_conv, by_dense), "<=", 1e-12)
        wider = Conv2D(16, 3, padding="same", name="three_by_three")
        wider.build((None, *maps.shape[1:]))
        channels = maps.shape[3]
        lab.number("weights, 1x1 against 3x3", f"{channels}·16 = {pointwise.kernel.value.size:,} against "
                   f"3·3·{channels}·16 = {wider.kernel.value.size:,}")
        lab.check(f"weights of a 3x3 Conv2D over a 1x1 one, both {channels} -> 16 channels (kh·kw = 9)",
                  wider.kernel.value.size / pointwise.kernel.value.size, "==", 9)

        full_size_kernel(lab, model, records)

    lab.picture("pointwise_1x1.png", plots.panels_figure, [
        (f"1x1 conv output, channel {f}", by_conv[0, :, :, f]) for f in range(3)
    ] + [
        (f"Dense output, channel {f}", by_dense[0, :, :, f]) for f in range(3)
    ], f"a 1x1 Conv2D (top) and a Dense layer with its weights (bottom) on {first_conv.name}'s maps", columns=3)


def full_size_kernel(lab, model, records):
    """The model's first Dense layer that follows a Flatten, redone as a Conv2D whose kernel covers its input."""
    flat = next((i for i, layer in enumerate(model.layers[:-1])
                 if type(layer) is Flatten and any(type(l) is Dense for l in model.layers[i + 1:])), None)
    if flat is None:
        lab.note("the model has no Flatten followed by Dense; the full-size-kernel part uses the input image")
        image = records[0].input
        dense = Dense(10, name="dense_on_pixels")
        dense.build((None, int(np.prod(image.shape[1:]))))
        maps, dense_out = image, dense(Flatten()(image))
    else:
        dense = next(l for l in model.layers[flat + 1:] if type(l) is Dense)
        dense_record = next(r for r in records if r.name == dense.name)
        # What the Dense layer received (Dropout passes it unchanged at inference), in Flatten's input shape.
        flatten_record = next(r for r in records if r.name == model.layers[flat].name)
        maps = dense_record.input.reshape(flatten_record.input.shape)
        dense_out = dense_record.preactivation                                          # before softmax: the logits
    h, w, c = maps.shape[1:]
    kernel, *bias = dense.get_weights()
    conv = Conv2D(kernel.shape[1], (h, w), use_bias=dense.use_bias, name="full_size_conv")
    conv.build((None, h, w, c))
    conv.set_weights([kernel.reshape(h, w, c, -1), *bias])   # Flatten's row-major order is the kernel's (h, w, c)
    by_conv = conv(maps)
    lab.number("full-size kernel", f"{dense.name} kernel {kernel.shape} -> Conv2D kernel {conv.kernel.value.shape}, "
               f"output {by_conv.shape[1:]}")
    lab.check(f"{dense.name} (before its activation) vs a {h}x{w} Conv2D on its input, relative error",
              relative_error(by_conv[:, 0, 0, :], dense_out), "<=", 1e-12)
