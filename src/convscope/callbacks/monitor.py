"""``MonitorCallback``: what EarlyStopping, ModelCheckpoint and ReduceLROnPlateau share: a monitored
log value, whether lower or higher is better, and what counts as an improvement."""

from __future__ import annotations

import operator

from .. import metrics as metrics_module
from .base import Callback

# Compiled metrics for which lower is better; every other convscope metric (accuracies, precision,
# recall, AUC) is better higher, as each Keras metric's direction says.
_LOWER_IS_BETTER = (metrics_module.MeanSquaredError, metrics_module.MeanAbsoluteError)


class MonitorCallback(Callback):
    """Watches ``logs[monitor]`` at the end of each epoch.

    ``mode``: ``"min"`` (lower is better), ``"max"``, or ``"auto"``, decided at the first ``on_epoch_end``
    as Keras does: ``loss`` and ``val_loss`` (and ``<output>_loss``) are minimised; a name that is one of
    the compiled metrics (with or without ``val_``) follows that metric (accuracies, AUC, precision and
    recall maximised, mean squared / absolute error minimised); any other name is a ``ValueError``
    asking for ``mode``. (Keras warns and falls back to "auto" for an unknown ``mode``; convscope refuses
    it.)

    Improvement: ``value < best - min_delta`` when minimising, ``value > best + min_delta`` when
    maximising; any value improves on ``best = None``.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f'{type(self).__name__}: argument "mode" must be "auto", "min" or "max", '
                             f"received {mode!r}")
        if not isinstance(monitor, str):
            raise TypeError(f'{type(self).__name__}: argument "monitor" must be a log key (str), received {monitor!r}')
        self.monitor, self.mode, self.best = monitor, mode, baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self) -> None:
        direction = self.mode if self.mode != "auto" else self._auto_direction()
        self.monitor_op = operator.lt if direction == "min" else operator.gt
        if direction == "min":
            self.min_delta *= -1

    def _auto_direction(self) -> str:
        name = self.monitor.removeprefix("val_")
        if name == "loss" or name.endswith("_loss"):
            return "min"
        for metric in getattr(self.model, "metrics", None) or []:
            if name == metric.name or name.endswith("_" + metric.name):  # "<output>_<metric>" with several outputs
                return "min" if isinstance(metric, _LOWER_IS_BETTER) else "max"
        raise ValueError(
            f"{type(self).__name__} callback received monitor={self.monitor}, but convscope isn't able to "
            "automatically determine whether that metric should be maximized or minimized. Pass `mode='max'` in "
            "order to monitor based on the highest metric value, or pass `mode='min'` in order to use the lowest "
            "value."
        )

    def _is_improvement(self, value, reference) -> bool:
        if self.monitor_op is None:
            self._set_monitor_op()
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))
