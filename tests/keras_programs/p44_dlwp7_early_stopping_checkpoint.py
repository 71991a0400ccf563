"""Source: github.com/fchollet/deep-learning-with-python-notebooks, chapter07_working-with-keras.ipynb
(Deep Learning with Python, 3rd edition, chapter 7), section "The EarlyStopping and ModelCheckpoint callbacks" (EarlyStopping on accuracy, ModelCheckpoint save_best_only to .keras, load_model), after the notebook's get_mnist_model() and MNIST
preparation cell.

Imports changed: `import keras` -> `import convscope as keras`, `from keras import layers/ops` ->
`from convscope import layers/ops`, `from keras.datasets import mnist` -> `from convscope.datasets import mnist`;
the notebook's `os.environ["KERAS_BACKEND"] = "jax"` cell is left out (the backend choice is no API use).
Trimmed for run time: 3000 training / 1000 validation / 1000 test images, epochs 10 -> 3.
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

callbacks_list = [
    keras.callbacks.EarlyStopping(
        monitor="accuracy",
        patience=1,
    ),
    keras.callbacks.ModelCheckpoint(
        filepath="checkpoint_path.keras",
        monitor="val_loss",
        save_best_only=True,
    ),
]
model = get_mnist_model()
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
model.fit(
    train_images,
    train_labels,
    epochs=3,  # trimmed for run time (10 epochs)
    callbacks=callbacks_list,
    validation_data=(val_images, val_labels),
)

model = keras.models.load_model("checkpoint_path.keras")
