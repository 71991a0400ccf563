"""Source: github.com/keras-team/keras, guides/functional_api.py (Keras 3 guide "The Functional API",
fchollet), section "Use the same graph of layers to define multiple models" (encoder and autoencoder sharing layers: Conv2D, GlobalMaxPooling2D, Reshape, Conv2DTranspose, UpSampling2D).

Imports changed: `import keras` -> `import convscope as keras`, `from keras import layers/ops` ->
`from convscope import layers/ops`.
Trimmed for run time: nothing (the section only builds and summarizes).
"""
import numpy as np
import convscope as keras
from convscope import layers
from convscope import ops

encoder_input = keras.Input(shape=(28, 28, 1), name="img")
x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
x = layers.Conv2D(32, 3, activation="relu")(x)
x = layers.MaxPooling2D(3)(x)
x = layers.Conv2D(32, 3, activation="relu")(x)
x = layers.Conv2D(16, 3, activation="relu")(x)
encoder_output = layers.GlobalMaxPooling2D()(x)

encoder = keras.Model(encoder_input, encoder_output, name="encoder")
encoder.summary()

x = layers.Reshape((4, 4, 1))(encoder_output)
x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
x = layers.UpSampling2D(3)(x)
x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)

autoencoder = keras.Model(encoder_input, decoder_output, name="autoencoder")
autoencoder.summary()
