"""Source: github.com/keras-team/keras-io, examples/vision/image_classification_efficientnet_fine_tuning.py
("Image classification via fine-tuning with EfficientNet"), section "Data augmentation": img_augmentation_layers
(RandomRotation(factor=0.15), RandomTranslation(height_factor=0.1, width_factor=0.1), RandomFlip(),
RandomContrast(factor=0.1)) and img_augmentation(images), which the example calls as a standalone function on
one image to plot nine augmented copies and says "can be used both as a part of the model we later build, and as
a standalone function". Its Keras 3 version then augments batches inside a PyDataset and trains EfficientNetB0 on
Stanford Dogs (a download); its earlier TensorFlow 2 version put the augmentation in front of the model
(`x = img_augmentation(inputs)` in build_model), as here. The model after `x = img_augmentation(inputs)` is the
convnet of keras-io examples/vision/mnist_convnet.py, on MNIST arrays (a composition of the two keras-io examples).
Changed for one-channel MNIST floats in the nine-copy plot: the example's `first_image` is `x_train[0]`, and
`plt.imshow(aug_img[0].astype("uint8"))` with the breed as title is `plt.imshow(aug_img[0, :, :, 0], cmap="gray")`
without a title; the figure is saved with plt.savefig (the example shows it inline).

Imports changed: `from tensorflow import keras` / `import keras` -> `import convscope as keras`,
`from tensorflow.keras import layers` / `from keras import layers` -> `from convscope import layers`.
Trimmed for run time: the first 1000 training / 500 test images, epochs 15 -> 1.
"""
import numpy as np
import matplotlib.pyplot as plt
import convscope as keras
from convscope import layers

img_augmentation_layers = [
    layers.RandomRotation(factor=0.15),
    layers.RandomTranslation(height_factor=0.1, width_factor=0.1),
    layers.RandomFlip(),
    layers.RandomContrast(factor=0.1),
]


def img_augmentation(images):
    for layer in img_augmentation_layers:
        images = layer(images)
    return images


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

# The example's standalone use: nine augmented copies of one image
image = x_train[0]
for i in range(9):
    ax = plt.subplot(3, 3, i + 1)
    aug_img = img_augmentation(np.expand_dims(image, axis=0))
    aug_img = np.array(aug_img)
    plt.imshow(aug_img[0, :, :, 0], cmap="gray")
    plt.axis("off")
plt.savefig("augmented_digits.png")

inputs = keras.Input(shape=input_shape)
x = img_augmentation(inputs)
x = layers.Conv2D(32, kernel_size=(3, 3), activation="relu")(x)
x = layers.MaxPooling2D(pool_size=(2, 2))(x)
x = layers.Conv2D(64, kernel_size=(3, 3), activation="relu")(x)
x = layers.MaxPooling2D(pool_size=(2, 2))(x)
x = layers.Flatten()(x)
x = layers.Dropout(0.5)(x)
outputs = layers.Dense(num_classes, activation="softmax")(x)
model = keras.Model(inputs, outputs)

model.summary()

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=128, epochs=1, validation_split=0.1)  # epochs trimmed (15)

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
