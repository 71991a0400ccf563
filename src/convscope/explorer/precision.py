"""Numbers at the model's precision: what the page may call "the same value".

The panels recompute a value (a sum of products, a softmax) in float64 and round it once
to the model's dtype; the model computed it in its dtype, summing in another order. Two
values are "the same" only if they are equal in that dtype; otherwise the page says by
how many units in the last place (ulp) they differ, and why.
"""

from __future__ import annotations

import numpy as np


def at(value, dtype) -> float:
    """``value`` rounded once to ``dtype`` (as a Python float, which holds any float32 exactly)."""
    return float(np.asarray(value, dtype=np.float64).astype(dtype))


def ulps(a: float, b: float, dtype) -> int:
    """How many representable ``dtype`` numbers lie between ``a`` and ``b`` (0: equal in ``dtype``)."""
    ints = {np.dtype("float32"): np.int32, np.dtype("float64"): np.int64}[np.dtype(dtype)]
    bits = np.array([a, b], dtype=dtype).view(ints).astype(np.int64)
    magnitude = bits & np.iinfo(ints).max
    ordered = np.where(bits < 0, -magnitude, magnitude)  # sign-magnitude onto one line: -0.0 and 0.0 meet
    return int(abs(ordered[0] - ordered[1]))


def verdict(computed, traced, dtype) -> dict:
    """``{"computed", "traced", "matches", "ulps"}``: both values in ``dtype``; ``matches`` only if equal there."""
    computed, traced = at(computed, dtype), at(traced, dtype)
    distance = ulps(computed, traced, dtype)
    return {"computed": computed, "traced": traced, "matches": distance == 0, "ulps": distance}


def rounding_bound(products, dtype) -> float:
    """How far a sum of these products taken in ``dtype``, in any order, may lie from the exact sum:
    n * eps * sum |p| (the classic bound for recursive summation, plus one rounding of the result), so that a
    difference within it is rounding, not a wrong number."""
    products = np.asarray(products, dtype=np.float64)
    return float((products.size + 1) * np.finfo(dtype).eps * np.abs(products).sum())
