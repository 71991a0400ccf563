"""Ready-made models for 28x28x1 digits, as the classic recipes write them.

* ``keras_convnet``: the Keras "Simple MNIST convnet" example, 34,826 parameters:
  Conv2D 32 3x3 relu, MaxPool 2, Conv2D 64 3x3 relu, MaxPool 2, Flatten,
  Dropout 0.5, Dense 10 softmax.
* ``lenet5``: LeCun et al. (1998) in its common modern form, 61,706 parameters:
  Conv2D 6 5x5 (same) -> AvgPool 2 -> Conv2D 16 5x5 -> AvgPool 2 -> Flatten ->
  Dense 120 -> Dense 84 -> Dense 10 softmax (tanh by default).
"""

from __future__ import annotations

from . import layers
from .layers.reshape import Input
from .models import Sequential


def keras_convnet(input_shape=(28, 28, 1), num_classes=10, activation="relu", kernel_initializer="glorot_uniform"):
    conv = dict(activation=activation, kernel_initializer=kernel_initializer)
    return Sequential([
        Input(shape=input_shape),
        layers.Conv2D(32, (3, 3), **conv),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), **conv),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ], name="keras_convnet")


def lenet5(input_shape=(28, 28, 1), num_classes=10, activation="tanh", kernel_initializer="glorot_uniform"):
    act = dict(activation=activation, kernel_initializer=kernel_initializer)
    return Sequential([
        Input(shape=input_shape),
        layers.Conv2D(6, (5, 5), padding="same", **act),
        layers.AveragePooling2D((2, 2)),
        layers.Conv2D(16, (5, 5), **act),
        layers.AveragePooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(120, **act),
        layers.Dense(84, **act),
        layers.Dense(num_classes, activation="softmax"),
    ], name="lenet5")


MODELS = {"keras-convnet": keras_convnet, "lenet5": lenet5}
