"""Bad graphs and bad data for graphs fail early, naming the layer, the tensors and their shapes."""

import numpy as np
import pytest

import convscope
from convscope import layers
from convscope.layers.merging import Add, Concatenate


@pytest.fixture(autouse=True)
def fresh_names():
    layers.clear_session()


def test_layer_called_on_an_incompatible_shape_names_both_shapes():
    dense = layers.Dense(4, name="head")
    dense(convscope.Input(shape=(16,)))
    with pytest.raises(ValueError, match=r'Input 0 of layer "head" is incompatible with the layer: '
                                         r"expected shape=\(None, 16\), found shape=\(None, 10\)"):
        dense(convscope.Input(shape=(10,)))
    with pytest.raises(ValueError, match=r'Input 0 of layer "conv" is incompatible.*expected ndim=4.*\(None, 10\)'):
        layers.Conv2D(2, 3, name="conv")(convscope.Input(shape=(10,)))


def test_add_of_mismatched_shapes():
    a, b = convscope.Input(shape=(4, 4, 8)), convscope.Input(shape=(4, 4, 16))
    with pytest.raises(ValueError, match=r'Add "add".*\(None, 4, 4, 8\).*\(None, 4, 4, 16\)'):
        Add(name="add")([a, b])


def test_concatenate_along_a_mismatched_axis():
    a, b = convscope.Input(shape=(4, 4, 8)), convscope.Input(shape=(4, 5, 8))
    with pytest.raises(ValueError, match=r'Concatenate "cat".*axis.*\(None, 4, 4, 8\).*\(None, 4, 5, 8\)'):
        Concatenate(name="cat")([a, b])


def test_output_that_does_not_depend_on_the_inputs():
    x = convscope.Input(shape=(3,), name="given")
    other = convscope.Input(shape=(3,), name="elsewhere")
    y = layers.Dense(2)(other)
    with pytest.raises(ValueError, match=r'Graph disconnected: an output depends on the Input "elsewhere" '
                                         r"\(None, 3\), which is not among the model's inputs \(given\)"):
        convscope.Model(x, y)


def test_disconnected_input():
    x, unused = convscope.Input(shape=(3,), name="used"), convscope.Input(shape=(5,), name="unused")
    y = layers.Dense(2)(x)
    with pytest.raises(ValueError, match=r'input "unused" \(None, 5\) is disconnected: no output depends on it'):
        convscope.Model([x, unused], y)


def test_layer_output_of_a_layer_used_twice():
    shared = layers.Dense(2, name="shared")
    shared(convscope.Input(shape=(3,)))
    shared(convscope.Input(shape=(3,)))
    with pytest.raises(ValueError, match=r'Layer "shared" has been called 2 times .*"layer.output" is ill-defined; '
                                         r"use layer.get_output_at\(node_index\)"):
        shared.output
    with pytest.raises(ValueError, match=r'"layer.input" is ill-defined'):
        shared.input
    assert shared.get_output_at(1).shape == (None, 2)
    with pytest.raises(AttributeError, match=r'Layer "never" has never been called'):
        layers.Dense(2, name="never").output


def two_in_two_out():
    a, b = convscope.Input(shape=(3,), name="a"), convscope.Input(shape=(2,), name="b")
    joined = Concatenate()([a, b])
    model = convscope.Model([a, b], [layers.Dense(2, name="p")(joined), layers.Dense(1, name="q")(joined)])
    model.compile(optimizer="sgd", loss=["mse", "mse"])
    return model


def test_fit_with_the_wrong_number_of_inputs():
    model = two_in_two_out()
    x, y = [np.ones((4, 3)), np.ones((4, 2))], [np.ones((4, 2)), np.ones((4, 1))]
    with pytest.raises(ValueError, match=r'argument "x" is a single array, but the model has 2 inputs \(a, b\)'):
        model.fit(x[0], y, verbose=0)
    with pytest.raises(ValueError, match=r'argument "x" holds 3 arrays, but the model has 2 inputs'):
        model.fit(x + [np.ones((4, 1))], y, verbose=0)
    with pytest.raises(ValueError, match=r"argument \"x\" is a dict whose keys must be the model's input names "
                                         r"\['a', 'b'\]; missing \['b'\], unknown \['c'\]"):
        model.fit({"a": x[0], "c": x[1]}, y, verbose=0)
    with pytest.raises(ValueError, match=r'Input 1 of layer "functional.*expected shape=\(None, 2\), found shape=\(4, 3\)'):
        model.fit([x[0], x[0]], y, verbose=0)


def test_fit_with_the_wrong_number_of_targets():
    model = two_in_two_out()
    x, y = [np.ones((4, 3)), np.ones((4, 2))], [np.ones((4, 2)), np.ones((4, 1))]
    with pytest.raises(ValueError, match=r'argument "y" holds 1 array, but the model has 2 outputs \(p, q\)'):
        model.fit(x, [y[0]], verbose=0)
    with pytest.raises(ValueError, match=r'argument "y" is a single array, but the model has 2 outputs'):
        model.fit(x, y[0], verbose=0)
    with pytest.raises(ValueError, match=r'"x" and "y\[\'q\'\]" must have the same number of samples'):
        model.fit(x, [y[0], np.ones((3, 1))], verbose=0)


def test_compile_losses_must_match_the_outputs():
    model = two_in_two_out()
    with pytest.raises(ValueError, match=r'argument "loss" has 3 entries for 2 outputs'):
        model.compile(loss=["mse", "mse", "mse"])
    with pytest.raises(ValueError, match=r"argument \"loss\" names outputs \['r'\]"):
        model.compile(loss={"r": "mse"})


def test_model_needs_inputs_and_outputs_or_a_call():
    with pytest.raises(ValueError, match='give both "inputs" and "outputs"'):
        convscope.Model(inputs=convscope.Input(shape=(2,)))
    with pytest.raises(ValueError, match=r"Model\(inputs, outputs\) needs both"):
        convscope.Model()
    with pytest.raises(TypeError, match='"inputs" must be symbolic tensors'):
        convscope.Model(np.ones(3), layers.Dense(2)(convscope.Input(shape=(2,))))
    x = convscope.Input(shape=(2,))
    with pytest.raises(TypeError, match="called on a mix of symbolic tensors and arrays"):
        Add()([x, np.ones((1, 2))])


def test_duplicate_layer_names_in_a_graph():
    x = convscope.Input(shape=(2,))
    y = layers.Dense(2, name="same")(layers.Dense(2, name="same")(x))
    with pytest.raises(ValueError, match='layer names must be unique, "same" is used 2 times'):
        convscope.Model(x, y)
