"""Reshaping layers: the same numbers in another arrangement, no parameters (Keras's ``keras.layers.Reshape``, ...).

Reshape(target_shape): (batch, d1, ..., dk) -> (batch, *target_shape), each sample's elements in row-major
    order; one entry of ``target_shape`` may be -1, standing for size / prod(the other entries).
Permute(dims): (batch, d1, ..., dk) -> (batch, d_dims[0], ..., d_dims[k-1]), ``dims`` a permutation of
    1..k (1-based, the batch axis excluded), e.g. Permute((2, 1)) turns (None, 10, 64) into (None, 64, 10).
ZeroPadding2D(padding): (batch, h, w, c) -> (batch, top + h + bottom, left + w + right, c), the border 0.
Cropping2D(cropping):   (batch, h, w, c) -> (batch, h - top - bottom, w - left - right, c).

``padding`` and ``cropping`` take Keras's three forms: an int (the same on all four sides), a pair
(symmetric_height, symmetric_width), or ((top, bottom), (left, right)). The gradients move dy back: the
inverse reshape or permutation, the cropping of dy for padding, and dy padded with zeros for cropping.

Example:
    >>> Reshape((-1, 2, 2))(np.zeros((8, 12), "float32")).shape
    (8, 3, 2, 2)
    >>> ZeroPadding2D(((1, 2), (0, 1)))(np.zeros((8, 5, 5, 3), "float32")).shape
    (8, 8, 6, 3)
"""

from __future__ import annotations

from ..arraymath import reshaping as ops
from ..arraymath.shapes import normalize_data_format
from .base import Layer, check_image_input


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pair(entry):
    """An int as (int, int), a pair of ints as a tuple, anything else as None."""
    if _is_int(entry):
        return (entry, entry)
    if isinstance(entry, (list, tuple)) and len(entry) == 2 and all(_is_int(v) for v in entry):
        return tuple(entry)
    return None


def normalize_pairs(value, arg: str, owner: str) -> tuple:
    """Keras's three forms of 2-D padding / cropping as ((top, bottom), (left, right)), all >= 0."""
    if _is_int(value):
        pairs = ((value, value), (value, value))
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        pairs = (_pair(value[0]), _pair(value[1]))
    else:
        pairs = (None,)
    if None in pairs:
        raise TypeError(
            f'{owner}: argument "{arg}" must be an int, a tuple of 2 ints (symmetric_height, symmetric_width) or '
            f"a tuple of 2 tuples of 2 ints ((top, bottom), (left, right)), received {value!r}"
        )
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f'{owner}: argument "{arg}" must be >= 0 on every side, received {value!r}')
    return pairs


class Reshape(Layer):
    """(batch, d1, ..., dk) -> (batch, *target_shape), same elements in row-major order; -1 once at most.

    Output size: the -1 entry is (d1 * ... * dk) / (product of the other entries), which must divide exactly;
    without -1 the product of ``target_shape`` must equal d1 * ... * dk.
    """

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.reshape_loops"

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        owner = f'Reshape "{self.name}"'
        if not isinstance(target_shape, (list, tuple)) or not target_shape or not all(
                _is_int(d) for d in target_shape):
            raise TypeError(f'{owner}: argument "target_shape" must be a non-empty tuple of ints, '
                            f"received {target_shape!r}")
        if any(d < 1 and d != -1 for d in target_shape):
            raise ValueError(f'{owner}: each dimension in argument "target_shape" must be a positive int, or -1 for '
                             f"a single unknown dimension, received {target_shape!r}")
        if list(target_shape).count(-1) > 1:
            raise ValueError(f'{owner}: there must be at most one unknown dimension (-1) in argument "target_shape", '
                             f"received {target_shape!r}")
        self.target_shape = tuple(target_shape)

    def compute_output_shape(self, input_shape) -> tuple:
        if len(input_shape) < 2 or any(d is None for d in input_shape[1:]):
            raise ValueError(f'Input 0 of layer "{self.name}" needs known non-batch sizes, '
                             f"found shape={tuple(input_shape)}")
        size = 1
        for d in input_shape[1:]:
            size *= d
        known = 1
        for d in self.target_shape:
            if d != -1:
                known *= d
        if -1 not in self.target_shape:
            if known != size:
                raise ValueError(
                    f'Reshape "{self.name}": the total size of the tensor must be unchanged, received '
                    f"input_shape={tuple(input_shape)} ({size} values per sample), "
                    f"target_shape={self.target_shape} ({known} values)"
                )
            return (input_shape[0], *self.target_shape)
        if size % known:
            raise ValueError(
                f'Reshape "{self.name}": the total size of the tensor must be unchanged, but the input size {size} '
                f"cannot be divided by the product {known} of the specified dimensions in target_shape, received "
                f"input_shape={tuple(input_shape)}, target_shape={self.target_shape}"
            )
        return (input_shape[0], *(size // known if d == -1 else d for d in self.target_shape))

    def forward(self, x, training: bool = False):
        self._x_shape = x.shape
        return x.reshape((x.shape[0], *self.target_shape))

    def backward(self, dy, need_dx: bool = True):
        return dy.reshape(self._x_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Reorders the non-batch axes: output axis i (1-based) is input axis dims[i - 1]; the batch axis stays.

    Output shape: (batch, d_{dims[0]}, ..., d_{dims[k-1]}). Backward: dy by the inverse permutation.
    """

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.permute_loops"

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        owner = f'Permute "{self.name}"'
        if not isinstance(dims, (list, tuple)) or not dims or not all(_is_int(d) for d in dims):
            raise TypeError(f'{owner}: argument "dims" must be a non-empty tuple of ints, received {dims!r}')
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                f'{owner}: invalid permutation argument "dims": the set of indices must be consecutive and start '
                f"from 1 (the batch axis is not counted), received dims={tuple(dims)}"
            )
        self.dims = tuple(dims)

    def compute_output_shape(self, input_shape) -> tuple:
        if len(input_shape) != len(self.dims) + 1:
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: expected ndim={len(self.dims) + 1}, '
                f"found ndim={len(input_shape)}. Full shape received: {tuple(input_shape)}"
            )
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def forward(self, x, training: bool = False):
        return ops.permute(x, self.dims)

    def backward(self, dy, need_dx: bool = True):
        return ops.permute_backward(dy, self.dims)

    def get_config(self) -> dict:
        return {**super().get_config(), "dims": list(self.dims)}


class ZeroPadding2D(Layer):
    """Rows and columns of zeros around each (h, w) picture: out_h = top + h + bottom, out_w = left + w + right.

    ``padding``: int, (symmetric_height, symmetric_width) or ((top, bottom), (left, right)); default (1, 1).
    Backward: the padded border's gradient is dropped, the rest is dy cropped back to (h, w).
    """

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.zero_pad2d_loops"

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f'ZeroPadding2D "{self.name}"'
        self.padding = normalize_pairs(padding, "padding", owner)
        self.data_format = normalize_data_format(data_format, owner)

    def compute_output_shape(self, input_shape) -> tuple:
        check_image_input(self, input_shape)
        (top, bottom), (left, right) = self.padding
        n, h, w, c = input_shape
        return (n, top + h + bottom, left + w + right, c)

    def forward(self, x, training: bool = False):
        return ops.zero_pad2d(x, self.padding)

    def backward(self, dy, need_dx: bool = True):
        return ops.zero_pad2d_backward(dy, self.padding)

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": [list(p) for p in self.padding], "data_format": self.data_format}


class Cropping2D(Layer):
    """Drops rows and columns at the edges: out_h = h - top - bottom, out_w = w - left - right (both >= 1).

    ``cropping``: int, (symmetric_height, symmetric_width) or ((top, bottom), (left, right)); default none.
    Backward: dy back in place, zeros where the cropped cells were.
    """

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.crop2d_loops"

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f'Cropping2D "{self.name}"'
        self.cropping = normalize_pairs(cropping, "cropping", owner)
        self.data_format = normalize_data_format(data_format, owner)

    def compute_output_shape(self, input_shape) -> tuple:
        check_image_input(self, input_shape)
        (top, bottom), (left, right) = self.cropping
        n, h, w, c = input_shape
        if top + bottom >= h or left + right >= w:
            raise ValueError(
                f'Cropping2D "{self.name}": argument "cropping" must leave at least one row and one column: its '
                f"values should be smaller than the corresponding spatial dimension of the input, received "
                f"input_shape={tuple(input_shape)}, cropping={self.cropping}"
            )
        return (n, h - top - bottom, w - left - right, c)

    def forward(self, x, training: bool = False):
        return ops.crop2d(x, self.cropping)

    def backward(self, dy, need_dx: bool = True):
        return ops.crop2d_backward(dy, self.cropping)

    def get_config(self) -> dict:
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping], "data_format": self.data_format}
