"""Central-difference gradient checks, in float64, of the merging layers with 2 and 3 inputs.

A merging layer takes a list of inputs and its ``backward`` returns a list of gradients, so the
single-input ``check_layer`` of test_gradients.py does not fit: ``check_merge`` below perturbs every
element of every input in turn and compares the numeric dL/dx_k with the k-th returned gradient, for
L = sum(y * R) with a fixed random R. Maximum / Minimum get inputs whose values are all 0.05 apart, so no
perturbation of eps can change which input wins.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_gradients import assert_grad_close, distinct, numeric_grad, randn

from convscope.layers.merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract

# Every check here runs on both the NumPy ops and the compiled kernels.
pytestmark = pytest.mark.usefixtures("kernel_path", "float64")


def check_merge(layer, xs, seed=0):
    """Check each dL/dx_k that ``layer.backward`` returns against central differences of input k."""
    xs = [np.array(x, dtype=np.float64) for x in xs]
    if not layer.built:
        layer.build([(None, *x.shape[1:]) for x in xs])
    y = layer.forward(xs)
    assert y.dtype == np.float64
    R = np.random.default_rng(seed + 1000).standard_normal(y.shape)
    dy = R.copy()
    dxs = layer.backward(dy)
    np.testing.assert_array_equal(dy, R)  # backward leaves dy alone
    assert isinstance(dxs, list) and len(dxs) == len(xs)

    def loss():
        return float(np.sum(layer.forward(xs) * R))

    for k, (x, dx) in enumerate(zip(xs, dxs)):
        assert dx.dtype == np.float64
        assert_grad_close(dx, numeric_grad(loss, x), f"{layer.name} input {k}")
    return y, dxs


def _inputs(n, shape, seed):
    return [randn(*shape, seed=seed + k) for k in range(n)]


def _distinct_inputs(n, shape, seed):
    return list(distinct(n, *shape, seed=seed))


ELEMENTWISE = [
    pytest.param(lambda: Add(), _inputs, id="Add"),
    pytest.param(lambda: Multiply(), _inputs, id="Multiply"),
    pytest.param(lambda: Average(), _inputs, id="Average"),
    pytest.param(lambda: Maximum(), _distinct_inputs, id="Maximum"),
    pytest.param(lambda: Minimum(), _distinct_inputs, id="Minimum"),
]


@pytest.mark.parametrize("shape", [(2, 3, 4, 2), (3, 5)], ids=["nhwc", "matrix"])
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("make, inputs", ELEMENTWISE)
def test_elementwise_merge(make, inputs, n, shape):
    check_merge(make(), inputs(n, shape, seed=n))


@pytest.mark.parametrize("make, inputs", ELEMENTWISE + [pytest.param(lambda: Subtract(), _inputs, id="Subtract")])
def test_broadcasting_merge(make, inputs):
    """A squeeze-and-excitation block's (N, 1, 1, C) scale against (N, H, W, C), and a (N, H, 1, C) third input."""
    layer = make()
    shapes = [(2, 3, 4, 2), (2, 1, 1, 2)] + ([] if isinstance(layer, Subtract) else [(2, 3, 1, 2)])
    xs = [x for shape, seed in zip(shapes, range(len(shapes))) for x in inputs(1, shape, seed=10 + seed)]
    if isinstance(layer, (Maximum, Minimum)):
        # No two values within 0.02 of each other across the inputs (broadcast copies included): multiples of
        # 0.1, of 0.1 plus 0.05 and of 0.1 plus 0.02.
        rng = np.random.default_rng(3)
        xs = [rng.permutation(np.prod(shape)).reshape(shape) * 0.1 + offset
              for shape, offset in zip(shapes, (0.0, 0.05, 0.02))]
    check_merge(layer, xs)


@pytest.mark.parametrize("shape", [(2, 3, 4, 2), (3, 5)], ids=["nhwc", "matrix"])
def test_subtract(shape):
    _, (da, db) = check_merge(Subtract(), _inputs(2, shape, seed=5))
    np.testing.assert_array_equal(da, -db)


def test_multiply_through_a_zero():
    xs = _inputs(3, (2, 3, 3, 2), seed=6)
    xs[1][0, 1, 2, 0] = 0.0
    check_merge(Multiply(), xs)


@pytest.mark.parametrize(
    "axis, shapes",
    [
        (-1, [(2, 3, 4, 2), (2, 3, 4, 3)]),
        (-1, [(2, 3, 4, 2), (2, 3, 4, 1), (2, 3, 4, 3)]),
        (1, [(2, 3, 4, 2), (2, 1, 4, 2)]),
        (1, [(2, 2, 4, 2), (2, 3, 4, 2), (2, 1, 4, 2)]),
        (2, [(2, 3, 4, 2), (2, 3, 2, 2)]),
        (2, [(2, 3, 1, 2), (2, 3, 2, 2), (2, 3, 3, 2)]),
        (3, [(2, 3, 4, 2), (2, 3, 4, 3)]),
        (3, [(2, 3, 4, 1), (2, 3, 4, 2), (2, 3, 4, 1)]),
        (-2, [(2, 3, 4, 2), (2, 3, 1, 2)]),
        (-1, [(3, 4), (3, 2)]),
    ],
    ids=["last-2", "last-3", "axis1-2", "axis1-3", "axis2-2", "axis2-3", "axis3-2", "axis3-3", "minus2", "matrix"],
)
def test_concatenate(axis, shapes):
    xs = [randn(*s, seed=7 + k) for k, s in enumerate(shapes)]
    y, _ = check_merge(Concatenate(axis=axis), xs)
    assert y.shape[axis] == sum(s[axis] for s in shapes)
