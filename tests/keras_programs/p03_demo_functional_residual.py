"""Source: github.com/keras-team/keras, examples/demo_functional.py (Keras 3): a residual MLP
(`x += residual` on symbolic tensors) on synthetic data, with CategoricalAccuracy and MSE metrics.

Imports changed: `from keras import X` -> `from convscope import X`, `import keras` -> `import convscope as keras`.
Trimmed for run time: 2000 samples instead of 50000, epochs 5 -> 1.
"""
import numpy as np

from convscope import Model
from convscope import layers
from convscope import losses
from convscope import metrics
from convscope import optimizers
import convscope as keras

keras.config.disable_traceback_filtering()

inputs = layers.Input((100,))
x = layers.Dense(512, activation="relu")(inputs)
residual = x
x = layers.Dense(512, activation="relu")(x)
x = layers.Dense(512, activation="relu")(x)
x += residual
x = layers.Dense(512, activation="relu")(x)
residual = x
x = layers.Dense(512, activation="relu")(x)
x = layers.Dense(512, activation="relu")(x)
x += residual
residual = x
x = layers.Dense(512, activation="relu")(x)
x = layers.Dense(512, activation="relu")(x)
x += residual
outputs = layers.Dense(16)(x)
model = Model(inputs, outputs)

model.summary()

x = np.random.random((2000, 100))  # trimmed for run time (50000 samples in the source)
y = np.random.random((2000, 16))
batch_size = 32
epochs = 1  # trimmed for run time (5 in the source)

model.compile(
    optimizer=optimizers.Adam(learning_rate=0.001),
    loss=losses.MeanSquaredError(),
    metrics=[
        metrics.CategoricalAccuracy(name="acc"),
        metrics.MeanSquaredError(name="mse"),
    ],
)

print("\nTrain model")
history = model.fit(
    x, y, batch_size=batch_size, epochs=epochs, validation_split=0.2
)
print("\nHistory:")
print(history.history)

print("\nEvaluate model")
scores = model.evaluate(x, y, return_dict=True)
print(scores)

print("\nRun inference")
pred = model.predict(x)
print(f"Inferred output shape {pred.shape}")
