"""Weight and activity regularization in training: the penalty is in the reported loss and in the gradient.

The gradient is read off one SGD step (learning rate 1, one full batch: see
tests/test_gradients_ops.py) and compared with float64 central differences of
``evaluate``'s loss, which (as Keras's) includes every penalty: so the check covers the
value, the gradient and that both paths agree. Activity penalties are r(y) / batch size
for each call's output, as Keras 3 scales them; the fused softmax + cross-entropy must
step aside for an output layer that has one.
"""

import numpy as np
import pytest

import convscope as keras
from convscope import layers, regularizers
from test_gradients_ops import check_model

pytestmark = pytest.mark.usefixtures("float64", "fresh_state")


def test_weight_and_activity_penalties_train_with_their_gradients():
    model = keras.Sequential([
        keras.Input((5, 5, 1)),
        layers.Conv2D(2, 3, activation="tanh", kernel_regularizer=regularizers.L1L2(l1=0.01, l2=0.02),
                      bias_regularizer="l2"),
        layers.Flatten(),
        layers.Dense(4, activation="sigmoid", activity_regularizer=regularizers.L2(0.3)),
        layers.Dense(3, activation="softmax", kernel_regularizer=regularizers.L1(0.05),
                     activity_regularizer=regularizers.L1(0.2)),
    ])
    rng = np.random.default_rng(3)
    check_model(model, rng.standard_normal((4, 5, 5, 1)), np.array([0, 2, 1, 2]))


def test_reported_loss_adds_each_penalty_once():
    dense = layers.Dense(2, kernel_regularizer=regularizers.L2(0.5), activity_regularizer=regularizers.L1(0.1))
    model = keras.Sequential([keras.Input((3,)), dense])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    out = model.predict(x, verbose=0)
    expected = np.mean(out ** 2) + 0.5 * np.sum(dense.kernel.value ** 2) + 0.1 * np.abs(out).sum() / 4
    assert model.evaluate(x, y, batch_size=4, verbose=0) == pytest.approx(expected, rel=1e-12)
