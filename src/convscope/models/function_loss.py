"""A loss written as a Python function of ``(y_true, y_pred)``, as Keras lets you pass to ``compile``.

    def weighted_mse(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=-1)

    model.compile(optimizer="adam", loss=weighted_mse)

The function runs once per target and prediction shape on symbolic inputs (inside
``tracing()``), which records its ``convscope.ops`` calls as a graph; each batch then runs
that graph forward for the values and backward for dL/dy_pred: the same engine as the
model's layers, so the gradient needs no formula of its own. As Keras's
``LossFunctionWrapper``: ``y_true`` is cast to ``y_pred``'s dtype, and the function's values
``l`` (one per sample, or any shape) reduce with sample weights ``w`` by the loss's
reduction (``losses.reduction``; by default ``sum(w * l) / l.size``, Keras's
"sum_over_batch_size"). A ``keras.losses.Loss`` subclass that defines ``call(y_true,
y_pred)`` is handled the same way, with its own reduction.
"""

from __future__ import annotations

from .. import backend
from ..layers import Input
from ..losses.reduction import DEFAULT, check_reduction, reduce, sample_weights
from ..layers.base import unique_name
from ..layers.node import KerasTensor
from ..layers.operation import tracing
from . import graph as graph_module


class FunctionLoss:
    """``fn(y_true, y_pred)`` as a loss with a value and a gradient (see the module docstring)."""

    from_logits = False
    output_activation = None

    def __init__(self, fn, name: str | None = None, reduction: str = DEFAULT):
        if not callable(fn):
            raise TypeError(f"A loss must be a name, a Loss or a function of (y_true, y_pred), received {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.reduction = check_reduction(f'Loss "{self.name}"', reduction)
        self._graphs: dict = {}

    def _graph(self, y_true, y_pred):
        key = (y_true.shape[1:], y_pred.shape[1:], str(y_pred.dtype))
        if key not in self._graphs:
            inputs = [Input(shape=tuple(a.shape[1:]), name=unique_name(f"{self.name}_{role}"))
                      for role, a in (("y_true", y_true), ("y_pred", y_pred))]
            with tracing():
                out = self.fn(*inputs)
            if not isinstance(out, KerasTensor):
                raise TypeError(
                    f'Loss "{self.name}" returned {type(out).__name__}, not a value computed from y_true and y_pred '
                    "with convscope.ops (for example ops.mean(ops.square(y_true - y_pred), axis=-1)), so it "
                    "cannot be differentiated"
                )
            self._graphs[key] = graph_module.GraphFunction(inputs, [out], owner=f'Loss "{self.name}"').plan(fuse=False)
        return self._graphs[key]

    def _run(self, y_true, y_pred, sample_weight, with_gradient: bool):
        xp = backend.xp
        y_pred = xp.asarray(y_pred)
        y_true = xp.asarray(y_true).astype(y_pred.dtype)
        plan = self._graph(y_true, y_pred)
        (values,), tape = graph_module.forward(plan, [y_true, y_pred], training=False, keep_state=with_gradient)
        values = xp.asarray(values, dtype=y_pred.dtype)
        if values.ndim == 0 and sample_weight is not None:
            weights = xp.asarray(sample_weight, dtype=values.dtype).mean()  # a function that reduced already
        else:
            weights = sample_weights(f'Loss "{self.name}"', sample_weight, values.shape, values.dtype)
        value, scale = reduce(values, weights, self.reduction)
        if not with_gradient:
            return float(value), None
        if scale is None:
            raise ValueError(f'Loss "{self.name}": a gradient needs a loss reduced to one number, received '
                             f"reduction={self.reduction!r}")
        _, grad = graph_module.backward(plan, tape, [xp.asarray(scale, dtype=values.dtype)], need_input_grads=True)
        return float(value), xp.zeros_like(y_pred) if grad is None else grad

    def __call__(self, y_true, y_pred, sample_weight=None) -> float:
        return self._run(y_true, y_pred, sample_weight, with_gradient=False)[0]

    def value_and_gradient(self, y_true, y_pred, sample_weight=None):
        return self._run(y_true, y_pred, sample_weight, with_gradient=True)

    def gradient(self, y_true, y_pred, sample_weight=None):
        return self._run(y_true, y_pred, sample_weight, with_gradient=True)[1]

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"FunctionLoss({self.name})"
