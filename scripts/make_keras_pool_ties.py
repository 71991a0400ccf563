"""Make ``tests/fixtures/keras_pool_ties/``: where Keras 3's MaxPooling2D sends the gradient when a
window's maximum is shared by several cells. The pooling lesson compares convscope with it.

Run in a separate virtual environment that has Keras (neither the tests nor the lesson need it):

    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install torch==2.13.0 keras==3.15.1 numpy
    KERAS_BACKEND=torch CUDA_VISIBLE_DEVICES="" /tmp/kvenv/bin/python scripts/make_keras_pool_ties.py

Every case pools one fixed input full of ties (small integers, about half of them clipped to 0 as
ReLU's output is on MNIST's background) with one MaxPooling2D layer, and takes the gradient of
sum(upstream * y) with respect to the input through the backend's autograd: dx is what Keras routes
back for the upstream gradient ``upstream``. The upstream values are small integers (none 0), so every
sum of them, in any order, is exact in float32: a comparison can ask for equality.

Writes ``tests/fixtures/keras_pool_ties/``:

* ``pool_ties.npz``: per case ``<case>/x``, ``<case>/upstream``, ``<case>/y`` and ``<case>/dx``;
* ``pool_ties.json``: Keras's version and backend, and per case the layer's constructor arguments.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the reference numbers come from the CPU

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras_pool_ties"
SHAPE = (2, 6, 7, 3)  # odd, unequal sizes: "valid" pooling leaves the last column out

CASES = {  # name: MaxPooling2D's arguments
    "pool2": {"pool_size": 2},                                          # windows side by side, no overlap
    "pool3_stride1": {"pool_size": 3, "strides": 1},                    # every cell in up to 9 windows
    "pool3_stride2_same": {"pool_size": 3, "strides": 2, "padding": "same"},  # overlap and padding
}


def gradient(layer, x, upstream):
    """(y, d sum(upstream * y) / dx) through the backend's autograd."""
    import torch

    t = torch.tensor(x, requires_grad=True)
    y = layer(t)
    (y * torch.tensor(upstream)).sum().backward()
    return y.detach().numpy(), t.grad.numpy()


def main():
    if keras.backend.backend() != "torch":
        raise SystemExit("run with KERAS_BACKEND=torch: the gradient is taken with torch's autograd")
    rng = np.random.default_rng(0)
    x = np.maximum(rng.integers(-3, 4, SHAPE), 0).astype("float32")   # values 0..3: ties in most windows
    arrays, cases = {}, {}
    for name, kwargs in CASES.items():
        layer = keras.layers.MaxPooling2D(**kwargs)
        shape = layer.compute_output_shape(x.shape)
        upstream = rng.choice(np.r_[-8:0, 1:9], size=shape).astype("float32")
        y, dx = gradient(layer, x, upstream)
        arrays.update({f"{name}/x": x, f"{name}/upstream": upstream, f"{name}/y": y, f"{name}/dx": dx})
        cases[name] = kwargs
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "pool_ties.npz", **arrays)
    meta = {"keras": keras.__version__, "backend": keras.backend.backend(), "cases": cases}
    (OUT / "pool_ties.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {OUT}: {', '.join(cases)}")


if __name__ == "__main__":
    main()
