"""Resizing and CenterCrop: Keras 3's deterministic image-size layers (they act in training and inference).

Input (batch, H, W, C) -> output (batch, height, width, C), channels_last only.

* ``Resizing(height, width, interpolation="bilinear")`` is Keras's ``ops.image.resize``: half-pixel
  centres, no antialiasing; "bilinear" reads the two nearest source rows (and columns) of
  u = (i + 0.5) * H / height - 0.5, clamped at the edges, "nearest" the row floor((i + 0.5) * H /
  height). ``crop_to_aspect_ratio=True`` first keeps the largest centred window with the target's
  aspect ratio; ``pad_to_aspect_ratio=True`` instead centres the image in a frame of that ratio
  filled with ``fill_value``. Per channel the map is y = B_h x B_w^T (+ the padding's fill), so the
  backward is dx = B_h^T dy B_w (``arraymath.image``).
* ``CenterCrop(height, width)``: the centred window, (H - height) // 2 rows from the top and
  (W - width) // 2 columns from the left, when the image holds it; otherwise Keras's
  ``smart_resize``, i.e. ``Resizing(height, width, crop_to_aspect_ratio=True)``.

Keras's "bicubic", "lanczos3", "lanczos5" and ``antialias=True`` are refused; so is
``data_format="channels_first"``. An integer input is computed in floatx() (Keras rounds the
result back to the input's integer type).

Example:
    >>> Resizing(2, 2)(np.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> CenterCrop(2, 2)(np.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0]
    array([[ 5.,  6.],
           [ 9., 10.]])
"""

from __future__ import annotations

from .. import backend
from ..arraymath import image
from ..arraymath.shapes import normalize_data_format
from .base import Layer, check_image_input, check_positive_int, finite_number

_KERAS_ONLY_INTERPOLATIONS = ("bicubic", "lanczos3", "lanczos5", "area")


class _ImageSizeLayer(Layer):
    """A (height, width) target, channels_last, float outputs; the resize matrices made per input size."""

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._owner = f'{type(self).__name__} "{self.name}"'
        self.height = check_positive_int(height, "height", self._owner)
        self.width = check_positive_int(width, "width", self._owner)
        self.data_format = normalize_data_format(data_format, self._owner)
        self._matrices = self._window = None

    def compute_output_shape(self, input_shape) -> tuple:
        check_image_input(self, input_shape)
        return (input_shape[0], self.height, self.width, input_shape[3])

    def resize_matrices(self, in_hw, dtype):
        raise NotImplementedError

    def _resize(self, x, fill_value=0.0):
        key = (x.shape[1:3], x.dtype)
        if self._matrices is None or self._matrices[0] != key:
            # The weights depend only on the input size and type: made once per size.
            self._matrices = (key, self.resize_matrices(x.shape[1:3], x.dtype))
        return image.resize(x, *self._matrices[1], fill_value)

    def backward(self, dy, need_dx: bool = True):
        if not need_dx:
            return None
        if self._window is not None:
            return image.crop_backward(dy, *self._window)
        return image.resize_backward(dy, *self._matrices[1])

    def get_config(self) -> dict:
        return {**super().get_config(), "height": self.height, "width": self.width, "data_format": self.data_format}


class Resizing(_ImageSizeLayer):
    LOOP_REFERENCE = "convscope.arraymath.reference_image.resize_loops"

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
                 fill_mode="constant", fill_value=0.0, antialias=False, data_format=None, **kwargs):
        super().__init__(height, width, data_format, **kwargs)
        owner = self._owner
        if not isinstance(interpolation, str) or interpolation not in image.INTERPOLATIONS:
            extra = ""
            if interpolation in _KERAS_ONLY_INTERPOLATIONS:
                extra = f" (Keras also resizes with {interpolation!r}; convscope does not implement it)"
            raise ValueError(f'{owner}: argument "interpolation" must be one of '
                             f'{", ".join(map(repr, image.INTERPOLATIONS))}, received {interpolation!r}{extra}')
        for arg, value in (("crop_to_aspect_ratio", crop_to_aspect_ratio), ("pad_to_aspect_ratio", pad_to_aspect_ratio),
                           ("antialias", antialias)):
            if not isinstance(value, bool):
                raise TypeError(f'{owner}: argument "{arg}" must be a bool, received {value!r}')
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError(f'{owner}: only one of "pad_to_aspect_ratio" and "crop_to_aspect_ratio" can be True')
        if antialias:
            raise ValueError(f'{owner}: argument "antialias" must be False, received True (convscope resizes without '
                             "an antialiasing filter)")
        if fill_mode != "constant":
            raise ValueError(f'{owner}: argument "fill_mode" must be "constant" (the only padding Keras supports), '
                             f"received {fill_mode!r}")
        if not finite_number(fill_value):
            raise TypeError(f'{owner}: argument "fill_value" must be a number (finite), received {fill_value!r}')
        self.interpolation, self.antialias, self.fill_mode = interpolation, antialias, fill_mode
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = crop_to_aspect_ratio, pad_to_aspect_ratio
        self.fill_value = float(fill_value)

    def resize_matrices(self, in_hw, dtype):
        return image.resize_matrices(in_hw, (self.height, self.width), self.interpolation, self.crop_to_aspect_ratio,
                                     self.pad_to_aspect_ratio, dtype)

    def window(self, in_hw) -> tuple:
        """(top, left, height, width) of the part of an ``in_hw`` image that is resized (all of it unless
        ``crop_to_aspect_ratio``)."""
        if self.crop_to_aspect_ratio:
            return image.aspect_window(in_hw, (self.height, self.width))
        return (0, 0, *in_hw)

    def padding(self, in_hw) -> tuple:
        """(top, left, padded height, padded width) of the fill_value frame of ``pad_to_aspect_ratio``."""
        return image.aspect_padding(in_hw, (self.height, self.width))

    def forward(self, x, training: bool = False):
        if x.dtype.kind != "f":
            x = backend.cast(x)
        return self._resize(x, self.fill_value if self.pad_to_aspect_ratio else 0.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio, "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
                "fill_mode": self.fill_mode, "fill_value": self.fill_value, "antialias": self.antialias}


class CenterCrop(_ImageSizeLayer):
    LOOP_REFERENCE = "convscope.arraymath.reference_image.center_crop_loops"

    def resize_matrices(self, in_hw, dtype):
        return image.resize_matrices(in_hw, (self.height, self.width), crop_to_aspect_ratio=True, dtype=dtype)

    def fits(self, in_hw) -> bool:
        """Whether an ``in_hw`` image holds the target window (a plain crop), else a smart resize."""
        return in_hw[0] >= self.height and in_hw[1] >= self.width

    def window(self, in_hw) -> tuple:
        """(top, left, height, width) of the window of an ``in_hw`` image that becomes the output (resized to
        (self.height, self.width) when it is smaller)."""
        if self.fits(in_hw):
            return (in_hw[0] - self.height) // 2, (in_hw[1] - self.width) // 2, self.height, self.width
        return image.aspect_window(in_hw, (self.height, self.width))

    def forward(self, x, training: bool = False):
        if x.dtype.kind != "f":
            x = backend.cast(x)
        if not self.fits(x.shape[1:3]):
            self._window = None
            return self._resize(x)
        top, left, _, _ = self.window(x.shape[1:3])
        self._window = (x.shape, top, left)
        return image.crop(x, top, left, self.height, self.width)
