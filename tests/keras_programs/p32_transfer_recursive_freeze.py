"""Source: github.com/keras-team/keras, guides/transfer_learning.py (Keras 3 guide "Transfer learning &
fine-tuning", fchollet), section "Recursive setting of the trainable attribute" (freezing an outer Sequential freezes its nested model and its layers).

Imports changed: `import keras` -> `import convscope as keras`; the guide's `import tensorflow_datasets` and
`import matplotlib.pyplot` are dropped (only its cats-vs-dogs sections use them, which are not part of this
program).
Trimmed for run time: nothing.
"""
import numpy as np
import convscope as keras
from convscope import layers

inner_model = keras.Sequential(
    [
        keras.Input(shape=(3,)),
        keras.layers.Dense(3, activation="relu"),
        keras.layers.Dense(3, activation="relu"),
    ]
)

model = keras.Sequential(
    [
        keras.Input(shape=(3,)),
        inner_model,
        keras.layers.Dense(3, activation="sigmoid"),
    ]
)

model.trainable = False  # Freeze the outer model

assert inner_model.trainable == False  # All layers in `model` are now frozen
assert (
    inner_model.layers[0].trainable == False
)  # `trainable` is propagated recursively
