"""Central-difference gradient checks (float64) of the augmentation and resizing layers.

Same objective and tolerances as tests/test_gradients.py: L = sum(y * R), ``backward(R)`` must return
dL/dx. A random layer is checked in training with its draw held fixed: the forward draws once, the
numeric side re-applies that draw (``layer.apply(x, layer.last_draw)``); at inference it is the identity.
"""

from __future__ import annotations

import pytest
from test_gradients import check_layer, randn

from convscope.arraymath import image
from convscope.layers import (
    CenterCrop, RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation,
    RandomZoom, Resizing,
)

pytestmark = pytest.mark.usefixtures("float64")


def check_fixed_draw(layer, x):
    """Check the training pass for the parameters its forward drew."""
    check_layer(layer, x, training=True, fresh_forward=lambda inp: layer.apply(inp, layer.last_draw))
    assert layer.last_draw is not None


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_random_flip(mode):
    check_fixed_draw(RandomFlip(mode, seed=1), randn(4, 3, 4, 2, seed=1))


@pytest.mark.parametrize("interpolation", image.INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", image.FILL_MODES)
def test_random_rotation(fill_mode, interpolation):
    check_fixed_draw(RandomRotation(0.3, fill_mode=fill_mode, interpolation=interpolation, seed=2, fill_value=0.7),
                     randn(2, 4, 5, 2, seed=2))


@pytest.mark.parametrize("fill_mode", image.FILL_MODES)
def test_random_zoom(fill_mode):
    check_fixed_draw(RandomZoom((-0.5, 0.6), (0.2, 0.7), fill_mode=fill_mode, seed=3), randn(2, 4, 5, 1, seed=3))


@pytest.mark.parametrize("interpolation", image.INTERPOLATIONS)
def test_random_translation(interpolation):
    check_fixed_draw(RandomTranslation(0.4, 0.4, fill_mode="wrap", interpolation=interpolation, seed=4),
                     randn(2, 4, 5, 2, seed=4))


@pytest.mark.parametrize("value_range", [(-100, 100), (-0.8, 0.8)], ids=["unclipped", "clipped"])
def test_random_contrast(value_range):
    check_fixed_draw(RandomContrast((0.5, 0.9), value_range=value_range, seed=5), randn(3, 3, 4, 2, seed=5))


@pytest.mark.parametrize("value_range", [(-100, 100), (-0.8, 0.8)], ids=["unclipped", "clipped"])
def test_random_brightness(value_range):
    check_fixed_draw(RandomBrightness(0.2, value_range=value_range, seed=6), randn(3, 3, 4, 2, seed=6))


@pytest.mark.parametrize("target", [(3, 4), (5, 7)], ids=["window", "resized"])
def test_random_crop(target):
    layer = RandomCrop(*target, seed=7)
    check_fixed_draw(layer, randn(2, 5, 6, 2, seed=7))
    check_layer(layer, randn(2, 5, 6, 2, seed=8))  # inference: the centred window, resized


@pytest.mark.parametrize("make", [
    lambda: RandomFlip(), lambda: RandomRotation(0.2), lambda: RandomZoom(0.2), lambda: RandomTranslation(0.1, 0.1),
    lambda: RandomContrast(0.2), lambda: RandomBrightness(0.2)], ids=["flip", "rotation", "zoom", "translation",
                                                                      "contrast", "brightness"])
def test_identity_at_inference(make):
    check_layer(make(), randn(2, 3, 4, 1, seed=9))


@pytest.mark.parametrize("kwargs", [
    dict(height=7, width=3), dict(height=2, width=9, interpolation="nearest"),
    dict(height=4, width=4, crop_to_aspect_ratio=True),
    dict(height=6, width=3, pad_to_aspect_ratio=True, fill_value=2.0),
], ids=["bilinear", "nearest", "crop-aspect", "pad-aspect"])
def test_resizing(kwargs):
    check_layer(Resizing(**kwargs), randn(2, 4, 5, 2, seed=10))


@pytest.mark.parametrize("target", [(2, 3), (6, 3)], ids=["crop", "smart-resize"])
def test_center_crop(target):
    check_layer(CenterCrop(*target), randn(2, 4, 5, 2, seed=11))
