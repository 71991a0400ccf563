"""Where the time of one training step goes: per layer, forward and backward, NumPy and compiled paths.

    python benchmarks/profile_step.py [--batch 128] [--steps 30]

Trains the Keras MNIST convnet on real MNIST batches and times every layer's
forward and backward pass (and the loss and optimizer) separately, as a table
in milliseconds per step, for the NumPy ops and, when Numba is installed, the
compiled kernels. Re-executes itself without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict

if any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import convscope  # noqa: E402
from convscope import zoo  # noqa: E402
from convscope.fusion import ReluThenMaxPool  # noqa: E402
from convscope.ops import jit  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_mnist import load_images  # noqa: E402


def name(step) -> str:
    return f"{step.layer.name}+{step.pool.name}" if isinstance(step, ReluThenMaxPool) else step.name


def profile(x, y, batch: int, steps: int) -> dict:
    convscope.utils.set_random_seed(0)
    convscope.layers.clear_session()
    model = zoo.keras_convnet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    times = defaultdict(float)
    layers = model._steps()  # the steps fit() runs: ReLU + max-pool pairs fused
    for step in range(steps + 2):
        record = step >= 2  # the first steps compile kernels and warm caches
        i = (step * batch) % (len(x) - batch)
        h, yb = x[i : i + batch], y[i : i + batch]
        for layer in layers:
            t = time.perf_counter()
            h = layer.forward(h, training=True)
            times[(name(layer), "forward")] += (time.perf_counter() - t) * record
        t = time.perf_counter()
        _, grad, fused = model._loss_and_grad(model.loss, yb, h)
        times[("loss", "forward+backward")] += (time.perf_counter() - t) * record
        for k, layer in enumerate(reversed(layers)):
            t = time.perf_counter()
            if isinstance(layer, (convscope.layers.ActivatedLayer, ReluThenMaxPool)):
                grad = layer.backward(grad, dy_is_preactivation=(k == 0 and fused), need_dx=k < len(layers) - 1)
            else:
                grad = layer.backward(grad)
            times[(name(layer), "backward")] += (time.perf_counter() - t) * record
        t = time.perf_counter()
        model.optimizer.apply(model.trainable_parameters)
        times[("adam", "update")] += (time.perf_counter() - t) * record
    return {k: 1000 * v / steps for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    x, y = load_images(20000)
    paths = ["numpy"] + (["jit"] if jit.numba is not None else [])
    results = {}
    for path in paths:
        jit.set_enabled(path == "jit")
        results[path] = profile(x, y, args.batch, args.steps)
    keys = list(results["numpy"])
    print(f"ms per training step, batch {args.batch}, real MNIST, mean of {args.steps} steps")
    print(f"{'step':30}{'pass':10}" + "".join(f"{p:>10}" for p in paths))
    for key in keys:
        print(f"{key[0]:30}{key[1]:10}" + "".join(f"{results[p][key]:10.2f}" for p in paths))
    print(f"{'total':40}" + "".join(f"{sum(results[p].values()):10.2f}" for p in paths))
    print(f"{'images/s':40}" + "".join(f"{1000 * args.batch / sum(results[p].values()):10.0f}" for p in paths))


if __name__ == "__main__":
    main()
