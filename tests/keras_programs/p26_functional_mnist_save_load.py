"""Source: github.com/keras-team/keras, guides/functional_api.py (Keras 3 guide "The Functional API",
fchollet), sections "Introduction" to "Save and serialize" (MNIST MLP with summary, fit with validation_split, evaluate, save to .keras and load_model); the two keras.utils.plot_model calls are left out: they need pydot and graphviz, which neither environment has.

Imports changed: `import keras` -> `import convscope as keras`, `from keras import layers/ops` ->
`from convscope import layers/ops`.
Trimmed for run time: the first 2000 training / 1000 test images.
"""
import numpy as np
import convscope as keras
from convscope import layers
from convscope import ops

inputs = keras.Input(shape=(784,))

# Just for demonstration purposes.
img_inputs = keras.Input(shape=(32, 32, 3))

inputs.shape

inputs.dtype

dense = layers.Dense(64, activation="relu")
x = dense(inputs)

x = layers.Dense(64, activation="relu")(x)
outputs = layers.Dense(10)(x)

model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")

model.summary()

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()

x_train = x_train.reshape(60000, 784).astype("float32") / 255
x_test = x_test.reshape(10000, 784).astype("float32") / 255
x_train, y_train, x_test, y_test = x_train[:2000], y_train[:2000], x_test[:1000], y_test[:1000]  # trimmed for run time

model.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer=keras.optimizers.RMSprop(),
    metrics=["accuracy"],
)

history = model.fit(
    x_train, y_train, batch_size=64, epochs=2, validation_split=0.2
)

test_scores = model.evaluate(x_test, y_test, verbose=2)
print("Test loss:", test_scores[0])
print("Test accuracy:", test_scores[1])

model.save("my_model.keras")
del model
# Recreate the exact same model purely from the file:
model = keras.models.load_model("my_model.keras")
