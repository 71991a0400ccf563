"""UpSampling2D: enlarge feature maps by integer factors, with no parameters (Keras 3's layer).

Input (batch, height, width, channels) -> output (batch, height * size[0], width * size[1], channels).

* ``interpolation="nearest"`` repeats every row size[0] times and every column size[1] times:
  y[n, i, j, c] = x[n, i // sh, j // sw, c]; backward sums dy over each sh x sw block.
* ``interpolation="bilinear"`` is Keras's ``ops.image.resize`` to the new size (TensorFlow's bilinear
  resize: half-pixel centres, no antialiasing, edges clamped; equal to
  ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``): output row i reads
  input rows around u = (i + 0.5) / sh - 0.5 with linear weights, and likewise along columns.
  The map is linear, y = A_h x A_w^T per channel, so the backward is dx = A_h^T dy A_w.

Keras's other resize methods ("bicubic", "lanczos3", "lanczos5", "area") are refused, and so is
``data_format="channels_first"`` (convscope is channels-last throughout).

Example:
    >>> UpSampling2D(size=(1, 2))(np.arange(12.0).reshape(2, 2, 1, 3))[0, 0]
    array([[0., 1., 2.],
           [0., 1., 2.]])
    >>> UpSampling2D(3, interpolation="bilinear")(np.zeros((8, 7, 7, 16), "float32")).shape
    (8, 21, 21, 16)
"""

from __future__ import annotations

from .. import backend
from ..arraymath.shapes import normalize_data_format, normalize_tuple
from ..arraymath.upsampling import (
    INTERPOLATIONS,
    bilinear_matrix,
    upsample2d_bilinear,
    upsample2d_bilinear_backward,
    upsample2d_nearest,
    upsample2d_nearest_backward,
)
from .base import Layer, check_image_input

_KERAS_ONLY_INTERPOLATIONS = ("bicubic", "lanczos3", "lanczos5", "area")


class UpSampling2D(Layer):
    LOOP_REFERENCE = "convscope.arraymath.reference_resample.upsample2d_loops"

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        owner = f'UpSampling2D "{self.name}"'
        self.size = normalize_tuple(size, 2, "size", owner)
        self.data_format = normalize_data_format(data_format, owner)
        if not isinstance(interpolation, str) or interpolation.lower() not in INTERPOLATIONS:
            extra = ""
            if isinstance(interpolation, str) and interpolation.lower() in _KERAS_ONLY_INTERPOLATIONS:
                extra = f" (Keras also resizes with {interpolation.lower()!r}; convscope does not implement it)"
            raise ValueError(
                f'{owner}: argument "interpolation" must be one of {", ".join(map(repr, INTERPOLATIONS))}, '
                f"received {interpolation!r}{extra}"
            )
        self.interpolation = interpolation.lower()
        self.matrix_h = self.matrix_w = None

    def build(self, input_shape) -> None:
        super().build(input_shape)
        if self.interpolation == "bilinear":
            # The interpolation weights depend only on the input size: fixed once here.
            dtype = backend.floatx()
            self.matrix_h = bilinear_matrix(input_shape[1], self.size[0], dtype)
            self.matrix_w = bilinear_matrix(input_shape[2], self.size[1], dtype)

    def compute_output_shape(self, input_shape) -> tuple:
        check_image_input(self, input_shape)
        return (input_shape[0], input_shape[1] * self.size[0], input_shape[2] * self.size[1], input_shape[3])

    def _matrices(self, dtype):
        if self.matrix_h.dtype == dtype:
            return self.matrix_h, self.matrix_w
        # An input of another float type than floatx(): weights computed in its precision, as TF does.
        return (bilinear_matrix(self.matrix_h.shape[1], self.size[0], dtype),
                bilinear_matrix(self.matrix_w.shape[1], self.size[1], dtype))

    def forward(self, x, training: bool = False):
        if self.interpolation == "nearest":
            return upsample2d_nearest(x, self.size)
        if x.dtype.kind != "f":
            x = backend.cast(x)
        return upsample2d_bilinear(x, *self._matrices(x.dtype))

    def backward(self, dy, need_dx: bool = True):
        if not need_dx:
            return None
        if self.interpolation == "nearest":
            return upsample2d_nearest_backward(dy, self.size)
        return upsample2d_bilinear_backward(dy, *self._matrices(dy.dtype))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "size": list(self.size),
            "data_format": self.data_format,
            "interpolation": self.interpolation,
        }
