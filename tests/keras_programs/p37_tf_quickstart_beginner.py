"""Source: github.com/tensorflow/docs, site/en/tutorials/quickstart/beginner.ipynb (TensorFlow tutorial "TensorFlow 2 quickstart for beginners"),
its code cells in order; the cell `tf.nn.softmax(predictions).numpy()` (a TF op outside tf.keras, only displayed) and the version print are left out.

Imports changed: `import tensorflow as tf` / `from tensorflow import keras` -> `import convscope as keras`,
and every `tf.keras.` -> `keras.` (the import swap for a TF tutorial).
Trimmed for run time: the first 2000 training / 1000 test images, epochs 5 -> 1.
"""
import convscope as keras

mnist = keras.datasets.mnist

(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train, x_test = x_train / 255.0, x_test / 255.0
x_train, y_train, x_test, y_test = x_train[:2000], y_train[:2000], x_test[:1000], y_test[:1000]  # trimmed for run time

model = keras.models.Sequential([
  keras.layers.Flatten(input_shape=(28, 28)),
  keras.layers.Dense(128, activation='relu'),
  keras.layers.Dropout(0.2),
  keras.layers.Dense(10)
])

predictions = model(x_train[:1]).numpy()
predictions

loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

loss_fn(y_train[:1], predictions).numpy()

model.compile(optimizer='adam',
              loss=loss_fn,
              metrics=['accuracy'])

model.fit(x_train, y_train, epochs=1)  # trimmed for run time (5 epochs)

model.evaluate(x_test,  y_test, verbose=2)

probability_model = keras.Sequential([
  model,
  keras.layers.Softmax()
])

probability_model(x_test[:5])
