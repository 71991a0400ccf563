"""One fusion the model applies when training and predicting: ReLU, then max pooling, done pool-first.

Max pooling commutes with ReLU exactly, because ReLU never reorders values:

    maxpool(relu(z)) == relu(maxpool(z))

and so do the gradients: when a window's maximum is positive, ReLU keeps it and the
same cell wins both ways; when it is not, ReLU's derivative there is 0 and the
window sends nothing back either way. So a layer ending in ReLU (Conv2D(...,
activation="relu"), Dense, Activation("relu")) followed by MaxPooling2D can pool
its pre-activation map and apply ReLU to a map pool_h*pool_w times smaller: the
same numbers, bit for bit, for a fraction of the memory traffic.

The fused pair is one step of a model's execution plan (``models.graph.Plan``) when
training and predicting; ``Model.trace`` runs the plan without fusion, one step per
layer call, so every intermediate map stays visible. A fused step never computes the
full-size activation map, so it leaves the layer's ``preactivation`` and ``activated``
set to None rather than to a stale map.
"""

from __future__ import annotations

from .activations import ReLU as _ReLUFunction
from .layers import MaxPooling2D


class ReluThenMaxPool:
    """``pool(relu(layer_linear(x)))`` computed as ``relu(pool(layer_linear(x)))``, forward and backward."""

    def __init__(self, layer, pool: MaxPooling2D):
        self.layer, self.pool = layer, pool

    def forward(self, x, training: bool = False):
        self._pooled = self.pool.forward(self.layer.forward_linear(x, training), training)
        self.layer.preactivation = self.layer.activated = None
        self._y = self.layer.activation(self._pooled)
        return self._y

    def backward(self, dy, need_dx: bool = True):
        d_pooled = self.layer.activation.gradient(self._pooled, self._y, dy)
        return self.layer.backward_linear(self.pool.backward(d_pooled), need_dx)

    def forward_state(self):
        return self._pooled, self._y, self.layer.forward_state(), self.pool.forward_state()

    def restore_forward_state(self, state) -> None:
        self._pooled, self._y, layer_state, pool_state = state
        self.layer.restore_forward_state(layer_state)
        self.pool.restore_forward_state(pool_state)


def fusable(layer, following) -> bool:
    """True for a layer ending in a plain ReLU (exactly max(z, 0): no threshold or cap) followed by max pooling."""
    return (
        type(getattr(layer, "activation", None)) is _ReLUFunction
        and hasattr(layer, "forward_linear")
        and type(following) is MaxPooling2D
    )
