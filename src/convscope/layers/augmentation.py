"""Keras 3's random augmentation layers: RandomFlip, RandomRotation, RandomZoom, RandomTranslation,
RandomContrast, RandomBrightness, RandomCrop.

Input (batch, height, width, channels), channels_last only. They act only when called with
``training=True`` (inside ``fit``); at inference they return the input (as floats) unchanged,
except RandomCrop, which then takes the centred crop (see there). Each training call draws new
parameters per image (RandomCrop: one window per batch) from the layer's own
``numpy.random.Generator`` when ``seed`` is given, else from ``backend.global_rng()``, so that
``utils.set_random_seed`` makes a run reproducible. Keras's own random streams cannot be
reproduced; for fixed parameters the outputs agree with Keras (tests/test_layers_augmentation.py).

A draw is split from its use: ``layer.draw(shape)`` returns the parameters (a dict of arrays),
``layer.apply(x, params)`` the augmented batch for them. The backward pass uses the parameters of
the last forward: each map is linear (flip, crop, rotation, zoom, translation: the transpose of a
gather) or affine and clipped (contrast, brightness) in the image; see ``arraymath.image``.

* RandomFlip(mode="horizontal_and_vertical"): each image flips with probability 1/2; in
  "horizontal_and_vertical" mode one draw flips both axes together (Keras's behaviour).
* RandomRotation(factor): angle = U(lower, upper) * 2 pi (factor in fractions of a full turn; a
  number f means [-|f|, |f|]) about the image centre; positive turns counter-clockwise.
* RandomZoom(height_factor, width_factor=None): zoom = 1 + U(lower, upper) per axis (width_factor
  None: the height zoom for both); a positive factor zooms out, a negative one in.
* RandomTranslation(height_factor, width_factor): shifts U(lower, upper) * height down and
  U(...) * width right.
  These three resample with ``interpolation`` "bilinear" / "nearest" and fill what comes from
  outside the image by ``fill_mode`` "reflect" / "wrap" / "constant" (``fill_value``) / "nearest".
* RandomContrast(factor, value_range=(0, 255)): y = clip((x - mean) * c + mean) with the mean per
  image and channel, c = U(1 - lower, 1 + upper); a number f gives (lower, upper) = (0, f), as Keras
  computes it (so c is in [1, 1 + f]).
* RandomBrightness(factor, value_range=(0, 255)): y = clip(x + U(lower, upper) * (high - low)).
* RandomCrop(height, width): a (height, width) window at a random place, the same for the batch
  (when H <= height or W <= width: Keras's centred window, resized to fit). At inference the
  documented centred crop, where Keras 3.15's code returns the input unchanged (see the class).

Example:
    >>> layer = RandomRotation(0.1, seed=0)
    >>> x = np.zeros((8, 28, 28, 1), "float32")
    >>> layer(x).shape, layer(x, training=True).shape
    ((8, 28, 28, 1), (8, 28, 28, 1))
    >>> RandomFlip("horizontal").apply(np.arange(3.0).reshape(1, 1, 3, 1), {"flips": np.array([True])})[0, 0, :, 0]
    array([2., 1., 0.])
"""

from __future__ import annotations

import math

from .. import backend
from ..arraymath import image
from ..arraymath.shapes import normalize_data_format
from .base import Layer, check_image_input, check_positive_int, finite_number

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def check_seed(seed, owner: str):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f'{owner}: argument "seed" must be None or an int, received {seed!r}')
    return seed


def factor_range(factor, arg: str, owner: str, bounds, number_range, open_low: bool = False) -> tuple:
    """Keras's (lower, upper) of a factor: a number f in ``bounds`` -> ``number_range(|f|)``; a pair -> sorted,
    each entry inside ``bounds`` (closed, or open below with ``open_low``)."""
    low, high = bounds
    expected = f'a number or a list of two numbers in {"(" if open_low else "["}{low}, {high}]'

    def inside(v):
        return finite_number(v) and (v > low if open_low else v >= low) and v <= high

    if finite_number(factor) and inside(factor):
        return number_range(abs(float(factor)))
    if isinstance(factor, (list, tuple)) and len(factor) == 2 and all(inside(v) for v in factor):
        return tuple(sorted(float(v) for v in factor))
    raise ValueError(f'{owner}: argument "{arg}" must be {expected}, received {factor!r}')


def check_choice(value, arg: str, owner: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f'{owner}: argument "{arg}" must be one of {", ".join(map(repr, choices))}, '
                         f"received {value!r}")
    return value


def check_value_range(value_range, owner: str) -> list:
    if not (isinstance(value_range, (list, tuple)) and len(value_range) == 2 and all(map(finite_number, value_range))):
        raise ValueError(f'{owner}: argument "value_range" must be a list of two numbers [low, high], '
                         f"received {value_range!r}")
    return [float(v) for v in value_range]


class RandomImageLayer(Layer):
    """The shared machinery: seed, channels_last check, identity at inference, draw then apply."""

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._owner = f'{type(self).__name__} "{self.name}"'
        self.seed = check_seed(seed, self._owner)
        self.data_format = normalize_data_format(data_format, self._owner)
        self._generator = None if seed is None else backend.rng_for(seed)
        self.last_draw = None

    @property
    def rng(self):
        """The layer's own generator (``seed`` given) or the global one."""
        return backend.global_rng() if self._generator is None else self._generator

    def compute_output_shape(self, input_shape) -> tuple:
        check_image_input(self, input_shape)
        return tuple(input_shape)

    def draw(self, shape) -> dict:
        """Random parameters for a batch of ``shape``."""
        raise NotImplementedError

    def apply(self, x, params: dict):
        """The augmented batch for the parameters ``params`` (remembering what ``apply_backward`` needs)."""
        raise NotImplementedError

    def apply_backward(self, dy):
        raise NotImplementedError

    def inference(self, x):
        return x

    def forward(self, x, training: bool = False):
        if x.dtype.kind != "f":
            x = backend.cast(x)  # Keras's augmentation layers output floats
        if not training:
            self.last_draw = None
            return self.inference(x)
        self.last_draw = self.draw(x.shape)
        return self.apply(x, self.last_draw)

    def backward(self, dy, need_dx: bool = True):
        if not need_dx:
            return None
        return dy if self.last_draw is None else self.apply_backward(dy)

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed, "data_format": self.data_format}


class RandomFlip(RandomImageLayer):
    LOOP_REFERENCE = "convscope.arraymath.reference_image.flip_loops"

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.mode = check_choice(mode, "mode", self._owner, FLIP_MODES)
        self._horizontal = mode in ("horizontal", "horizontal_and_vertical")
        self._vertical = mode in ("vertical", "horizontal_and_vertical")

    def draw(self, shape) -> dict:
        return {"flips": self.rng.random(shape[0]) <= 0.5}

    def apply(self, x, params: dict):
        self._flips = params["flips"]
        return image.flip(x, self._flips, self._horizontal, self._vertical)

    def apply_backward(self, dy):
        return image.flip(dy, self._flips, self._horizontal, self._vertical)  # a flip is its own transpose

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


class ResamplingLayer(RandomImageLayer):
    """Rotation, zoom and translation: a per-image transform sampled with ``arraymath.image``'s taps."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.fill_mode = check_choice(fill_mode, "fill_mode", self._owner, image.FILL_MODES)
        self.interpolation = check_choice(interpolation, "interpolation", self._owner, image.INTERPOLATIONS)
        if not finite_number(fill_value):
            raise TypeError(f'{self._owner}: argument "fill_value" must be a number (finite), received {fill_value!r}')
        self.fill_value = float(fill_value)

    def transforms(self, params: dict, shape, dtype):
        """(N, 8) transforms of ``params`` for a batch of ``shape``."""
        raise NotImplementedError

    def apply(self, x, params: dict):
        hw = x.shape[1:3]
        self._taps = image.sampling_taps(self.transforms(params, x.shape, x.dtype), hw, hw, self.interpolation,
                                         self.fill_mode, x.dtype)
        return image.gather_taps(x, *self._taps, hw, self.fill_value)

    def apply_backward(self, dy):
        index, weight, _ = self._taps
        return image.scatter_taps(dy, index, weight, dy.shape[1:3])

    def get_config(self) -> dict:
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


class RandomRotation(ResamplingLayer):
    LOOP_REFERENCE = "convscope.arraymath.reference_image.affine_transform_loops"

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = factor_range(factor, "factor", self._owner, (-1, 1), lambda f: (-f, f))

    def draw(self, shape) -> dict:
        return {"angles": self.rng.uniform(self.factor[0], self.factor[1], shape[0]) * (2 * math.pi)}

    def transforms(self, params, shape, dtype):
        return image.rotation_transforms(params["angles"], shape[1], shape[2], dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(ResamplingLayer):
    LOOP_REFERENCE = "convscope.arraymath.reference_image.affine_transform_loops"

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        # Keras: every entry in (-1, 1] (a zoom of 1 + factor must stay positive); a number f gives [-|f|, |f|].
        self._height = factor_range(height_factor, "height_factor", self._owner, (-1, 1), lambda f: (-f, f), True)
        self._width = None if width_factor is None else factor_range(
            width_factor, "width_factor", self._owner, (-1, 1), lambda f: (-f, f), True)

    def draw(self, shape) -> dict:
        height = 1 + self.rng.uniform(*self._height, shape[0])
        width = height if self._width is None else 1 + self.rng.uniform(*self._width, shape[0])
        return {"zooms": backend.xp.stack([height, width], axis=1)}

    def transforms(self, params, shape, dtype):
        return image.zoom_transforms(params["zooms"], shape[1], shape[2], dtype)

    def get_config(self) -> dict:
        def listed(f):
            return list(f) if isinstance(f, (list, tuple)) else f

        return {**super().get_config(), "height_factor": listed(self.height_factor),
                "width_factor": listed(self.width_factor)}


class RandomTranslation(ResamplingLayer):
    LOOP_REFERENCE = "convscope.arraymath.reference_image.affine_transform_loops"

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = factor_range(height_factor, "height_factor", self._owner, (-1, 1), lambda f: (-f, f))
        self._width = factor_range(width_factor, "width_factor", self._owner, (-1, 1), lambda f: (-f, f))

    def draw(self, shape) -> dict:
        down = self.rng.uniform(*self._height, shape[0]) * shape[1]
        right = self.rng.uniform(*self._width, shape[0]) * shape[2]
        return {"shifts": backend.xp.stack([down, right], axis=1)}

    def transforms(self, params, shape, dtype):
        return image.translation_transforms(params["shifts"], dtype)

    def get_config(self) -> dict:
        def listed(f):
            return list(f) if isinstance(f, (list, tuple)) else f

        return {**super().get_config(), "height_factor": listed(self.height_factor),
                "width_factor": listed(self.width_factor)}


class RandomContrast(RandomImageLayer):
    LOOP_REFERENCE = "convscope.arraymath.reference_image.contrast_loops"

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        # Keras's bounds [0, 1] and its number rule (lower = max(-f, 0) = 0).
        self.factor = factor_range(factor, "factor", self._owner, (0, 1), lambda f: (0.0, f))
        self.value_range = check_value_range(value_range, self._owner)
        if self.value_range[0] > self.value_range[1]:
            raise ValueError(f'{self._owner}: argument "value_range" must be [low, high] with low <= high, '
                             f"received {value_range!r}")

    def draw(self, shape) -> dict:
        return {"factors": self.rng.uniform(1 - self.factor[0], 1 + self.factor[1], shape[0])}

    def apply(self, x, params: dict):
        self._factors = params["factors"]
        y, self._passed = image.adjust_contrast(x, self._factors, self.value_range)
        return y

    def apply_backward(self, dy):
        return image.adjust_contrast_backward(dy, self._factors, self._passed)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}


class RandomBrightness(RandomImageLayer):
    LOOP_REFERENCE = "convscope.arraymath.reference_image.brightness_loops"

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = factor_range(factor, "factor", self._owner, (-1, 1), lambda f: (-f, f))
        self.value_range = sorted(check_value_range(value_range, self._owner))

    def draw(self, shape) -> dict:
        low, high = self.value_range
        return {"deltas": self.rng.uniform(*self.factor, shape[0]) * (high - low)}

    def apply(self, x, params: dict):
        y, self._passed = image.adjust_brightness(x, params["deltas"], self.value_range)
        return y

    def apply_backward(self, dy):
        return dy * self._passed

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}


class RandomCrop(RandomImageLayer):
    """(batch, H, W, C) -> (batch, height, width, C).

    Training: when H > height and W > width, rows top..top+height-1 and columns left..left+width-1 with
    top ~ U{0..H-height} and left ~ U{0..W-width}, one window for the whole batch. Otherwise (as Keras)
    the window starts at the centred aspect-ratio window's corner, is clipped to the image and, if it is
    then smaller than (height, width), resized bilinearly to it.

    Inference: the largest centred window of the target aspect ratio, resized bilinearly to (height,
    width), as Keras's documentation says (Keras 3.15's code returns the input unchanged instead, whose
    shape then disagrees with the layer's output shape; convscope follows the documented behaviour).
    """

    LOOP_REFERENCE = "convscope.arraymath.reference_image.resize_loops"

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.height = check_positive_int(height, "height", self._owner)
        self.width = check_positive_int(width, "width", self._owner)

    def compute_output_shape(self, input_shape) -> tuple:
        check_image_input(self, input_shape)
        return (input_shape[0], self.height, self.width, input_shape[3])

    def draw(self, shape) -> dict:
        h, w = shape[1:3]
        if h > self.height and w > self.width:
            return {"top": int(self.rng.integers(0, h - self.height + 1)),
                    "left": int(self.rng.integers(0, w - self.width + 1))}
        top, left, _, _ = image.aspect_window((h, w), (self.height, self.width))
        return {"top": top, "left": left}

    def apply(self, x, params: dict):
        self._x_shape, self._corner = x.shape, (params["top"], params["left"])
        window = image.crop(x, *self._corner, self.height, self.width)
        self._matrices = None
        if window.shape[1:3] != (self.height, self.width):
            self._matrices = image.resize_matrices(window.shape[1:3], (self.height, self.width), dtype=x.dtype)
            return image.resize(window, *self._matrices)
        return window

    def apply_backward(self, dy):
        if self._matrices is not None:
            dy = image.resize_backward(dy, *self._matrices)
        return image.crop_backward(dy, self._x_shape, *self._corner)

    def window(self, in_hw) -> tuple:
        """(top, left, height, width) of the window of an ``in_hw`` image that inference resizes to the output."""
        return image.aspect_window(in_hw, (self.height, self.width))

    def inference(self, x):
        self._inference_matrices = image.resize_matrices(x.shape[1:3], (self.height, self.width),
                                                         crop_to_aspect_ratio=True, dtype=x.dtype)
        return image.resize(x, *self._inference_matrices)

    def backward(self, dy, need_dx: bool = True):
        if need_dx and self.last_draw is None:
            return image.resize_backward(dy, *self._inference_matrices)
        return super().backward(dy, need_dx)

    def get_config(self) -> dict:
        return {**super().get_config(), "height": self.height, "width": self.width}
