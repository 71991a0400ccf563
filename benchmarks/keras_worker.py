"""Keras 3 on TensorFlow (CPU), timed on request: the Keras-TF column of bench_mnist.py.

    CONVSCOPE_KERAS_PYTHON=/path/to/tf-venv/bin/python python benchmarks/bench_mnist.py

bench_mnist.py starts this script under a Python that has ``tensorflow-cpu`` and
``keras`` (a venv of its own: TensorFlow and the project's NumPy/PyTorch need not
agree on versions) and keeps it alive for the whole run, so Keras's rounds
interleave with convscope's and PyTorch's, one round each in turn, and its
``tf.function`` traces are paid once, in the warm-up. One JSON object per line
on stdin, one reply per line on stdout:

    {"op": "hello", "threads": 2}                    -> versions and thread counts
    {"op": "build", "id": k, "net": "convnet", "size": 28, "channels": 32, "data": "x.npz"}
    {"op": "build", "id": k, "net": "residual", "data": "x.npz"}
    {"op": "train", "id": k, "steps": 40, "batch": 128}   -> {"seconds": s}
    {"op": "infer", "id": k, "batches": 5, "batch": 1000} -> {"seconds": s}
    {"op": "quit"}

The ``.npz`` holds ``x`` (NHWC float32) and ``y`` (int64): the very batches the
other frameworks train on, chosen by the same index formula. Training calls
``train_on_batch`` once per batch (one compiled train step, as convscope's
``train_step``); inference calls ``predict(batch_size=1000)``. Keras's defaults
otherwise: no XLA on a CPU-only machine (``jit_compile="auto"``), oneDNN on.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Replies go to the real stdout; anything a library prints goes to stderr, so it cannot corrupt them.
REPLIES = sys.stdout
sys.stdout = sys.stderr


def set_threads(threads: int):
    """Intra- and inter-op pools of ``threads`` each; must run before TensorFlow executes any op."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def convnet(size: int, channels: int):
    """The Keras MNIST convnet (keras.io/examples/vision/mnist_convnet)."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(shape=(size, size, 1)),
        layers.Conv2D(channels, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(2 * channels, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax"),
    ])


def residual():
    """Stem conv, three residual blocks (16, 1), (32, 2), (64, 2), global average pooling, softmax.

    The same graph as ``benchmarks/residual.py`` builds in convscope and PyTorch.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu")(x)
        y = layers.Conv2D(filters, 3, padding="same")(y)
        shortcut = x if stride == 1 and x.shape[-1] == filters else layers.Conv2D(filters, 1, strides=stride)(x)
        x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


class Job:
    def __init__(self, request):
        import keras
        import numpy as np

        with np.load(request["data"]) as data:
            self.x, self.y = data["x"], data["y"]
        keras.utils.set_random_seed(0)
        self.model = convnet(request["size"], request["channels"]) if request["net"] == "convnet" else residual()
        self.model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

    def train(self, steps: int, batch: int) -> float:
        n = len(self.x)
        start = time.perf_counter()
        for s in range(steps):
            i = (s * batch) % (n - batch + 1)
            self.model.train_on_batch(self.x[i : i + batch], self.y[i : i + batch])
        return time.perf_counter() - start

    def infer(self, batches: int, batch: int) -> float:
        start = time.perf_counter()
        for s in range(batches):
            i = (s * batch) % (len(self.x) - batch + 1)
            self.model.predict(self.x[i : i + batch], batch_size=batch, verbose=0)
        return time.perf_counter() - start


def handle(request, jobs):
    op = request["op"]
    if op == "hello":
        tf = set_threads(request["threads"])
        import keras
        import numpy as np

        return {
            "tensorflow": tf.__version__, "keras": keras.__version__, "backend": keras.backend.backend(),
            "numpy": np.__version__, "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        }
    if op == "build":
        jobs[request["id"]] = Job(request)
        return {"ok": True}
    if op == "train":
        return {"seconds": jobs[request["id"]].train(request["steps"], request["batch"])}
    if op == "infer":
        return {"seconds": jobs[request["id"]].infer(request["batches"], request["batch"])}
    raise ValueError(f"keras_worker: unknown op {op!r}; expected hello, build, train, infer or quit")


def main() -> None:
    jobs = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        try:
            reply = handle(request, jobs)
        except Exception as error:  # reported to the parent, which skips the column with the reason
            reply = {"error": f"{type(error).__name__}: {error}"}
        REPLIES.write(json.dumps(reply) + "\n")
        REPLIES.flush()


if __name__ == "__main__":
    main()
