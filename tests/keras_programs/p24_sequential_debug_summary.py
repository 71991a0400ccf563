"""Source: github.com/keras-team/keras, guides/sequential_model.py (Keras 3 guide "The Sequential model",
fchollet), section "A common debugging workflow: add() + summary()" (250x250x3 convnet built layer by layer, summary after each stage).

Imports changed: `import keras` -> `import convscope as keras`, `from keras import layers/ops` ->
`from convscope import layers/ops`.
Trimmed for run time: nothing.
"""
import convscope as keras
from convscope import layers
from convscope import ops

model = keras.Sequential()
model.add(keras.Input(shape=(250, 250, 3)))  # 250x250 RGB images
model.add(layers.Conv2D(32, 5, strides=2, activation="relu"))
model.add(layers.Conv2D(32, 3, activation="relu"))
model.add(layers.MaxPooling2D(3))

# Can you guess what the current output shape is at this point? Probably not.
# Let's just print it:
model.summary()

# The answer was: (40, 40, 32), so we can keep downsampling...

model.add(layers.Conv2D(32, 3, activation="relu"))
model.add(layers.Conv2D(32, 3, activation="relu"))
model.add(layers.MaxPooling2D(3))
model.add(layers.Conv2D(32, 3, activation="relu"))
model.add(layers.Conv2D(32, 3, activation="relu"))
model.add(layers.MaxPooling2D(2))

# And now?
model.summary()

# Now that we have 4x4 feature maps, time to apply global max pooling.
model.add(layers.GlobalMaxPooling2D())

# Finally, we add a classification layer.
model.add(layers.Dense(10))
