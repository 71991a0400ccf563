"""convscope against PyTorch on the Keras MNIST convnet, side by side in one process.

    python benchmarks/bench_mnist.py            # full tables (a few minutes on 2 cores)
    python benchmarks/bench_mnist.py --quick    # the headline ratios only

Both frameworks train the same network (Conv 32 3x3 relu, MaxPool 2, Conv 64 3x3
relu, MaxPool 2, Flatten, Dropout 0.5, Dense 10; Adam; float32) on REAL MNIST
batches (PyTorch's max pooling is several times slower on random data, which
would flatter anything compared with it), interleaved round by round so both see
the same machine load; the median round is reported. PyTorch runs in its default
NCHW layout with 2 threads.

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow NumPy's BLAS several times where they
are set: this script re-executes itself without them and prints which BLAS kernel
ran. Figures move 20-40% between runs on shared machines: compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

if any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import convscope  # noqa: E402
from convscope import layers  # noqa: E402
from convscope.datasets import mnist  # noqa: E402
from convscope.ops import jit  # noqa: E402

torch = None  # imported in main() only, so the memory probe's process measures convscope alone


def import_torch() -> None:
    global torch
    try:
        import torch as module
    except ImportError:
        return
    torch = module
    torch.set_num_threads(2)


def load_images(n: int):
    folder = os.path.join(os.environ.get("CONVSCOPE_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")), "mnist")
    (x, y), _ = mnist.load_data(folder)
    return (x[:n, ..., None] / 255.0).astype("float32"), y[:n].astype("int64")


def upscale(x, factor: int):
    """Real digits at a larger size (each pixel repeated), so pooling sees real image statistics."""
    return np.repeat(np.repeat(x, factor, axis=1), factor, axis=2) if factor > 1 else x


def convscope_model(size: int, channels: int):
    layers.clear_session()
    model = convscope.Sequential([
        convscope.Input(shape=(size, size, 1)),
        layers.Conv2D(channels, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(2 * channels, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def torch_model(size: int, channels: int):
    flat = 2 * channels * (((size - 2) // 2 - 2) // 2) ** 2
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, channels, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(channels, 2 * channels, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(flat, 10),
    )
    return model, torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)


def flops_per_image(size: int, channels: int) -> float:
    """Training FLOPs per image: 3x the forward multiply-adds (forward, dW, dX), 2 FLOPs each."""
    s1 = size - 2
    s2 = s1 // 2 - 2
    macs = s1 * s1 * 9 * channels + s2 * s2 * 9 * channels * 2 * channels + 2 * channels * (s2 // 2) ** 2 * 10
    return 3 * 2 * macs


class Trainer:
    """Runs ``steps`` training batches of one framework; returns seconds.

    "convscope" uses the compiled kernels when Numba is installed; "convscope-numpy"
    is the same model on the NumPy ops alone.
    """

    def __init__(self, framework, x, y, batch, size, channels):
        self.framework, self.x, self.y, self.batch = framework, x, y, batch
        if framework.startswith("convscope"):
            self.model = convscope_model(size, channels)
        else:
            self.model, self.opt = torch_model(size, channels)
            self.xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            self.yt = torch.from_numpy(y)
            self.loss = torch.nn.CrossEntropyLoss()

    def train(self, steps: int) -> float:
        n, b = len(self.x), self.batch
        self._select_kernels()
        start = time.perf_counter()
        for s in range(steps):
            i = (s * b) % (n - b + 1)
            if self.framework.startswith("convscope"):
                self.model.train_step(self.x[i : i + b], self.y[i : i + b])
            else:
                self.opt.zero_grad(set_to_none=True)
                self.loss(self.model(self.xt[i : i + b]), self.yt[i : i + b]).backward()
                self.opt.step()
        return time.perf_counter() - start

    def _select_kernels(self) -> None:
        if self.framework.startswith("convscope") and jit.numba is not None:
            jit.set_enabled(self.framework == "convscope")

    def infer(self, batches: int, batch: int = 1000) -> float:
        self._select_kernels()
        start = time.perf_counter()
        for s in range(batches):
            i = (s * batch) % (len(self.x) - batch + 1)
            if self.framework.startswith("convscope"):
                self.model.predict(self.x[i : i + batch], batch_size=batch, verbose=0)
            else:
                self.model.eval()
                with torch.inference_mode():
                    self.model(self.xt[i : i + batch])
                self.model.train()
        return time.perf_counter() - start


def interleaved(frameworks, x, y, batch, size, channels, steps, rounds, infer_batches=0):
    """Median images/s per framework for training (and inference at batch 1000 when infer_batches)."""
    trainers = {f: Trainer(f, x, y, batch, size, channels) for f in frameworks}
    for t in trainers.values():
        t.train(2)
    train = {f: [] for f in frameworks}
    infer = {f: [] for f in frameworks}
    for _ in range(rounds):
        for f, t in trainers.items():
            train[f].append(steps * batch / t.train(steps))
            if infer_batches:
                infer[f].append(infer_batches * 1000 / t.infer(infer_batches))
    med = lambda d: {f: statistics.median(v) for f, v in d.items() if v}  # noqa: E731
    return med(train), med(infer)


def matmul_peak() -> float:
    a = np.ones((2048, 2048), np.float32)
    a @ a
    start = time.perf_counter()
    for _ in range(5):
        a @ a
    return 5 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9


def peak_memory_mb(batch: int) -> float:
    """Peak resident memory (MB) of a fresh process that trains the convnet 10 steps at ``batch``."""
    # VmHWM, not getrusage's ru_maxrss: the latter carries the (much larger) parent's peak across exec.
    code = (
        "import sys; sys.path.insert(0, %r); import bench_mnist as b; "
        "x, y = b.load_images(%d); t = b.Trainer('convscope', x, y, %d, 28, 32); t.train(10); "
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))"
    ) % (os.path.dirname(os.path.abspath(__file__)), max(4 * batch, 2048), batch)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        from threadpoolctl import threadpool_info

        blas = "; ".join(f"{i['internal_api']} {i.get('version')} {i.get('architecture')} x{i['num_threads']}"
                         for i in threadpool_info() if i["user_api"] == "blas")
    except ImportError:
        blas = "threadpoolctl not installed"
    tv = f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "torch not installed"
    return f"{cpu}, {os.cpu_count()} cores; numpy {np.__version__}, BLAS: {blas}; {tv}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="headline ratios only")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="training batches per round")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    import_torch()
    frameworks = ["convscope"] + (["convscope-numpy"] if jit.numba is not None else []) + (
        ["pytorch"] if torch is not None else [])
    x, y = load_images(60000 if not args.quick else 20000)
    print(f"Machine: {machine()}")
    peak = matmul_peak()
    print(f"NumPy float32 matmul peak (2048^3): {peak:.0f} GFLOP/s\n")
    results = {"machine": machine(), "matmul_gflops": peak}

    train, infer = interleaved(frameworks, x, y, 128, 28, 32, args.steps, args.rounds, infer_batches=5)
    print("Keras MNIST convnet, batch 128, real MNIST, median of %d interleaved rounds" % args.rounds)
    print(f"{'':16}{'train img/s':>14}{'infer img/s':>14}{'train GFLOP/s':>15}")
    for f in frameworks:
        print(f"{f:16}{train[f]:14.0f}{infer[f]:14.0f}{train[f] * flops_per_image(28, 32) / 1e9:15.1f}")
    if "pytorch" in train:
        print(f"{'ratio':16}{train['convscope'] / train['pytorch']:14.2f}{infer['convscope'] / infer['pytorch']:14.2f}"
              "   (convscope / PyTorch; >= 1.0 means convscope is as fast or faster)")
    results["headline"] = {"train": train, "infer": infer}
    if args.quick:
        _dump(args.json, results)
        return

    print("\nScaling (training img/s, achieved GFLOP/s, convscope / PyTorch)")
    print(f"{'batch':>6}{'size':>6}{'chan':>6}{'MFLOP/img':>11}{'convscope':>11}{'GFLOP/s':>9}{'pytorch':>10}{'ratio':>7}")
    rows = [(b, 28, 32) for b in (32, 64, 128, 256, 512, 1024)] + [(128, 56, 32), (128, 112, 32), (128, 28, 64), (128, 28, 128)]
    results["scaling"] = []
    for batch, size, channels in rows:
        xs = upscale(x[: max(8 * batch, 2048) // (size // 28) ** 2 + batch], size // 28)
        steps = max(3, int(args.steps * 128 * 784 / (batch * size * size * channels / 32)))
        t, _ = interleaved([f for f in frameworks if f != "convscope-numpy"], xs, y[: len(xs)], batch, size, channels, min(steps, args.steps), 3)
        f = flops_per_image(size, channels)
        ratio = t["convscope"] / t["pytorch"] if "pytorch" in t else float("nan")
        print(f"{batch:6d}{size:6d}{channels:6d}{f / 1e6:11.2f}{t['convscope']:11.0f}{t['convscope'] * f / 1e9:9.1f}"
              f"{t.get('pytorch', float('nan')):10.0f}{ratio:7.2f}")
        results["scaling"].append({"batch": batch, "size": size, "channels": channels, **t})

    print("\nPeak resident memory of a process training the convnet (convscope)")
    for batch in (128, 1024):
        mb = peak_memory_mb(batch)
        print(f"  batch {batch:5d}: {mb:7.0f} MB")
        results[f"peak_rss_mb_batch_{batch}"] = mb
    _dump(args.json, results)


def _dump(path, results) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
