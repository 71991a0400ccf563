"""Build the offline MNIST sample shipped in ``src/convscope/datasets/data/mnist_sample.npz``.

Draws a fixed number of images of each digit from the standard MNIST files
with a fixed seed, keeps them in their original order, and writes them with
``np.savez_compressed`` under the keys of Keras's ``mnist.npz``.

    python scripts/make_mnist_sample.py [--source ../shared/data/mnist]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from convscope.datasets import mnist

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "mnist"
DEFAULT_OUT = ROOT / "src" / "convscope" / "datasets" / "data" / "mnist_sample.npz"


def balanced_indices(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` indices of each label in ``y``, drawn without replacement, sorted."""
    chosen = [rng.choice(np.flatnonzero(y == label), per_class, replace=False) for label in range(10)]
    return np.sort(np.concatenate(chosen))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder with the four MNIST IDX files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the .npz to write")
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = mnist.load_data(args.source)
    rng = np.random.default_rng(args.seed)
    train = balanced_indices(y_train, args.train_per_class, rng)
    test = balanced_indices(y_test, args.test_per_class, rng)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, x_train=x_train[train], y_train=y_train[train], x_test=x_test[test], y_test=y_test[test]
    )
    print(f"wrote {args.out}: {len(train)} train, {len(test)} test images, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
