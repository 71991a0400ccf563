"""Datasets, as in ``keras.datasets``: MNIST, Fashion-MNIST and an offline MNIST sample.

Each module's ``load_data()`` returns ``((x_train, y_train), (x_test, y_test))``
as uint8 arrays: images ``(n, 28, 28)``, labels ``(n,)``. ``find_local(name)``
says where a dataset's files were found without downloading anything.
"""

from . import fashion_mnist, mnist, mnist_sample
from ._loader import candidate_dirs, find_local
from .download import cache_dir

__all__ = ["cache_dir", "candidate_dirs", "fashion_mnist", "find_local", "mnist", "mnist_sample"]
