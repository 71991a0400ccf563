"""What ``compile`` fixes for each output: its loss, the loss's weight and its metrics.

``compile(loss=...)`` takes one loss for every output, a list (one per output, in
``model.outputs`` order) or a dict by output name (outputs left out get no loss), and
``loss_weights`` in the same forms; the total is ``sum_k weight_k * loss_k``, as in Keras.
``metrics`` is a list for a single output; for several, a list of lists, a dict by
output name, or one flat list given to every output. With several outputs the logs
name each part after its output: ``loss``, ``<output>_loss``, ``<output>_<metric>``.
"""

from __future__ import annotations

from .. import losses, metrics as metrics_module
from .function_loss import FunctionLoss


class OutputSpec:
    """One output's loss (or None), weight and metrics."""

    def __init__(self, name: str, loss, weight: float, metrics: list):
        self.name, self.loss, self.weight, self.metrics = name, loss, weight, metrics


def _per_output(value, names: list, arg: str, owner: str, default):
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f'{owner}: argument "{arg}" names outputs {unknown}; the model\'s outputs are {names}')
        return [value.get(n, default) for n in names]
    if isinstance(value, (list, tuple)) and len(names) > 1:
        if len(value) != len(names):
            raise ValueError(f'{owner}: argument "{arg}" has {len(value)} entries for {len(names)} outputs ({names})')
        return list(value)
    return [value] * len(names)


def output_specs(owner: str, names: list, loss, loss_weights, metrics) -> list[OutputSpec]:
    # No loss at all is allowed, as in Keras: the model may train on the losses its layers add (add_loss).
    per_loss = _per_output(loss, names, "loss", owner, None)
    per_weight = _per_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights", owner, 1.0)
    if metrics is None:
        per_metrics = [[] for _ in names]
    elif isinstance(metrics, dict):
        per_metrics = _per_output(metrics, names, "metrics", owner, [])
    elif len(names) > 1 and metrics and all(isinstance(m, (list, tuple)) or m is None for m in metrics):
        per_metrics = _per_output(metrics, names, "metrics", owner, [])
    else:
        per_metrics = [metrics] * len(names)
    specs = []
    for name, item, weight, ms in zip(names, per_loss, per_weight, per_metrics):
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise TypeError(f'{owner}: loss weight of output "{name}" must be a number, received {weight!r}')
        loss_obj = None if item is None else _loss(item)
        ms = [] if ms is None else (ms if isinstance(ms, (list, tuple)) else [ms])
        if ms and loss_obj is None:
            raise ValueError(f'{owner}: output "{name}" has metrics but no loss')
        specs.append(OutputSpec(name, loss_obj, float(weight), [metrics_module.get(m, loss_obj) for m in ms]))
    return specs


def _loss(item):
    """A Loss from a name, config or Loss; a user's function of (y_true, y_pred), or a Loss subclass defining
    ``call``, becomes a ``FunctionLoss`` (differentiated through its convscope.ops calls)."""
    if isinstance(item, losses.Loss):
        defines_call = type(item).call is not losses.Loss.call
        return FunctionLoss(item.call, name=item.name, reduction=item.reduction) if defines_call else item
    try:
        return losses.get(item)
    except (TypeError, ValueError):
        if callable(item) and not isinstance(item, type):
            return FunctionLoss(item)
        raise


def log_names(specs: list[OutputSpec]) -> list:
    """``[(spec, metric, log key)]``: "accuracy" for a single output, "<output>_accuracy" for several."""
    several = len(specs) > 1
    return [(s, m, f"{s.name}_{m.name}" if several else m.name) for s in specs for m in s.metrics]


class Tally:
    """Sample-weighted running means of the loss, of each output's loss and of the metrics: Keras's logs."""

    def __init__(self, specs: list[OutputSpec]):
        self.specs, self.named = specs, log_names(specs)
        self.total, self.parts, self.seen = 0.0, {}, 0
        for _, metric, _ in self.named:
            metric.reset()

    def add(self, value: float, parts: dict, targets: list, predictions: list, count: int) -> None:
        self.total, self.seen = self.total + value * count, self.seen + count
        for name, v in parts.items():
            self.parts[name] = self.parts.get(name, 0.0) + v * count
        for spec, metric, _ in self.named:
            k = self.specs.index(spec)
            metric.update(targets[k], predictions[k])

    def logs(self) -> dict:
        """The running means so far (``{}`` before any batch, as Keras's logs of an epoch that ran none)."""
        if not self.seen:
            return {}
        logs = {"loss": self.total / self.seen}
        if len(self.specs) > 1:
            logs.update({f"{name}_loss": v / self.seen for name, v in self.parts.items()})
        logs.update({key: float(metric.result()) for _, metric, key in self.named})
        return logs
