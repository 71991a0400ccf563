"""``convscope show augment`` and ``viz.augment_figures``: sample digits through seeded augmentation draws."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the pictures need the optional [viz] extra (matplotlib)")

import convscope
from convscope import backend, cli, layers
from convscope.viz.augment_figures import augment_figure, augmentation_front, default_layers, sample_digits

pytestmark = pytest.mark.usefixtures("fresh_state")


def png_pixels(path):
    from matplotlib.image import imread

    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return imread(path)


def show(capsys, *args):
    status = cli.main(["show", "augment", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def test_default_grid_is_written_and_deterministic(tmp_path, capsys):
    state = backend.get_rng_state()
    status, out, _ = show(capsys, "--out", tmp_path / "a", "--digits", 2, "--draws", 3, "--seed", 4)
    assert status == 0 and out.strip() == f"wrote {tmp_path / 'a' / 'augment.png'}"
    assert backend.get_rng_state() == state, "the picture must leave the global generator alone"
    first = png_pixels(tmp_path / "a" / "augment.png")
    # 8 rows (7 layers + all together) of 2 x (1 + 3) cells: wider than high, and not blank.
    height, width = first.shape[:2]
    assert 300 < height < width < 2000 and first[..., :3].std() > 0.1
    show(capsys, "--out", tmp_path / "b", "--digits", 2, "--draws", 3, "--seed", 4)
    np.testing.assert_array_equal(png_pixels(tmp_path / "b" / "augment.png"), first)
    show(capsys, "--out", tmp_path / "c", "--digits", 2, "--draws", 3, "--seed", 5)
    assert not np.array_equal(png_pixels(tmp_path / "c" / "augment.png"), first)


def test_a_models_augmentation_front(tmp_path, capsys):
    model = convscope.Sequential([convscope.Input((28, 28, 1)), layers.RandomRotation(0.2, name="spin"),
                                  layers.RandomZoom(0.1), layers.Flatten(), layers.Dense(10)], name="augmented")
    assert [layer.name for layer in augmentation_front(model)] == ["spin", "random_zoom"]
    path = tmp_path / "augmented.convscope"
    model.save(path)
    status, out, _ = show(capsys, path, "--out", tmp_path, "--digits", 1, "--draws", 2)
    assert status == 0 and "augment_augmented.png" in out
    assert png_pixels(tmp_path / "augment_augmented.png").shape[1] > 300


def test_figure_rows_columns_and_refusals():
    fig = augment_figure(sample_digits(2), default_layers()[:2], draws=2, seed=0)
    # 3 rows (2 layers + all together) x 2 digits x (input + 2 draws) images, and the colour bar.
    assert len([ax for ax in fig.axes if ax.images]) == 3 * 2 * 3 and len(fig.axes) == 3 * 2 * 3 + 1
    with pytest.raises(ValueError, match="draws must be a positive int, received 0"):
        augment_figure(sample_digits(1), default_layers(), draws=0)
    with pytest.raises(ValueError, match=r"grey images \(n, height, width\[, 1\]\), received shape \(2, 5, 5, 3\)"):
        augment_figure(np.zeros((2, 5, 5, 3)), default_layers())
    with pytest.raises(ValueError, match="between 1 and 10, received 11"):
        sample_digits(11)
    plain = convscope.Sequential([convscope.Input((4, 4, 1)), layers.Flatten(), layers.Dense(2)], name="plain")
    with pytest.raises(ValueError, match='model "plain" does not start with augmentation layers'):
        augmentation_front(plain)
