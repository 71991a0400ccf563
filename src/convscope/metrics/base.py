"""The ``Metric`` base class and Keras's reduction metrics: ``Mean``, ``Sum`` and ``MeanMetricWrapper``.

A metric accumulates state over the batches of an epoch: ``update_state(...)``
adds a batch, ``result()`` reads the value so far (0.0 before any update) and
``reset_state()`` starts over. convscope's training loop calls the short names
``update`` and ``reset``, which are the same methods.

``Mean`` (and every metric built on ``MeanMetricWrapper``) keeps a weighted mean
of per-sample values as Keras does: values ``v`` of shape ``(n, ...)`` with
weights ``w`` (``(n,)`` or ``(n, 1)``) add ``sum_i w_i mean(v_i)`` to ``total``
and ``sum_i w_i`` to ``count`` (``n`` without weights); ``result = total / count``.
Example: ``Mean().update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])`` -> 2.0.
"""

from __future__ import annotations

from .. import backend, initializers
from .state import MetricVariable


def _same_rank(values, weights):
    """Keras's ``squeeze_or_expand_to_same_rank``: a trailing axis of 1 is dropped or added when ranks differ by 1."""
    if values.ndim == weights.ndim + 1 and values.shape[-1] == 1:
        return (values, weights[..., None]) if weights.ndim == 1 else (values[..., 0], weights)
    if weights.ndim == values.ndim + 1 and weights.shape[-1] == 1:
        return (values[..., None], weights) if values.ndim == 1 else (values, weights[..., 0])
    return values, weights


def samplewise(owner: str, values, sample_weight, reduce):
    """Keras's ``reduce_to_samplewise_values``: ``(w * v reduced to one value per sample, w per sample)``.

    ``reduce`` (``xp.mean`` or ``xp.sum``) folds the axes of ``values`` beyond
    the weights' rank before weighting, and the remaining axes after it.
    """
    xp = backend.xp
    values = xp.asarray(values, dtype=xp.float64)
    weights = None
    if sample_weight is not None:
        weights = xp.asarray(sample_weight, dtype=xp.float64)
        values, weights = _same_rank(values, weights)
        if values.ndim > weights.ndim:
            values = reduce(values, axis=tuple(range(weights.ndim, values.ndim)))
        try:
            weights = xp.broadcast_to(weights, values.shape)
        except ValueError:
            raise ValueError(f"{owner}: expected sample_weight of shape {values.shape[:1]} (one weight per sample), "
                             f"received shape {weights.shape}") from None
        values = values * weights
        if weights.ndim > 1:
            weights = reduce(weights, axis=tuple(range(1, weights.ndim)))
    if values.ndim > 1:
        values = reduce(values, axis=tuple(range(1, values.ndim)))
    return values, weights


class Metric:
    """Base class: name, state variables, config and the Keras / convscope method names.

    Subclasses implement ``update_state(...)`` and ``result()``, keep their
    state in variables made by ``add_variable`` (Keras's name; ``add_weight`` is
    the same) and may override ``reset_state()``, which by default sets every
    variable back to its initial value. A subclass written for Keras
    (``super().__init__(name=name, **kwargs)``, then ``self.add_variable(...)``) runs as it is.
    """

    default_name = "metric"

    def __init__(self, name: str | None = None, dtype=None):
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f'{type(self).__name__}: argument "name" must be a non-empty string, received {name!r}')
        self.name = name or self.default_name
        self.dtype = backend.xp.dtype(dtype or backend.floatx()).name
        self._variables: list[tuple[MetricVariable, object]] = []

    def add_variable(self, shape=(), initializer="zeros", dtype=None, name: str | None = None,
                     aggregation="sum") -> MetricVariable:
        """A new state variable of ``shape`` (``()`` for a number) filled by ``initializer`` (a name such as
        "zeros", an ``Initializer`` or a number). ``aggregation`` is accepted for Keras's signature: one device
        holds the state."""
        shape = tuple(shape)
        value = self._initial(shape, initializer, dtype or self.dtype)
        variable = MetricVariable(value, name or f"variable_{len(self._variables)}")
        self._variables.append((variable, value.copy()))
        return variable

    def add_weight(self, name: str | None = None, shape=(), initializer="zeros", dtype=None,
                   aggregation="sum") -> MetricVariable:
        """``add_variable`` under Keras's older name (``name`` first)."""
        return self.add_variable(shape, initializer, dtype, name, aggregation)

    @staticmethod
    def _initial(shape: tuple, initializer, dtype):
        xp = backend.xp
        if initializer is None or isinstance(initializer, (int, float)):
            return xp.full(shape, 0 if initializer is None else initializer, dtype=dtype)
        return xp.asarray(initializers.get(initializer)(shape, dtype=dtype), dtype=dtype)

    @property
    def variables(self) -> list:
        return [variable for variable, _ in self._variables]

    def reset_state(self) -> None:
        """Every variable back to its initial value."""
        for variable, initial in self._variables:
            variable.assign(initial)

    def update_state(self, *args, **kwargs) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement update_state")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement result")

    def reset(self) -> None:
        """``reset_state()``, under the name convscope's training loop uses."""
        self.reset_state()

    def update(self, *args, **kwargs) -> None:
        """``update_state(...)``, under the name convscope's training loop uses."""
        self.update_state(*args, **kwargs)

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        config = dict(config)
        config.pop("dtype", None)  # Keras records it; results here are Python floats
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} result={backend.xp.round(self.result(), 4).tolist()}>"


class Sum(Metric):
    """The weighted sum of the values: ``sum_i w_i sum(v_i)``.

    Example: ``Sum().update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])`` -> 4.0.
    """

    default_name = "sum"

    def __init__(self, name: str | None = None, dtype=None):
        super().__init__(name, dtype)
        self.reset_state()

    def reset_state(self) -> None:
        self.total = 0.0

    def update_state(self, values, sample_weight=None) -> None:
        values, _ = samplewise(type(self).__name__, values, sample_weight, backend.xp.sum)
        self.total += float(values.sum())

    def result(self) -> float:
        return self.total


class Mean(Metric):
    """The weighted mean of per-sample values: ``total / count`` (see the module docstring).

    Example: ``Mean().update_state([1, 3, 5, 7])`` -> 4.0.
    """

    default_name = "mean"

    def __init__(self, name: str | None = None, dtype=None):
        super().__init__(name, dtype)
        self.reset_state()

    def reset_state(self) -> None:
        self.total, self.count = 0.0, 0.0

    def update_state(self, values, sample_weight=None) -> None:
        values, weights = samplewise(type(self).__name__, values, sample_weight, backend.xp.mean)
        self.total += float(values.sum())
        if weights is not None:
            self.count += float(weights.sum())
        else:
            self.count += values.shape[0] if values.ndim else 1

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    """The weighted mean of ``fn(y_true, y_pred, **kwargs)``, a function returning per-sample values.

    Example: ``MeanMetricWrapper(losses.mean_squared_error)`` is the running mean squared error.
    """

    default_name = "mean_metric_wrapper"

    def __init__(self, fn, name: str | None = None, **kwargs):
        if not callable(fn):
            raise TypeError(f'{type(self).__name__}: argument "fn" must be a function, received {fn!r}')
        self._fn, self._fn_kwargs = fn, kwargs
        super().__init__(name)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        super().update_state(self._values(y_true, y_pred), sample_weight)

    def _values(self, y_true, y_pred):
        """The batch's per-sample values; subclasses compute them with their own name in errors."""
        return self._fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "fn": getattr(self._fn, "__name__", repr(self._fn)), **self._fn_kwargs}
