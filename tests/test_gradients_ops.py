"""convscope.ops, custom layers, subclass arithmetic and loss functions: gradients by float64 central differences.

Each differentiable function of ``arraymath.functions`` is called through ``convscope.ops`` on
KerasTensors (so the test covers the recorded ``Operation`` nodes and the graph's backward),
with broadcasting, reductions over several axes and odd shapes. The model-level tests read
the gradient off one real training step: plain SGD with learning rate 1 on one full batch
moves each weight by exactly -dL/dw, which is compared with central differences of
``evaluate``'s loss, so what is checked is what ``fit`` does.
"""

import numpy as np
import pytest

import convscope as keras
from convscope import layers, ops
from convscope.models import graph as graph_module
from test_gradients import assert_grad_close, numeric_grad

pytestmark = pytest.mark.usefixtures("float64", "fresh_state")

RNG = np.random.default_rng(7)


def _pos(shape):
    return RNG.uniform(0.5, 2.0, shape)


def _any(shape):
    return RNG.standard_normal(shape)


def _apart(shape):
    """Distinct values at least 0.05 apart (no ties, no kinks within the finite-difference step)."""
    values = RNG.permutation(np.prod(shape)).reshape(shape) * 0.05 - 0.5
    return values + 0.01


MASK = RNG.random((3, 4)) > 0.5
VECTOR = RNG.standard_normal(4)
CASES = {
    "add-broadcast": (lambda a, b: ops.add(a, b), [_any((2, 3, 1)), _any((2, 1, 4))]),
    "subtract": (lambda a, b: a - b, [_any((2, 3)), _any((2, 3))]),
    "multiply-constant": (lambda a: 2.5 * a * a, [_any((3, 4))]),
    "divide": (lambda a, b: ops.divide(a, b), [_any((2, 3, 4)), _pos((2, 1, 4))]),
    "power": (lambda a, b: ops.power(a, b), [_pos((2, 3)), _any((2, 3))]),
    "maximum": (lambda a, b: ops.maximum(a, b), [_apart((2, 6)), _apart((2, 6))[:, ::-1].copy()]),
    "minimum": (lambda a, b: ops.minimum(a, b), [_apart((2, 6)), _apart((2, 6))[:, ::-1].copy()]),
    "negative-abs": (lambda a: ops.abs(-a), [_apart((2, 5))]),
    "exp-log": (lambda a: ops.log(ops.exp(a) + 1.0), [_any((3, 3))]),
    "square-sqrt": (lambda a: ops.sqrt(ops.square(a) + 0.5), [_any((2, 4))]),
    "relu": (lambda a: ops.relu(a), [_apart((3, 4))]),
    "sigmoid-tanh": (lambda a: ops.tanh(ops.sigmoid(a) * 3.0), [_any((2, 5))]),
    "softmax-axis1": (lambda a: ops.softmax(a, axis=1), [_any((2, 4, 3))]),
    "log_softmax": (lambda a: ops.log_softmax(a), [_any((3, 5))]),
    "sum-all": (lambda a: ops.sum(a), [_any((2, 3, 4))]),
    "sum-axes-keepdims": (lambda a: ops.sum(a, axis=(0, 2), keepdims=True), [_any((2, 3, 4))]),
    "mean-axis": (lambda a: ops.mean(a, axis=-1), [_any((2, 3, 5))]),
    "max-axis": (lambda a: ops.max(a, axis=1), [_apart((2, 5, 3))]),
    "min-all": (lambda a: ops.min(a), [_apart((2, 5))]),
    "matmul-batched": (lambda a, b: ops.matmul(a, b), [_any((2, 3, 4)), _any((2, 4, 5))]),
    "matmul-broadcast": (lambda a, b: a @ b, [_any((2, 1, 3, 4)), _any((2, 5, 4, 2))]),
    "matmul-vector": (lambda a: ops.matmul(a, VECTOR), [_any((3, 2, 4))]),
    "reshape-transpose": (lambda a: ops.transpose(ops.reshape(a, (-1, 6, 2)), (0, 2, 1)), [_any((2, 3, 4))]),
    "expand-squeeze": (lambda a: ops.squeeze(ops.expand_dims(a, 1) * 2.0, axis=1), [_any((2, 3))]),
    "concatenate": (lambda a, b: ops.concatenate([a, b, a], axis=1), [_any((2, 3)), _any((2, 2))]),
    "stack": (lambda a, b: ops.stack([a, b], axis=1), [_any((2, 3)), _any((2, 3))]),
    "getitem": (lambda a: a[:, 1:3, ::2] * a[:, :2, 1:2], [_any((2, 4, 5))]),
    "getitem-ellipsis-none": (lambda a: a[..., 0][None], [_any((2, 3, 4))]),
    "clip": (lambda a: ops.clip(a, -0.3, 0.4), [_apart((2, 8)) + 0.003]),
    "where": (lambda a, b: ops.where(MASK, a, b), [_any((2, 3, 4)), _any((2, 3, 1))]),
    "where-from-comparison": (lambda a, c: ops.where(c > 0, a * 2.0, -a), [_any((2, 3)), _apart((2, 3))]),
    "cast-float": (lambda a: ops.cast(a, "float64") * 3.0, [_any((2, 3))]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_function_gradient(case):
    fn, arrays = CASES[case]
    inputs = [keras.Input(shape=a.shape[1:]) for a in arrays]
    out = fn(*inputs)
    plan = graph_module.GraphFunction(inputs, [out]).plan(fuse=False)
    (y,), _ = graph_module.forward(plan, arrays, training=False, keep_state=False)
    weights = RNG.standard_normal(np.shape(y))

    def loss():
        (value,), _ = graph_module.forward(plan, arrays, training=False, keep_state=False)
        return float(np.sum(value * weights))

    expected = fn(*arrays)  # the same function eagerly, on arrays
    np.testing.assert_allclose(y, expected, rtol=1e-12, err_msg=f"{case}: graph and eager values differ")
    _, tape = graph_module.forward(plan, arrays, training=False, keep_state=True)
    grads = graph_module.backward(plan, tape, [weights], need_input_grads=True)
    for k, (a, g) in enumerate(zip(arrays, grads)):
        numeric = numeric_grad(loss, a)
        if case == "where-from-comparison" and k == 1:
            assert g is None or not np.any(g), "a comparison passes no gradient to its operands"
            continue
        assert_grad_close(g, numeric, f"{case}: input {k}")


def test_ties_share_the_gradient_as_tensorflow():
    x = np.array([[1.0, 3.0, 3.0]])
    inp = keras.Input(shape=(3,))
    plan = graph_module.GraphFunction([inp], [ops.max(inp, axis=-1)]).plan(fuse=False)
    _, tape = graph_module.forward(plan, [x], training=False, keep_state=True)
    (g,) = graph_module.backward(plan, tape, [np.ones(1)], need_input_grads=True)
    np.testing.assert_array_equal(g, [[0.0, 0.5, 0.5]])
    a, b = keras.Input(shape=(2,)), keras.Input(shape=(2,))
    plan = graph_module.GraphFunction([a, b], [ops.maximum(a, b)]).plan(fuse=False)
    _, tape = graph_module.forward(plan, [np.array([[1.0, 2.0]]), np.array([[1.0, 5.0]])], False, True)
    ga, gb = graph_module.backward(plan, tape, [np.ones((1, 2))], need_input_grads=True)
    np.testing.assert_array_equal(ga, [[0.5, 0.0]])
    np.testing.assert_array_equal(gb, [[0.5, 1.0]])


def _count(x):
    return len(x[0]) if isinstance(x, list) else len(x)


def fit_gradients(model, x, y, loss):
    """dL/dw of every trainable weight, read off one SGD step (learning rate 1, one full batch)."""
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss=loss)
    before = [p.value.copy() for p in model.trainable_weights]
    model.fit(x, y, batch_size=_count(x), epochs=1, shuffle=False, verbose=0)
    grads = [b - p.value for b, p in zip(before, model.trainable_weights)]
    for p, b in zip(model.trainable_weights, before):
        p.value[...] = b
    return grads


def check_model(model, x, y, loss="sparse_categorical_crossentropy"):
    grads = fit_gradients(model, x, y, loss)
    assert len(grads) == len(model.trainable_weights) > 0

    def value():
        return model.evaluate(x, y, batch_size=_count(x), verbose=0)

    for p, g in zip(model.trainable_weights, grads):
        assert_grad_close(g, numeric_grad(value, p.value), p.name)


class Linear(keras.layers.Layer):
    """keras.io's "Making new layers" Linear layer, with a weight-only op (exp of a log-scale)."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)
        self.log_scale = self.add_weight(shape=(), initializer="zeros", name="log_scale")

    def call(self, inputs):
        return ops.tanh(ops.matmul(inputs, self.w) * ops.exp(self.log_scale) + self.b)


class Block(keras.layers.Layer):
    """A layer made of layers: a Dense sublayer and a residual sum, as in Keras's guides."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = layers.Dense(4, activation="sigmoid")

    def call(self, x):
        return x + self.inner(x) * 0.5


def test_custom_layer_gradients():
    inp = keras.Input(shape=(3,))
    out = layers.Dense(3, activation="softmax")(Block()(Linear(4)(inp)))
    model = keras.Model(inp, out)
    assert [p.name.rsplit("/", 1)[-1] for p in model.get_layer("linear").weights] == [
        "variable_0", "variable_1", "log_scale"]
    assert len(model.get_layer("block").weights) == 2  # its Dense's kernel and bias
    assert model.count_params() == 3 * 4 + 4 + 1 + (4 * 4 + 4) + (4 * 3 + 3)
    check_model(model, RNG.standard_normal((5, 3)), np.array([0, 1, 2, 1, 0]))


def test_lambda_layer_gradients():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(4), layers.Lambda(lambda x: ops.tanh(x) * x),
                              layers.Dense(2, activation="softmax")])
    check_model(model, RNG.standard_normal((4, 3)), np.array([0, 1, 1, 0]))


def test_a_custom_layer_class_refuses_a_file_with_the_reason(tmp_path):
    model = keras.Sequential([keras.Input((3,)), Linear(2)])
    with pytest.raises(TypeError, match=r'"linear" is of your own class Linear, which a model file cannot name'):
        model.save(tmp_path / "m.convscope")


def test_subclassed_model_arithmetic_gradients():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = layers.Dense(5, activation="tanh")
            self.b = layers.Dense(3)

        def call(self, x):
            h = self.a(x)
            return ops.softmax(self.b(h) * 0.5 - ops.mean(h, axis=-1, keepdims=True) + h[:, :3] ** 2)

    model = Net()
    x = RNG.standard_normal((4, 3))
    model(x)
    check_model(model, x, np.array([0, 2, 1, 1]))


def weighted_squared_error(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred) * ops.convert_to_tensor([1.0, 2.0, 3.0]), axis=-1)


class FocalLikeLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        p = ops.sum(y_true * y_pred, axis=-1)
        return -ops.square(1.0 - p) * ops.log(p)


@pytest.mark.parametrize("loss", [weighted_squared_error, FocalLikeLoss()], ids=["function", "loss-subclass"])
def test_custom_loss_gradients(loss):
    inp = keras.Input(shape=(4,))
    model = keras.Model(inp, layers.Dense(3, activation="softmax")(layers.Dense(5, activation="tanh")(inp)))
    y = np.eye(3)[[0, 2, 1, 1, 0]]
    check_model(model, RNG.standard_normal((5, 4)), y, loss=loss)


def test_custom_loss_value_follows_keras_reduction():
    inp = keras.Input(shape=(2,))
    model = keras.Model(inp, layers.Dense(2)(inp))
    model.compile(optimizer="sgd", loss=lambda t, p: ops.sum(ops.square(t - p), axis=-1))
    x, y = RNG.standard_normal((6, 2)), RNG.standard_normal((6, 2))
    expected = np.mean(np.sum((model.predict(x, verbose=0) - y) ** 2, axis=-1))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-12)


def test_frozen_custom_layer_keeps_its_weights():
    inp = keras.Input(shape=(3,))
    frozen = Linear(4)
    model = keras.Model(inp, layers.Dense(2, activation="softmax")(frozen(inp)))
    frozen.trainable = False
    before = frozen.get_weights()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(RNG.standard_normal((8, 3)), np.arange(8) % 2, epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, frozen.get_weights()))
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 3


def test_eager_ops_compute_numpy_values():
    x = np.array([[1.0, -2.0], [3.0, 0.5]])
    np.testing.assert_array_equal(ops.relu(x), np.maximum(x, 0))
    np.testing.assert_array_equal(ops.sum(x, axis=0), x.sum(axis=0))
    np.testing.assert_array_equal(ops.one_hot(np.array([0, 2]), 3), np.eye(3)[[0, 2]])
    assert ops.argmax(x, axis=-1).tolist() == [0, 0]


def test_outside_the_subset_names_the_function():
    with pytest.raises(AttributeError, match=r"convscope.ops has no 'einsum'.*differentiates a subset.*matmul"):
        ops.einsum  # noqa: B018


def test_symbolic_tensor_refuses_value_questions():
    x = keras.Input(shape=(3,))
    with pytest.raises(TypeError, match=r"bool\(\).*symbolic tensor holds no values yet.*convscope.ops"):
        bool(x > 0)
    with pytest.raises(TypeError, match=r"np.mean.*no values"):
        np.mean(x)


def test_shape_errors_name_the_function():
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(4,))
    with pytest.raises(ValueError, match=r"convscope.ops.add cannot be applied to tensors of shapes \(None, 3\), "
                                         r"\(None, 4\)"):
        ops.add(a, b)


def test_a_model_with_ops_refuses_a_file_with_the_reason(tmp_path):
    inp = keras.Input(shape=(3,))
    model = keras.Model(inp, layers.Dense(2)(inp) * 2.0)
    with pytest.raises(TypeError, match=r"convscope.ops.multiply.*cannot hold"):
        model.save(tmp_path / "m.convscope")


def test_random_dropout_backpropagates_its_own_mask():
    x = np.abs(RNG.standard_normal((3, 50))) + 0.1  # no zeros: y / x recovers the mask
    inp = keras.Input(shape=(50,))
    plan = graph_module.GraphFunction([inp], [keras.random.dropout(inp, 0.4, seed=keras.random.SeedGenerator(3))]
                                      ).plan(fuse=False)
    (y,), tape = graph_module.forward(plan, [x], training=False, keep_state=True)
    (y2,), _ = graph_module.forward(plan, [x], training=False, keep_state=False)
    assert not np.array_equal(y, y2), "a SeedGenerator stream draws a new mask at every run"
    kept = y != 0
    assert 0.4 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], x[kept] / 0.6)
    dy = RNG.standard_normal(y.shape)
    (g,) = graph_module.backward(plan, tape, [dy], need_input_grads=True)
    np.testing.assert_allclose(g, dy * (y / x))


def test_random_normal_takes_the_batch_size_at_run_time():
    class Sampling(layers.Layer):
        def call(self, inputs):
            mean, log_var = inputs
            eps = keras.random.normal(shape=(ops.shape(mean)[0], ops.shape(mean)[1]), seed=keras.random.SeedGenerator(1))
            return mean + ops.exp(0.5 * log_var) * eps

    a, b = keras.Input((2,)), keras.Input((2,))
    model = keras.Model([a, b], Sampling()([a, b]))
    assert repr(ops.shape(a)) == "(None, 2)"
    for n in (3, 5):
        out = model.predict([np.zeros((n, 2)), np.full((n, 2), -50.0)], verbose=0)
        assert out.shape == (n, 2) and np.abs(out).max() < 1e-9  # variance e^-50: the noise is scaled away
    check_model(keras.Model([a, b], layers.Dense(2, activation="softmax")(Sampling()([a, b]) * 0.0 + a)),
                [RNG.standard_normal((4, 2)), RNG.standard_normal((4, 2))], np.array([0, 1, 1, 0]))


def test_a_loss_called_inside_call_trains_with_its_gradient():
    """Keras's LogisticEndpoint: a layer computing a loss object on (targets, logits) and adding it."""
    class Endpoint(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

        def call(self, targets, logits):
            self.add_loss(self.loss_fn(targets, logits))
            return ops.softmax(logits)

    inputs, targets = keras.Input((3,)), keras.Input((2,))
    model = keras.Model([inputs, targets], Endpoint()(targets, layers.Dense(2, activation="tanh")(inputs)))
    x = [RNG.standard_normal((5, 3)), (RNG.random((5, 2)) > 0.5).astype(float)]
    check_model(model, x, None, loss=None)


def test_a_loss_subclass_keeps_its_reduction_and_can_be_called_directly():
    class SumSquares(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return ops.sum(ops.square(y_true - y_pred), axis=-1)

    y, p = np.zeros((4, 2)), np.ones((4, 2))
    assert float(SumSquares(reduction="sum")(y, p)) == 8.0 and float(SumSquares()(y, p)) == 2.0
    inp = keras.Input((2,))
    model = keras.Model(inp, layers.Dense(2, kernel_initializer="zeros", bias_initializer="ones")(inp))
    model.compile(optimizer="sgd", loss=SumSquares(reduction="sum"))
    assert model.evaluate(np.ones((4, 2)), y, verbose=0) == 8.0  # Keras 3 gives 8.0 too
    check_model(model, RNG.standard_normal((4, 2)), RNG.standard_normal((4, 2)), loss=SumSquares(reduction="sum"))
