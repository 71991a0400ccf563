"""Fashion-MNIST clothing images (Zalando Research), as ``keras.datasets.fashion_mnist``."""

from __future__ import annotations

import os

from ._loader import Split, load

NAME = "fashion-mnist"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def load_data(path: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """Return ``((x_train, y_train), (x_test, y_test))``: uint8 arrays shaped
    ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``; labels
    0-9 index ``CLASS_NAMES``.

    ``path`` names a folder holding the four standard IDX files (``.gz`` or
    not) or a Keras-style ``.npz``. Without it, the files are looked for in
    ``$CONVSCOPE_DATA/fashion-mnist``, the cache (``$XDG_CACHE_HOME/convscope/fashion-mnist``
    or ``~/.cache/convscope/fashion-mnist``) and ``/usr/share/datasets/fashion-mnist``
    (Debian's ``dataset-fashion-mnist``), and downloaded into the cache if absent.
    """
    return load(NAME, path)
