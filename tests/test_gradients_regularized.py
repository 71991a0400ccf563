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


class HalfSquares(regularizers.Regularizer):
    """keras.regularizers.Regularizer's docstring example: a subclass defining __call__ alone, with ops."""

    def __init__(self, l2=0.0):
        self.l2 = l2

    def __call__(self, x):
        return self.l2 * keras.ops.sum(keras.ops.square(x))

    def get_config(self):
        return {"l2": float(self.l2)}


def test_regularizers_written_with_ops_train_with_their_traced_gradients():
    def l1_rows(w):  # a plain function, as Keras accepts: axis 0 keeps its meaning (the weight's rows)
        return 0.01 * keras.ops.sum(keras.ops.abs(keras.ops.sum(w, axis=0)))

    model = keras.Sequential([
        keras.Input((4,)),
        layers.Dense(3, activation="tanh", kernel_regularizer=l1_rows, activity_regularizer=HalfSquares(0.2)),
        layers.Dense(2, activation="softmax", kernel_regularizer=HalfSquares(0.3)),
    ])
    dense = model.layers[0]
    assert float(dense.kernel_regularizer(dense.kernel.value)) == pytest.approx(
        0.01 * np.abs(dense.kernel.value.sum(axis=0)).sum())
    check_model(model, np.random.default_rng(4).standard_normal((5, 4)), np.array([0, 1, 1, 0, 1]))


def test_a_function_regularizer_cannot_go_into_a_model_file(tmp_path):
    model = keras.Sequential([keras.Input((2,)), layers.Dense(2, kernel_regularizer=lambda w: keras.ops.sum(w))])
    with pytest.raises(TypeError, match=r"is a Python function, which a model file cannot hold"):
        model.save(tmp_path / "m.convscope")
