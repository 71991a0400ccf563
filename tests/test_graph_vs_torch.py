"""A real graph trained by ``fit`` ends where PyTorch does from the same start, with Keras's update rules.

The graph has a max-pooled stem (the fused ReLU + pool step), a residual block with a
projection shortcut, a Concatenate of two branches and one Dense layer shared by both.
convscope trains it in float64 for 5 steps (10 samples, batch 2, no shuffle) with SGD +
momentum and with Adam; the PyTorch twin is written here with torch's own conv / pooling
ops and autograd (NCHW, Keras's "same" padding by explicit asymmetric pads) and Keras 3's
update rules applied by hand:

    SGD:  m = momentum * m - lr * g;  w += m
    Adam: t = step + 1;  m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2)
          w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

Every weight must agree to a relative difference < 1e-9. The same holds for the same
network written as a subclassed model.
"""

import math

import numpy as np
import pytest

import convscope
from convscope import layers, optimizers

torch = pytest.importorskip("torch", reason="PyTorch is the independent peer of this test (pip install torch==2.13.0)")
F = torch.nn.functional

pytestmark = pytest.mark.usefixtures("kernel_path", "float64", "fresh_state")
N, BATCH, STEPS = 10, 2, 5


def block_layers():
    return dict(
        stem=layers.Conv2D(4, 3, padding="same", activation="relu", name="stem"),
        pool=layers.MaxPooling2D(2, name="pool"),
        conv_a=layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="conv_a"),
        conv_b=layers.Conv2D(6, 3, padding="same", name="conv_b"),
        projection=layers.Conv2D(6, 1, strides=2, name="projection"),
        add=layers.Add(name="add"), relu=layers.ReLU(name="relu"),
        gap=layers.GlobalAveragePooling2D(name="gap"), gmp=layers.GlobalMaxPooling2D(name="gmp"),
        shared=layers.Dense(5, activation="tanh", name="shared"),
        concat=layers.Concatenate(name="concat"),
        head=layers.Dense(3, activation="softmax", name="head"),
    )


def forward(L, x):
    h = L["pool"](L["stem"](x))
    y = L["conv_b"](L["conv_a"](h))
    r = L["relu"](L["add"]([y, L["projection"](h)]))
    return L["head"](L["concat"]([L["shared"](L["gap"](r)), L["shared"](L["gmp"](r))]))


def functional_model():
    inputs = convscope.Input(shape=(12, 12, 3))
    return convscope.Model(inputs, forward(block_layers(), inputs))


class Subclassed(convscope.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.parts = block_layers()
        for key, layer in self.parts.items():
            setattr(self, key, layer)

    def call(self, x):
        return forward(self.parts, x)


def _same(n, k, s):
    """Keras's "same" padding of one axis: (before, after), the odd cell after."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def torch_conv(x, kernel, bias, stride, same):
    w = torch.tensor(kernel.transpose(3, 2, 0, 1)).requires_grad_()  # (kh, kw, in, out) -> (out, in, kh, kw)
    b = torch.tensor(bias).requires_grad_()
    if same:
        (top, bottom), (left, right) = (_same(x.shape[2], kernel.shape[0], stride),
                                        _same(x.shape[3], kernel.shape[1], stride))
        x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, w, b, stride=stride), [w, b]


def torch_train(weights, x, y, optimizer):
    """Train the PyTorch twin; returns its final weights in convscope's layouts and order."""
    weights = [w.copy() for w in weights]
    slots = [dict(m=np.zeros_like(w), v=np.zeros_like(w)) for w in weights]
    for step in range(STEPS):
        xb = torch.tensor(x[step * BATCH:(step + 1) * BATCH].transpose(0, 3, 1, 2))
        yb = torch.tensor(y[step * BATCH:(step + 1) * BATCH])
        k = iter(weights)
        params = []
        h, p = torch_conv(xb, next(k), next(k), 1, True)
        params += p
        h = F.max_pool2d(F.relu(h), 2)
        a, p = torch_conv(h, next(k), next(k), 2, True)
        params += p
        a, p = torch_conv(F.relu(a), next(k), next(k), 1, True)
        params += p
        s, p = torch_conv(h, next(k), next(k), 2, False)
        params += p
        r = F.relu(a + s)
        shared_w, shared_b = (torch.tensor(next(k)).requires_grad_() for _ in range(2))
        head_w, head_b = (torch.tensor(next(k)).requires_grad_() for _ in range(2))
        params += [shared_w, shared_b, head_w, head_b]
        left = torch.tanh(r.mean(dim=(2, 3)) @ shared_w + shared_b)
        right = torch.tanh(r.amax(dim=(2, 3)) @ shared_w + shared_b)
        logits = torch.cat([left, right], dim=1) @ head_w + head_b
        loss = F.cross_entropy(logits, yb)
        grads = torch.autograd.grad(loss, params)
        for w, g, slot in zip(weights, grads, slots):
            g = g.numpy()
            if g.ndim == 4:
                g = g.transpose(2, 3, 1, 0)  # back to (kh, kw, in, out)
            if optimizer == "sgd":
                slot["m"] = 0.9 * slot["m"] - 0.05 * g
                w += slot["m"]
            else:
                t = step + 1
                slot["m"] += (g - slot["m"]) * (1 - 0.9)
                slot["v"] += (g * g - slot["v"]) * (1 - 0.999)
                w -= 0.01 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t) * slot["m"] / (np.sqrt(slot["v"]) + 1e-7)
    return weights


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("build", [functional_model, Subclassed], ids=["functional", "subclassed"])
def test_fit_ends_at_the_weights_pytorch_reaches(build, optimizer):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((N, 12, 12, 3)), rng.integers(0, 3, N)
    model = build()
    model.build((None, 12, 12, 3))
    names = [p.name for p in model.parameters]
    assert names == ["stem/kernel", "stem/bias", "conv_a/kernel", "conv_a/bias", "conv_b/kernel", "conv_b/bias",
                     "projection/kernel", "projection/bias", "shared/kernel", "shared/bias", "head/kernel", "head/bias"]
    model.set_weights([rng.standard_normal(w.shape) * 0.4 for w in model.get_weights()])  # biases matter too
    start = model.get_weights()
    opt = optimizers.SGD(0.05, momentum=0.9) if optimizer == "sgd" else optimizers.Adam(0.01)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.iterations == STEPS
    expected = torch_train(start, x, y, optimizer)
    for name, ours, theirs, before in zip(names, model.get_weights(), expected, start):
        assert not np.allclose(theirs, before), f"{name} did not move: the comparison would be empty"
        relative = np.abs(ours - theirs).max() / np.abs(theirs).max()
        assert relative < 1e-9, f"{name}: relative difference {relative:.2e}"
