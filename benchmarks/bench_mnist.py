"""convscope against PyTorch and Keras-TF on the Keras MNIST convnet and a residual network.

    python benchmarks/bench_mnist.py            # full tables (a few minutes on 2 cores)
    python benchmarks/bench_mnist.py --quick    # the headline and residual rows only
    python benchmarks/bench_mnist.py --keras-python /work/tfvenv/bin/python   # + the Keras-TF column

The frameworks train the same network (Conv 32 3x3 relu, MaxPool 2, Conv 64 3x3
relu, MaxPool 2, Flatten, Dropout 0.5, Dense 10; Adam; float32) on REAL MNIST
batches (PyTorch's max pooling is several times slower on random data, which
would flatter anything compared with it), interleaved round by round so all see
the same machine load; the median round is reported. PyTorch runs in its default
NCHW layout with 2 threads. The graph row trains a three-block residual network
(``residual.py``) on real digits padded to 32x32x3 the same way.

Keras 3 on TensorFlow runs in a worker process (``keras_worker.py``) under a
Python of its own (``--keras-python``, default ``$CONVSCOPE_KERAS_PYTHON``; the
column is skipped, with the reason, without one), kept alive for the whole run
so its rounds take their turn between the others'; TensorFlow's intra- and
inter-op pools get 2 threads each.

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
import tempfile
import time

import numpy as np

if any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import convscope  # noqa: E402
from convscope import layers  # noqa: E402
from convscope.datasets import mnist  # noqa: E402
from convscope.arraymath import jit  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import residual  # noqa: E402

THREADS = 2  # PyTorch's and TensorFlow's pools; the project's machines have 2 cores

torch = None  # imported in main() only, so the memory probe's process measures convscope alone


def import_torch() -> None:
    global torch
    try:
        import torch as module
    except ImportError:
        return
    torch = module
    torch.set_num_threads(THREADS)


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


def convnet(size: int, channels: int) -> dict:
    """The network spec Trainer and the Keras worker build: the MNIST convnet at this size and width."""
    return {"net": "convnet", "size": size, "channels": channels}


RESIDUAL = {"net": "residual"}


class Trainer:
    """Runs ``steps`` training batches of one framework; returns seconds.

    "convscope" uses the compiled kernels when Numba is installed; "convscope-numpy"
    is the same model on the NumPy ops alone. ``net`` is ``convnet(size, channels)``
    or ``RESIDUAL``.
    """

    def __init__(self, framework, x, y, batch, net):
        self.framework, self.x, self.y, self.batch = framework, x, y, batch
        shape = () if net["net"] == "residual" else (net["size"], net["channels"])
        if framework.startswith("convscope"):
            self.model = convscope_model(*shape) if shape else residual.convscope_model()
        else:
            self.model, self.opt = torch_model(*shape) if shape else residual.torch_model()
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


class KerasWorker:
    """``keras_worker.py`` running under another Python, one JSON request and reply per line.

    ``KerasWorker.start`` returns ``(worker, None)``, or ``(None, reason)`` when it cannot run.
    """

    def __init__(self, python: str):
        self.folder = tempfile.TemporaryDirectory(prefix="convscope-bench-keras-")
        self.log = open(os.path.join(self.folder.name, "stderr.txt"), "w+")
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS=str(THREADS))
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_worker.py")
        self.process = subprocess.Popen([python, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True, env=env)
        self.jobs = 0

    @classmethod
    def start(cls, python):
        if not python:
            return None, "no --keras-python given and CONVSCOPE_KERAS_PYTHON is not set"
        if not os.path.isfile(python):
            return None, f"--keras-python {python!r} is not a file"
        worker = cls(python)
        try:
            worker.info = worker.request(op="hello", threads=THREADS)
        except RuntimeError as error:
            worker.close()
            return None, str(error)
        return worker, None

    def request(self, **message) -> dict:
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self.log.seek(0)
            tail = " | ".join(self.log.read().strip().splitlines()[-3:])
            raise RuntimeError(f"the Keras worker exited (code {self.process.wait(timeout=60)}): {tail or 'no output'}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the Keras worker failed on {message['op']!r}: {reply['error']}")
        return reply

    def describe(self) -> str:
        i = self.info
        return (f"tensorflow {i['tensorflow']} + keras {i['keras']} ({i['backend']}; numpy {i['numpy']}; "
                f"{i['intra_op_threads']} intra-op + {i['inter_op_threads']} inter-op threads; oneDNN {i['onednn']})")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            self.process.wait(timeout=60)
        self.log.close()
        self.folder.cleanup()


class KerasTrainer:
    """Trainer's interface, run by the Keras worker on the same arrays (saved for it to load)."""

    def __init__(self, worker: KerasWorker, x, y, batch, net):
        self.worker, self.batch, self.id = worker, batch, worker.jobs
        worker.jobs += 1
        data = os.path.join(worker.folder.name, f"data{self.id}.npz")
        np.savez(data, x=x, y=y)
        worker.request(op="build", id=self.id, data=data, **net)
        os.remove(data)

    def train(self, steps: int) -> float:
        return self.worker.request(op="train", id=self.id, steps=steps, batch=self.batch)["seconds"]

    def infer(self, batches: int, batch: int = 1000) -> float:
        return self.worker.request(op="infer", id=self.id, batches=batches, batch=batch)["seconds"]


def interleaved(frameworks, x, y, batch, net, steps, rounds, infer_batches=0, keras=None):
    """Median images/s per framework for training (and inference at batch 1000 when infer_batches).

    With a ``KerasWorker``, "keras-tf" takes its turn after the in-process frameworks in every round.
    """
    trainers = {f: Trainer(f, x, y, batch, net) for f in frameworks}
    if keras is not None:
        trainers["keras-tf"] = KerasTrainer(keras, x, y, batch, net)
    for t in trainers.values():  # warm-up: kernel compilation, tf.function traces, caches
        t.train(2)
        if infer_batches:
            t.infer(1)
    train = {f: [] for f in trainers}
    infer = {f: [] for f in trainers}
    for _ in range(rounds):
        for f, t in trainers.items():
            train[f].append(steps * batch / t.train(steps))
            if infer_batches:
                infer[f].append(infer_batches * 1000 / t.infer(infer_batches))
    med = lambda d: {f: statistics.median(v) for f, v in d.items() if v}  # noqa: E731
    return med(train), med(infer)


def print_rows(train, infer, flops, reference) -> None:
    """One row per framework, then convscope / each peer (>= 1.0: convscope as fast or faster)."""
    print(f"{'':16}{'train img/s':>14}{'infer img/s':>14}{'train GFLOP/s':>15}")
    for f in train:
        print(f"{f:16}{train[f]:14.0f}{infer[f]:14.0f}{train[f] * flops / 1e9:15.1f}")
    for peer, label in (("pytorch", "PyTorch"), ("keras-tf", "Keras-TF")):
        if peer in train:
            print(f"{'ratio':16}{train[reference] / train[peer]:14.2f}{infer[reference] / infer[peer]:14.2f}"
                  f"   ({reference} / {label}; >= 1.0: {reference} as fast or faster)")


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
        "x, y = b.load_images(%d); t = b.Trainer('convscope', x, y, %d, b.convnet(28, 32)); t.train(10); "
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))"
    ) % (os.path.dirname(os.path.abspath(__file__)), max(4 * batch, 2048), batch)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def machine(keras=None) -> str:
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
    kv = keras.describe() if keras else "Keras-TF skipped"
    return f"{cpu}, {os.cpu_count()} cores; numpy {np.__version__}, BLAS: {blas}; {tv}; {kv}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the headline and residual rows only")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="training batches per round")
    parser.add_argument("--residual-steps", type=int, default=10, help="training batches per round, residual row")
    parser.add_argument("--keras-python", default=os.environ.get("CONVSCOPE_KERAS_PYTHON"),
                        help="a Python with tensorflow-cpu and keras 3, for the Keras-TF column "
                             "(default: $CONVSCOPE_KERAS_PYTHON; without one the column is skipped)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    import_torch()
    keras, reason = KerasWorker.start(args.keras_python)
    try:
        run(args, keras, reason)
    finally:
        if keras is not None:
            keras.close()


def run(args, keras, keras_skipped) -> None:
    frameworks = ["convscope"] + (["convscope-numpy"] if jit.numba is not None else []) + (
        ["pytorch"] if torch is not None else [])
    x, y = load_images(60000 if not args.quick else 20000)
    print(f"Machine: {machine(keras)}")
    if keras_skipped:
        print(f"Keras-TF column skipped: {keras_skipped}")
    peak = matmul_peak()
    print(f"NumPy float32 matmul peak (2048^3): {peak:.0f} GFLOP/s\n")
    results = {"machine": machine(keras), "matmul_gflops": peak, "keras_skipped": keras_skipped}

    train, infer = interleaved(frameworks, x, y, 128, convnet(28, 32), args.steps, args.rounds, 5, keras)
    print("Keras MNIST convnet, batch 128 (inference 1000), real MNIST, median of %d interleaved rounds" % args.rounds)
    print_rows(train, infer, flops_per_image(28, 32), "convscope")
    results["headline"] = {"train": train, "infer": infer}

    # the NumPy-only path only in the full run: it is the slowest column and not a headline figure
    graph_frameworks = frameworks if not args.quick else [f for f in frameworks if f != "convscope-numpy"]
    xr = residual.images(x[:8192])
    train, infer = interleaved(graph_frameworks, xr, y[: len(xr)], 128, RESIDUAL, args.residual_steps, args.rounds,
                               1, keras)
    print("\nResidual network (stem + 3 residual blocks, 77,706 parameters), batch 128 (inference 1000),")
    print("real MNIST padded to 32x32x3, median of %d interleaved rounds" % args.rounds)
    print_rows(train, infer, residual.flops_per_image(), "convscope")
    results["residual"] = {"train": train, "infer": infer}
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
        t, _ = interleaved([f for f in frameworks if f != "convscope-numpy"], xs, y[: len(xs)], batch,
                           convnet(size, channels), min(steps, args.steps), 3)
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
