"""The initialization, backprop and pooling lessons: their sentences held to the numbers they print, and each
new claim broken on purpose (the lesson must then fail, its FAILED line naming the claim); plus Lab.progress.

Every lesson runs in fast mode (the offline sample); a run shared by several tests is made once per module.
"""

from __future__ import annotations

import builtins
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from convscope import lessons
from convscope.arraymath import im2col
from convscope.layers import MaxPooling2D
from convscope.layers import conv as conv_layer_module
from convscope.layers import pooling as pooling_layer_module
from convscope.lessons import backprop, initialization, plots, pooling
from convscope.lessons.lab import Lab, LessonResult

FIXTURE = Path(__file__).parent / "fixtures" / "keras_pool_ties"


def check(result, start):
    """The one check whose claim starts with ``start``."""
    found = [c for c in result.checks if c.claim.startswith(start)]
    assert len(found) == 1, [c.claim for c in result.checks]
    return found[0]


def failed_line(result) -> str:
    line = result.report().splitlines()[-1]
    assert line.startswith(f"FAILED: {result.name}: "), line
    return line


# -- Lab.progress ---------------------------------------------------------------------------------------


def test_progress_yields_every_item_and_prints_fits_plain_line_without_tqdm_even_on_a_terminal(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("No module named 'tqdm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)   # where tqdm would draw its bar
    lab = Lab(LessonResult("demo", "a demo", "text"))
    assert list(lab.progress(range(20), description="training")) == list(range(20))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10                                   # one line per tenth of the way
    assert lines[0].startswith("  demo: training:  2/20 - ") and lines[-1].startswith("  demo: training: 20/20 - ")
    assert list(lab.progress(iter("abc"))) == ["a", "b", "c"]  # no length: a line per step
    assert capsys.readouterr().out.splitlines()[-1].startswith("  demo: 3/3 - ")


def test_progress_draws_a_tqdm_bar_on_a_terminal_and_plain_lines_elsewhere(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    lab = Lab(LessonResult("demo", "a demo", "text"))
    assert list(lab.progress([1, 2, 3], description="steps")) == [1, 2, 3]
    assert capsys.readouterr().out.splitlines()[-1].startswith("  demo: steps: 3/3 - ")   # captured: not a terminal
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert list(lab.progress([1, 2, 3], description="steps")) == [1, 2, 3]
    captured = capsys.readouterr()
    assert "demo: steps: 100%" in captured.out and "3/3" in captured.out and captured.err == ""


def test_a_result_opens_with_the_question_it_answers_when_it_has_one():
    from convscope.lessons.lab import introduce

    assert introduce("demo", "A demo", "text.", "Why?")[:4] == ["== Lesson demo: A demo ==", "", "Question: Why?", ""]
    assert introduce("demo", "A demo", "text.") == ["== Lesson demo: A demo ==", "", "text.", ""]
    assert "Question: Why?" in LessonResult("demo", "A demo", "text.", "Why?").report()


# -- initialization ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def initialization_run(tmp_path_factory):
    """The lesson in fast mode, with the pictures' arguments recorded: (result, {picture: (args, kwargs)})."""
    drawn = {}
    real = {name: getattr(plots, name) for name in ("runs_figure", "layer_stats_figure")}

    def recorder(name):
        def draw(*args, **kwargs):
            drawn[name] = (args, kwargs)
            return real[name](*args, **kwargs)
        return draw

    with pytest.MonkeyPatch.context() as patch:
        for name in real:
            patch.setattr(plots, name, recorder(name))
        result = lessons.run("initialization", fast=True, out=tmp_path_factory.mktemp("init"))
    return result, drawn


def step0(result):
    """{initializer: {column: [one value per layer]}} from the step-0 table."""
    title, header, rows = next(t for t in result.tables if t[0].startswith("step 0"))
    out = {}
    for row in rows:
        for column, value in zip(header[2:], row[2:]):
            out.setdefault(row[0], {}).setdefault(column, []).append(value)
    return out


def test_initialization_passes_and_says_what_the_scaled_initializers_keep(initialization_run):
    result, _ = initialization_run
    assert result.verdict, result.report()
    text = result.report()
    assert "gradients of similar size" not in text
    assert "What they keep is the size of the forward signal" in text
    assert "Biases start at zero" in text and initialization.QUESTION.endswith("?")


def test_initialization_sentences_are_its_table_values(initialization_run):
    result, _ = initialization_run
    table = step0(result)
    for name in initialization.SCALED:
        z, grad = table[name][initialization.Z], table[name][initialization.GRAD]
        total = table[name][initialization.TOTAL]
        z_note = next(n for n in result.notes if n.startswith(f"{name}: std of z "))
        assert z_note.split("std of z ")[1].split(" (")[0] == " -> ".join(f"{v:.2g}" for v in z)
        assert f"at most {initialization.largest_step(z):.2g}x" in z_note
        grad_note = next(n for n in result.notes if n.startswith(f"{name}: std of dL/dz per cell "))
        assert f"is {grad[-1] / grad[0]:.3g} times" in grad_note
        assert " -> ".join(f"{v:.2g}" for v in total) in grad_note
    kept = check(result, "glorot_uniform and he_normal: std of z from one weighted layer to the next")
    assert kept.value == pytest.approx(max(initialization.largest_step(table[n][initialization.Z])
                                           for n in initialization.SCALED))
    gain = check(result, "every layer, every random initializer: measured gain against sqrt(fan_in)·σ")
    measured = [initialization.factor(g, law) for name in initialization.INITIALIZERS
                if name not in initialization.CONSTANT
                for g, law in zip(table[name]["gain"], table[name]["sqrt(fan_in)·σ"])]
    assert gain.value == pytest.approx(max(measured))
    assert check(result, "random_normal(1.0): the largest layer gain").value == max(table["random_normal(1.0)"]["gain"])
    assert check(result, "biases at step 0").value == 0


def test_initialization_legend_and_table_show_the_same_final_loss(initialization_run):
    result, drawn = initialization_run
    _, header, rows = next(t for t in result.tables if t[0] == "after training")
    column = header.index(f"loss, mean of the last {initialization.LAST_STEPS} steps")
    args, kwargs = drawn["runs_figure"]
    words, final = kwargs["summary"]
    assert words == f"mean of the last {initialization.LAST_STEPS} steps:"
    assert final == {row[0]: row[column] for row in rows}
    assert {name: np.mean(curve[-initialization.LAST_STEPS:]) for name, curve in args[0].items()} == pytest.approx(final)
    figure = plots.runs_figure(*args, **kwargs)
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend[0] == f"zeros (mean of the last 10 steps: {final['zeros']:.3g})"


def test_with_initializer_sets_every_bias_initializer_to_zeros():
    config = {"layers": [{"class_name": "Conv2D", "config": {"kernel_initializer": "ones", "bias_initializer": "ones"}},
                         {"class_name": "Dropout", "config": {"rate": 0.5}}]}
    changed = initialization.with_initializer(config, "he_normal")
    assert changed["layers"] == [{"class_name": "Conv2D",
                                  "config": {"kernel_initializer": "he_normal", "bias_initializer": "zeros"}}]


def subset(monkeypatch, **replaced):
    """The lesson with three initializers only (the claims below need no more), some of them replaced."""
    keep = {name: initialization.INITIALIZERS[name] for name in ("random_normal(1.0)", "glorot_uniform", "he_normal")}
    keep.update(replaced)
    monkeypatch.setattr(initialization, "INITIALIZERS", keep)


def test_initialization_fails_when_a_scaled_initializer_does_not_keep_the_signal(monkeypatch):
    """he_normal drawing with std 1.0 (its formula unchanged): the kept-signal claim must fail and be named."""
    subset(monkeypatch, he_normal=({"class_name": "RandomNormal", "config": {"stddev": 1.0}},
                                   initialization.INITIALIZERS["he_normal"][1]))
    result = lessons.run("initialization", fast=True)
    assert not result.verdict
    claim = "glorot_uniform and he_normal: std of z from one weighted layer to the next"
    assert check(result, claim).value > initialization.KEPT_FACTOR
    assert claim in failed_line(result)
    assert "layers whose measured std is off the formula" in failed_line(result)


def test_initialization_fails_when_biases_do_not_start_at_zero(monkeypatch):
    real = initialization.with_initializer

    def with_ones_bias(config, identifier):
        changed = real(config, identifier)
        for spec in changed["layers"]:
            if "bias_initializer" in spec["config"]:
                spec["config"]["bias_initializer"] = "ones"
        return changed

    subset(monkeypatch)
    monkeypatch.setattr(initialization, "with_initializer", with_ones_bias)
    result = lessons.run("initialization", fast=True)
    assert check(result, "biases at step 0").value == 1
    assert "biases at step 0, every layer and initializer" in failed_line(result)


# -- backprop ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backprop_run(tmp_path_factory):
    return lessons.run("backprop", fast=True, out=tmp_path_factory.mktemp("backprop"))


def test_backprop_passes_and_says_what_the_stride_leaves_out(backprop_run):
    assert backprop_run.verdict, backprop_run.report()
    text = backprop_run.report()
    assert "row 27 is never read" in text and "Padding." in text and backprop.QUESTION.endswith("?")


def test_backprop_counts_the_uncovered_edge_as_the_arithmetic_says():
    assert backprop.uncovered((28, 28), (3, 3), (2, 2), ((0, 0), (0, 0))) == (1, 1)   # 13 windows cover rows 0-26
    assert backprop.uncovered((13, 13), (3, 3), (2, 2), ((0, 0), (0, 0))) == (0, 0)
    assert backprop.uncovered((28, 28), (3, 3), (2, 2), ((0, 1), (0, 1))) == (0, 0)   # "same": padded, all covered
    assert backprop.uncovered((12, 12), (1, 1), (2, 2), ((0, 0), (0, 0))) == (1, 1)
    assert backprop.with_an_uncovered_edge(np.zeros((1, 13, 13, 2)), (3, 3), 2, "valid").shape == (1, 12, 12, 2)
    assert backprop.with_an_uncovered_edge(np.zeros((1, 28, 28, 2)), (3, 3), 2, "valid").shape == (1, 28, 28, 2)
    assert backprop.coverage_text((28, 28), (3, 3), (2, 2), ((0, 0), (0, 0))).startswith(
        "13 x 13 windows of 3 x 3, strides (2, 2), on the 28 x 28 input: the last 1 row(s) and 1 column(s)")
    assert "padded by rows 0 above / 1 below" in backprop.coverage_text((28, 28), (3, 3), (2, 2), ((0, 1), (0, 1)))


def test_backprop_edge_sentence_and_check_come_from_the_same_count(backprop_run):
    windows = backprop_run.numbers["stride-2 twin's windows"]
    rows, cols = map(int, re.search(r"the last (\d+) row\(s\) and (\d+) column\(s\) are in no window", windows).groups())
    assert (rows, cols) == (1, 1)
    edge = check(backprop_run, "stride 2: |dL/dx| on the")
    assert f"on the {rows} row(s) and {cols} column(s) no window covers" in edge.claim and edge.value == 0


def test_backprop_finite_difference_sentence_matches_its_checks(backprop_run):
    for what in ("dL/dK", "dL/dx"):
        tried, rejected, kept = (int(v) for v in re.search(r"(\d+) points tried .*?(\d+) rejected .*?(\d+) kept",
                                                         backprop_run.numbers[f"{what} finite differences"]).groups())
        assert tried - rejected == kept
        smooth = check(backprop_run, f"{what}: points verified smooth")
        assert smooth.value == kept >= backprop.FD_POINTS == smooth.limit
        assert f"more than {backprop.BEND_LIMIT:g} of its largest value" in smooth.claim
        assert check(backprop_run, f"{what}: central differences at those points").value <= 1e-6


def test_bend_tells_a_kink_from_a_smooth_curve():
    h = backprop.FD_STEP
    smooth = [np.array([3.0 + 2 * t + 5 * t * t]) for t in (0, -2 * h, -h, h, 2 * h)]
    kinked = [np.array([3.0 + abs(t - h / 3)]) for t in (0, -2 * h, -h, h, 2 * h)]   # a ReLU corner h/3 away
    assert backprop.bend(*smooth) < 1e-13 < backprop.BEND_LIMIT < backprop.bend(*kinked)


def test_backprop_fails_loudly_when_no_point_can_be_verified_smooth(monkeypatch):
    monkeypatch.setattr(backprop, "BEND_LIMIT", -1.0)     # every point counts as a kink
    result = lessons.run("backprop", fast=True)
    assert check(result, "dL/dK: points verified smooth").value == 0
    assert "dL/dK: points verified smooth" in failed_line(result)


def test_backprop_fails_when_the_layer_sends_gradient_to_rows_no_window_covers(monkeypatch):
    real = conv_layer_module.conv2d_backward

    def leaky(dy, *args, **kwargs):
        dx, dkernel, dbias = real(dy, *args, **kwargs)
        if dx is not None and dy.shape[1] * 2 < dx.shape[1]:     # a stride-2 call: write on the last row
            dx = dx.copy()
            dx[:, -1] += 1.0
        return dx, dkernel, dbias

    monkeypatch.setattr(conv_layer_module, "conv2d_backward", leaky)
    result = lessons.run("backprop", fast=True)
    assert check(result, "stride 2: |dL/dx| on the").value == 1.0
    assert "stride 2: |dL/dx| on the 1 row(s) and 1 column(s) no window covers" in failed_line(result)


# -- pooling ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pooling_run(tmp_path_factory):
    return lessons.run("pooling", fast=True, out=tmp_path_factory.mktemp("pooling"))


def test_pooling_passes_and_answers_why_we_pool(pooling_run):
    assert pooling_run.verdict, pooling_run.report()
    text = pooling_run.report()
    for words in ("Why pool.", "the receptive field grows", "small shifts matter less", "overlapping windows",
                  "only for windows that do not overlap"):
        assert words in text, words
    assert pooling.QUESTION.endswith("?")
    assert any(path.endswith("pooling_shift.png") for path in pooling_run.pictures)


def test_pooling_map_sizes_are_their_arithmetic(pooling_run):
    text = pooling_run.numbers["the maps shrink"]
    (h, w, c, before), (ph, pw, pc, after) = ([int(v.replace(",", "")) for v in m]
                                              for m in re.findall(r"(\d+) x (\d+) x (\d+) = ([\d,]+)", text))
    assert (h * w * c, ph * pw * pc) == (before, after) == (21632, 5408)
    assert float(re.search(r"([\d.]+) times fewer", text).group(1)) == before / after == 4


def test_pooling_receptive_field_sentence_is_its_table_and_checks(pooling_run):
    _, header, rows = next(t for t in pooling_run.tables if t[0].startswith("receptive field"))
    fields = {row[0]: row[1:] for row in rows}
    assert fields == {"conv2d": [3, 3, 1, True], "max_pooling2d": [4, 4, 2, True], "conv2d_1": [8, 8, 2, True]}
    sentence = pooling_run.numbers["the receptive field grows"]
    assert "see 8 x 8 pixels" in sentence and "they would see 5 x 5" in sentence
    assert check(pooling_run, "conv2d_1: receptive field height with the pool minus the 5").value == 8 - 5
    assert check(pooling_run, "max_pooling2d: receptive field height after the pool minus before").value == 4 - 3


def test_pooling_shift_sentence_is_its_check(pooling_run):
    conv_change, pool_change = (float(v) / 100 for v in
                                re.findall(r"by ([\d.]+)%", pooling_run.numbers["small shifts matter less"]))
    shift = check(pooling_run, "1-pixel shift")
    assert shift.value == pytest.approx(pool_change / conv_change, rel=2e-3)
    assert shift.limit == pooling.SHIFT_LIMIT < 1


def test_pooling_overlapping_window_counts_cover_every_cell(pooling_run):
    text = pooling_run.numbers["overlapping 3x3 windows, stride 2"]
    counts = {int(k): int(n) for n, k in re.findall(r"(\d+) cells in (\d+) window", text)}
    assert sum(counts.values()) == 26 * 26 and counts[0] == 2 * 26 - 1    # the last row and column: in no window
    assert check(pooling_run, "overlapping average pooling").value <= 1e-15


def last_max_forward(x, pool_size, strides, pads):
    """Max pooling whose ties go to the LAST maximal cell: the rule Keras does not follow."""
    cells = im2col.window_cells(im2col.pad_nhwc(x, pads, -np.inf), pool_size, strides, (1, 1),
                                im2col.out_hw_from_pads(x.shape[1:3], pool_size, strides, (1, 1), pads))
    y, argmax = cells[0].copy(), np.zeros(cells[0].shape, dtype=np.uint8)
    for k, cell in enumerate(cells[1:], start=1):
        better = cell >= y
        np.copyto(y, cell, where=better)
        np.copyto(argmax, k, where=better, casting="unsafe")
    return y, argmax


def test_the_keras_fixture_has_ties_and_tells_first_from_last():
    meta = json.loads((FIXTURE / "pool_ties.json").read_text())
    arrays = np.load(FIXTURE / "pool_ties.npz")
    assert meta["backend"] == "torch" and set(meta["cases"]) == {"pool2", "pool3_stride1", "pool3_stride2_same"}
    for case, kwargs in meta["cases"].items():
        layer = MaxPooling2D(**kwargs)
        x, upstream, dx = (arrays[f"{case}/{key}"] for key in ("x", "upstream", "dx"))
        np.testing.assert_array_equal(layer(x), arrays[f"{case}/y"])
        np.testing.assert_array_equal(layer.backward(upstream), dx)
        _, last = last_max_forward(x, layer.pool_size, layer.strides, layer.pads)
        routed = pooling_layer_module.max_pool2d_backward(upstream, last, x.shape, layer.pool_size, layer.strides,
                                                         layer.pads)
        assert np.abs(routed - dx).max() > 0, case          # the other tie rule would not match Keras


def test_pooling_fails_loudly_when_ties_go_to_the_last_cell(monkeypatch):
    monkeypatch.setattr(pooling_layer_module, "max_pool2d_forward", last_max_forward)
    result = lessons.run("pooling", fast=True)
    assert not result.verdict
    line = failed_line(result)
    assert "convscope's MaxPooling2D gradient vs Keras's, every fixture case" in line
    assert "max pooling, tied windows: those whose gradient is not on their first maximal cell" in line


def test_pooling_fails_loudly_when_pooling_does_not_widen_the_receptive_field(monkeypatch):
    """A "pooling" that only subsamples (the window's first cell): the spacing doubles, the field does not grow."""
    def subsample(self, x, training=False):
        out = self.compute_output_shape(x.shape)
        self._x_shape = x.shape
        self._argmax = np.zeros(out, dtype=np.uint8)
        return x[:, : out[1] * self.strides[0] : self.strides[0], : out[2] * self.strides[1] : self.strides[1]]

    monkeypatch.setattr(MaxPooling2D, "forward", subsample)
    result = lessons.run("pooling", fast=True)
    growth = check(result, "max_pooling2d: receptive field height after the pool minus before")
    assert (growth.value, growth.limit) == (0, 1)
    assert "max_pooling2d: receptive field height after the pool minus before" in failed_line(result)
