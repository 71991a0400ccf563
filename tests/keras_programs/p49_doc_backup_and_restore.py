"""Source: github.com/keras-team/keras, keras/src/callbacks/backup_and_restore.py: the usage example in the docstring of
`keras.callbacks.BackupAndRestore` (the example shown on keras.io/api/callbacks), written out as a script; its backup_dir "/tmp/backup" is made relative ("backup") so that the run writes only into its working directory.

Imports changed: the doctest assumes `import keras`, `import numpy as np`; here `import convscope as keras`.
Trimmed for run time: nothing.
"""
import numpy as np
import convscope as keras


class InterruptingCallback(keras.callbacks.Callback):
  def on_epoch_begin(self, epoch, logs=None):
    if epoch == 4:
      raise RuntimeError('Interrupting!')


callback = keras.callbacks.BackupAndRestore(backup_dir="backup")
model = keras.models.Sequential([keras.layers.Dense(10)])
model.compile(keras.optimizers.SGD(), loss='mse')
model.build(input_shape=(None, 20))
try:
  model.fit(np.arange(100).reshape(5, 20), np.zeros(5), epochs=10,
            batch_size=1, callbacks=[callback, InterruptingCallback()],
            verbose=0)
except:
  pass
history = model.fit(np.arange(100).reshape(5, 20), np.zeros(5),
                    epochs=10, batch_size=1, callbacks=[callback],
                    verbose=0)
# Only 6 more epochs are run, since first training got interrupted at
# zero-indexed epoch 4, second training will continue from 4 to 9.
epochs_run = len(history.history['loss'])  # the doctest shows 6
