"""Source: github.com/keras-team/keras, examples/demo_subclass.py (Keras 3): a subclassed Model.

Imports changed: `from keras import X` -> `from convscope import X`.
Trimmed for run time: 2000 samples instead of 50000, epochs 6 -> 1.
"""
import numpy as np

from convscope import Model
from convscope import layers
from convscope import losses
from convscope import metrics
from convscope import optimizers


class MyModel(Model):
    def __init__(self, hidden_dim, output_dim):
        super().__init__()
        self.dense1 = layers.Dense(hidden_dim, activation="relu")
        self.dense2 = layers.Dense(hidden_dim, activation="relu")
        self.dense3 = layers.Dense(output_dim)

    def call(self, x):
        x = self.dense1(x)
        x = self.dense2(x)
        return self.dense3(x)


model = MyModel(hidden_dim=256, output_dim=16)

x = np.random.random((2000, 128))  # trimmed for run time (50000 samples in the source)
y = np.random.random((2000, 16))
batch_size = 32
epochs = 1  # trimmed for run time (6 in the source)

model.compile(
    optimizer=optimizers.SGD(learning_rate=0.001),
    loss=losses.MeanSquaredError(),
    metrics=[metrics.MeanSquaredError()],
)
history = model.fit(
    x, y, batch_size=batch_size, epochs=epochs, validation_split=0.2
)

print("History:")
print(history.history)

model.summary()
