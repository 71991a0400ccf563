"""Merging layers: one output from a list of inputs, as Keras's ``keras.layers.Add``, ``Concatenate``, ...

Each takes a list of n >= 2 arrays (``Subtract``: exactly 2) and has no parameters:

    Add:         y = x_0 + x_1 + ... + x_{n-1}           dL/dx_k = dy
    Subtract:    y = x_0 - x_1                           dL/dx_0 = dy, dL/dx_1 = -dy
    Multiply:    y = x_0 * x_1 * ... (element-wise)      dL/dx_k = dy * prod_{j != k} x_j
    Average:     y = (x_0 + ... + x_{n-1}) / n           dL/dx_k = dy / n
    Maximum:     y = max_k x_k (element-wise)            dL/dx_k = dy where x_k is the winner, else 0
    Minimum:     y = min_k x_k (element-wise)            (the same with the minimum)
    Concatenate: y = the inputs joined along ``axis``     dL/dx_k = x_k's slice of dy

Shapes: the element-wise layers need inputs of one rank whose sizes agree axis by axis or are 1 there
(broadcast, as Keras 3's: (None, 1, 1, C) scales (None, H, W, C) in a squeeze-and-excitation block), and
return the broadcast shape; a broadcast input's gradient is dL/dx summed over the axes it was repeated along. ``Concatenate(axis)`` needs shapes equal on every axis but ``axis``
and returns that shape with the ``axis`` sizes summed, e.g. (None, 4, 4, 8) and (None, 4, 4, 16) ->
(None, 4, 4, 24) for axis=-1. ``axis`` counts the batch axis as 0 (which it may not be) and may be
negative, as in Keras.

Maximum / Minimum: at each element the whole gradient goes to one input, the first one (lowest index)
holding the extreme; on a tie the later tied inputs get 0, as max pooling does for its first maximum.

``build`` takes a list of shapes, ``forward`` a list of arrays, and ``backward(dy)`` returns a list
of gradients, one per input in order (None when ``need_dx`` is False). The functions ``add``,
``subtract``, ``multiply``, ``average``, ``maximum``, ``minimum`` and ``concatenate`` are Keras's
functional forms: ``add([a, b])`` is ``Add()([a, b])``.

Example:
    >>> a, b = np.ones((2, 4, 4, 8), "float32"), np.ones((2, 4, 4, 16), "float32")
    >>> Concatenate()([a, b]).shape
    (2, 4, 4, 24)
    >>> Add()([a, a]).shape
    (2, 4, 4, 8)
"""

from __future__ import annotations

from ..arraymath import merge as ops
from ..arraymath.functions import unbroadcast
from .base import Layer


class _Merge(Layer):
    """Validation shared by the merging layers: a list of ``MIN_INPUTS``..``MAX_INPUTS`` input shapes."""

    MIN_INPUTS = 2
    MAX_INPUTS = None

    def _owner(self) -> str:
        return f'{type(self).__name__} "{self.name}"'

    def _shapes(self, input_shape) -> list:
        """``input_shape`` as a list of tuples, refused unless it lists an allowed number of shapes."""
        if not isinstance(input_shape, (list, tuple)) or not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"{self._owner()}: a merge layer must be called on a list of inputs, "
                             f"received input_shape={input_shape!r}")
        shapes = [tuple(s) for s in input_shape]
        count = len(shapes)
        if self.MAX_INPUTS == self.MIN_INPUTS and count != self.MIN_INPUTS:
            raise ValueError(f"{self._owner()}: must be called on exactly {self.MIN_INPUTS} inputs, "
                             f"received {count} with shapes {shapes}")
        if count < self.MIN_INPUTS:
            raise ValueError(f"{self._owner()}: must be called on a list of at least {self.MIN_INPUTS} inputs, "
                             f"received {count} with shapes {shapes}")
        batches = {s[0] for s in shapes if s} - {None}
        if len(batches) > 1:
            raise ValueError(f"{self._owner()}: cannot merge tensors with different batch sizes, "
                             f"received shapes {shapes}")
        return shapes

    def build(self, input_shape) -> None:
        super().build(input_shape)
        # One shape per input, as a list: the base class's per-input checks index into it.
        self.input_shape = [tuple(s) for s in input_shape]

    def compute_output_shape(self, input_shape) -> tuple:
        """As Keras 3: the inputs' shapes broadcast axis by axis (each size equal, or 1: a squeeze-and-excitation
        block's (None, 1, 1, C) scale against (None, H, W, C)); ranks must agree."""
        shapes = self._shapes(input_shape)
        if any(len(s) != len(shapes[0]) for s in shapes):
            raise ValueError(f"{self._owner()}: inputs must all have the same rank, received shapes {shapes}")
        out = []
        for sizes in zip(*(s[1:] for s in shapes)):
            known = {d for d in sizes if d not in (None, 1)}
            if len(known) > 1:
                raise ValueError(f"{self._owner()}: inputs must have the same shape, or 1 along an axis to broadcast, "
                                 f"received shapes {shapes}")
            out.append(known.pop() if known else None if None in sizes else 1)
        return self._batch(shapes) + tuple(out)

    @staticmethod
    def _batch(shapes) -> tuple:
        known = [s[0] for s in shapes if s and s[0] is not None]
        return (known[0] if known else None,)

    def _inputs(self, inputs) -> list:
        """The forward inputs as a list, refused unless they are as many as the layer was built for."""
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{self._owner()}: a merge layer must be called on a list of inputs, "
                             f"received {type(inputs).__name__}")
        if self.built and len(inputs) != len(self.input_shape):
            raise ValueError(f"{self._owner()}: was built for {len(self.input_shape)} inputs, "
                             f"received {len(inputs)} with shapes {[tuple(x.shape) for x in inputs]}")
        self._in_shapes = [x.shape for x in inputs]
        return list(inputs)

    def _fit(self, dxs) -> list:
        """Each input's gradient summed back over the axes it was broadcast along."""
        return [unbroadcast(d, s) for d, s in zip(dxs, self._in_shapes)]


class Add(_Merge):
    """y = x_0 + x_1 + ... (element-wise); every input receives dy."""

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.add_loops"

    def forward(self, inputs, training: bool = False):
        xs = self._inputs(inputs)
        self._n = len(xs)
        return ops.add(xs)

    def backward(self, dy, need_dx: bool = True):
        return self._fit(ops.add_backward(dy, self._n)) if need_dx else None


class Subtract(_Merge):
    """y = x_0 - x_1, for exactly two inputs; dL/dx_0 = dy, dL/dx_1 = -dy."""

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.subtract_loops"
    MAX_INPUTS = 2

    def forward(self, inputs, training: bool = False):
        return ops.subtract(self._inputs(inputs))

    def backward(self, dy, need_dx: bool = True):
        return self._fit(ops.subtract_backward(dy)) if need_dx else None


class Multiply(_Merge):
    """y = x_0 * x_1 * ... (element-wise); dL/dx_k = dy times the product of the other inputs."""

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.multiply_loops"

    def forward(self, inputs, training: bool = False):
        self._xs = self._inputs(inputs)
        return ops.multiply(self._xs)

    def backward(self, dy, need_dx: bool = True):
        return self._fit(ops.multiply_backward(dy, self._xs)) if need_dx else None


class Average(_Merge):
    """y = (x_0 + ... + x_{n-1}) / n (element-wise); every input receives dy / n."""

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.average_loops"

    def forward(self, inputs, training: bool = False):
        xs = self._inputs(inputs)
        self._n = len(xs)
        return ops.average(xs)

    def backward(self, dy, need_dx: bool = True):
        return self._fit(ops.average_backward(dy, self._n)) if need_dx else None


class Maximum(_Merge):
    """y = max_k x_k (element-wise). The gradient of each element goes whole to the first input holding
    the maximum (ties: the lowest index wins, the other tied inputs get 0)."""

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.maximum_loops"

    def forward(self, inputs, training: bool = False):
        xs = self._inputs(inputs)
        self._n = len(xs)
        y, self._winner = ops.maximum(xs)
        return y

    def backward(self, dy, need_dx: bool = True):
        return self._fit(ops.extreme_backward(dy, self._winner, self._n)) if need_dx else None


class Minimum(_Merge):
    """y = min_k x_k (element-wise). The gradient of each element goes whole to the first input holding
    the minimum (ties: the lowest index wins, the other tied inputs get 0)."""

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.minimum_loops"

    def forward(self, inputs, training: bool = False):
        xs = self._inputs(inputs)
        self._n = len(xs)
        y, self._winner = ops.minimum(xs)
        return y

    def backward(self, dy, need_dx: bool = True):
        return self._fit(ops.extreme_backward(dy, self._winner, self._n)) if need_dx else None


class Concatenate(_Merge):
    """The inputs joined along ``axis`` (default -1, the channels of an NHWC map; never 0, the batch axis).

    Input shapes must agree on every axis but ``axis``; the output's ``axis`` size is the sum of theirs.
    Backward cuts dy back into the inputs' slices.
    """

    LOOP_REFERENCE = "convscope.arraymath.reference_shape.concatenate_loops"

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f'Concatenate "{self.name}": argument "axis" must be an int, received {axis!r}')
        if axis == 0:
            raise ValueError(f'Concatenate "{self.name}": argument "axis" cannot be 0, the batch axis, '
                             f"received {axis!r}")
        self.axis = axis

    def compute_output_shape(self, input_shape) -> tuple:
        shapes = self._shapes(input_shape)
        rank = len(shapes[0])
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f'Concatenate "{self.name}": argument "axis" {self.axis} is not a non-batch axis of '
                             f"inputs of rank {rank}, received shapes {shapes}")
        axis = self.axis % rank

        def others(shape):
            return shape[1:axis] + shape[axis + 1 :]

        if any(len(s) != rank or others(s) != others(shapes[0]) for s in shapes):
            raise ValueError(f'Concatenate "{self.name}": inputs must have the same shape except along the '
                             f"concatenation axis {self.axis}, received shapes {shapes}")
        sizes = [s[axis] for s in shapes]
        joined = None if None in sizes else sum(sizes)
        return self._batch(shapes) + shapes[0][1:axis] + (joined,) + shapes[0][axis + 1 :]

    def forward(self, inputs, training: bool = False):
        xs = self._inputs(inputs)
        self._sizes = [x.shape[self.axis] for x in xs]
        return ops.concatenate(xs, self.axis)

    def backward(self, dy, need_dx: bool = True):
        return ops.concatenate_backward(dy, self._sizes, self.axis) if need_dx else None

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


def add(inputs, **kwargs):
    """Keras's functional ``add``: ``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """Keras's functional ``subtract``: ``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Keras's functional ``multiply``: ``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Keras's functional ``average``: ``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Keras's functional ``maximum``: ``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Keras's functional ``minimum``: ``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """Keras's functional ``concatenate``: ``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
