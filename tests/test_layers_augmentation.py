"""The augmentation and resizing layers (layers.augmentation, layers.resizing) and their math (arraymath.image).

* the fast ops against the plain loops of ``arraymath.reference_image``, forward and backward;
* against Keras 3.15.1 (torch backend): ``fixtures/augment/augment.npz`` holds Keras's outputs for
  fixed transforms and for seeded layers' own draws (written by ``fixtures/augment/make_fixtures.py``);
  convscope must give them for the same numbers, to float32 rounding;
* training vs inference, seeds, configs (and Keras's, in ``configs.json``), error messages, ONNX export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import convscope
from convscope import backend, layers, utils
from convscope.arraymath import image, reference_image
from convscope.interop import keras_config
from convscope.layers import (
    CenterCrop, RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation,
    RandomZoom, Resizing,
)

FIXTURES = Path(__file__).parent / "fixtures" / "augment"
KERAS_CONFIGS = json.loads((FIXTURES / "configs.json").read_text())["configs"]
# Pixel values up to 255 in float32: a few units in the last place of 255.
KERAS_ATOL = 3e-4

pytestmark = pytest.mark.usefixtures("fresh_state")


@pytest.fixture(scope="module")
def keras_arrays():
    with np.load(FIXTURES / "augment.npz") as data:
        return {key: data[key] for key in data.files}


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---------------------------------------------------------------- the ops against the loops
TRANSFORMS = np.array([
    image.rotation_transforms([0.7], 5, 6, "float64")[0],
    image.zoom_transforms([[1.6, 0.55]], 5, 6, "float64")[0],
    [1.0, 0.35, -7.3, -0.25, 1.0, 9.6, 0.0, 0.0],  # far outside: reflect / wrap fold several periods
    [0.9, 0.1, 0.4, -0.1, 1.1, 0.2, 0.03, -0.02],  # projective
])


@pytest.mark.parametrize("interpolation", image.INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", image.FILL_MODES)
def test_affine_transform_matches_loops(fill_mode, interpolation):
    x, dy = rand(4, 5, 6, 2, seed=1), rand(4, 5, 6, 2, seed=2)
    y = image.affine_transform(x, TRANSFORMS, interpolation, fill_mode, fill_value=1.5)
    np.testing.assert_allclose(
        y, reference_image.affine_transform_loops(x, TRANSFORMS, interpolation, fill_mode, 1.5), rtol=1e-12, atol=1e-12)
    dx = image.affine_transform_backward(dy, TRANSFORMS, interpolation, fill_mode)
    np.testing.assert_allclose(
        dx, reference_image.affine_transform_backward_loops(dy, TRANSFORMS, interpolation, fill_mode), atol=1e-12)
    # The transpose: <A x, dy> = <x, A^T dy> for the linear part (fill value 0).
    linear = image.affine_transform(x, TRANSFORMS, interpolation, fill_mode, fill_value=0.0)
    assert np.isclose(np.sum(linear * dy), np.sum(x * dx))


def test_fill_modes_fold_as_keras_documents():
    """One row a b c d shifted 6 cells right: reflect (d c b a | a b c d), wrap, nearest, constant."""
    x = np.arange(1.0, 5.0).reshape(1, 1, 4, 1)
    shift = image.translation_transforms([[0.0, 6.0]], "float64")
    got = {mode: image.affine_transform(x, shift, "nearest", mode, fill_value=-1.0)[0, 0, :, 0].tolist()
           for mode in image.FILL_MODES}
    # Output column j reads column j - 6: -6 -5 -4 -3.
    assert got == {"reflect": [3, 4, 4, 3], "wrap": [3, 4, 1, 2], "nearest": [1, 1, 1, 1], "constant": [-1, -1, -1, -1]}


@pytest.mark.parametrize("horizontal, vertical", [(True, False), (False, True), (True, True)])
def test_flip_matches_loops(horizontal, vertical):
    x, flips = rand(3, 4, 5, 2, seed=3), np.array([True, False, True])
    np.testing.assert_array_equal(image.flip(x, flips, horizontal, vertical),
                                  reference_image.flip_loops(x, flips, horizontal, vertical))


RESIZE_CASES = [
    dict(height=9, width=4), dict(height=3, width=11), dict(height=6, width=6, interpolation="nearest"),
    dict(height=2, width=13, interpolation="nearest"), dict(height=4, width=3, crop_to_aspect_ratio=True),
    dict(height=3, width=8, crop_to_aspect_ratio=True, interpolation="nearest"),
    dict(height=7, width=3, pad_to_aspect_ratio=True, fill_value=2.5),
    dict(height=2, width=9, pad_to_aspect_ratio=True, fill_value=-1.0, interpolation="nearest"),
]


@pytest.mark.parametrize("kwargs", RESIZE_CASES, ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_resize_matches_loops(kwargs):
    x, layer = rand(2, 5, 6, 2, seed=4), Resizing(**kwargs)
    with_fill = {k: v for k, v in kwargs.items() if k != "interpolation"}
    expected = reference_image.resize_loops(x, interpolation=kwargs.get("interpolation", "bilinear"), **with_fill)
    y = layer(x)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    # Backward: the transpose of the linear part.
    dy = rand(*y.shape, seed=5)
    linear = reference_image.resize_loops(x, interpolation=kwargs.get("interpolation", "bilinear"),
                                          **{**with_fill, "fill_value": 0.0})
    assert np.isclose(np.sum(linear * dy), np.sum(x * layer.backward(dy)))


@pytest.mark.parametrize("target", [(3, 4), (4, 6), (5, 6), (7, 2), (8, 9)])
def test_center_crop_matches_loops(target):
    x = rand(2, 5, 6, 1, seed=6)
    np.testing.assert_allclose(CenterCrop(*target)(x), reference_image.center_crop_loops(x, *target), atol=1e-12)


def test_crop_matches_loops():
    x = rand(2, 5, 6, 1, seed=7)
    np.testing.assert_array_equal(image.crop(x, 1, 2, 3, 9), reference_image.crop_loops(x, 1, 2, 3, 9))


def test_contrast_and_brightness_match_loops():
    x = rand(3, 4, 5, 2, seed=8)
    factors, deltas = np.array([0.5, 1.0, 1.7]), np.array([-0.4, 0.0, 0.9])
    np.testing.assert_allclose(image.adjust_contrast(x, factors, (-1.0, 1.2))[0],
                               reference_image.contrast_loops(x, factors, (-1.0, 1.2)), atol=1e-12)
    np.testing.assert_allclose(image.adjust_brightness(x, deltas, (-1.0, 1.2))[0],
                               reference_image.brightness_loops(x, deltas, (-1.0, 1.2)), atol=1e-12)


# ---------------------------------------------------------------- against Keras
@pytest.mark.parametrize("interpolation", image.INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", image.FILL_MODES)
def test_affine_transform_is_keras(keras_arrays, fill_mode, interpolation):
    x, transforms = keras_arrays["x"], keras_arrays["affine/transforms"]
    y = image.affine_transform(x, transforms, interpolation, fill_mode, fill_value=17.0)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, keras_arrays[f"affine/{fill_mode}_{interpolation}"], rtol=0, atol=KERAS_ATOL)


def keras_params(name, arrays):
    """convscope's draw for the numbers Keras drew (Keras: degrees; (width, height) orders)."""
    kind = name.split("_")[0]
    if kind == "RandomFlip":
        return {"flips": arrays[f"{name}/flips"]}
    if kind == "RandomRotation":
        return {"angles": np.deg2rad(arrays[f"{name}/angle_degrees"].astype("float64"))}
    if kind == "RandomZoom":
        return {"zooms": np.concatenate([arrays[f"{name}/height_zoom"], arrays[f"{name}/width_zoom"]], axis=1)}
    if kind == "RandomTranslation":
        return {"shifts": arrays[f"{name}/translations"][:, ::-1]}
    if kind == "RandomContrast":
        return {"factors": arrays[f"{name}/contrast_factor"]}
    if kind == "RandomBrightness":
        return {"deltas": arrays[f"{name}/rgb_delta"]}
    top, left = arrays[f"{name}/corner"]
    return {"top": int(top), "left": int(left)}


SEEDED = sorted(name for name in KERAS_CONFIGS if name.startswith("Random"))


def from_keras_config(name):
    """The convscope layer Keras's config of case ``name`` reads as (through the registry's keys)."""
    config = KERAS_CONFIGS[name]
    cls = keras_config.KERAS_CLASSES[name.split("_")[0]]
    return cls(**keras_config.KERAS_MAPPINGS[cls].kwargs_from_keras(config))


@pytest.mark.parametrize("name", SEEDED)
def test_seeded_layers_compute_keras_outputs_for_keras_draws(keras_arrays, name):
    layer = from_keras_config(name)
    x = keras_arrays["x_small" if name == "RandomCrop_small" else "x"]
    if name == "RandomCrop_small":  # the image is smaller than the window: Keras's deterministic corner
        assert layer.draw(x.shape) == keras_params(name, keras_arrays)
    y = layer.apply(x, keras_params(name, keras_arrays))
    np.testing.assert_allclose(y, keras_arrays[f"{name}/y"], rtol=0, atol=KERAS_ATOL)


@pytest.mark.parametrize("name", sorted(n for n in KERAS_CONFIGS if n.startswith(("Resizing", "CenterCrop"))))
def test_resizing_and_center_crop_are_keras(keras_arrays, name):
    kind, case = name.split("_", 1)
    y = from_keras_config(name)(keras_arrays["x"])
    expected = keras_arrays[f"{kind}/{case}"]
    assert y.shape == expected.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=2e-6, atol=2e-6 * 255)


@pytest.mark.parametrize("name", sorted(KERAS_CONFIGS))
def test_config_written_back_is_keras_config(name):
    keras = KERAS_CONFIGS[name]
    written = keras_config.keras_layer_config(from_keras_config(name))["config"]
    mapping = keras_config.KERAS_MAPPINGS[keras_config.KERAS_CLASSES[name.split("_")[0]]]
    for key in mapping.keys:  # RandomCrop's seed too: the one Keras made up when given none is kept
        assert written[key] == keras[key], key
    assert written["data_format"] == keras["data_format"] == "channels_last"


# ---------------------------------------------------------------- training, inference, seeds
RANDOM_LAYERS = [
    lambda **kw: RandomFlip(**kw), lambda **kw: RandomRotation(0.2, **kw), lambda **kw: RandomZoom(0.3, **kw),
    lambda **kw: RandomTranslation(0.2, 0.3, **kw), lambda **kw: RandomContrast(0.5, **kw),
    lambda **kw: RandomBrightness(0.3, **kw),
]
IDS = ["flip", "rotation", "zoom", "translation", "contrast", "brightness"]


@pytest.mark.parametrize("make", RANDOM_LAYERS, ids=IDS)
def test_identity_at_inference_and_random_in_training(make):
    x = np.random.default_rng(1).uniform(0, 255, (6, 8, 8, 1)).astype("float32")
    layer = make(seed=3)
    np.testing.assert_array_equal(layer(x), x)
    assert np.array_equal(layer.backward(np.ones_like(x)), np.ones_like(x))
    first, second = layer(x, training=True), layer(x, training=True)
    assert first.shape == x.shape and first.dtype == np.float32
    assert not np.array_equal(first, second), "each training call draws anew"


def test_integer_images_come_out_as_floats():
    x = np.arange(2 * 4 * 4).reshape(2, 4, 4, 1).astype("uint8")
    for layer in (RandomFlip(seed=1), RandomZoom(0.2, seed=1), Resizing(2, 2), CenterCrop(2, 2)):
        assert layer(x).dtype == np.float32 and layer(x, training=True).dtype == np.float32


@pytest.mark.parametrize("make", RANDOM_LAYERS, ids=IDS)
def test_a_seed_gives_the_same_stream(make):
    x = np.random.default_rng(2).uniform(0, 255, (4, 6, 7, 2)).astype("float32")
    one, two = make(seed=11), make(seed=11)
    for _ in range(2):
        np.testing.assert_array_equal(one(x, training=True), two(x, training=True))


@pytest.mark.parametrize("make", RANDOM_LAYERS, ids=IDS)
def test_without_seed_the_global_generator_draws(make):
    x = np.random.default_rng(2).uniform(0, 255, (4, 6, 7, 2)).astype("float32")
    layer = make()
    utils.set_random_seed(5)
    first = layer(x, training=True)
    utils.set_random_seed(5)
    np.testing.assert_array_equal(layer(x, training=True), first)
    assert layer.rng is backend.global_rng()


def test_flip_modes_and_keras_joint_flip():
    x = rand(64, 3, 4, 1, seed=9)
    both = RandomFlip(seed=0)
    y = both(x, training=True)
    flips = both.last_draw["flips"]
    assert 10 < flips.sum() < 54
    np.testing.assert_array_equal(y[flips], x[flips][:, ::-1, ::-1])  # one draw flips both axes together
    np.testing.assert_array_equal(y[~flips], x[~flips])
    np.testing.assert_array_equal(RandomFlip("vertical").apply(x[:1], {"flips": np.array([True])}), x[:1, ::-1])


def test_draw_ranges():
    shape = (4000, 10, 20, 1)
    angles = RandomRotation((-0.1, 0.25), seed=0).draw(shape)["angles"]
    assert -0.1 * 2 * np.pi <= angles.min() < -0.09 * 2 * np.pi and 0.24 * 2 * np.pi < angles.max() <= 0.5 * np.pi
    zooms = RandomZoom(0.5, seed=0).draw(shape)["zooms"]
    np.testing.assert_array_equal(zooms[:, 0], zooms[:, 1])  # width_factor None: one zoom for both axes
    assert 0.5 <= zooms.min() < 0.52 and 1.48 < zooms.max() <= 1.5
    shifts = RandomTranslation(0.1, (0.0, 0.5), seed=0).draw(shape)["shifts"]
    assert -1.0 <= shifts[:, 0].min() < -0.95 and 0 <= shifts[:, 1].min() < 0.1 and 9.9 < shifts[:, 1].max() <= 10
    factors = RandomContrast(0.3, seed=0).draw(shape)["factors"]
    assert 1.0 <= factors.min() < 1.01 and 1.29 < factors.max() <= 1.3  # Keras: a number f gives [1, 1 + f]
    deltas = RandomBrightness(0.2, value_range=(0, 1), seed=0).draw(shape)["deltas"]
    assert -0.2 <= deltas.min() < -0.19 and 0.19 < deltas.max() <= 0.2


def test_rotation_turns_counter_clockwise():
    x = np.zeros((1, 5, 5, 1))
    x[0, 2, 4, 0] = 1.0  # right of the centre
    y = RandomRotation(0.25).apply(x, {"angles": np.array([np.pi / 2])})
    assert y[0, 0, 2, 0] == pytest.approx(1.0)  # now above it


def test_random_crop_training_window_and_inference():
    x = rand(3, 9, 10, 2, seed=10)
    layer = RandomCrop(4, 5, seed=1)
    corners = set()
    for _ in range(20):
        y = layer(x, training=True)
        top, left = layer.last_draw["top"], layer.last_draw["left"]
        corners.add((top, left))
        np.testing.assert_array_equal(y, x[:, top:top + 4, left:left + 5])
    assert len(corners) > 5 and all(0 <= t <= 5 and 0 <= l_ <= 5 for t, l_ in corners)
    # Inference: the centred window of the target's aspect ratio (9 x 11.25 -> 8 x 10 from row 0), resized.
    np.testing.assert_allclose(layer(x), reference_image.resize_loops(x, 4, 5, crop_to_aspect_ratio=True),
                               atol=1e-12)
    assert layer.compute_output_shape((None, 9, 10, 2)) == (None, 4, 5, 2)


def test_augmentation_runs_inside_fit():
    model = convscope.Sequential([convscope.Input((8, 8, 1)), RandomFlip(seed=0), RandomRotation(0.1, seed=0),
                                  RandomZoom(0.1, seed=0), RandomTranslation(0.1, 0.1, seed=0),
                                  RandomContrast(0.2, value_range=(0, 1), seed=0),
                                  RandomBrightness(0.1, value_range=(0, 1), seed=0), RandomCrop(6, 6, seed=0),
                                  layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 1, (16, 8, 8, 1)).astype("float32")
    y = np.arange(16) % 2
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(model.forward(x, training=True), model.forward(x, training=True))
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


# ---------------------------------------------------------------- configs and errors
ALL_LAYERS = [
    RandomFlip("vertical", seed=2), RandomRotation((-0.2, 0.1), fill_mode="wrap", interpolation="nearest", seed=3,
                                                   fill_value=1.0),
    RandomZoom((-0.2, 0.4), 0.1, fill_mode="constant"), RandomTranslation(0.1, [0.0, 0.2], fill_mode="nearest"),
    RandomContrast((0.1, 0.4), value_range=[0, 1], seed=4), RandomBrightness(0.25, value_range=(255, 0)),
    RandomCrop(5, 6, seed=5), Resizing(4, 7, interpolation="nearest", pad_to_aspect_ratio=True, fill_value=3.0),
    CenterCrop(3, 2),
]


@pytest.mark.parametrize("layer", ALL_LAYERS, ids=lambda layer: type(layer).__name__)
def test_config_round_trip(layer):
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    again = layers.deserialize(layers.serialize(layer))
    assert type(again) is type(layer) and again.get_config() == config


ERRORS = [
    (lambda: RandomFlip("diagonal"), ValueError, 'RandomFlip "random_flip": argument "mode" must be one of '
     "'horizontal', 'vertical', 'horizontal_and_vertical', received 'diagonal'"),
    (lambda: RandomFlip(seed=1.5), TypeError, 'argument "seed" must be None or an int, received 1.5'),
    (lambda: RandomRotation(0.2, data_format="channels_first"), ValueError, '"channels_first" is not supported'),
    (lambda: RandomRotation(1.5), ValueError, 'argument "factor" must be a number or a list of two numbers in '
     "[-1, 1], received 1.5"),
    (lambda: RandomRotation(0.1, fill_mode="mirror"), ValueError, "argument \"fill_mode\" must be one of 'reflect', "
     "'wrap', 'constant', 'nearest', received 'mirror'"),
    (lambda: RandomZoom(0.1, interpolation="bicubic"), ValueError, "argument \"interpolation\" must be one of "
     "'bilinear', 'nearest', received 'bicubic'"),
    (lambda: RandomZoom((-1.0, 0.5)), ValueError, 'argument "height_factor" must be a number or a list of two '
     "numbers in (-1, 1], received (-1.0, 0.5)"),
    (lambda: RandomZoom(0.1, fill_value="white"), TypeError, 'argument "fill_value" must be a number'),
    (lambda: RandomTranslation(0.1, (0.1, 0.2, 0.3)), ValueError, 'argument "width_factor" must be a number or a '
     "list of two numbers"),
    (lambda: RandomContrast(-0.2), ValueError, 'RandomContrast "random_contrast": argument "factor" must be a '
     "number or a list of two numbers in [0, 1], received -0.2"),
    (lambda: RandomContrast(0.2, value_range=(1, 0)), ValueError, "low <= high"),
    (lambda: RandomBrightness(0.2, value_range=255), ValueError, 'argument "value_range" must be a list of two '
     "numbers [low, high], received 255"),
    (lambda: RandomCrop(0, 3), ValueError, 'RandomCrop "random_crop": argument "height" must be a positive int'),
    (lambda: Resizing(3, 4, interpolation="bicubic"), ValueError, "(Keras also resizes with 'bicubic'; convscope "
     "does not implement it)"),
    (lambda: Resizing(3, 4, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True), ValueError,
     'only one of "pad_to_aspect_ratio" and "crop_to_aspect_ratio" can be True'),
    (lambda: Resizing(3, 4, antialias=True), ValueError, 'argument "antialias" must be False'),
    (lambda: Resizing(3, 4, fill_mode="reflect"), ValueError, 'argument "fill_mode" must be "constant"'),
    (lambda: CenterCrop(3, 2.5), ValueError, 'CenterCrop "center_crop": argument "width" must be a positive int, '
     "received 2.5"),
]


@pytest.mark.parametrize("make, error, message", ERRORS, ids=[m for _, _, m in ERRORS])
def test_error_messages(make, error, message):
    layers.clear_session()
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


def test_image_input_is_required():
    with pytest.raises(ValueError, match=r'layer "random_flip" is incompatible with the layer: expected ndim=4'):
        RandomFlip()(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="expected ndim=4"):
        Resizing(2, 2)(np.zeros((2, 5)))


# ---------------------------------------------------------------- ONNX
def test_onnx_export_matches_predict(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the optional [interop] extra")
    from convscope.interop import export_onnx

    x = np.random.default_rng(0).uniform(0, 255, (2, 7, 9, 2)).astype("float32")
    for layer in [RandomFlip(), RandomRotation(0.2), RandomContrast(0.3), RandomCrop(4, 5), RandomCrop(6, 3),
                  CenterCrop(3, 5), CenterCrop(10, 4), Resizing(11, 20), Resizing(4, 5, interpolation="nearest"),
                  Resizing(14, 27, interpolation="nearest"), Resizing(5, 3, crop_to_aspect_ratio=True),
                  Resizing(6, 3, pad_to_aspect_ratio=True, fill_value=-5.0), Resizing(7, 9)]:
        model = convscope.Sequential([convscope.Input((7, 9, 2)), layer])
        path = tmp_path / f"{layer.name}.onnx"
        export_onnx(model, path)
        got = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
        np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=KERAS_ATOL, err_msg=layer.name)


def test_onnx_refuses_augmentation_fixed_to_training(tmp_path):
    pytest.importorskip("onnx", reason="onnx is the optional [interop] extra")
    from convscope.interop import export_onnx

    inputs = convscope.Input((6, 6, 1))
    model = convscope.Model(inputs, RandomRotation(0.1, name="spin")(inputs, training=True))
    with pytest.raises(ValueError, match='"spin".*training=True, where it rotates images at random'):
        export_onnx(model, tmp_path / "m.onnx")


# ---------------------------------------------------------------- Keras model files
def test_keras_model_with_every_layer_loads_and_predicts_as_keras(keras_arrays, tmp_path):
    pytest.importorskip("h5py", reason="h5py is the optional [interop] extra that reads Keras files")
    from convscope.interop import load_keras, save_keras

    model = load_keras(FIXTURES / "augment_model.keras")
    assert {type(layer) for layer in model.layers} >= set(keras_config.KERAS_CLASSES[n] for n in (
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
        "RandomCrop", "Resizing", "CenterCrop"))
    assert [layer.seed for layer in model.layers[:3]] == [1, 2, 3]  # Keras's seeds are kept
    np.testing.assert_allclose(model.predict(keras_arrays["model/x"], verbose=0), keras_arrays["model/y"],
                               rtol=1e-5, atol=1e-4)
    save_keras(model, tmp_path / "again.keras")
    again = load_keras(tmp_path / "again.keras")
    assert [layer.get_config() for layer in again.layers] == [layer.get_config() for layer in model.layers]
