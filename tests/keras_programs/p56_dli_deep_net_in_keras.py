"""Source: github.com/the-deep-learners/deep-learning-illustrated, notebooks/deep_net_in_keras.ipynb
(Jon Krohn et al., "Deep Learning Illustrated"): a Dense MNIST classifier with BatchNormalization after each
hidden layer and Dropout(0.2), summary, fit(validation_data).

Imports changed: `import keras` -> `import convscope as keras`, `from keras.<module> import X` ->
`from convscope.<module> import X`; the notebook's Keras 2 path `from keras.layers.normalization import
BatchNormalization` is written `from convscope.layers import BatchNormalization` (its original is then
`from keras.layers import BatchNormalization`: Keras 3 has no keras.layers.normalization module). The
notebook's unused imports (`regularizers`, `SGD`) are kept.
Trimmed for run time: the first 3000 training / 1000 validation images, epochs 20 -> 2.
"""
import numpy as np
np.random.seed(42)

import convscope as keras
from convscope.datasets import mnist
from convscope.models import Sequential
from convscope.layers import Dense
from convscope.layers import Dropout # new!
from convscope.layers import BatchNormalization # new!
from convscope import regularizers # new!
from convscope.optimizers import SGD

(X_train, y_train), (X_valid, y_valid) = mnist.load_data()
X_train, y_train, X_valid, y_valid = X_train[:3000], y_train[:3000], X_valid[:1000], y_valid[:1000]  # trimmed for run time

X_train = X_train.reshape(3000, 784).astype('float32')  # trimmed for run time (60000 in the source)
X_valid = X_valid.reshape(1000, 784).astype('float32')  # trimmed for run time (10000 in the source)

X_train /= 255
X_valid /= 255

n_classes = 10
y_train = keras.utils.to_categorical(y_train, n_classes)
y_valid = keras.utils.to_categorical(y_valid, n_classes)

model = Sequential()

model.add(Dense(64, activation='relu', input_shape=(784,)))
model.add(BatchNormalization())

model.add(Dense(64, activation='relu'))
model.add(BatchNormalization())

model.add(Dense(64, activation='relu'))
model.add(BatchNormalization())
model.add(Dropout(0.2))

model.add(Dense(10, activation='softmax'))

model.summary()

model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])

model.fit(X_train, y_train, batch_size=128, epochs=2, verbose=1, validation_data=(X_valid, y_valid))  # epochs trimmed (20)
