"""The ReLU + max-pooling fusion computes exactly what the layers compute one by one."""

import numpy as np
import pytest

import convscope
from convscope import backend, fusion, layers
from convscope.activations import ReLU as ReLUFunction
from convscope.models import graph

pytestmark = pytest.mark.usefixtures("kernel_path")


def model_with(activation="relu", pool=None):
    layers.clear_session()
    convscope.utils.set_random_seed(3)
    model = convscope.Sequential([
        convscope.Input(shape=(9, 9, 2)),
        layers.Conv2D(4, 3, padding="same", activation=activation),
        pool or layers.MaxPooling2D(2, padding="same"),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def layer_by_layer(model, x, y):
    """Forward and backward through every layer separately, by hand: the unfused reference."""
    h = x
    for layer in model.layers:
        h = layer.forward(h, training=True)
    last = model.layers[-1]
    _, grad = model.loss.with_logits().value_and_gradient(y, last.preactivation)
    model.zero_grad()
    grad = last.backward_from_preactivation(grad)
    for layer in reversed(model.layers[:-1]):
        grad = layer.backward(grad)
    return h, grad, [p.grad.copy() for p in model.parameters]


def steps_of(model):
    return model._graph_for(True).plan(fuse=True).steps


def test_relu_then_max_pool_is_fused():
    steps = steps_of(model_with())
    assert isinstance(steps[0].op, fusion.ReluThenMaxPool)
    assert len(steps) == 3
    assert not any(isinstance(s.op, fusion.ReluThenMaxPool) for s in model_with()._graph_for(True).plan(fuse=False).steps)


@pytest.mark.parametrize("activation,pool", [
    ("tanh", None),
    ("relu", layers.AveragePooling2D(2)),
])
def test_other_pairs_are_not_fused(activation, pool):
    assert not any(isinstance(s.op, fusion.ReluThenMaxPool) for s in steps_of(model_with(activation, pool)))


def test_relu_layer_with_a_cap_is_not_fused():
    # max_value makes ties that the pre-activation does not have, so pooling first would differ.
    assert not fusion.fusable(layers.ReLU(max_value=1.0), layers.MaxPooling2D(2))
    assert fusion.fusable(layers.Activation("relu"), layers.MaxPooling2D(2))
    assert type(layers.Activation("relu").activation) is ReLUFunction


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_forward_and_gradients_are_bit_identical(dtype):
    backend.set_floatx(dtype)
    try:
        model = model_with()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((5, 9, 9, 2)).astype(dtype)
        x[0] = -1.0  # a whole image of ties: every window all-negative -> ReLU zeros
        y = np.array([0, 1, 2, 1, 0])
        out_ref, dx_ref, grads_ref = layer_by_layer(model, x, y)
        plan = model._graph_for(True).plan(fuse=True)
        (out,), tape = graph.forward(plan, [x], training=True, keep_state=True)
        _, grad = model.loss.with_logits().value_and_gradient(y, model.layers[-1].preactivation)
        model.zero_grad()
        (dx,) = graph.backward(plan, tape, [grad], from_preactivation={0}, need_input_grads=True)
        assert np.array_equal(out, out_ref)
        assert np.array_equal(dx, dx_ref)
        for p, g in zip(model.parameters, grads_ref):
            assert np.array_equal(p.grad, g), p.name
    finally:
        backend.set_floatx("float32")


def test_trace_still_shows_the_unfused_maps():
    model = model_with()
    x = np.random.default_rng(1).standard_normal((2, 9, 9, 2)).astype("float32")
    conv, pool = model.trace(x)[:2]
    assert np.array_equal(conv.output, np.maximum(conv.preactivation, 0))
    assert pool.input.shape == (2, 9, 9, 4) and pool.output.shape == (2, 5, 5, 4)


def test_keep_freed_memory_is_idempotent():
    first = backend.keep_freed_memory()
    assert isinstance(first, bool)
    assert backend.keep_freed_memory() is first
