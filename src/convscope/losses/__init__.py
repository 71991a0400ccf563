"""Loss functions, as in ``keras.losses``: classes that reduce a batch (with its gradient) and per-sample functions.

A loss object turns ``(y_true, y_pred)`` of shape ``(n, ..., k)`` into per-sample
values ``(n, ...)`` (cross-entropies and KL divergence sum the last axis, the
elementwise losses average it) and reduces them, with optional
``sample_weight``, as its ``reduction`` says (Keras 3's: "sum_over_batch_size"
by default, "sum", "mean", "mean_with_sample_weight", "none"; see
``reduction.py``)::

    loss = losses.SparseCategoricalCrossentropy()
    loss([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])                     # 1.177
    loss([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]], sample_weight=[1, 0])  # 0.0513 / 2
    value, grad = loss.value_and_gradient(y_true, y_pred)                  # grad shaped like y_pred

The functions under Keras's names (``losses.sparse_categorical_crossentropy``,
``losses.mse``, ...) return the per-sample values as a NumPy array, and
``get`` turns each of them into its loss object, so
``compile(loss=losses.sparse_categorical_crossentropy)`` works as in Keras.
"""

from __future__ import annotations

from .base import Loss
from .crossentropy import (BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
                           binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy)
from .focal import (BinaryFocalCrossentropy, CategoricalFocalCrossentropy, binary_focal_crossentropy,
                    categorical_focal_crossentropy)
from .hinge import CategoricalHinge, Hinge, SquaredHinge, categorical_hinge, hinge, squared_hinge
from .inputs import EPSILON
from .probabilistic import KLDivergence, Poisson, kl_divergence, poisson
from .reduction import REDUCTIONS
from .regression import (CosineSimilarity, Huber, LogCosh, MeanAbsoluteError, MeanAbsolutePercentageError,
                         MeanSquaredError, MeanSquaredLogarithmicError, cosine_similarity, huber, log_cosh,
                         mean_absolute_error, mean_absolute_percentage_error, mean_squared_error,
                         mean_squared_logarithmic_error)

# Keras's short names for the same functions.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence
bce = BCE = binary_crossentropy

_FUNCTION_CLASSES = {
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    binary_crossentropy: BinaryCrossentropy,
    binary_focal_crossentropy: BinaryFocalCrossentropy,
    categorical_focal_crossentropy: CategoricalFocalCrossentropy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError,
    huber: Huber,
    log_cosh: LogCosh,
    cosine_similarity: CosineSimilarity,
    kl_divergence: KLDivergence,
    poisson: Poisson,
    hinge: Hinge,
    squared_hinge: SquaredHinge,
    categorical_hinge: CategoricalHinge,
}
_CLASSES = tuple(_FUNCTION_CLASSES.values())
_ALIASES = {"mse": mean_squared_error, "mae": mean_absolute_error, "mape": mean_absolute_percentage_error,
            "msle": mean_squared_logarithmic_error, "kld": kl_divergence, "bce": binary_crossentropy,
            "logcosh": log_cosh}
_BY_NAME = {
    **{cls.__name__: cls for cls in _CLASSES},
    **{cls.default_name: cls for cls in _CLASSES},
    **{fn.__name__: cls for fn, cls in _FUNCTION_CLASSES.items()},
    **{alias: _FUNCTION_CLASSES[fn] for alias, fn in _ALIASES.items()},
    **{alias.upper(): _FUNCTION_CLASSES[fn] for alias, fn in _ALIASES.items() if alias != "logcosh"},
}


def get(identifier) -> Loss:
    """A loss object from a Keras name (``"categorical_crossentropy"``, ``"mse"``), a class name, one of
    this module's functions (``losses.mean_squared_error``) or classes, a ``{"class_name", "config"}`` dict
    (as ``serialize`` or Keras writes), or a ``Loss`` (returned as is).

    Anything else, a user's own function included, raises TypeError.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss) and identifier is not Loss:
        return identifier()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name == "function":  # Keras's form for a function: its name is the config
            name = identifier.get("config")
            if name not in _BY_NAME:
                raise ValueError(f"Unknown loss function {name!r}; known: {sorted(_BY_NAME)}")
            return _BY_NAME[name]()
        cls = _BY_NAME.get(name)
        if cls is None:
            raise ValueError(f"Unknown loss class {name!r}; known: {sorted(_BY_NAME)}")
        return cls.from_config(identifier.get("config") or {})
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"Unknown loss {identifier!r}; known: {sorted(_BY_NAME)}")
        return _BY_NAME[identifier]()
    cls = _FUNCTION_CLASSES.get(identifier) if callable(identifier) else None
    if cls is not None:
        return cls()
    raise TypeError(
        "losses.get: expected a loss name, a {'class_name', 'config'} dict, a Loss or one of convscope.losses' "
        f"functions, received {identifier!r} ({type(identifier).__name__})"
    )


def serialize(loss) -> dict:
    """``{"class_name": ..., "config": ...}`` of a ``Loss``, which ``get`` turns back into an equal loss;
    for one of this module's functions Keras's form ``{"class_name": "function", "config": <its name>, ...}``."""
    if not isinstance(loss, Loss) and callable(loss) and loss in _FUNCTION_CLASSES:
        return {"module": "builtins", "class_name": "function", "config": loss.__name__,
                "registered_name": "function"}
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


__all__ = [
    "Loss", "REDUCTIONS", "EPSILON", "get", "serialize",
    *(cls.__name__ for cls in _CLASSES), *(fn.__name__ for fn in _FUNCTION_CLASSES),
    "mse", "MSE", "mae", "MAE", "mape", "MAPE", "msle", "MSLE", "kld", "KLD", "bce", "BCE",
]
