"""``MetricVariable``: the state a metric keeps, as Keras's metric variables (``add_variable`` / ``add_weight``).

A variable holds a NumPy array (``value``) and changes only through
``assign(v)``, ``assign_add(v)`` and ``assign_sub(v)``. It reads as an array
everywhere (``np.asarray(v)``, ``float(v)``, ``v / other``, NumPy functions), so a
metric written for Keras -- ``self.total.assign_add(ops.sum(values))``,
``return self.total / self.count`` -- runs unchanged.
"""

from __future__ import annotations

from .. import backend


class MetricVariable(backend.xp.lib.mixins.NDArrayOperatorsMixin):
    """A named array of fixed shape and dtype, updated in place. ``float(v)`` reads a scalar one."""

    def __init__(self, value, name: str):
        self.value, self.name = value, name

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    def assign(self, value) -> "MetricVariable":
        self.value = self._cast(value)
        return self

    def assign_add(self, value) -> "MetricVariable":
        return self.assign(self.value + self._cast(value))

    def assign_sub(self, value) -> "MetricVariable":
        return self.assign(self.value - self._cast(value))

    def _cast(self, value):
        value = backend.xp.asarray(value)
        try:
            return backend.xp.broadcast_to(value, self.value.shape).astype(self.value.dtype)
        except ValueError:
            raise ValueError(f'metric variable "{self.name}": expected a value of shape {self.value.shape}, '
                             f"received shape {value.shape}") from None

    def numpy(self):
        return self.value.copy()

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # Arithmetic on a variable computes with its array and returns a plain array, as Keras's do.
        inputs = tuple(x.value if isinstance(x, MetricVariable) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __float__(self) -> float:
        return float(self.value)

    def __int__(self) -> int:
        return int(self.value)

    def __repr__(self) -> str:
        return f"<MetricVariable {self.name!r} shape={self.value.shape} value={self.value!r}>"
