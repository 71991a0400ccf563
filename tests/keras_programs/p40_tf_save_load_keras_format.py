"""Source: github.com/tensorflow/docs, site/en/tutorials/keras/save_and_load.ipynb (TensorFlow tutorial "Save and load models"),
cells "Save the entire model: New high-level .keras format" (model.save to .keras, load_model, summary, evaluate, predict).

Imports changed: `import tensorflow as tf` / `from tensorflow import keras` -> `import convscope as keras`,
and every `tf.keras.` -> `keras.` (the import swap for a TF tutorial).
Trimmed for run time: epochs 5 -> 2 (the tutorial already uses 1000 samples).
"""
import os

import convscope as keras

(train_images, train_labels), (test_images, test_labels) = keras.datasets.mnist.load_data()

train_labels = train_labels[:1000]
test_labels = test_labels[:1000]

train_images = train_images[:1000].reshape(-1, 28 * 28) / 255.0
test_images = test_images[:1000].reshape(-1, 28 * 28) / 255.0

# Define a simple sequential model
def create_model():
  model = keras.Sequential([
    keras.layers.Dense(512, activation='relu', input_shape=(784,)),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(10)
  ])

  model.compile(optimizer='adam',
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.SparseCategoricalAccuracy()])

  return model

# Create and train a new model instance.
model = create_model()
model.fit(train_images, train_labels, epochs=2)  # trimmed for run time (5 epochs)

# Save the entire model as a `.keras` zip archive.
model.save('my_model.keras')

new_model = keras.models.load_model('my_model.keras')

# Show the model architecture
new_model.summary()

# Evaluate the restored model
loss, acc = new_model.evaluate(test_images, test_labels, verbose=2)
print('Restored model, accuracy: {:5.2f}%'.format(100 * acc))

print(new_model.predict(test_images).shape)
