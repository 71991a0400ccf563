"""`convscope train` warns when the model it trained is no better than guessing (issue 17).

A learning rate far too large need not end in NaN (exit status 3): SGD at 1000 pushes every ReLU of the
Keras convnet below zero within the first steps, the output stops depending on the image, the loss stays
finite, and the run ends with exit status 0 and a model at chance level. That run must say so.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from convscope.cli import chance_warning


@pytest.mark.parametrize("classes, n", [(10, 1000), (10, 10000), (2, 100)])
def test_the_warning_holds_for_accuracies_within_three_standard_errors_of_chance(classes, n):
    chance = 1 / classes
    limit = chance + 3 * math.sqrt(chance * (1 - chance) / n)
    for accuracy in (0.0, chance, limit - 1e-9):
        line = chance_warning(accuracy, classes, n)
        assert line is not None, (accuracy, classes, n)
        assert f"test accuracy {accuracy:.4f} is at chance level ({chance:.4f} for {classes} classes" in line
        assert "smaller --learning-rate" in line and "\n" not in line
    assert chance_warning(limit + 1e-9, classes, n) is None
    assert chance_warning(0.99, classes, n) is None


def test_training_with_a_crazy_learning_rate_ends_at_chance_and_says_so(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), CONVSCOPE_DATA=str(tmp_path / "no-data"),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "convscope.cli", "train", "--dataset", "mnist-sample", "--optimizer", "sgd",
         "--learning-rate", "1000", "--epochs", "1", "--limit", "512", "--verbose", "2", "--out", str(run)],
        env=env, capture_output=True, text=True, encoding="utf-8", timeout=300)
    detail = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, detail
    losses = json.loads((run / "history.json").read_text())["loss"]
    assert all(math.isfinite(loss) for loss in losses), detail  # finite: the NaN guard did not fire
    warnings = [line for line in result.stderr.splitlines() if line.startswith("convscope: warning: test accuracy")]
    assert len(warnings) == 1, detail
    assert "is at chance level (0.1000 for 10 classes, within 3 standard errors on 1000 images)" in warnings[0], detail
    assert "try a smaller --learning-rate" in warnings[0], detail
    assert "Test accuracy: 0.1" in result.stdout, detail
