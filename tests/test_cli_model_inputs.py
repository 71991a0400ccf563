"""What ``convscope predict`` is given: pictures with a transparent background, composited before they are read."""

from __future__ import annotations

import re

import numpy as np
import pytest

from convscope import cli, runs
from convscope.datasets import mnist_sample
from convscope.images import load_digit

Image = pytest.importorskip("PIL.Image", reason="reading pictures needs Pillow")
LINE = re.compile(r"^(?P<path>.+): (?P<digit>\d)  \(probabilities (?P<probs>(?:\d:\d\.\d{3} ?){10})\)$")


def predict(capsys, model, *pictures):
    """``convscope predict`` in this process: exit status, ``[(digit, probabilities)]`` per picture, stderr."""
    status = cli.main(["predict", str(model), *map(str, pictures)])
    out, err = capsys.readouterr()
    found = [LINE.match(line) for line in out.splitlines()]
    assert all(found), out
    return status, [(int(m["digit"]), [float(p.split(":")[1]) for p in m["probs"].split()]) for m in found], err


@pytest.fixture
def digit():
    """A sample test digit (white on black, as MNIST), 4x larger so the fitting into 28x28 has work to do."""
    (_, _), (x, _) = mnist_sample.load_data()
    return np.kron(x[3], np.ones((4, 4), np.uint8))


def test_transparent_pictures_are_laid_on_the_background_that_shows_their_strokes(run_dir, digit, tmp_path, capsys):
    opaque = tmp_path / "opaque.png"
    Image.fromarray(digit).save(opaque)
    light = np.zeros((*digit.shape, 4), np.uint8)
    light[..., :3], light[..., 3] = 255, digit                  # white strokes, their ink in alpha: laid on black
    dark = np.zeros((*digit.shape, 2), np.uint8)
    dark[..., 1] = digit                                        # black strokes (LA), their ink in alpha: on white
    Image.fromarray(light, mode="RGBA").save(tmp_path / "light.png")
    Image.fromarray(dark, mode="LA").save(tmp_path / "dark.png")
    # The colour channels alone hold no digit (all white, all black): only compositing with alpha finds it.
    assert (light[..., :3] == 255).all() and (dark[..., 0] == 0).all()
    np.testing.assert_array_equal(load_digit(tmp_path / "light.png"), load_digit(opaque))
    status, answers, err = predict(capsys, run_dir / runs.FINAL_MODEL, opaque, tmp_path / "light.png",
                                   tmp_path / "dark.png")
    assert status == 0 and err == ""
    (want, want_p), (light_digit, light_p), (dark_digit, dark_p) = answers
    assert light_digit == want and light_p == want_p
    assert dark_digit == want and np.allclose(dark_p, want_p, atol=0.05)


@pytest.mark.parametrize("command", ["predict", "evaluate", "summary"])
def test_every_command_that_takes_a_model_takes_a_run_folder(command, run_dir, digit, tmp_path, capsys):
    picture = tmp_path / "digit.png"
    Image.fromarray(digit).save(picture)
    extra = {"predict": [str(picture)], "evaluate": ["--dataset", "mnist-sample"], "summary": []}[command]
    outputs = []
    for model in (run_dir / runs.FINAL_MODEL, run_dir):
        assert cli.main([command, str(model), *extra]) == 0
        out, err = capsys.readouterr()
        outputs.append(out)
        assert "Traceback" not in err
    assert outputs[0] == outputs[1] and outputs[0]


def test_a_run_folder_without_a_final_model_opens_its_checkpoint(run_dir, digit, tmp_path, capsys):
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    (interrupted / runs.CHECKPOINT).write_bytes((run_dir / runs.CHECKPOINT).read_bytes())
    assert runs.model_file(interrupted) == str(interrupted / runs.CHECKPOINT)
    assert runs.model_file(run_dir) == str(run_dir / runs.FINAL_MODEL)
    picture = tmp_path / "digit.png"
    Image.fromarray(digit).save(picture)
    assert cli.main(["predict", str(interrupted), str(picture)]) == 0
    assert LINE.match(capsys.readouterr().out.strip())


def test_a_folder_without_a_model_is_one_line_naming_what_is_missing(tmp_path, capsys):
    assert cli.main(["summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"convscope: error: {str(tmp_path)!r} is a folder without {runs.FINAL_MODEL} or "
                           f"{runs.CHECKPOINT}")
