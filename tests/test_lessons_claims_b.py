"""The prose of the filters, bias, channels, activation, pointwise and correlation lessons held to the numbers
they print, and each new claim broken on purpose: the lesson must then fail, naming the claim."""

from __future__ import annotations

import re

import numpy as np
import pytest

import convscope
from convscope import layers, lessons, zoo
from convscope.lessons import activation as activation_lesson
from convscope.lessons import bias as bias_lesson
from convscope.lessons import channels as channels_lesson
from convscope.lessons import correlation as correlation_lesson
from convscope.lessons import filters as filters_lesson
from convscope.models import Model


@pytest.fixture(scope="module")
def filters_result():
    return lessons.run("filters", fast=True)


@pytest.fixture(scope="module")
def bias_result():
    return lessons.run("bias", fast=True)


def failed_claims(result) -> list[str]:
    assert not result.verdict
    return [c.claim for c in result.failures]


def last_line(result) -> str:
    return result.report().splitlines()[-1]


# -- filters ---------------------------------------------------------------------------------------------------


def test_filters_the_definition_is_the_layers_numbers(filters_result):
    """A filter is kh x kw x C, one map per filter: the printed counts are the default model's first layer."""
    conv = zoo.keras_convnet().layers[0]
    count, kh, kw, depth, weights = map(int, re.fullmatch(r"(\d+), each (\d+)x(\d+)x(\d+): (\d+) weights and 1 bias",
                                                         filters_result.numbers["conv2d: filters"]).groups())
    assert (count, kh, kw, depth) == (conv.filters, *conv.kernel_size, 1)
    assert weights == kh * kw * depth
    maps = re.match(r"\((\d+), (\d+), (\d+)\) -> \((\d+), (\d+), (\d+)\): (\d+) maps",
                    filters_result.numbers["conv2d: input -> maps"])
    h, w, c, oh, ow, f, n = map(int, maps.groups())
    assert (oh, ow) == (h - kh + 1, w - kw + 1) and f == n == count and c == depth
    assert "z = x ⋆ K + b" in filters_lesson.EXPLANATION


def test_filters_about_as_well_is_three_standard_errors_of_the_printed_accuracies(filters_result):
    accuracies = [float(filters_result.numbers[f"run {run}: test accuracy untrained -> trained"].split(" -> ")[1])
                  for run in (1, 2)]
    n = int(re.search(r"test accuracy on ([\d,]+) images", filters_result.numbers["training"]).group(1).replace(",", ""))
    error = np.sqrt(sum(p * (1 - p) for p in accuracies) / n)
    check = next(c for c in filters_result.checks if c.claim.startswith("run 1 vs run 2 work about as well"))
    assert "three standard errors" in filters_lesson.EXPLANATION and f"against {filters_lesson.AS_WELL} standard" in check.claim
    assert check.limit == pytest.approx(max(3 * error, 0.02), abs=1e-3)      # the printed accuracies have 4 digits
    assert check.value == pytest.approx(abs(accuracies[0] - accuracies[1]), abs=1e-3)


def test_filters_fails_when_the_window_is_taken_one_column_off(monkeypatch):
    real = filters_lesson.window
    monkeypatch.setattr(filters_lesson, "window", lambda padded, conv, row, col, f: real(
        np.roll(padded, 1, axis=1), conv, row, col, f))
    result = lessons.run("filters", fast=True)
    assert any(claim.startswith("conv2d: Σ window · filter + b by hand vs the layer's z") for claim in failed_claims(result))
    assert last_line(result).startswith("FAILED: filters: conv2d: Σ window · filter + b by hand")


def test_filters_fails_when_training_leaves_the_weights_alone(monkeypatch, filters_result):
    # filters_result has trained (and cached) the default model already: only the lesson's own training is broken.
    monkeypatch.setattr(Model, "train_step", lambda self, x, y, sample_weight=None: [0.0])
    failed = failed_claims(lessons.run("filters", fast=True))
    for run in (1, 2):
        assert f"run {run}: filters moved, |after - before| / |before|" in failed
        assert f"run {run}: the network learned, test accuracy trained minus untrained" in failed


# -- bias: weight sharing --------------------------------------------------------------------------------------


def test_bias_the_counts_in_the_explanation_are_the_ones_measured(bias_result):
    """The explanation's 16,981,120 and 320 are what the lesson prints for the default model's first layer."""
    dense = bias_result.numbers["conv2d as a Dense layer, 28x28x1 = 784 inputs to 26x26x32 = 21,632 outputs"]
    assert dense.startswith("(784 + 1)·21,632 = 16,981,120 parameters")
    assert "(784 + 1)·21,632 = 16,981,120" in bias_lesson.EXPLANATION
    assert bias_result.numbers["conv2d: its parameters"] == "(3·3·1 + 1)·32 = 320"
    assert "(3·3·1 + 1)·32 = 320" in bias_lesson.EXPLANATION
    ratio = int(re.search(r"([\d,]+) times", dense).group(1).replace(",", ""))
    assert ratio == round(16_981_120 / 320)
    measured = bias_result.numbers["conv2d: Dense weight matrix measured on its whole input"]
    assert measured == f"{784 * 21_632:,} entries, {26 * 26 * 32 * 9:,} non-zero, {3 * 3 * 32:,} distinct numbers"
    assert bias_result.verdict, bias_result.report()


def test_bias_fails_when_the_dense_count_forgets_the_biases(monkeypatch):
    monkeypatch.setattr(bias_lesson, "dense_parameters", lambda inputs, outputs: inputs * outputs)
    result = lessons.run("bias", fast=True)
    claim = ("conv2d as a Dense layer on 28x28x1: parameters by the formula (inputs + 1)·outputs minus the measured "
             "matrix's entries and outputs (one bias each)")
    assert claim in failed_claims(result)
    assert last_line(result).startswith(f"FAILED: bias: {claim} (-2.163e+04, required == 0)")   # -21,632 biases


def test_bias_fails_when_the_shared_count_forgets_the_input_channels(monkeypatch):
    """conv2d_1 reads 32 channels: kh·kw·F alone is 32 times too few."""
    monkeypatch.setattr(bias_lesson, "shared_weights", lambda conv, channels: 3 * 3 * conv.filters)
    result = lessons.run("bias", fast=True, layer="conv2d_1")
    assert ("conv2d_1: shared weights kh·kw·C·F = 3·3·32·64 by the formula minus the distinct numbers in the matrix"
            in failed_claims(result))


def test_bias_fails_when_the_connections_ignore_the_borders_of_same_padding(monkeypatch):
    """LeNet-5's first layer pads its 28x28 input ("same"): a window at the border reaches fewer inputs."""
    def every_window_whole(conv, shape):
        h, w, c = shape
        return h * w * conv.filters * c * conv.kernel_size[0] * conv.kernel_size[1]

    monkeypatch.setattr(bias_lesson, "connections", every_window_whole)
    model = zoo.lenet5()
    result = lessons.run("bias", model=model, fast=True)
    first = model.layers[0].name
    assert failed_claims(result) == [f"{first} on 28x28x1: connected pairs by the formula minus the matrix's non-zero entries"]


def test_bias_measures_a_crop_when_the_whole_matrix_is_too_large(monkeypatch):
    monkeypatch.setattr(bias_lesson, "MAX_PAIRS", 1_000_000)
    result = lessons.run("bias", fast=True)
    assert result.verdict, result.report()
    key = next(k for k in result.numbers if k.startswith("conv2d: Dense weight matrix measured on a "))
    side = int(re.search(r"on a (\d+)x\1 crop", key).group(1))
    assert side < 28 and (side * side) * ((side - 2) ** 2 * 32) <= 1_000_000 < ((side + 1) ** 2) * ((side - 1) ** 2 * 32)
    assert f"all of it would feed {784 * 21_632:,} pairs" in key


# -- channels ----------------------------------------------------------------------------------------------------


def test_channels_fails_when_a_channel_is_left_out_of_the_sum(monkeypatch):
    real = channels_lesson.per_channel_parts
    monkeypatch.setattr(channels_lesson, "per_channel_parts", lambda conv, x: real(conv, x)[:-1])
    failed = failed_claims(lessons.run("channels", fast=True))
    assert failed == ["conv2d_1: every map vs b + Σ over 32 channels of channel ⋆ slice, relative error"]


def test_channels_studies_the_layer_named_by_layer():
    result = lessons.run("channels", fast=True, layer="conv2d")
    assert result.verdict, result.report()
    assert result.numbers["conv2d"] == "input (28, 28, 1) -> kernel (3, 3, 1, 32) -> maps (26, 26, 32)"
    assert "conv2d_1" not in result.numbers and "layer studied: conv2d (--layer)" in result.notes


# -- activation --------------------------------------------------------------------------------------------------


def test_activation_the_accuracy_claim_is_the_tables_difference():
    result = lessons.run("activation", fast=True)
    (_, _, rows), = [t for t in result.tables if t[0].startswith("the same network trained")]
    accuracy = {row[0]: row[1] for row in rows}
    check = next(c for c in result.checks if c.claim == "test accuracy with ReLU minus without")
    assert check.value == pytest.approx(accuracy["with ReLU"] - accuracy["without activations"])
    assert check.limit == 0.05 and check.passed
    assert result.tables[0][0] == f"the same network trained 5 epochs on {activation_lesson.FAST_IMAGES:,} images"


def test_activation_fails_when_the_network_without_activations_secretly_has_them(monkeypatch):
    real = activation_lesson.small_network
    monkeypatch.setattr(activation_lesson, "small_network", lambda activation, shape: real("relu", shape))
    failed = failed_claims(lessons.run("activation", fast=True))
    assert any(claim.startswith("without activations the trained network is affine") for claim in failed)
    assert "test accuracy with ReLU minus without" in failed


# -- pointwise ---------------------------------------------------------------------------------------------------


def test_pointwise_the_weight_counts_are_its_arithmetic():
    result = lessons.run("pointwise", fast=True)
    c, f, small, c3, f3, large = map(lambda s: int(s.replace(",", "")), re.fullmatch(
        r"(\d+)·(\d+) = ([\d,]+) against 3·3·(\d+)·(\d+) = ([\d,]+)", result.numbers["weights, 1x1 against 3x3"]).groups())
    assert (c, f) == (c3, f3) == (32, 16)
    assert small == c * f and large == 9 * c * f
    assert result.verdict, result.report()


# -- correlation -------------------------------------------------------------------------------------------------


@pytest.fixture()
def pointwise_first_model():
    layers.clear_session()
    inputs = convscope.Input(shape=(28, 28, 1))
    h = layers.Conv2D(4, 1, name="one_by_one")(inputs)
    h = layers.Conv2D(4, 3, activation="relu", name="three_by_three")(h)
    return convscope.Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(h)))


def test_correlation_skips_1x1_kernels_by_default_and_says_so_when_asked_for_one(pointwise_first_model):
    default = lessons.run("correlation", model=pointwise_first_model, fast=True)
    assert default.verdict, default.report()
    assert default.numbers["layer"] == "three_by_three: 4 filters of 3x3x4"
    chosen = lessons.run("correlation", model=pointwise_first_model, fast=True, layer="one_by_one")
    assert chosen.verdict, chosen.report()
    claims = [c.claim for c in chosen.checks]
    assert "1x1 kernels: true convolution x * k vs the layer, largest relative difference over filters" in claims
    assert not any(claim.startswith("true convolution x * k differs") for claim in claims)
    assert any("here x * k and x ⋆ k agree" in note for note in chosen.notes)
    assert "A 1x1 kernel is its own turn, so for it the two are the same" in " ".join(correlation_lesson.EXPLANATION.split())


def test_correlation_fails_when_the_kernel_is_not_turned(monkeypatch):
    monkeypatch.setattr(correlation_lesson, "rotate180", lambda kernel: kernel)
    failed = failed_claims(lessons.run("correlation", fast=True))
    assert "layer vs true convolution with the rotated kernel x * rot180(k), relative error" in failed
    assert "layer vs correlation loops x ⋆ k, relative error" not in failed


# -- a grouped, dilated layer ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bias", "channels", "activation", "correlation"])
def test_lessons_hold_on_a_grouped_dilated_layer_chosen_with_layer(name):
    """Each filter of "grouped" reads 2 of the 4 channels, its taps two cells apart, "same" padding."""
    layers.clear_session()
    convscope.utils.set_random_seed(3)
    inputs = convscope.Input(shape=(28, 28, 1))
    h = layers.Conv2D(4, 3, activation="relu", name="first")(inputs)
    h = layers.Conv2D(8, 3, dilation_rate=2, groups=2, padding="same", activation="relu", name="grouped")(h)
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(layers.Conv2D(6, 3, strides=2)(h)))
    result = lessons.run(name, model=convscope.Model(inputs, outputs), fast=True, layer="grouped")
    assert result.verdict, result.report()
    assert "layer studied: grouped (--layer)" in result.notes
