"""``trainable = False`` on a layer, on a nested model and on a whole model really freezes, as in Keras.

Each case trains two epochs and checks that every frozen weight (batch-norm statistics
included: a frozen BatchNormalization runs in inference mode) is bit-identical afterwards
while the rest moved, and that ``summary()`` prints the same trainable / non-trainable
totals as Keras 3 for the same model (tests/fixtures/trainable/keras_summaries.json, from
make_fixture.py beside it).
"""

import json
import pathlib

import numpy as np
import pytest

import convscope as keras
from convscope import layers

KERAS = json.loads((pathlib.Path(__file__).parent / "fixtures" / "trainable" / "keras_summaries.json").read_text())

pytestmark = pytest.mark.usefixtures("fresh_state")


def frozen_layer():
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
                              layers.BatchNormalization(), layers.Flatten(), layers.Dense(3, activation="softmax")])
    model.layers[0].trainable = False
    return model, model.layers[0]


def frozen_nested():
    base = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
                             layers.BatchNormalization(), layers.GlobalAveragePooling2D()], name="base")
    base.trainable = False
    x = keras.Input((8, 8, 1))
    return keras.Model(x, layers.Dense(3, activation="softmax")(base(x, training=False))), base


def frozen_model():
    model, _ = frozen_layer()
    model.trainable = False
    return model, model


def _totals(model):
    lines = []
    model.summary(print_fn=lines.append)
    return [line.strip() for line in "\n".join(lines).splitlines() if "params:" in line]


@pytest.mark.parametrize("case", [frozen_layer, frozen_nested, frozen_model], ids=lambda f: f.__name__)
def test_frozen_weights_stay_bit_identical_through_fit(case):
    model, frozen = case()
    assert _totals(model) == KERAS[case.__name__]
    frozen_ids = {id(p) for p in frozen.weights}
    before = {id(p): p.value.copy() for p in model.weights}
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    model.fit(rng.random((32, 8, 8, 1)), rng.integers(0, 3, 32), epochs=2, batch_size=8, verbose=0)
    for p in model.weights:
        if id(p) in frozen_ids:
            np.testing.assert_array_equal(p.value, before[id(p)], err_msg=f"frozen {p.name} changed")
        elif p.trainable:
            assert not np.array_equal(p.value, before[id(p)]), f"trainable {p.name} did not train"
    assert {id(p) for p in model.non_trainable_weights} >= frozen_ids
    assert not {id(p) for p in model.trainable_weights} & frozen_ids


def test_freezing_is_recursive_and_reversible():
    model, base = frozen_nested()
    assert all(not layer.trainable for layer in base.layers)
    base.trainable = True
    assert all(layer.trainable for layer in base.layers)
    assert len(model.trainable_weights) == 2 + 2 + 2  # conv kernel / bias, batch-norm gamma / beta, dense


def test_built_layers_taken_into_a_new_model_keep_their_weights():
    """keras.io's transfer pattern: the trained layers of one model called on a new Input are shared, not rebuilt."""
    source = keras.Sequential([keras.Input((6,)), layers.Dense(5, activation="relu"), layers.Dense(2)])
    trained = source.get_weights()
    x = keras.Input((6,))
    h = x
    for layer in source.layers[:-1]:
        h = layer(h)
    model = keras.Model(x, layers.Dense(3)(h))
    assert model.count_params() == 6 * 5 + 5 + 5 * 3 + 3
    assert len(model.get_layer(source.layers[0].name).get_weights()) == 2
    for w, t in zip(source.get_weights(), trained):
        np.testing.assert_array_equal(w, t)  # the source model is untouched
    assert model.layers[1] is source.layers[0]
