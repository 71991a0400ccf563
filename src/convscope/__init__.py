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

from . import activations, backend, callbacks, config, initializers, layers, losses, metrics, optimizers, utils
from .layers import Input
from .models import LayerTrace, Sequential
from .saving import load_model

__version__ = "0.1.0"

__all__ = [
    "Input", "LayerTrace", "Sequential", "activations", "backend", "callbacks", "config", "initializers",
    "layers", "load_model", "losses", "metrics", "optimizers", "utils",
]
