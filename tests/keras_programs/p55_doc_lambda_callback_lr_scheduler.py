"""Source: github.com/fchollet/deep-learning-with-python-notebooks, chapter07_working-with-keras.ipynb
(Deep Learning with Python, 3rd edition, chapter 7): get_mnist_model() and the MNIST preparation cell, trained
with the usage examples of two callbacks' docstrings in github.com/keras-team/keras:
keras/src/callbacks/lambda_callback.py (batch_print_callback printing the batch number, json_logging_callback
streaming the epoch loss to loss_log.json) and keras/src/callbacks/learning_rate_scheduler.py (the `scheduler`
function keeping the rate for ten epochs, then multiplying it by ops.exp(-0.1), and the doctest's
`round(model.optimizer.learning_rate, 5)` before and after fit, written to initial_lr / final_lr). A composition
of the two sources: the docstrings' `model.fit(...)` is the notebook's model and data; loss_log.json is read back
at the end (an addition: the epochs it logged are printed).

Imports changed: `import keras` -> `import convscope as keras`, `from keras import layers/ops` ->
`from convscope import layers/ops`, `from keras.datasets import mnist` -> `from convscope.datasets import mnist`,
the docstring's bare `LambdaCallback` from `from convscope.callbacks import LambdaCallback`.
Left out: the docstring's third example, cleanup_callback, whose `processes = ...` is a placeholder (iterating
the Ellipsis raises TypeError); the notebook's `os.environ["KERAS_BACKEND"] = "jax"` cell.
Trimmed for run time: 500 training / 500 validation images, batch_size=128, verbose=0 in fit (as in the
doctest), epochs 15 (the doctest) -> 10. Ten epochs keep the schedule on its `return lr` branch: from the
eleventh epoch on the doctest's `lr * ops.exp(-0.1)` makes Keras 3.15 itself fail under the torch backend
("ValueError: The output of the `schedule` function should be a float. Got: 0.0009048374486155808": ops.exp
returns a tensor), so the exponential branch is not run. The notebook compiles with adam, as here.
"""
import json

import convscope as keras
from convscope import layers, ops
from convscope.callbacks import LambdaCallback
from convscope.datasets import mnist


def get_mnist_model():
    inputs = keras.Input(shape=(28 * 28,))
    features = layers.Dense(512, activation="relu")(inputs)
    features = layers.Dropout(0.5)(features)
    outputs = layers.Dense(10, activation="softmax")(features)
    model = keras.Model(inputs, outputs)
    return model

(images, labels), (test_images, test_labels) = mnist.load_data()
images = images.reshape((60000, 28 * 28)).astype("float32") / 255
test_images = test_images.reshape((10000, 28 * 28)).astype("float32") / 255
train_images, val_images = images[10000:], images[:10000]
train_labels, val_labels = labels[10000:], labels[:10000]
train_images, train_labels = train_images[:500], train_labels[:500]  # trimmed for run time
val_images, val_labels = val_images[:500], val_labels[:500]  # trimmed for run time

# keras/src/callbacks/lambda_callback.py, the docstring example
# Print the batch number at the beginning of every batch.
batch_print_callback = LambdaCallback(
    on_train_batch_begin=lambda batch,logs: print(batch))

# Stream the epoch loss to a file in JSON format. The file content
# is not well-formed JSON but rather has a JSON object per line.
json_log = open('loss_log.json', mode='wt', buffering=1)
json_logging_callback = LambdaCallback(
    on_epoch_end=lambda epoch, logs: json_log.write(
        json.dumps({'epoch': epoch, 'loss': logs['loss']}) + '\n'),
    on_train_end=lambda logs: json_log.close()
)


# keras/src/callbacks/learning_rate_scheduler.py, the docstring example
# This function keeps the initial learning rate for the first ten epochs
# and decreases it exponentially after that.
def scheduler(epoch, lr):
    if epoch < 10:
        return lr
    else:
        return lr * ops.exp(-0.1)


model = get_mnist_model()
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
initial_lr = round(model.optimizer.learning_rate, 5)
callback = keras.callbacks.LearningRateScheduler(scheduler)
history = model.fit(
    train_images,
    train_labels,
    epochs=10,
    batch_size=128,
    validation_data=(val_images, val_labels),
    callbacks=[batch_print_callback, json_logging_callback, callback],
    verbose=0,
)
final_lr = round(model.optimizer.learning_rate, 5)
with open('loss_log.json') as f:
    logged_epochs = [json.loads(line)['epoch'] for line in f]
print(initial_lr, final_lr, logged_epochs)
