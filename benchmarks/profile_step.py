"""Where the time of one training step goes: per layer, forward and backward, NumPy and compiled paths.

    python benchmarks/profile_step.py [--net convnet|residual] [--batch 128] [--steps 30]

Trains the Keras MNIST convnet (or the residual network of ``residual.py``, on
digits padded to 32x32x3) on real MNIST batches with ``train_step`` and times
every step of the model's execution plan (a layer call, or a fused ReLU + max
pooling pair) forward and backward, the loss, and the optimizer, separately, as
milliseconds per training step, for the NumPy ops and, when Numba is installed,
the compiled kernels; "graph" is what ``train_step`` spends outside them (the
plan's bookkeeping, gradient sums of branches). Then the same per layer type.
Re-executes itself without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE.
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
from convscope.arraymath import jit  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import residual  # noqa: E402
from bench_mnist import load_images  # noqa: E402


def label(op) -> tuple[str, str]:
    """(the step's name, its layer type) as the table prints them."""
    if isinstance(op, ReluThenMaxPool):
        return f"{op.layer.name}+{op.pool.name}", f"{type(op.layer).__name__}+MaxPooling2D"
    return op.name, type(op).__name__


def timed(function, times, key, state):
    """``function``, adding its seconds to ``times[key]`` while ``state["on"]``; a call made from inside
    another timed one (``backward`` running ``backward_from_preactivation``) counts for the outer one only."""

    def wrapper(*args, **kwargs):
        if state["depth"]:
            return function(*args, **kwargs)
        state["depth"] += 1
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            state["depth"] -= 1
            if state["on"]:
                times[key] += time.perf_counter() - start

    return wrapper


def build(net: str):
    convscope.utils.set_random_seed(0)
    if net == "residual":
        return residual.convscope_model()
    convscope.layers.clear_session()
    model = zoo.keras_convnet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def profile(net, x, y, batch: int, steps: int) -> dict:
    """{(step name, layer type, pass): ms per training step}; the first 2 steps (compilation, caches) not counted."""
    model = build(net)
    model.train_step(x[:batch], y[:batch])  # builds the execution plan, which is cached
    plan = model._graph_for(True, [(None, *x.shape[1:])]).plan(fuse=True)
    times, state = defaultdict(float), {"on": False, "depth": 0}
    for step in plan.steps:
        name, kind = label(step.op)
        for method in ("forward", "backward", "backward_from_preactivation"):
            if hasattr(step.op, method):
                key = (name, kind, method.split("_")[0])
                setattr(step.op, method, timed(getattr(step.op, method), times, key, state))
    model._losses = timed(model._losses, times, ("loss", "loss", "forward+backward"), state)
    model.optimizer.apply = timed(model.optimizer.apply, times, ("adam", "Adam", "update"), state)
    total = 0.0
    for s in range(steps + 1):
        state["on"] = s >= 1
        i = (s * batch) % (len(x) - batch + 1)
        start = time.perf_counter()
        model.train_step(x[i : i + batch], y[i : i + batch])
        total += (time.perf_counter() - start) * state["on"]
    times[("graph", "graph", "bookkeeping")] = total - sum(times.values())
    return {k: 1000 * v / steps for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=("convnet", "residual"), default="convnet")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    x, y = load_images(20000 if args.net == "convnet" else 4096)
    if args.net == "residual":
        x = residual.images(x)
    paths = ["numpy"] + (["jit"] if jit.numba is not None else [])
    results = {}
    for path in paths:
        jit.set_enabled(path == "jit")
        results[path] = profile(args.net, x, y, args.batch, args.steps)
    keys = list(results["numpy"])
    print(f"{args.net}: ms per training step, batch {args.batch}, real MNIST, mean of {args.steps} steps")
    print(f"{'step':28}{'type':26}{'pass':18}" + "".join(f"{p:>9}" for p in paths))
    for key in keys:
        print(f"{key[0]:28}{key[1]:26}{key[2]:18}" + "".join(f"{results[p][key]:9.2f}" for p in paths))
    print(f"{'total':72}" + "".join(f"{sum(results[p].values()):9.2f}" for p in paths))
    print(f"{'images/s':72}" + "".join(f"{1000 * args.batch / sum(results[p].values()):9.0f}" for p in paths))
    print("\nper layer type")
    kinds = defaultdict(lambda: defaultdict(float))
    for p in paths:
        for (_, kind, what), ms in results[p].items():
            kinds[(kind, what)][p] += ms
    for (kind, what), per_path in sorted(kinds.items(), key=lambda kv: -kv[1][paths[-1]]):
        print(f"{kind:54}{what:18}" + "".join(f"{per_path[p]:9.2f}" for p in paths))


if __name__ == "__main__":
    main()
