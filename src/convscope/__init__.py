"""convscope: a NumPy CNN library with a Keras-style API that makes convolutional networks a glass box.

    import convscope
    from convscope import layers
    model = convscope.Sequential([
        convscope.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"),
        ...
    ])

The core needs NumPy alone; progress bars, images and plots are optional extras.
"""

__version__ = "0.1.0"

from . import (
    activations, backend, callbacks, config, constraints, datasets, initializers, layers, losses, metrics, ops, optimizers,
    random, regularizers, utils,
)
from .layers import Input
from .models import LayerTrace, Model, Sequential
from .saving import load_model
from . import interop  # noqa: F401 -- registers the Keras and ONNX formats (NumPy-only until a file is used)

__all__ = [
    "Input", "LayerTrace", "Model", "Sequential", "activations", "backend", "callbacks", "config", "constraints",
    "datasets",
    "initializers", "layers", "load_model", "losses", "metrics", "models", "ops", "optimizers", "random", "regularizers", "utils",
]
