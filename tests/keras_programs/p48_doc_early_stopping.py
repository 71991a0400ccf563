"""Source: github.com/keras-team/keras, keras/src/callbacks/early_stopping.py: the usage example in the docstring of
`keras.callbacks.EarlyStopping` (the example shown on keras.io/api/callbacks), written out as a script.

Imports changed: the doctest assumes `import keras`, `import numpy as np`; here `import convscope as keras`.
Trimmed for run time: nothing.
"""
import numpy as np
import convscope as keras

callback = keras.callbacks.EarlyStopping(monitor='loss',
                                              patience=3)
# This callback will stop the training when there is no improvement in
# the loss for three consecutive epochs.
model = keras.models.Sequential([keras.layers.Dense(10)])
model.compile(keras.optimizers.SGD(), loss='mse')
history = model.fit(np.arange(100).reshape(5, 20), np.zeros(5),
                    epochs=10, batch_size=1, callbacks=[callback],
                    verbose=0)
epochs_run = len(history.history['loss'])  # Only 4 epochs are run.
