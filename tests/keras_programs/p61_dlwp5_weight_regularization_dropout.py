"""Source: github.com/fchollet/deep-learning-with-python-notebooks, chapter05_fundamentals-of-ml.ipynb
(Deep Learning with Python, 3rd edition, chapter 5), section "Regularizing your model": the original IMDB
classifier (Dense 16-16-1, rmsprop, binary crossentropy, fit(validation_split=0.4)), the same with
kernel_regularizer=l2(0.002) ("Adding weight regularization") and the l1 / l1_l2 regularizer constructors,
the same with Dropout(0.5) ("Adding dropout"), and the two validation-loss plots.

Data replaced: the notebook reads IMDB with `imdb.load_data(num_words=10000)`, a download that is not available
offline; synthetic reviews of the same form stand in (lists of word indices below 10000, random 0/1 labels)
and go through the notebook's own vectorize_sequences, so the models see (samples, 10000) multi-hot inputs as
in the book. On random labels accuracy is noise (the test does not compare it).
Imports changed: `import keras` -> `import convscope as keras`, `from keras import layers/regularizers` ->
`from convscope import layers/regularizers`, `from keras.regularizers import l2` -> `from convscope.regularizers
import l2`; `from keras.datasets import imdb` is left out with the download; the notebook's
`os.environ["KERAS_BACKEND"] = "jax"` cell is left out.
Trimmed for run time: 300 reviews instead of 25000 (the 20 epochs are kept: the plots draw range(1, 21)).
"""
import numpy as np
import matplotlib.pyplot as plt
import convscope as keras
from convscope import layers

# IMDB is a download: synthetic reviews of the same form (see the docstring)
rng = np.random.default_rng(0)
train_data = [list(rng.integers(1, 10000, size=rng.integers(20, 200))) for _ in range(300)]
train_labels = rng.integers(0, 2, size=300)

def vectorize_sequences(sequences, dimension=10000):
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        results[i, sequence] = 1.0
    return results

train_data = vectorize_sequences(train_data)

model = keras.Sequential(
    [
        layers.Dense(16, activation="relu"),
        layers.Dense(16, activation="relu"),
        layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile(
    optimizer="rmsprop",
    loss="binary_crossentropy",
    metrics=["accuracy"],
)
history_original = model.fit(
    train_data,
    train_labels,
    epochs=20,
    batch_size=512,
    validation_split=0.4,
)

from convscope.regularizers import l2

model = keras.Sequential(
    [
        layers.Dense(16, kernel_regularizer=l2(0.002), activation="relu"),
        layers.Dense(16, kernel_regularizer=l2(0.002), activation="relu"),
        layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile(
    optimizer="rmsprop",
    loss="binary_crossentropy",
    metrics=["accuracy"],
)
history_l2_reg = model.fit(
    train_data,
    train_labels,
    epochs=20,
    batch_size=512,
    validation_split=0.4,
)

original_val_loss = history_original.history["val_loss"]
l2_val_loss = history_l2_reg.history["val_loss"]
epochs = range(1, 21)
plt.plot(
    epochs,
    original_val_loss,
    "r--",
    label="Validation loss of original model",
)
plt.plot(
    epochs,
    l2_val_loss,
    "b-",
    label="Validation loss of L2-regularized model",
)
plt.title(
    "Original model vs. L2-regularized model (IMDB review classification)"
)
plt.xlabel("Epochs")
plt.ylabel("Loss")
plt.xticks(epochs)
plt.legend()
plt.show()

from convscope import regularizers

regularizers.l1(0.001)
regularizers.l1_l2(l1=0.001, l2=0.001)

model = keras.Sequential(
    [
        layers.Dense(16, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(16, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile(
    optimizer="rmsprop",
    loss="binary_crossentropy",
    metrics=["accuracy"],
)
history_dropout = model.fit(
    train_data,
    train_labels,
    epochs=20,
    batch_size=512,
    validation_split=0.4,
)

original_val_loss = history_original.history["val_loss"]
dropout_val_loss = history_dropout.history["val_loss"]
epochs = range(1, 21)
plt.plot(
    epochs,
    original_val_loss,
    "r--",
    label="Validation loss of original model",
)
plt.plot(
    epochs,
    dropout_val_loss,
    "b-",
    label="Validation loss of dropout-regularized model",
)
plt.title(
    "Original model vs. dropout-regularized model (IMDB review classification)"
)
plt.xlabel("Epochs")
plt.ylabel("Loss")
plt.xticks(epochs)
plt.legend()
plt.show()
