"""One fusion the model applies when training and predicting: ReLU, then max pooling, done pool-first.

Max pooling commutes with ReLU exactly, because ReLU never reorders values:

    maxpool(relu(z)) == relu(maxpool(z))

and so do the gradients: when a window's maximum is positive, ReLU keeps it and the
same cell wins both ways; when it is not, ReLU's derivative there is 0 and the
window sends nothing back either way. So a layer ending in ReLU (Conv2D(...,
activation="relu"), Dense, Activation("relu")) followed by MaxPooling2D can pool
its pre-activation map and apply ReLU to a map pool_h*pool_w times smaller: the
same numbers, bit for bit, for a fraction of the memory traffic. ``Sequential.trace``
runs the layers one by one instead, so every intermediate map stays visible.
"""

from __future__ import annotations

from .activations import ReLU as _ReLUFunction
from .layers import ActivatedLayer, MaxPooling2D


class ReluThenMaxPool:
    """``pool(relu(layer_linear(x)))`` computed as ``relu(pool(layer_linear(x)))``, forward and backward."""

    def __init__(self, layer: ActivatedLayer, pool: MaxPooling2D):
        self.layer, self.pool = layer, pool

    def forward(self, x, training: bool = False):
        self._pooled = self.pool.forward(self.layer.forward_linear(x, training), training)
        self._y = self.layer.activation(self._pooled)
        return self._y

    def backward(self, dy, dy_is_preactivation: bool = False, need_dx: bool = True):
        d_pooled = self.layer.activation.gradient(self._pooled, self._y, dy)
        return self.layer.backward_linear(self.pool.backward(d_pooled), need_dx)


def fusable(layer, following) -> bool:
    """True for a plain ReLU layer (exactly max(z, 0): no threshold or cap) followed by max pooling."""
    return (
        isinstance(layer, ActivatedLayer)
        and type(layer.activation) is _ReLUFunction
        and isinstance(following, MaxPooling2D)
    )


def plan(layers) -> list:
    """The steps the model runs: each layer, with fusable (layer, max pool) pairs merged into one step."""
    steps, i = [], 0
    while i < len(layers):
        if i + 1 < len(layers) and fusable(layers[i], layers[i + 1]):
            steps.append(ReluThenMaxPool(layers[i], layers[i + 1]))
            i += 2
        else:
            steps.append(layers[i])
            i += 1
    return steps
