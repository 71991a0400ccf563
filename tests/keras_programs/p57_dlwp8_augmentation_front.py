"""Source: github.com/fchollet/deep-learning-with-python-notebooks, chapter08_image-classification.ipynb
(Deep Learning with Python, 3rd edition, chapter 8): the "Introduction to convnets" MNIST convnet and its MNIST
preparation cell, with the notebook's "Using data augmentation" block (data_augmentation_layers = RandomFlip
("horizontal"), RandomRotation(0.1), RandomZoom(0.2), and its data_augmentation(images, targets) function) put
in front of that convnet. The notebook maps the function over a tf.data pipeline of cats-vs-dogs images (a
Kaggle download); here the same function is called on the convnet's Input, so the augmentation runs inside
the model on MNIST arrays (training only), the way the keras.io guides put augmentation layers in a model.
A composition of two cells of the same notebook.

Imports changed: `import keras` -> `import convscope as keras`, `from keras import layers` -> `from convscope
import layers`, `from keras.datasets import mnist` -> `from convscope.datasets import mnist`; the notebook's
`os.environ["KERAS_BACKEND"] = "jax"` cell is left out.
Trimmed for run time: the first 1000 training / 500 test images, epochs 5 -> 1.
"""
import convscope as keras
from convscope import layers
from convscope.datasets import mnist

data_augmentation_layers = [
    layers.RandomFlip("horizontal"),
    layers.RandomRotation(0.1),
    layers.RandomZoom(0.2),
]

def data_augmentation(images, targets):
    for layer in data_augmentation_layers:
        images = layer(images)
    return images, targets

inputs = keras.Input(shape=(28, 28, 1))
x, _ = data_augmentation(inputs, None)
x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
x = layers.MaxPooling2D(pool_size=2)(x)
x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
x = layers.MaxPooling2D(pool_size=2)(x)
x = layers.Conv2D(filters=256, kernel_size=3, activation="relu")(x)
x = layers.GlobalAveragePooling2D()(x)
outputs = layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs=inputs, outputs=outputs)

model.summary(line_length=80)

(train_images, train_labels), (test_images, test_labels) = mnist.load_data()
train_images, train_labels = train_images[:1000], train_labels[:1000]  # trimmed for run time
test_images, test_labels = test_images[:500], test_labels[:500]  # trimmed for run time
train_images = train_images.reshape((1000, 28, 28, 1))  # trimmed for run time (60000 in the source)
train_images = train_images.astype("float32") / 255
test_images = test_images.reshape((500, 28, 28, 1))  # trimmed for run time (10000 in the source)
test_images = test_images.astype("float32") / 255
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
model.fit(train_images, train_labels, epochs=1, batch_size=64)  # epochs trimmed (5)

test_loss, test_acc = model.evaluate(test_images, test_labels)
print(f"Test accuracy: {test_acc:.3f}")
