"""The lessons: every one passes in fast mode, and a lesson whose claim is broken fails loudly.

Fast mode trains on the offline sample only, so the whole file runs in well under two minutes;
the default model and the data are trained / loaded once per process and shared by the lessons.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import convscope
from convscope import backend, cli, lessons, zoo
from convscope.layers import conv as conv_layer_module
from convscope.lessons import activation as activation_lesson
from convscope.lessons.lab import Check, LessonResult, seeded

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", lessons.names())
def test_every_lesson_passes_in_fast_mode_and_draws_its_pictures(name, tmp_path):
    result = lessons.run(name, fast=True, out=tmp_path)
    assert result.verdict, result.report()
    assert result.checks and result.numbers
    assert result.pictures, f"lesson {name} drew no picture"
    for path in result.pictures:
        with open(path, "rb") as f:
            assert f.read(8) == PNG, path
    assert result.report().splitlines()[-1] == f"PASSED: {name}: {result.title}"


def test_backprop_fails_when_the_layer_returns_a_wrong_kernel_gradient(monkeypatch):
    real_backward = conv_layer_module.conv2d_backward

    def wrong_kernel_gradient(*args, **kwargs):
        dx, dkernel, dbias = real_backward(*args, **kwargs)
        return dx, dkernel * 1.001, dbias   # off by 0.1%: far beyond float64 rounding

    monkeypatch.setattr(conv_layer_module, "conv2d_backward", wrong_kernel_gradient)
    result = lessons.run("backprop", fast=True)
    assert not result.verdict
    failed = [c.claim for c in result.failures]
    assert any(claim.startswith("dL/dK: loops (input ⋆ δ) vs the layer's backward") for claim in failed), failed
    assert any(claim.startswith("stride 2: dL/dK") for claim in failed), failed
    assert not any(claim.startswith("dL/dx") for claim in failed), "the input gradient was not touched"
    assert result.report().splitlines()[-1].startswith("FAILED: backprop: dL/dK: loops")


def test_command_line_exits_1_with_a_failed_line_when_a_claim_breaks(monkeypatch, tmp_path, capsys):
    real_backward = conv_layer_module.conv2d_backward

    def wrong_kernel_gradient(*args, **kwargs):
        dx, dkernel, dbias = real_backward(*args, **kwargs)
        return dx, np.zeros_like(dkernel), dbias

    monkeypatch.setattr(conv_layer_module, "conv2d_backward", wrong_kernel_gradient)
    status = cli.main(["lesson", "run", "backprop", "--fast", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 1
    assert "\nFAILED: backprop: dL/dK: loops (input ⋆ δ) vs the layer's backward" in out
    assert "PASSED" not in out


def test_activation_lesson_fails_when_an_activation_sits_where_it_expects_none(monkeypatch):
    linear = activation_lesson.convolve

    def convolve_then_relu(x, kernel, bias):
        return np.maximum(linear(x, kernel, bias), 0.0)

    monkeypatch.setattr(activation_lesson, "convolve", convolve_then_relu)
    result = lessons.run("activation", fast=True)
    failed = [c.claim for c in result.failures]
    assert not result.verdict
    assert "two stacked linear convolutions vs the single composed kernel, relative error" in failed
    assert "best single kernel (least squares) for the linear stack: residual" in failed


@pytest.mark.parametrize("name", lessons.names())
def test_every_lesson_states_the_question_it_answers(name):
    question = lessons.lesson(name).QUESTION
    assert question.endswith("?") and question.count("?") == 1 and question[0].isupper()
    assert "\n" not in question and len(question) <= 120


def test_command_line_lists_each_lessons_question_then_its_title(tmp_path, capsys):
    assert cli.main(["lesson", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * len(lessons.names())
    for name, (first, second) in zip(lessons.names(), zip(lines[::2], lines[1::2])):
        module = lessons.lesson(name)
        assert first.split(maxsplit=1) == [name, module.QUESTION]
        assert second.strip() == module.TITLE and second.startswith(" ")


def test_run_all_prints_every_lessons_time_and_the_total(monkeypatch, capsys):
    """ALL ends with a table of verdicts and times; one failed lesson makes the exit status 1."""
    def quick(name, **settings):
        result = LessonResult(name, lessons.lesson(name).TITLE, "")
        result.checks.append(Check("a claim", 0.0 if name != "pooling" else 1.0, "==", 0))
        return result

    monkeypatch.setattr(lessons, "run", quick)
    assert cli.main(["lesson", "run", "ALL", "--fast", "--seed", "3"]) == 1
    out = capsys.readouterr().out
    assert out.count("\ntime: ") == len(lessons.names())
    table = out[out.index("\nlesson "):].strip().splitlines()
    assert table[0].split() == ["lesson", "verdict", "time"]
    assert table[-2].startswith("(the first lesson that studies the default model also trains it")
    table = table[:-2] + table[-1:]
    rows = {row.split()[0]: row.split()[1:] for row in table[1:-2]}
    assert list(rows) == lessons.names()
    assert all(verdict == ("FAILED" if name == "pooling" else "PASSED") and unit == "s"
               for name, (verdict, seconds, unit) in rows.items())
    total = table[-2].split()
    assert total[0] == "total" and float(total[1]) == pytest.approx(sum(float(r[1]) for r in rows.values()), abs=0.1)
    assert table[-1] == f"{len(rows) - 1} of {len(rows)} lessons passed; FAILED: pooling"


def test_the_seed_sets_a_lessons_own_draws():
    """The same seed draws the same two training runs; another seed, other runs."""
    key = "run 1 vs run 2: |a - b| / |a|, filter i against filter i"
    first, again, other = (lessons.run("filters", fast=True, seed=seed).numbers[key] for seed in (0, 0, 1))
    assert first == again != other


def test_command_line_runs_and_passes(tmp_path, capsys):

    assert cli.main(["lesson", "run", "pointwise", "--fast", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== Lesson pointwise: 1x1 convolution")
    assert "PASSED: pointwise" in out and "FAILED" not in out
    assert (tmp_path / "pointwise_1x1.png").is_file()


def test_command_line_errors_are_one_line_with_status_2(tmp_path, capsys):
    assert cli.main(["lesson", "run", "convolution-theorem", "--fast"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no lesson named 'convolution-theorem'" in err and "backprop" in err
    assert cli.main(["lesson", "run", "bias", "--model", str(tmp_path / "missing.convscope")]) == 2
    assert "no model file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder as `convscope train` leaves it, for a small LeNet-5 trained one epoch on the sample."""
    from convscope import runs
    from convscope.datasets import mnist_sample

    folder = tmp_path_factory.mktemp("run")
    cfg = runs.RunConfig(dataset="mnist-sample", model="lenet5", epochs=1, limit=3000)
    model = runs.start(cfg, folder)
    (x, y), _ = mnist_sample.load_data()
    x, y = runs.prepare(x[:3000], y[:3000])
    model.fit(x, y, batch_size=128, epochs=1, verbose=0, callbacks=[runs.RunRecorder(folder)])
    model.save(folder / runs.FINAL_MODEL)
    return folder


@pytest.mark.parametrize("name", ["filters", "backprop", "activation", "pooling", "pointwise"])
def test_lessons_study_the_users_own_model_from_a_run_folder(name, run_folder, tmp_path):
    """Another architecture (tanh, average pooling, "same" padding, three Dense layers), given as a run folder."""
    result = lessons.run(name, model=run_folder, fast=True, out=tmp_path)
    assert result.verdict, result.report()
    assert any(note.startswith(f"model: {run_folder}") for note in result.notes)
    if name == "filters":   # the run folder's recorded initial filters are compared with the trained ones
        assert (tmp_path / "filters_your_run_initial.png").is_file()
        assert result.numbers["your run: conv2d moved from its initialization, |after - before| / |before|"] > 0


def test_lessons_take_a_model_object_and_leave_floatx_and_the_random_generator_as_they_were():
    model = zoo.keras_convnet()   # untrained: the exactness claims hold for any weights
    backend.set_floatx("float32")
    convscope.utils.set_random_seed(123)
    state = backend.get_rng_state()
    result = lessons.run("correlation", model=model)
    assert result.verdict, result.report()
    assert backend.floatx() == "float32"
    assert backend.get_rng_state() == state


def test_unknown_model_type_and_lesson_name_are_refused():
    with pytest.raises(TypeError, match="must be a convscope Model or a model file"):
        lessons.run("bias", model=42)
    with pytest.raises(ValueError, match="no lesson named 'ALL'"):
        lessons.run("ALL")


def test_a_check_that_measured_nan_fails_and_a_result_without_checks_has_no_verdict():
    assert not Check("x", float("nan"), "<=", 1.0).passed
    assert not Check("x", float("nan"), ">=", 1.0).passed
    assert Check("x", 0.0, "==", 0).passed and not Check("x", 1e-300, "==", 0).passed
    empty = LessonResult("demo", "a demo", "text")
    assert not empty.verdict
    assert empty.report().splitlines()[-1] == "FAILED: demo: no check was made"


def test_seeded_restores_the_callers_generator():
    convscope.utils.set_random_seed(7)
    expected = np.random.default_rng(7).random()
    with seeded(0):
        backend.global_rng().random(5)
    assert backend.global_rng().random() == expected


@pytest.mark.parametrize("name", ["bias", "channels", "pooling", "pointwise", "correlation", "backprop"])
def test_lessons_study_a_functional_graph_with_same_padding_and_a_residual_add(name):
    """A user's graph (not a chain): "same" padding, a residual Add, a stride, global pooling."""
    import convscope
    from convscope import layers

    layers.clear_session()
    convscope.utils.set_random_seed(2)
    inputs = convscope.Input(shape=(28, 28, 1))
    h = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    h = layers.ReLU()(layers.Add()([h, layers.Conv2D(4, 3, padding="same")(h)]))
    h = layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(layers.MaxPooling2D(2)(h))
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(h))
    model = convscope.Model(inputs, outputs)
    result = lessons.run(name, model=model, fast=True)
    assert result.verdict, result.report()


def test_picture_names_from_the_users_layer_names_stay_inside_out(tmp_path):
    """backprop and channels put the studied layer's name into their file names: a name from a hostile model
    file such as ``x/../../escaped`` was joined to ``out`` unchecked."""
    from convscope.lessons.lab import fresh_model, keras_convnet_config

    config = keras_convnet_config()
    for spec in config["layers"]:
        if spec["config"]["name"] == "conv2d_1":
            spec["config"]["name"] = "x/../../escaped"
    out = tmp_path / "deep" / "out"
    model = fresh_model(config)
    for name in ("backprop", "channels"):
        result = lessons.run(name, model=model, fast=True, out=out)
        assert result.pictures, name
        for picture in result.pictures:
            assert os.path.dirname(os.path.realpath(picture)) == os.path.realpath(out), picture
    assert not list(tmp_path.rglob("escaped*")), "a picture was written outside out"
