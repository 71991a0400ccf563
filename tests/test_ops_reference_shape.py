"""The fast merging and reshaping ops (and the layers on them) agree with the plain loops of
``ops.reference_shape`` (and ``ops.reference_softmax``), forward and backward, on a grid of shapes with
batch > 1 and odd sizes. Maximum / minimum are checked on integer-valued inputs, full of ties.
Float64 results must agree to 1e-12; float32 results keep their dtype.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from convscope.layers.activation import Softmax
from convscope.layers.merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from convscope.layers.reshaping import Cropping2D, Permute, Reshape, ZeroPadding2D
from convscope.arraymath import merge, reference_shape, reshaping
from convscope.arraymath.reference_softmax import softmax_loops

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}
DTYPES = [np.float32, np.float64]
SHAPES = [(1, 3), (3, 5), (2, 3, 5), (3, 2, 3, 1), (2, 5, 3, 3)]


def _close(actual, expected, dtype):
    assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, **TOL[dtype])


def _arrays(n, shape, seed, dtype, ties=False):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: most elements tie between some inputs
        return [rng.integers(-1, 2, shape).astype(dtype) for _ in range(n)]
    return [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


# ---------------------------------------------------------------- element-wise merges
MERGES = [
    (Add, merge.add, reference_shape.add_loops),
    (Subtract, merge.subtract, reference_shape.subtract_loops),
    (Multiply, merge.multiply, reference_shape.multiply_loops),
    (Average, merge.average, reference_shape.average_loops),
    (Maximum, lambda xs: merge.maximum(xs)[0], reference_shape.maximum_loops),
    (Minimum, lambda xs: merge.minimum(xs)[0], reference_shape.minimum_loops),
]
MERGE_CASES = [
    pytest.param(cls, fast, loops, n, id=f"{cls.__name__}-{n}")
    for cls, fast, loops in MERGES
    for n in ([2] if cls is Subtract else [2, 3, 4])
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cls, fast, loops, n", MERGE_CASES)
def test_merge_forward_matches_loops(cls, fast, loops, n, shape, dtype):
    xs = _arrays(n, shape, seed=n + len(shape), dtype=dtype)
    expected = loops(xs)
    _close(fast(xs), expected, dtype)
    _close(cls()(xs), expected, dtype)
    assert cls.LOOP_REFERENCE == f"convscope.arraymath.reference_shape.{loops.__name__}"


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize(
    "fast, loops, backward_loops",
    [
        (merge.maximum, reference_shape.maximum_loops, reference_shape.maximum_backward_loops),
        (merge.minimum, reference_shape.minimum_loops, reference_shape.minimum_backward_loops),
    ],
    ids=["maximum", "minimum"],
)
def test_extreme_backward_matches_loops(fast, loops, backward_loops, n, shape, ties):
    xs = _arrays(n, shape, seed=10 + n, dtype=np.float64, ties=ties)
    y, winner = fast(xs)
    np.testing.assert_array_equal(y, loops(xs))
    dy = np.random.default_rng(11).standard_normal(shape)
    for got, expected in zip(merge.extreme_backward(dy, winner, n), backward_loops(dy, xs)):
        np.testing.assert_array_equal(got, expected)
    if ties:  # the grid must really contain ties for this to mean anything
        stacked = np.stack(xs)
        assert ((stacked == y).sum(axis=0) > 1).any()


def test_extreme_backward_sends_everything_to_one_input():
    xs = _arrays(3, (2, 5, 3, 3), seed=12, dtype=np.float64, ties=True)
    _, winner = merge.maximum(xs)
    dy = np.ones((2, 5, 3, 3))
    np.testing.assert_array_equal(sum(merge.extreme_backward(dy, winner, 3)), dy)


# ---------------------------------------------------------------- concatenate
CONCAT_GRID = [
    pytest.param([(2, 3), (2, 1)], -1, id="rank2-last"),
    pytest.param([(2, 3), (2, 5), (2, 1)], 1, id="rank2-three"),
    pytest.param([(3, 2, 5), (3, 3, 5)], 1, id="rank3-axis1"),
    pytest.param([(3, 2, 5), (3, 2, 1)], -1, id="rank3-last"),
    pytest.param([(2, 3, 5, 2), (2, 1, 5, 2), (2, 2, 5, 2)], 1, id="rank4-axis1"),
    pytest.param([(2, 3, 5, 2), (2, 3, 1, 2)], 2, id="rank4-axis2"),
    pytest.param([(2, 3, 5, 2), (2, 3, 5, 3)], 3, id="rank4-axis3"),
    pytest.param([(2, 3, 5, 2), (2, 3, 5, 1), (2, 3, 5, 3)], -1, id="rank4-last"),
    pytest.param([(2, 3, 5, 2), (2, 3, 4, 2)], -2, id="rank4-minus2"),
    pytest.param([(3, 1, 3, 1), (3, 1, 3, 1)], -3, id="rank4-minus3"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes, axis", CONCAT_GRID)
def test_concatenate_matches_loops(shapes, axis, dtype):
    rng = np.random.default_rng(13)
    xs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    expected = reference_shape.concatenate_loops(xs, axis)
    _close(merge.concatenate(xs, axis), expected, dtype)
    layer = Concatenate(axis=axis)
    _close(layer(xs), expected, dtype)
    # backward hands each input back the slice it filled: concatenating the pieces rebuilds dy
    dy = rng.standard_normal(expected.shape).astype(dtype)
    pieces = layer.backward(dy)
    assert [p.shape for p in pieces] == [x.shape for x in xs]
    _close(reference_shape.concatenate_loops(pieces, axis), dy, dtype)


# ---------------------------------------------------------------- reshape and permute
@pytest.mark.parametrize(
    "in_shape, target",
    [
        ((2, 12), (3, 4)),
        ((3, 12), (-1, 2, 2)),
        ((2, 3, 5), (5, 3)),
        ((2, 3, 5), (-1,)),
        ((3, 2, 3, 5), (5, -1, 2)),
        ((2, 1, 3, 5), (3, 1, 5, 1)),
    ],
)
def test_reshape_matches_loops(in_shape, target):
    x = np.random.default_rng(14).standard_normal(in_shape)
    expected = reference_shape.reshape_loops(x, target)
    np.testing.assert_array_equal(Reshape(target)(x), expected)


PERMUTATIONS = [p for k in (1, 2, 3) for p in itertools.permutations(range(1, k + 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", PERMUTATIONS, ids=str)
def test_permute_matches_loops_forward_and_backward(dims, dtype):
    shape = (2, 3, 5, 4)[: len(dims) + 1]
    x = np.random.default_rng(15).standard_normal(shape).astype(dtype)
    expected = reference_shape.permute_loops(x, dims)
    _close(reshaping.permute(x, dims), expected, dtype)
    _close(Permute(dims)(x), expected, dtype)
    inverse = tuple(int(i) + 1 for i in np.argsort(dims))
    dy = np.random.default_rng(16).standard_normal(expected.shape).astype(dtype)
    _close(reshaping.permute_backward(dy, dims), reference_shape.permute_loops(dy, inverse), dtype)


# ---------------------------------------------------------------- zero padding and cropping
PAIRS = [
    ((0, 0), (0, 0)),
    ((1, 1), (1, 1)),
    ((2, 0), (0, 3)),
    ((0, 1), (2, 1)),
    ((2, 2), (1, 0)),  # leaves a single row of the 5-row images
]
IMAGES = [(1, 7, 6, 1), (2, 5, 7, 3), (3, 6, 5, 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", IMAGES)
@pytest.mark.parametrize("pairs", PAIRS, ids=str)
def test_zero_padding_matches_loops_forward_and_backward(pairs, shape, dtype):
    x = np.random.default_rng(17).standard_normal(shape).astype(dtype)
    expected = reference_shape.zero_pad2d_loops(x, pairs)
    _close(reshaping.zero_pad2d(x, pairs), expected, dtype)
    _close(ZeroPadding2D(pairs)(x), expected, dtype)
    dy = np.random.default_rng(18).standard_normal(expected.shape).astype(dtype)
    _close(reshaping.zero_pad2d_backward(dy, pairs), reference_shape.crop2d_loops(dy, pairs), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", IMAGES)
@pytest.mark.parametrize("pairs", PAIRS, ids=str)
def test_cropping_matches_loops_forward_and_backward(pairs, shape, dtype):
    x = np.random.default_rng(19).standard_normal(shape).astype(dtype)
    expected = reference_shape.crop2d_loops(x, pairs)
    _close(reshaping.crop2d(x, pairs), expected, dtype)
    _close(Cropping2D(pairs)(x), expected, dtype)
    dy = np.random.default_rng(20).standard_normal(expected.shape).astype(dtype)
    _close(reshaping.crop2d_backward(dy, pairs), reference_shape.zero_pad2d_loops(dy, pairs), dtype)


# ---------------------------------------------------------------- softmax along an axis
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 1, 2, 3, -2, [1, 2], [-1, 1], [1, 2, 3]], ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (3, 1, 3, 5)])
def test_softmax_layer_matches_loops(shape, axis, dtype):
    x = (np.random.default_rng(21).standard_normal(shape) * 4).astype(dtype)
    _close(Softmax(axis=axis)(x), softmax_loops(x, axis), dtype)


def test_softmax_loops_on_the_last_axis_of_a_matrix():
    x = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 1000.0]])
    np.testing.assert_allclose(softmax_loops(x), [[0.21194156, 0.57611688, 0.21194156], [0.0, 0.0, 1.0]], rtol=1e-7)
