"""The residual network of bench_mnist.py's graph row, in convscope and in PyTorch.

Stem ``Conv2D(16, 3, same, relu)``, then three blocks (filters, stride) = (16, 1),
(32, 2), (64, 2), each

    y = Conv2D(f, 3, strides=stride, same, relu)(x)
    y = Conv2D(f, 3, same)(y)
    shortcut = x                               if x already has f channels and stride 1
             = Conv2D(f, 1, strides=stride)(x) otherwise (projection)
    out = ReLU()(Add()([y, shortcut]))

then global average pooling and ``Dense(10, softmax)``: 32x32 -> 32x32x16 ->
16x16x32 -> 8x8x64 -> 64 -> 10; 77,706 parameters, about 12.5 M multiply-adds
per image forward (five times the MNIST convnet). ``keras_worker.py`` builds the
same graph in Keras. PyTorch runs it NCHW with Keras's initialization (Glorot
uniform kernels of the same shapes, zero biases). One difference in alignment,
none in work: a stride-2 "same" convolution pads 0 above / 1 below in Keras
(and convscope), 1 / 1 in PyTorch's ``padding=1``; both give 16x16 and 8x8.

Inputs are real MNIST digits (28x28 in [0, 1]) zero-padded to 32x32 and repeated
over 3 channels (the usual gray-to-RGB stacking), see ``images``.
"""

from __future__ import annotations

import numpy as np

BLOCKS = ((16, 1), (32, 2), (64, 2))


def images(x28):
    """(n, 28, 28, 1) digits -> (n, 32, 32, 3): padded by 2 pixels on each side, gray repeated to 3 channels."""
    return np.repeat(np.pad(x28, ((0, 0), (2, 2), (2, 2), (0, 0))), 3, axis=3)


def flops_per_image() -> float:
    """Training FLOPs per image: 3x the forward multiply-adds (forward, dW, dX), 2 FLOPs each."""
    size, cin, macs = 32, 16, 32 * 32 * 9 * 3 * 16  # after the stem
    for filters, stride in BLOCKS:
        out = size // stride
        macs += out * out * 9 * cin * filters + out * out * 9 * filters * filters
        if stride != 1 or cin != filters:
            macs += out * out * cin * filters
        size, cin = out, filters
    return 3 * 2 * (macs + cin * 10)


def convscope_model():
    import convscope
    from convscope import layers
    from convscope.layers.merging import Add

    layers.clear_session()
    inputs = convscope.Input(shape=(32, 32, 3))
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    channels = 16
    for filters, stride in BLOCKS:
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu")(x)
        y = layers.Conv2D(filters, 3, padding="same")(y)
        shortcut = x if stride == 1 and channels == filters else layers.Conv2D(filters, 1, strides=stride)(x)
        x = layers.ReLU()(Add()([y, shortcut]))
        channels = filters
    x = layers.GlobalAveragePooling2D()(x)
    model = convscope.Model(inputs, layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def torch_model():
    """(module, Adam) in NCHW; the module returns logits (CrossEntropyLoss applies the softmax)."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, filters, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, filters, 3, stride, padding=1)
            self.conv2 = nn.Conv2d(filters, filters, 3, padding=1)
            self.project = nn.Conv2d(cin, filters, 1, stride) if stride != 1 or cin != filters else None

        def forward(self, x):
            y = self.conv2(torch.relu(self.conv1(x)))
            return torch.relu(y + (x if self.project is None else self.project(x)))

    class ResidualNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, padding=1)
            cins = [16] + [f for f, _ in BLOCKS[:-1]]
            self.blocks = nn.Sequential(*(Block(c, f, s) for c, (f, s) in zip(cins, BLOCKS)))
            self.dense = nn.Linear(BLOCKS[-1][0], 10)

        def forward(self, x):
            return self.dense(self.blocks(torch.relu(self.stem(x))).mean(dim=(2, 3)))

    model = ResidualNet()
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
