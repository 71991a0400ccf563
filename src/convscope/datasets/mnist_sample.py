"""A small offline sample of real MNIST digits shipped inside the package.

10,000 training and 1,000 test images, balanced across the ten digits, drawn
from the standard MNIST files by ``scripts/make_mnist_sample.py``; credit and
license in ``data/LICENSE-MNIST.txt`` (CC BY-SA 3.0).
"""

from __future__ import annotations

from importlib import resources

from ._loader import Split, load_npz

FILE_NAME = "mnist_sample.npz"


def load_data() -> tuple[Split, Split]:
    """Return ``((x_train, y_train), (x_test, y_test))``: uint8 arrays shaped
    ``(10000, 28, 28)``, ``(10000,)``, ``(1000, 28, 28)``, ``(1000,)``, 1000 and
    100 images of each digit, in their order in the full MNIST files."""
    with resources.as_file(resources.files(__package__) / "data" / FILE_NAME) as path:
        return load_npz(path)
