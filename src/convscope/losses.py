"""Loss functions, as in ``keras.losses``: the value of a batch and its gradient.

Each loss turns a prediction ``y_pred`` of shape ``(n, ..., k)`` into loss
values and returns their mean (Keras's ``"sum_over_batch_size"`` reduction):

* cross-entropies over classes sum the last axis, one value per row ``(n, ...)``;
* the elementwise losses (binary cross-entropy, squared / absolute error, Huber)
  average the last axis and then the rows, which is the mean of all elements.

``loss(y_true, y_pred)`` returns that mean as a float and
``loss.gradient(y_true, y_pred)`` its derivative dL/dy_pred, shaped like
``y_pred``. Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does
(the gradient is zero where clipping bites); ``from_logits=True`` uses
log-softmax / log-sigmoid forms that stay finite for logits of any size.

Cross-entropies carry ``output_activation`` (``"softmax"`` / ``"sigmoid"``) and
``with_logits()``, so a model ending in that activation can hand the loss its
logits and get the well-conditioned gradient ``(p - y) / n``.
"""

from __future__ import annotations

from . import backend

EPSILON = 1e-7  # Keras's backend.epsilon(): how far probabilities stay from 0 and 1
REDUCTION = "sum_over_batch_size"


# -- input checks (shared with metrics) -------------------------------------
def _as_pair(owner: str, y_true, y_pred, min_rank: int = 1):
    """Arrays for ``(y_true, y_pred)``: a non-empty float ``y_pred`` and as many samples in both."""
    xp = backend.xp
    y_true, y_pred = xp.asarray(y_true), xp.asarray(y_pred)
    if not xp.issubdtype(y_pred.dtype, xp.floating):
        y_pred = backend.cast(y_pred)
    if y_pred.ndim < min_rank:
        expected = "(n, num_classes)" if min_rank == 2 else "(n, ...)"
        raise ValueError(f"{owner}: expected y_pred of shape {expected}, received shape {y_pred.shape}")
    if y_pred.size == 0:
        raise ValueError(f"{owner}: expected a non-empty batch, received y_pred of shape {y_pred.shape}")
    n_true = y_true.shape[0] if y_true.ndim else 1
    if n_true != y_pred.shape[0]:
        raise ValueError(
            f"{owner}: y_true and y_pred must hold the same number of samples, "
            f"expected {y_pred.shape[0]} (the length of y_pred), received {n_true}"
        )
    return y_true, y_pred


def _dense_targets(owner: str, y_true, y_pred, one_hot: bool = False):
    """``y_true`` as a float array of exactly ``y_pred``'s shape.

    Only Keras's rank fix-up is allowed: ``(n,)`` against ``(n, 1)`` or the
    reverse. Anything else that differs is refused rather than broadcast.
    """
    if y_true.shape != y_pred.shape:
        squeezable = y_true.shape + (1,) == y_pred.shape or y_true.shape == y_pred.shape + (1,)
        if one_hot or not squeezable:
            detail = (f" (one-hot rows as wide as y_pred's last dimension {y_pred.shape[-1]})"
                      if one_hot else " like y_pred")
            hint = ""
            if one_hot and (y_true.ndim == y_pred.ndim - 1 or y_true.shape[-1:] == (1,)):
                hint = "; for integer labels use SparseCategoricalCrossentropy"
            raise ValueError(
                f"{owner}: expected y_true of shape {y_pred.shape}{detail}, received shape {y_true.shape}{hint}"
            )
        y_true = y_true.reshape(y_pred.shape)
    return backend.cast(y_true, y_pred.dtype)


def _sparse_labels(owner: str, y_true, y_pred):
    """Integer class labels of shape ``y_pred.shape[:-1]`` (``(n,)`` or ``(n, 1)`` accepted) in ``[0, k)``."""
    xp = backend.xp
    rows, num_classes = y_pred.shape[:-1], y_pred.shape[-1]
    if y_true.shape not in (rows, rows + (1,)):
        raise ValueError(
            f"{owner}: expected integer labels of shape {rows} or {rows + (1,)}, received shape {y_true.shape}"
        )
    if xp.issubdtype(y_true.dtype, xp.floating):
        # Labels read from text or CSV arrive as floats; whole numbers are still labels.
        fractional = y_true[y_true != xp.round(y_true)]
        if fractional.size:
            raise ValueError(
                f"{owner}: expected integer class labels, received non-integer values such as {fractional.flat[0]}"
            )
    elif not xp.issubdtype(y_true.dtype, xp.integer):
        raise ValueError(f"{owner}: expected integer class labels, received dtype {y_true.dtype}")
    low, high = y_true.min(), y_true.max()
    if low < 0 or high >= num_classes:
        raise ValueError(f"{owner}: expected labels in [0, {num_classes}), received values in [{low}, {high}]")
    return y_true.reshape(rows).astype(xp.intp)


def _one_hot(labels, num_classes: int, dtype):
    xp = backend.xp
    out = xp.zeros(labels.shape + (num_classes,), dtype=dtype)
    xp.put_along_axis(out, labels[..., None], 1, axis=-1)
    return out


# -- the math of the cross-entropies ----------------------------------------
def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - backend.xp.log(backend.xp.exp(shifted).sum(axis=-1, keepdims=True))


def _sigmoid(z):
    """``1 / (1 + e^-z)`` written so that ``exp`` never overflows."""
    xp = backend.xp
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _categorical_ce(y, y_pred, from_logits: bool, with_gradient: bool):
    """Per-row ``-sum(y * log p)`` over the last axis, and d(sum of rows)/dy_pred if asked.

    From logits z: ``log p = log_softmax(z)``, gradient ``softmax(z) * sum(y) - y``.
    From probabilities (Keras): ``q = p / sum(p)``, ``c = clip(q, eps, 1 - eps)``,
    ``log p = log c``; with ``g = -y / c`` where unclipped (0 elsewhere) the
    gradient through the normalisation is ``(g - sum(g * q)) / sum(p)``.
    """
    xp = backend.xp
    if from_logits:
        log_p = _log_softmax(y_pred)
        values = -(y * log_p).sum(axis=-1)
        grad = xp.exp(log_p) * y.sum(axis=-1, keepdims=True) - y if with_gradient else None
        return values, grad
    total = y_pred.sum(axis=-1, keepdims=True)
    q = y_pred / total
    c = xp.clip(q, EPSILON, 1 - EPSILON)
    values = -(y * xp.log(c)).sum(axis=-1)
    if not with_gradient:
        return values, None
    g = xp.where(c == q, -y / c, 0)
    return values, (g - (g * q).sum(axis=-1, keepdims=True)) / total


# -- losses -------------------------------------------------------------------
class Loss:
    """Base class: naming, config, and the mean of per-entry values.

    Subclasses implement ``_prepare(y_true, y_pred)`` (checks, returns arrays)
    and ``_compute(y_true, y_pred, with_gradient)`` returning the loss values
    and, if asked, d(sum of values)/dy_pred; the mean's gradient divides that
    by the number of values.
    """

    default_name = "loss"
    output_activation: str | None = None

    def __init__(self, name: str | None = None, reduction: str = REDUCTION):
        owner = type(self).__name__
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f'{owner}: argument "name" must be a non-empty string, received {name!r}')
        if reduction != REDUCTION:
            raise ValueError(f'{owner}: argument "reduction" must be {REDUCTION!r}, received {reduction!r}')
        self.name = name or self.default_name

    def __call__(self, y_true, y_pred) -> float:
        values, _ = self._compute(*self._prepare(y_true, y_pred), with_gradient=False)
        return float(values.mean())

    def gradient(self, y_true, y_pred):
        """dL/dy_pred of the batch mean, shaped like ``y_pred``."""
        return self.value_and_gradient(y_true, y_pred)[1]

    def value_and_gradient(self, y_true, y_pred):
        """``(loss(y_true, y_pred), gradient(y_true, y_pred))`` from one pass, for the training step."""
        values, grad = self._compute(*self._prepare(y_true, y_pred), with_gradient=True)
        return float(values.mean()), grad / values.size

    def _prepare(self, y_true, y_pred):
        y_true, y_pred = _as_pair(type(self).__name__, y_true, y_pred)
        return _dense_targets(type(self).__name__, y_true, y_pred), y_pred

    def _compute(self, y_true, y_pred, with_gradient: bool):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": REDUCTION}

    @classmethod
    def from_config(cls, config: dict) -> "Loss":
        """Rebuild from ``get_config()``; reads Keras configs too, if ``axis`` / ``ignore_class`` are the defaults."""
        config = dict(config)
        config.pop("dtype", None)  # Keras records it; convscope computes in y_pred's dtype
        for key, default in (("axis", -1), ("ignore_class", None)):
            if key in config and config.pop(key) != default:
                raise ValueError(f'{cls.__name__}: Keras option "{key}" is only supported at its default {default!r}')
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k not in ("name", "reduction"))
        return f"{type(self).__name__}({args})"


def _check_from_logits(owner: str, from_logits) -> bool:
    if not isinstance(from_logits, bool):
        raise TypeError(f'{owner}: argument "from_logits" must be a bool, received {from_logits!r}')
    return from_logits


def _check_fraction(owner: str, arg: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f'{owner}: argument "{arg}" must be a number in [0, 1], received {value!r}')
    return float(value)


class _CrossEntropy(Loss):
    """What the cross-entropies share: ``from_logits`` and ``with_logits()``."""

    def __init__(self, from_logits: bool = False, name: str | None = None, reduction: str = REDUCTION):
        super().__init__(name, reduction)
        self.from_logits = _check_from_logits(type(self).__name__, from_logits)

    def with_logits(self) -> "_CrossEntropy":
        """The same loss reading logits: for a model that fuses its final ``output_activation`` into the loss."""
        return type(self).from_config({**self.get_config(), "from_logits": True})

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits}


class CategoricalCrossentropy(_CrossEntropy):
    """``-sum_k y_k log p_k`` per row for one-hot ``y_true`` of ``y_pred``'s shape ``(n, ..., k)``.

    ``label_smoothing`` s replaces ``y`` by ``y (1 - s) + s / k``.
    """

    default_name = "categorical_crossentropy"
    output_activation = "softmax"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 name: str | None = None, reduction: str = REDUCTION):
        super().__init__(from_logits, name, reduction)
        self.label_smoothing = _check_fraction(type(self).__name__, "label_smoothing", label_smoothing)

    def _prepare(self, y_true, y_pred):
        owner = type(self).__name__
        y_true, y_pred = _as_pair(owner, y_true, y_pred, min_rank=2)
        y_true = _dense_targets(owner, y_true, y_pred, one_hot=True)
        if self.label_smoothing:
            y_true = y_true * (1 - self.label_smoothing) + self.label_smoothing / y_pred.shape[-1]
        return y_true, y_pred

    def _compute(self, y_true, y_pred, with_gradient):
        return _categorical_ce(y_true, y_pred, self.from_logits, with_gradient)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(_CrossEntropy):
    """``-log p[label]`` per row, labels of shape ``(n,)`` or ``(n, 1)`` against ``y_pred`` ``(n, k)``."""

    default_name = "sparse_categorical_crossentropy"
    output_activation = "softmax"

    def _prepare(self, y_true, y_pred):
        owner = type(self).__name__
        y_true, y_pred = _as_pair(owner, y_true, y_pred, min_rank=2)
        labels = _sparse_labels(owner, y_true, y_pred)
        return _one_hot(labels, y_pred.shape[-1], y_pred.dtype), y_pred

    def _compute(self, y_true, y_pred, with_gradient):
        return _categorical_ce(y_true, y_pred, self.from_logits, with_gradient)


class BinaryCrossentropy(_CrossEntropy):
    """``-(y log p + (1 - y) log(1 - p))`` per element, averaged over all elements.

    From logits z it is ``max(z, 0) - z y + log(1 + e^-|z|)`` with gradient
    ``sigmoid(z) - y``. ``label_smoothing`` s replaces ``y`` by ``y (1 - s) + s / 2``.
    """

    default_name = "binary_crossentropy"
    output_activation = "sigmoid"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 name: str | None = None, reduction: str = REDUCTION):
        super().__init__(from_logits, name, reduction)
        self.label_smoothing = _check_fraction(type(self).__name__, "label_smoothing", label_smoothing)

    def _prepare(self, y_true, y_pred):
        y_true, y_pred = super()._prepare(y_true, y_pred)
        if self.label_smoothing:
            y_true = y_true * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y_true, y_pred

    def _compute(self, y, z, with_gradient):
        xp = backend.xp
        if self.from_logits:
            values = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
            return values, (_sigmoid(z) - y if with_gradient else None)
        c = xp.clip(z, EPSILON, 1 - EPSILON)
        values = -(y * xp.log(c) + (1 - y) * xp.log(1 - c))
        return values, (xp.where(c == z, (c - y) / (c * (1 - c)), 0) if with_gradient else None)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class MeanSquaredError(Loss):
    """``(p - y)^2`` averaged over all elements; gradient ``2 (p - y) / size``."""

    default_name = "mean_squared_error"

    def _compute(self, y, p, with_gradient):
        error = p - y
        return error * error, (2 * error if with_gradient else None)


class MeanAbsoluteError(Loss):
    """``|p - y|`` averaged over all elements; gradient ``sign(p - y) / size`` (0 where equal)."""

    default_name = "mean_absolute_error"

    def _compute(self, y, p, with_gradient):
        error = p - y
        return backend.xp.abs(error), (backend.xp.sign(error) if with_gradient else None)


class Huber(Loss):
    """With ``e = p - y``: ``e^2 / 2`` where ``|e| <= delta``, else ``delta (|e| - delta / 2)``;
    averaged over all elements.

    Gradient: ``e`` inside, ``delta sign(e)`` outside (divided by the size).
    """

    default_name = "huber_loss"

    def __init__(self, delta: float = 1.0, name: str | None = None, reduction: str = REDUCTION):
        super().__init__(name, reduction)
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not delta > 0:
            raise ValueError(f'Huber: argument "delta" must be a number > 0, received {delta!r}')
        self.delta = float(delta)

    def _compute(self, y, p, with_gradient):
        xp = backend.xp
        error = p - y
        inside = xp.abs(error) <= self.delta
        values = xp.where(inside, 0.5 * error * error, self.delta * xp.abs(error) - 0.5 * self.delta**2)
        return values, (xp.where(inside, error, self.delta * xp.sign(error)) if with_gradient else None)

    def get_config(self) -> dict:
        return {**super().get_config(), "delta": self.delta}


# -- lookup -------------------------------------------------------------------
_CLASSES = (CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
            MeanSquaredError, MeanAbsoluteError, Huber)
_ALIASES = {"mse": MeanSquaredError, "mae": MeanAbsoluteError, "bce": BinaryCrossentropy, "huber": Huber}
_BY_NAME = {
    **{cls.__name__: cls for cls in _CLASSES},
    **{cls.default_name: cls for cls in _CLASSES},
    **_ALIASES,
    **{alias.upper(): cls for alias, cls in _ALIASES.items() if alias != "huber"},
}


def get(identifier) -> Loss:
    """A loss from a Keras name (``"categorical_crossentropy"``, ``"mse"``), a class name,
    a ``{"class_name", "config"}`` dict (as ``serialize`` or Keras writes), or a ``Loss`` (returned as is)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        cls = _BY_NAME.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown loss class {identifier.get('class_name')!r}; known: {sorted(_BY_NAME)}")
        return cls.from_config(identifier.get("config") or {})
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"Unknown loss {identifier!r}; known: {sorted(_BY_NAME)}")
        return _BY_NAME[identifier]()
    raise TypeError(
        "losses.get: expected a loss name, a {'class_name', 'config'} dict or a Loss, "
        f"received {identifier!r} ({type(identifier).__name__})"
    )


def serialize(loss: Loss) -> dict:
    """``{"class_name": ..., "config": ...}``, which ``get`` turns back into an equal loss."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
