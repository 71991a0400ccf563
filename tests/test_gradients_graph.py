"""Whole-graph gradient checks in float64: residual, shared layer, concatenation, nested model, two inputs.

The loss is the model's compiled loss on fixed targets; ``trace`` gives dL/d(every
parameter) and dL/d(input), compared with central differences of ``evaluate``'s loss
(the same relative error and element-wise tolerance as tests/test_gradients.py).
Branch points are where a missing ``+=`` would show: a tensor read by two layers, a
layer called twice, a model inside a model called twice.
"""

import numpy as np
import pytest

import convscope
from convscope import layers
from test_gradients import assert_grad_close, numeric_grad

pytestmark = pytest.mark.usefixtures("kernel_path", "float64", "fresh_state")


def residual():
    x = convscope.Input(shape=(6, 7, 2))
    h = layers.Conv2D(3, 3, padding="same", activation="tanh")(x)
    y = layers.Conv2D(4, 3, strides=2, padding="same", activation="sigmoid")(h)
    y = layers.Conv2D(4, 3, padding="same")(y)
    shortcut = layers.Conv2D(4, 1, strides=2)(h)                       # projection shortcut
    out = layers.Activation("tanh")(layers.Add()([y, shortcut]))
    out = layers.Dense(3, activation="softmax")(layers.Flatten()(out))
    return convscope.Model(x, out), (6, 7, 2)


def shared_and_concat():
    x = convscope.Input(shape=(5,))
    shared = layers.Dense(4, activation="tanh")
    a = shared(x)
    b = shared(layers.Dense(5, activation="sigmoid")(x))              # x is read twice, shared is called twice
    c = layers.Concatenate()([a, b, layers.Multiply()([a, b])])
    return convscope.Model(x, layers.Dense(3, activation="softmax")(c)), (5,)


def nested():
    inner_in = convscope.Input(shape=(5, 5, 2))
    inner_h = layers.Conv2D(2, 3, padding="same", activation="tanh")(inner_in)
    inner = convscope.Model(inner_in, layers.Add()([inner_h, inner_in]), name="block")
    x = convscope.Input(shape=(5, 5, 2))
    y = inner(inner(x))                                                # the same nested model, twice
    y = layers.Concatenate(axis=1)([y, layers.BatchNormalization()(x)])
    y = layers.GlobalAveragePooling2D()(layers.Conv2D(3, 2, activation="elu")(y))
    return convscope.Model(x, layers.Dense(3, activation="softmax")(y)), (5, 5, 2)


def transposed_and_depthwise():
    x = convscope.Input(shape=(5, 6, 2))
    d = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="tanh")(x)
    u = layers.Conv2DTranspose(2, 3, strides=2, padding="same")(layers.SeparableConv2D(3, 3, strides=2, padding="same")(d))
    u = layers.Cropping2D(((0, 1), (0, 0)))(layers.UpSampling2D(1)(u))
    y = layers.Subtract()([layers.ZeroPadding2D(((0, 1), (0, 0)))(layers.Cropping2D(((0, 1), (0, 0)))(x)), u])
    y = layers.LayerNormalization()(layers.Reshape((-1, 2))(y))
    return convscope.Model(x, layers.Dense(3, activation="softmax")(layers.Flatten()(y))), (5, 6, 2)


@pytest.mark.parametrize("build", [residual, shared_and_concat, nested, transposed_and_depthwise],
                         ids=["residual", "shared-concat", "nested-twice", "transposed-depthwise"])
def test_whole_graph_gradients(build):
    model, shape = build()
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape) * 0.5 + (1.5 if "variance" in p.name else 0.0)
                       for w, p in zip(model.get_weights(), model.parameters)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = rng.standard_normal((3, *shape))
    y = np.array([0, 2, 1])
    records = model.trace(x, y)
    first = next(r for r in records if r.inbound == [model.inputs[0].node.layer.name])

    def loss():
        return model.evaluate(x, y, verbose=0, batch_size=3)

    grads = {}
    for record in records:
        for name, g in record.param_grads.items():
            grads.setdefault(record.name if "/" not in name else name.split("/")[0], {})[name.rsplit("/", 1)[-1]] = g
    checked = 0
    for p in model.trainable_parameters:
        layer_name, pname = p.name.rsplit("/", 1)
        assert_grad_close(grads[layer_name][pname] if layer_name in grads else _nested(records, p.name),
                          numeric_grad(loss, p.value), p.name)
        checked += 1
    assert checked == len(model.trainable_parameters) > 0
    input_grad = sum(r.grad_input if not isinstance(r.grad_input, list) else
                     sum(g for g, src in zip(r.grad_input, r.inbound) if src == first.inbound[0])
                     for r in records if model.inputs[0].node.layer.name in r.inbound)
    assert_grad_close(input_grad, numeric_grad(loss, x), "dL/dx")


def _nested(records, full_name):
    for record in records:
        if full_name in record.param_grads:
            return record.param_grads[full_name]
    raise KeyError(full_name)
