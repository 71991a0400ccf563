"""The ``Loss`` base class: per-sample values, their reduction with sample weights, and the gradient.

A loss computes Keras's per-sample values ``v`` (shape ``y_pred.shape[:-1]``: one
value per row, the last axis summed or averaged) and, for training, the derivative
of each ``v`` with respect to its row of ``y_pred``. ``loss(y_true, y_pred,
sample_weight)`` reduces them as ``reduction`` says (see ``reduction.py``) and
``value_and_gradient`` returns that number and ``d loss / d y_pred``, shaped like
``y_pred``. A ``y_pred`` of shape ``(n,)`` is read as ``(n, 1)``: one value per sample.
"""

from __future__ import annotations

from .. import backend
from .inputs import as_pair, dense_targets
from .reduction import DEFAULT, check_reduction, reduce, reduces, sample_weights


class Loss:
    """Base class: naming, reduction, config.

    Subclasses implement ``_prepare(y_true, y_pred)`` (checks, returns arrays with
    ``y_pred`` at least 2-D) and ``_compute(y_true, y_pred, with_gradient)``
    returning the per-sample values and, if asked, ``d v_i / d y_pred`` row by row
    (shaped like ``y_pred``).
    """

    default_name = "loss"
    output_activation: str | None = None

    def __init__(self, name: str | None = None, reduction=DEFAULT):
        owner = type(self).__name__
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f'{owner}: argument "name" must be a non-empty string, received {name!r}')
        self.reduction = check_reduction(owner, reduction)
        self.name = name or self.default_name

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The reduced loss, a 0-d ``backend.Tensor`` (for ``reduction="none"`` the weighted per-sample values)."""
        symbolic = next((a for a in (y_true, y_pred) if hasattr(a, "record_call")), None)
        if symbolic is not None:  # inside a traced call(): a graph node whose gradient is this loss's
            return symbolic.record_call("loss", y_true, y_pred, loss=self, sample_weight=sample_weight)
        if type(self).call is not Loss.call:  # a subclass of the user's own, defined by call() (Keras's way)
            y_pred = backend.xp.asarray(y_pred)
            values = backend.xp.asarray(self.call(backend.xp.asarray(y_true).astype(y_pred.dtype), y_pred),
                                        dtype=y_pred.dtype)
            weights = sample_weights(type(self).__name__, sample_weight, values.shape, values.dtype)
            return backend.eager(reduce(values, weights, self.reduction)[0])
        values, _, weights = self._values(y_true, y_pred, sample_weight, with_gradient=False)
        return backend.eager(reduce(values, weights, self.reduction)[0])

    def call(self, y_true, y_pred):
        """Per-sample values, for a subclass of your own (Keras's ``Loss.call``): write it with convscope.ops and
        compile() differentiates it (``models.function_loss``); convscope's own losses compute in ``_compute``."""
        raise NotImplementedError(f"{type(self).__name__} defines no call(y_true, y_pred)")

    def gradient(self, y_true, y_pred, sample_weight=None):
        """d loss / d y_pred, shaped like ``y_pred``."""
        return self.value_and_gradient(y_true, y_pred, sample_weight)[1]

    def value_and_gradient(self, y_true, y_pred, sample_weight=None):
        """``(loss, d loss / d y_pred)`` from one pass, for the training step."""
        if not reduces(self.reduction):
            raise ValueError(f"{type(self).__name__}: a gradient needs a loss reduced to one number, "
                             f"received reduction={self.reduction!r}; use e.g. 'sum_over_batch_size'")
        shape = backend.xp.shape(y_pred)
        values, grad, weights = self._values(y_true, y_pred, sample_weight, with_gradient=True)
        value, scale = reduce(values, weights, self.reduction)
        return value, (grad * scale[..., None]).reshape(shape)

    def _values(self, y_true, y_pred, sample_weight, with_gradient: bool):
        """Per-sample values, their row gradients (or None) and the weights broadcast to the values."""
        y_true, y_pred = self._prepare(y_true, y_pred)
        values, grad = self._compute(y_true, y_pred, with_gradient)
        return values, grad, sample_weights(type(self).__name__, sample_weight, values.shape, values.dtype)

    def _prepare(self, y_true, y_pred):
        owner = type(self).__name__
        y_true, y_pred = as_pair(owner, y_true, y_pred)
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        return dense_targets(owner, y_true, y_pred), y_pred

    def _compute(self, y_true, y_pred, with_gradient: bool):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

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
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class MeanOverLastAxis(Loss):
    """A loss whose per-sample value is the mean over the last axis of per-element values.

    Subclasses implement ``_elements(y_true, y_pred, with_gradient)``: the element
    values and, if asked, each one's derivative with respect to its ``y_pred`` entry.
    """

    def _compute(self, y_true, y_pred, with_gradient):
        elements, grad = self._elements(y_true, y_pred, with_gradient)
        width = y_pred.shape[-1]
        return elements.mean(axis=-1), (grad / width if with_gradient else None)

    def _elements(self, y_true, y_pred, with_gradient: bool):
        raise NotImplementedError
