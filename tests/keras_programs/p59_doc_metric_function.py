"""Source: github.com/keras-team/keras-io, templates/api/metrics/index.md (keras.io/api/metrics, "Creating custom
metrics / As simple callables (stateless)"): `my_metric_fn` built from ops.square / ops.mean(axis=-1) and
`model.compile(optimizer='adam', loss='mean_squared_error', metrics=[my_metric_fn])`, applied to the convnet of
github.com/keras-team/keras-io examples/vision/mnist_convnet.py (its compile line replaced by the page's), plus
the built-in metric function `keras.metrics.categorical_accuracy` and the loss function
`keras.losses.categorical_crossentropy` added to that metrics list (the page: "Note that you may use any loss
function as a metric"), and evaluate(return_dict=True) next to the example's evaluate. A composition of the
page's snippet and the keras-io example; the example's two final prints are one print here.

Imports changed: `from tensorflow import keras` -> `import convscope as keras`, `from tensorflow.keras import
layers` -> `from convscope import layers`, the page's `from keras import ops` -> `from convscope import ops`.
Trimmed for run time: the first 1000 training / 500 test images, epochs 15 -> 1.
"""
import numpy as np
import convscope as keras
from convscope import layers
from convscope import ops


def my_metric_fn(y_true, y_pred):
    squared_difference = ops.square(y_true - y_pred)
    return ops.mean(squared_difference, axis=-1)  # Note the `axis=-1`


num_classes = 10
input_shape = (28, 28, 1)

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train, x_test, y_test = x_train[:1000], y_train[:1000], x_test[:500], y_test[:500]  # trimmed for run time
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

model = keras.Sequential(
    [
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]
)

model.summary()

model.compile(optimizer='adam', loss='mean_squared_error',
              metrics=[my_metric_fn, keras.metrics.categorical_accuracy, keras.losses.categorical_crossentropy])

model.fit(x_train, y_train, batch_size=128, epochs=1, validation_split=0.1)  # epochs trimmed (15)

score = model.evaluate(x_test, y_test, verbose=0)
results = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
print(score, results)
