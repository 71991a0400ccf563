"""Where ``convscope show`` writes: names built from a file's content stay inside the output folder and never
meet, and without ``--out`` the pictures go beside the run (or into ``pictures/<model>``) they describe."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the pictures need the optional [viz] extra (matplotlib)")

from convscope import cli, layers as L, runs
from convscope.models import Model

# Layer names a hostile file may carry (the constructor and the loader accept any non-empty string): a path
# that climbs out, the parent folder itself, spaces and non-ASCII letters, and two names that clean alike.
HOSTILE = ["x/../../escaped", "..", "héllo wörld ✓", "a/b", "a_b"]
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def show(capsys, *args):
    status = cli.main(["show", *map(str, args)])
    out, err = capsys.readouterr()
    assert status == 0, err
    return [line.split("wrote ", 1)[1].split(" (")[0] for line in out.splitlines() if line.startswith("wrote ")]


def files_under(folder) -> set[str]:
    return {os.path.join(root, name) for root, _, names in os.walk(folder) for name in names}


@pytest.fixture
def hostile_model(tmp_path):
    """A saved model whose conv layers bear the HOSTILE names, the way an attacker would hand it over."""
    x = L.Input(shape=(28, 28, 1))
    h = x
    for name in HOSTILE:
        h = L.Conv2D(2, 3, padding="same", activation="relu", name=name)(h)
    y = L.Dense(10, activation="softmax", name="dense")(L.Flatten(name="flatten")(h))
    path = tmp_path / "given" / "hostile.convscope"
    path.parent.mkdir()
    Model(x, y, name="hostile").save(path)
    return path


@pytest.mark.parametrize("picture, count", [("filters", 5), ("maps", 1 + 2 * 5), ("gradients", 1 + 5)])
def test_hostile_layer_names_stay_inside_out_and_never_overwrite(hostile_model, tmp_path, capsys, picture, count):
    out = tmp_path / "a" / "b" / "out"
    before = files_under(tmp_path)
    extra = [] if picture == "filters" else ["--dataset", "mnist-sample"]
    paths = show(capsys, picture, hostile_model, *extra, "--out", out)
    assert len(paths) == count
    assert all(os.path.realpath(os.path.dirname(p)) == os.path.realpath(out) for p in paths)
    names = [os.path.basename(p) for p in paths]
    assert len(set(names)) == count                                    # "a/b" and "a_b" got a file each
    assert all(SAFE_NAME.fullmatch(name) and len(name) < 255 for name in names), names
    assert files_under(tmp_path) - before == {str(out / name) for name in names}   # nothing written elsewhere


def test_hostile_snapshot_names_stay_inside_the_run_pictures(tmp_path, capsys):
    """The snapshots' keys name the layer; the run folder (hostile, too) ships ``pictures/evolution_x/`` so that
    ``evolution_x/../../escaped.png`` would resolve."""
    run = tmp_path / "run"
    (run / "filters").mkdir(parents=True)
    (run / "pictures" / "evolution_x").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for epoch in range(2):
        np.savez(run / "filters" / f"epoch_{epoch:03d}.npz", **{"x/../../escaped/kernel": rng.normal(size=(3, 3, 1, 4))})
    before = files_under(tmp_path)
    paths = show(capsys, "evolution", run, "--out", run / "pictures")
    assert [os.path.splitext(p)[1] for p in paths] == [".png", ".gif"]
    assert files_under(tmp_path) - before == {os.path.join(run, "pictures", os.path.basename(p)) for p in paths}


@pytest.fixture
def run_copy(run_dir, tmp_path):
    """A copy of the trained run folder, so that the pictures written into it stay in this test."""
    return shutil.copytree(run_dir, tmp_path / "run")


def test_a_link_planted_in_a_run_s_pictures_is_not_followed(run_copy, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.makedirs(os.path.join(run_copy, "pictures"))
    os.symlink(victim, os.path.join(run_copy, "pictures", "filters_conv2d.png"))
    assert cli.main(["show", "filters", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert "picture name 'filters_conv2d.png' would be written outside" in err and len(err.strip().splitlines()) == 1
    assert victim.read_text() == "precious"


def test_pictures_of_a_run_go_into_its_pictures_folder(run_copy, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pictures = os.path.join(run_copy, "pictures")
    assert show(capsys, "filters", run_copy) == [os.path.join(pictures, "filters_conv2d.png"),
                                                 os.path.join(pictures, "filters_conv2d_1.png")]
    model = os.path.join(run_copy, runs.FINAL_MODEL)
    assert show(capsys, "filters", model, "--layer", "conv2d") == [os.path.join(pictures, "filters_conv2d.png")]
    assert show(capsys, "history", run_copy) == [os.path.join(pictures, "history.png")]
    assert show(capsys, "evolution", run_copy) == [os.path.join(pictures, "evolution_conv2d.png"),
                                                   os.path.join(pictures, "evolution_conv2d.gif")]
    assert not (tmp_path / "pictures").exists()


def test_pictures_of_a_plain_model_file_go_into_a_folder_named_after_it(run_copy, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "first.convscope", tmp_path / "models" / "second model.convscope"
    second.parent.mkdir()
    for copy in (first, second):
        shutil.copy(os.path.join(run_copy, runs.FINAL_MODEL), copy)
    assert show(capsys, "filters", first, "--layer", "conv2d") == [os.path.join("pictures", "first", "filters_conv2d.png")]
    [path] = show(capsys, "filters", second, "--layer", "conv2d")
    folder = os.path.basename(os.path.dirname(path))
    assert os.path.dirname(os.path.dirname(path)) == "pictures" and folder.startswith("second-model-")
    assert show(capsys, "filters", first, "--layer", "conv2d", "--out", "elsewhere") == [
        os.path.join("elsewhere", "filters_conv2d.png")]


def test_a_model_file_beside_a_run_s_files_but_not_its_own_is_a_plain_file(run_copy, tmp_path, capsys, monkeypatch):
    """Only the run's model.convscope / checkpoint.convscope draw into the run's pictures/: another model saved
    there is another model."""
    monkeypatch.chdir(tmp_path)
    other = os.path.join(run_copy, "other.convscope")
    shutil.copy(os.path.join(run_copy, runs.FINAL_MODEL), other)
    assert show(capsys, "filters", other, "--layer", "conv2d") == [os.path.join("pictures", "other", "filters_conv2d.png")]


def test_file_part_keeps_safe_names_and_marks_every_changed_one():
    from convscope.viz.outputs import DIGEST, MAX_PART, file_part

    assert [file_part(t) for t in ("conv2d", "block/inner_dw", "mnist-test-image-0", "digit.png")] == [
        "conv2d", "block_inner_dw", "mnist-test-image-0", "digit.png"]
    texts = HOSTILE + [".", "", "/", "a b", "a?b", "-rf", ".hidden", "✓", "x" * 300, "x" * 299 + "y", "CAFÉ"]
    parts = [file_part(t) for t in texts]
    assert all(SAFE_NAME.fullmatch(p) and len(p) <= MAX_PART for p in parts), parts
    assert len(set(parts)) == len(texts) - 1                          # only "a/b" and "a_b" meet, as a path should
    assert parts[HOSTILE.index("..")] == parts[HOSTILE.index("..")][-DIGEST:]   # nothing but the hash is left
    assert parts[-1].startswith("CAFE-") and parts[texts.index("a b")].startswith("a-b-")
    assert [file_part(p) for p in parts] == parts                     # a part is its own file part


def test_a_name_that_would_leave_its_folder_is_refused(tmp_path):
    from convscope.viz.outputs import PictureFolder, inside

    for name in ("../x.png", "a/b.png", "/etc/x.png", ".."):
        with pytest.raises(ValueError, match=f"picture name {re.escape(repr(name))} would be written outside"):
            inside(tmp_path, name)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert inside(tmp_path / "link", "x.png") == str(tmp_path / "link" / "x.png")
    (tmp_path / "real" / "filters_conv2d.png").symlink_to(tmp_path / "victim")     # planted in a run's pictures/
    with pytest.raises(ValueError, match=f"'filters_conv2d.png' would be written outside .* \\(to '{tmp_path}/victim'"):
        inside(tmp_path / "real", "filters_conv2d.png")
    pictures = PictureFolder(tmp_path / "new")
    assert not (tmp_path / "new").exists()                           # created with the first picture only
    names = [os.path.basename(pictures.path("filters", path)) for path in ("a/b", "a_b", "a/b")]
    assert names == ["filters_a_b.png", "filters_a_b-2.png", "filters_a_b-3.png"]
