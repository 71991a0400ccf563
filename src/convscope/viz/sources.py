"""Where the pictures and the explorer get their inputs: a model file or run folder, and test images.

Test images come from full MNIST when it is found on disk, else from the offline
sample. Nothing here downloads: ``--index N`` should answer at once, so a missing
data set falls back to the sample that ships inside the package, and says so.
"""

from __future__ import annotations

import os

import numpy as np

DATASETS = ("mnist", "fashion-mnist", "mnist-sample")


def load_test_set(dataset: str = "mnist", announce=print):
    """``(name, x_test, y_test)``: uint8 images ``(n, 28, 28)`` and labels; ``announce`` hears which set was used."""
    from .. import datasets

    if dataset not in DATASETS:
        raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, received {dataset!r}")
    if dataset != "mnist-sample":
        folder = datasets.find_local(dataset)
        if folder is not None:
            module = datasets.mnist if dataset == "mnist" else datasets.fashion_mnist
            (_, _), (x, y) = module.load_data(folder)
            announce(f"Test images: {dataset} ({len(x)} images) from {folder}")
            return dataset, x, y
        if dataset == "fashion-mnist":
            raise ValueError("Fashion-MNIST was not found locally (set CONVSCOPE_DATA to a folder holding fashion-mnist/)")
    (_, _), (x, y) = datasets.mnist_sample.load_data()
    if dataset == "mnist":
        announce("Full MNIST not found locally (set CONVSCOPE_DATA to a folder holding mnist/); "
                 f"using the offline sample's {len(x)} test images")
    else:
        announce(f"Test images: the offline mnist-sample ({len(x)} images)")
    return "mnist-sample", x, y


def pick(x, y, index: int):
    """Test image ``index`` and its label, or a ValueError naming the valid range."""
    if not 0 <= index < len(x):
        raise ValueError(f"--index must be between 0 and {len(x) - 1} for this test set, received {index}")
    return x[index], int(y[index])


def as_batch(image, dtype="float32"):
    """A uint8 ``(28, 28)`` picture as the model's input: one sample ``(1, 28, 28, 1)`` scaled to [0, 1]."""
    return (np.asarray(image, dtype=dtype) / 255.0)[None, :, :, None]


def model_path(path) -> str:
    """The model file named by ``path``: the file itself, or a run folder's final model (else its checkpoint)."""
    from ..runs import CHECKPOINT, FINAL_MODEL

    path = os.fspath(path)
    if os.path.isdir(path):
        for name in (FINAL_MODEL, CHECKPOINT):
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        raise ValueError(f"{path!r} is a folder without {FINAL_MODEL} or {CHECKPOINT}")
    return path


def open_model(path):
    """The model in a model file or run folder (see ``model_path``), uncompiled: the tools only read it."""
    from ..saving import load_model

    return load_model(model_path(path), compile=False)
