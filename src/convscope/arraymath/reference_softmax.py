"""Plain-loop definition of softmax along chosen axes: the slow, obvious text the Softmax layer is held to.

For every position of the axes *not* normalized over, the cells along the ``axis`` axes form one group:

    y[c] = exp(x[c] - max_group x) / sum_{c' in group} exp(x[c'] - max_group x)      for each cell c of the group
"""

from __future__ import annotations

import itertools
import math

from .. import backend


def softmax_loops(x, axis=-1):
    """Softmax of ``x`` over ``axis`` (an int or a list of ints), group by group and cell by cell."""
    axes = sorted(a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis))
    others = [d for d in range(x.ndim) if d not in axes]
    y = backend.xp.zeros_like(x)
    for outer in itertools.product(*(range(x.shape[d]) for d in others)):
        group = []
        for inner in itertools.product(*(range(x.shape[d]) for d in axes)):
            index = [0] * x.ndim
            for d, i in zip(others, outer):
                index[d] = i
            for d, i in zip(axes, inner):
                index[d] = i
            group.append(tuple(index))
        top = max(float(x[c]) for c in group)
        total = sum(math.exp(float(x[c]) - top) for c in group)
        for c in group:
            y[c] = math.exp(float(x[c]) - top) / total
    return y
