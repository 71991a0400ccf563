"""Source: github.com/fchollet/deep-learning-with-python-notebooks, chapter08_intro-to-dl-for-computer-vision.ipynb
(Deep Learning with Python, 2nd edition, chapter 8), section "Introduction to convnets" (a functional MNIST
convnet: summary, fit, evaluate; the same convnet without max pooling and its summary).

Imports changed: `from tensorflow import keras` -> `import convscope as keras`, `from tensorflow.keras import
layers` -> `from convscope import layers`, `from tensorflow.keras.datasets import mnist` ->
`from convscope.datasets import mnist`.
Trimmed for run time: the first 1000 training / 500 test images, epochs 5 -> 1.
"""
import convscope as keras
from convscope import layers
inputs = keras.Input(shape=(28, 28, 1))
x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inputs)
x = layers.MaxPooling2D(pool_size=2)(x)
x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
x = layers.MaxPooling2D(pool_size=2)(x)
x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
x = layers.Flatten()(x)
outputs = layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs=inputs, outputs=outputs)

model.summary()

from convscope.datasets import mnist

(train_images, train_labels), (test_images, test_labels) = mnist.load_data()
train_images = train_images.reshape((60000, 28, 28, 1))
train_images = train_images.astype("float32") / 255
test_images = test_images.reshape((10000, 28, 28, 1))
test_images = test_images.astype("float32") / 255
train_images, train_labels = train_images[:1000], train_labels[:1000]  # trimmed for run time
test_images, test_labels = test_images[:500], test_labels[:500]  # trimmed for run time
model.compile(optimizer="rmsprop",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"])
model.fit(train_images, train_labels, epochs=1, batch_size=64)  # trimmed for run time (5 epochs)

test_loss, test_acc = model.evaluate(test_images, test_labels)
print(f"Test accuracy: {test_acc:.3f}")

inputs = keras.Input(shape=(28, 28, 1))
x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inputs)
x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
x = layers.Flatten()(x)
outputs = layers.Dense(10, activation="softmax")(x)
model_no_max_pool = keras.Model(inputs=inputs, outputs=outputs)

model_no_max_pool.summary()
