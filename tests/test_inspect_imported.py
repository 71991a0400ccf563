"""Inspection tools on an imported graph model: ``convscope show filters | maps | gradients``, ``model.trace`` and
the conv lessons accept a functional .keras file with 3-channel 32x32 inputs, DepthwiseConv2D, batch norm,
ReLU(max_value=6), a residual Add and a nested Sequential; MNIST digits are adapted to its input, and each
lesson says which conv layer it studied."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the pictures need the optional [viz] extra (matplotlib)")

from convscope import backend, cli, layers as L, lessons, load_model
from convscope.lessons import initialization, lab
from convscope.models import Model, Sequential
from convscope.viz.model_figures import gradient_figures, maps_figures
from convscope.viz.sources import find_layer, input_adapter, parse_range

CONVS = ["stem_conv", "dw_conv", "project_conv", "block_inner_dw", "block_inner_pw"]


def small_graph(name="small_graph", rescale=False):
    """A MobileNetV2-like graph: stem conv, BN, ReLU6, a depthwise-separable residual block, a nested Sequential."""
    backend.set_seed(0)
    inner = Sequential([L.Input(shape=(16, 16, 16)), L.DepthwiseConv2D(3, padding="same", name="inner_dw"),
                        L.Conv2D(16, 1, name="inner_pw"), L.ReLU(max_value=6.0, name="inner_relu6")], name="block")
    x = L.Input(shape=(32, 32, 3), name="image")
    h = L.Rescaling(1 / 255, name="scale")(x) if rescale else x
    h = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(h)
    h = L.ReLU(max_value=6.0, name="stem_relu")(L.BatchNormalization(name="stem_bn")(h))
    d = L.DepthwiseConv2D(3, padding="same", name="dw_conv")(h)
    d = L.ReLU(max_value=6.0, name="dw_relu")(L.BatchNormalization(name="dw_bn")(d))
    h = L.Add(name="residual_add")([h, L.Conv2D(16, 1, name="project_conv")(d)])
    y = L.Dense(10, activation="softmax", name="predictions")(L.GlobalAveragePooling2D(name="gap")(inner(h)))
    return Model(x, y, name=name)


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("imported") / "small_graph.keras")
    small_graph().save(path)
    return path


def show(capsys, *args):
    status = cli.main(["show", *map(str, args)])
    out, err = capsys.readouterr()
    assert status == 0, err
    return out, sorted(os.listdir(args[-1]))


def test_filters_of_every_conv_layer_nested_and_depthwise_included(keras_file, tmp_path, capsys):
    _, files = show(capsys, "filters", keras_file, "--out", tmp_path / "all")
    assert files == sorted(f"filters_{name}.png" for name in CONVS)
    _, files = show(capsys, "filters", keras_file, "--layer", "block/inner_dw", "--out", tmp_path / "one")
    assert files == ["filters_block_inner_dw.png"]


def test_maps_adapt_the_digit_and_reach_inside_the_nested_model(keras_file, tmp_path, capsys):
    out, files = show(capsys, "maps", keras_file, "--index", "3", "--dataset", "mnist-sample", "--out", tmp_path)
    assert "resized 28x28 -> 32x32 (bilinear), gray copied into 3 channels, scaled to [0, 1]" in out
    prefix = "maps_mnist-sample-test-image-3_"
    for part in ("input", "stem_conv_output", "dw_relu_output", "residual_add_output", "block_output",
                 "block_inner_dw_output", "block_inner_relu6_output"):
        assert f"{prefix}{part}.png" in files
    assert not any("gap" in f or "predictions" in f for f in files)      # no spatial maps there


def test_maps_and_gradients_of_chosen_layers_only(keras_file, tmp_path, capsys):
    _, files = show(capsys, "maps", keras_file, "--index", "0", "--dataset", "mnist-sample", "--layer", "dw_conv",
                    "--layer", "block/inner_pw", "--out", tmp_path / "maps")
    assert [f.split("image-0_")[1] for f in files] == ["block_inner_pw_output.png", "dw_conv_output.png", "input.png"]
    _, files = show(capsys, "gradients", keras_file, "--index", "0", "--dataset", "mnist-sample",
                    "--layer", "inner_dw", "--out", tmp_path / "grads")
    assert [f.split("image-0_")[1] for f in files] == ["block_inner_dw_kernel_gradient.png", "saliency.png"]


def test_gradients_of_every_kernel_nested_included(keras_file, tmp_path, capsys):
    _, files = show(capsys, "gradients", keras_file, "--index", "1", "--dataset", "mnist-sample", "--out", tmp_path)
    assert [f.split("image-1_")[1] for f in files] == sorted([f"{n}_kernel_gradient.png" for n in CONVS] + ["saliency.png"])


def test_an_unknown_layer_and_a_bad_range_are_refused_in_one_line(keras_file, tmp_path, capsys):
    assert cli.main(["show", "maps", keras_file, "--index", "0", "--layer", "conv9", "--out", str(tmp_path)]) == 2
    assert 'No layer named "conv9" in model "small_graph"; its layers (nested ones as OUTER/INNER): image, stem_conv' in capsys.readouterr().err
    assert cli.main(["show", "maps", keras_file, "--index", "0", "--input-range", "1,0", "--out", str(tmp_path)]) == 2
    assert "--input-range must be LOW,HIGH with LOW < HIGH, received 1,0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="two numbers, e.g. -1,1"):
        parse_range("white")


def test_the_input_range_follows_the_model():
    digit = np.full((28, 28), 255, np.uint8)
    digit[:, :14] = 0
    cases = [(small_graph(), (0.0, 1.0), "pixels / 255"),
             (small_graph(rescale=True), (0.0, 255.0), "first layer 'scale' (Rescaling)"),
             (small_graph("mobilenetv2_0.35_32"), (-1.0, 1.0), "keras.applications mobilenet")]
    for model, (low, high), reason in cases:
        adapter = input_adapter(model)
        x = adapter(digit)
        assert x.shape == (1, 32, 32, 3) and reason in adapter.describe()
        assert (x.min(), x.max()) == (low, high)
        assert np.array_equal(x[..., 0], x[..., 2])                   # the gray value in every channel
    assert input_adapter(small_graph(), (-2, 2))(digit).min() == -2.0


def test_maps_follow_the_trace_of_the_imported_model(keras_file):
    model = load_model(keras_file, compile=False)
    digit = np.zeros((28, 28), np.uint8)
    digit[8:20, 12:16] = 255
    figures = dict(maps_figures(model, digit))
    x = input_adapter(model)(digit)
    record = next(r for r in model.trace(x) if r.name == "block")
    inner = next(r for r in find_layer(model, "block").trace(record.input) if r.name == "inner_dw")
    figure = figures["block_inner_dw_output"]
    assert "block/inner_dw (DepthwiseConv2D): output" in figure._suptitle.get_text()
    notes = " ".join(text.get_text() for text in figure.texts)
    assert f"{np.abs(inner.output[0]).max():.3g}" in notes           # the colour limit: the nested layer's maps
    kernels = dict(gradient_figures(model, digit, 3))
    assert "dw_conv_kernel_gradient" in kernels and "block_inner_pw_kernel_gradient" in kernels


FAST_LESSONS = ["correlation", "backprop", "bias", "channels", "pointwise", "pooling", "activation", "filters"]


@pytest.fixture
def few_digits(monkeypatch):
    """A part of the offline sample, so that the lessons that train finish in seconds (their verdicts may fail)."""
    name, ((x, y), (x_test, y_test)) = lab.load_digits(True)
    monkeypatch.setattr(lab, "load_digits", lambda fast: (name, ((x[:256], y[:256]), (x_test[:256], y_test[:256]))))


@pytest.mark.parametrize("name", FAST_LESSONS)
def test_conv_lessons_run_on_the_imported_graph_with_and_without_layer(name, keras_file, tmp_path, few_digits):
    result = lessons.run(name, model=keras_file, fast=True, out=tmp_path / "default")
    assert any("resized 28x28 -> 32x32" in note for note in result.notes)
    assert result.pictures and all(os.path.isfile(p) for p in result.pictures)
    assert result.checks
    chosen = lessons.run(name, model=keras_file, fast=True, out=tmp_path / "chosen", layer="project_conv")
    assert "layer studied: project_conv (--layer)" in chosen.notes
    assert chosen.pictures and all(os.path.isfile(p) for p in chosen.pictures)


def test_the_exact_lessons_pass_on_the_imported_graph(keras_file):
    for name in ("correlation", "bias", "channels", "pointwise", "pooling"):
        result = lessons.run(name, model=keras_file, fast=True)
        assert result.verdict, result.report()
    backprop = lessons.run("backprop", model=keras_file, fast=True, layer="project_conv")
    assert backprop.verdict, backprop.report()
    assert backprop.numbers["layer"].startswith("project_conv: kernel (1, 1, 16, 16), strides (1, 1)")
    # By default the last Conv2D larger than 1x1: the stem, not the 1x1 projection after it.
    assert lessons.run("backprop", model=keras_file, fast=True).numbers["layer"].startswith("stem_conv")


@pytest.mark.parametrize("layer, message", [
    ("dw_conv", "layer 'dw_conv' is a DepthwiseConv2D, not a Conv2D; the model's Conv2D layers: stem_conv, project_conv"),
    ("inner_pw", "layer 'inner_pw' is inside the nested model 'block', which model.trace records as one call"),
    ("conv9", "no layer named 'conv9'; the layers: image, stem_conv"),
])
def test_a_lesson_refuses_a_layer_it_cannot_study(keras_file, layer, message):
    with pytest.raises(ValueError, match=message):
        lessons.run("correlation", model=keras_file, fast=True, layer=layer)


def test_initialization_reaches_every_kernel_and_keeps_a_graphs_dropout():
    x = L.Input(shape=(32, 32, 3))
    h = L.Dropout(0.5, name="drop")(small_graph()(x))
    config = initialization.with_initializer(Model(x, h).get_config(), "ones")
    assert "drop" in [spec["config"]["name"] for spec in config["layers"]]
    graph = next(spec for spec in config["layers"] if spec["class_name"] in ("Functional", "Model"))["config"]
    by_name = {spec["config"]["name"]: spec["config"] for spec in graph["layers"]}
    assert by_name["dw_conv"]["depthwise_initializer"] == "ones" and by_name["stem_conv"]["kernel_initializer"] == "ones"
    inner = {spec["config"]["name"]: spec["config"] for spec in by_name["block"]["layers"]}
    assert inner["inner_dw"]["depthwise_initializer"] == "ones" and inner["inner_pw"]["kernel_initializer"] == "ones"
