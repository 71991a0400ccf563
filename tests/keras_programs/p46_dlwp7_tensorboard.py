"""Source: github.com/fchollet/deep-learning-with-python-notebooks, chapter07_working-with-keras.ipynb
(Deep Learning with Python, 3rd edition, chapter 7), section "Monitoring and visualization with TensorBoard" (the TensorBoard callback); its log_dir "/full_path_to_your_log_dir" is made relative so that the run writes only into its working directory, and the %tensorboard magic cell is left out, after the notebook's get_mnist_model() and MNIST
preparation cell.

Imports changed: `import keras` -> `import convscope as keras`, `from keras import layers/ops` ->
`from convscope import layers/ops`, `from keras.datasets import mnist` -> `from convscope.datasets import mnist`;
the notebook's `os.environ["KERAS_BACKEND"] = "jax"` cell is left out (the backend choice is no API use).
Trimmed for run time: 3000 training / 1000 validation / 1000 test images, epochs 10 -> 1.
"""
import convscope as keras
from convscope import layers
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
train_images, train_labels = train_images[:3000], train_labels[:3000]  # trimmed for run time
val_images, val_labels = val_images[:1000], val_labels[:1000]  # trimmed for run time
test_images, test_labels = test_images[:1000], test_labels[:1000]  # trimmed for run time

model = get_mnist_model()
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)

tensorboard = keras.callbacks.TensorBoard(
    log_dir="full_path_to_your_log_dir",
)
model.fit(
    train_images,
    train_labels,
    epochs=1,  # trimmed for run time (10 epochs)
    validation_data=(val_images, val_labels),
    callbacks=[tensorboard],
)
