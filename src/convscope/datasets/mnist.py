"""MNIST handwritten digits (LeCun, Cortes, Burges), as ``keras.datasets.mnist``."""

from __future__ import annotations

import os

from ._loader import Split, load

NAME = "mnist"


def load_data(path: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """Return ``((x_train, y_train), (x_test, y_test))``: uint8 arrays shaped
    ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``; labels are digits 0-9.

    ``path`` names a folder holding the four standard IDX files (``.gz`` or
    not) or a Keras-style ``mnist.npz``. Without it, the files are looked for
    in ``$CONVSCOPE_DATA/mnist`` and then the cache (``$XDG_CACHE_HOME/convscope/mnist``
    or ``~/.cache/convscope/mnist``), and downloaded into the cache if absent.
    """
    return load(NAME, path)
