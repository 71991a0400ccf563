"""Source: github.com/fchollet/deep-learning-with-python-notebooks (Deep Learning with Python, 3rd edition):
chapter10_interpreting-what-convnets-learn.ipynb, section "Visualizing intermediate activations"
(an activation model `keras.Model(inputs=model.input, outputs=layer_outputs)` over every Conv2D / MaxPooling2D
layer's output, predict on one image, plt.matshow of one channel of the first layer, and the grid of every
channel of every layer), applied to the MNIST convnet of chapter08_image-classification.ipynb ("Introduction
to convnets": the model, its MNIST preparation, compile, fit). The chapter runs it on the cats-vs-dogs convnet
of chapter 8 (a Kaggle download) loaded from convnet_from_scratch_with_augmentation.keras and on a cat photo
fetched with keras.utils.get_file; here it runs on the chapter's own MNIST convnet and the first MNIST test
image (a composition of two notebooks of the same book; the load_model / get_file / files.upload cells and the
cat-photo display are left out). Each figure is also saved with plt.savefig (the notebook shows them inline).

Imports changed: `import keras` -> `import convscope as keras`, `from keras import layers` ->
`from convscope import layers`, `from keras.datasets import mnist` -> `from convscope.datasets import mnist`;
the `os.environ["KERAS_BACKEND"] = "jax"` cells are left out.
Trimmed for run time: the first 500 training images, epochs 5 -> 1.
"""
import convscope as keras
from convscope import layers
from convscope.datasets import mnist
import numpy as np
import matplotlib.pyplot as plt

inputs = keras.Input(shape=(28, 28, 1))
x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(inputs)
x = layers.MaxPooling2D(pool_size=2)(x)
x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
x = layers.MaxPooling2D(pool_size=2)(x)
x = layers.Conv2D(filters=256, kernel_size=3, activation="relu")(x)
x = layers.GlobalAveragePooling2D()(x)
outputs = layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs=inputs, outputs=outputs)

(train_images, train_labels), (test_images, test_labels) = mnist.load_data()
train_images, train_labels = train_images[:500], train_labels[:500]  # trimmed for run time
train_images = train_images.reshape((500, 28, 28, 1))  # trimmed for run time (60000 in the source)
train_images = train_images.astype("float32") / 255
test_images = test_images.reshape((10000, 28, 28, 1))
test_images = test_images.astype("float32") / 255
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
model.fit(train_images, train_labels, epochs=1, batch_size=64)  # epochs trimmed (5)

img_tensor = test_images[:1]

layer_outputs = []
layer_names = []
for layer in model.layers:
    if isinstance(layer, (layers.Conv2D, layers.MaxPooling2D)):
        layer_outputs.append(layer.output)
        layer_names.append(layer.name)
activation_model = keras.Model(inputs=model.input, outputs=layer_outputs)

activations = activation_model.predict(img_tensor)

first_layer_activation = activations[0]
print(first_layer_activation.shape)

plt.matshow(first_layer_activation[0, :, :, 5], cmap="viridis")
plt.savefig("first_layer_channel_5.png")

images_per_row = 16
for layer_name, layer_activation in zip(layer_names, activations):
    n_features = layer_activation.shape[-1]
    size = layer_activation.shape[1]
    n_cols = n_features // images_per_row
    display_grid = np.zeros(
        ((size + 1) * n_cols - 1, images_per_row * (size + 1) - 1)
    )
    for col in range(n_cols):
        for row in range(images_per_row):
            channel_index = col * images_per_row + row
            channel_image = layer_activation[0, :, :, channel_index].copy()
            if channel_image.sum() != 0:
                channel_image -= channel_image.mean()
                channel_image /= channel_image.std()
                channel_image *= 64
                channel_image += 128
            channel_image = np.clip(channel_image, 0, 255).astype("uint8")
            display_grid[
                col * (size + 1) : (col + 1) * size + col,
                row * (size + 1) : (row + 1) * size + row,
            ] = channel_image
    scale = 1.0 / size
    plt.figure(
        figsize=(scale * display_grid.shape[1], scale * display_grid.shape[0])
    )
    plt.title(layer_name)
    plt.grid(False)
    plt.axis("off")
    plt.imshow(display_grid, aspect="auto", cmap="viridis")
    plt.savefig(f"activations_{layer_name}.png")
