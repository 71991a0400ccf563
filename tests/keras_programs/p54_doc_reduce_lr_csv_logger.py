"""Source: github.com/keras-team/keras-io, examples/vision/mnist_convnet.py ("Simple MNIST convnet", fchollet),
with the usage examples of two callbacks' docstrings in github.com/keras-team/keras put into its fit call:
keras/src/callbacks/reduce_lr_on_plateau.py (`reduce_lr = ReduceLROnPlateau(monitor='val_loss', factor=0.2,
patience=5, min_lr=0.001)`) and keras/src/callbacks/csv_logger.py (`csv_logger = CSVLogger('training.log')`),
the examples shown on keras.io/api/callbacks. The docstrings show only `model.fit(x_train, y_train,
callbacks=[...])`; here the two callbacks go into the convnet's own fit call (a composition of the two sources),
and the log the CSVLogger wrote is read back with the standard csv module.

Imports changed: `from tensorflow import keras` -> `import convscope as keras`,
`from tensorflow.keras import layers` -> `from convscope import layers`; the docstrings' bare
`ReduceLROnPlateau` / `CSVLogger` come from `from convscope.callbacks import CSVLogger, ReduceLROnPlateau`.
Trimmed for run time: the first 1000 training / 500 test images, epochs 15 -> 2.
"""
import csv

import numpy as np
import convscope as keras
from convscope import layers
from convscope.callbacks import CSVLogger, ReduceLROnPlateau

# Model / data parameters
num_classes = 10
input_shape = (28, 28, 1)

# Load the data and split it between train and test sets
(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train, x_test, y_test = x_train[:1000], y_train[:1000], x_test[:500], y_test[:500]  # trimmed for run time

# Scale images to the [0, 1] range
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
# Make sure images have shape (28, 28, 1)
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")

# convert class vectors to binary class matrices
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

batch_size = 128
epochs = 2  # trimmed for run time (15 in the source)

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

# keras/src/callbacks/reduce_lr_on_plateau.py and csv_logger.py, the docstring examples
reduce_lr = ReduceLROnPlateau(monitor='val_loss', factor=0.2,
                              patience=5, min_lr=0.001)
csv_logger = CSVLogger('training.log')

model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1,
          callbacks=[reduce_lr, csv_logger])

with open('training.log') as f:
    rows = list(csv.DictReader(f))
print(rows[0].keys(), len(rows))

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
