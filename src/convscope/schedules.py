"""Learning-rate schedules, as in ``keras.optimizers.schedules`` (reachable as ``optimizers.schedules``).

A schedule maps the optimizer's step counter to a learning rate. An optimizer
given a schedule as ``learning_rate`` evaluates ``schedule(iterations)`` before
each update, so the first step uses ``schedule(0)``. Values are Python floats
(float64 arithmetic; Keras computes them in float32).

* ``ExponentialDecay``: ``lr(s) = lr0 * decay_rate ** (s / decay_steps)``,
  with ``floor(s / decay_steps)`` when ``staircase``.
* ``PiecewiseConstantDecay``: ``values[0]`` for ``s <= boundaries[0]``,
  ``values[i]`` for ``boundaries[i-1] < s <= boundaries[i]``, ``values[-1]``
  after the last boundary.
* ``CosineDecay``: ``lr0 * ((1 - alpha) * (1 + cos(pi * min(s, D) / D)) / 2 + alpha)``
  for ``D = decay_steps``; with a ``warmup_target`` T and ``warmup_steps`` W the
  rate first rises linearly ``lr0 + (T - lr0) * s / W`` for ``s < W``, then
  decays from T the same way over ``min(s, D + W) - W``.

``serialize`` / ``deserialize`` use Keras's dict
``{"module": "keras.optimizers.schedules", "class_name", "config", "registered_name": None}``.

Example::

    lr = ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.5)
    opt = optimizers.SGD(learning_rate=lr)   # opt.learning_rate == lr(opt.iterations)
"""

from __future__ import annotations

import math

KERAS_MODULE = "keras.optimizers.schedules"


def _number(owner: str, arg: str, value, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f'{owner}: argument "{arg}" must be a number, received {value!r}')
    if not math.isfinite(value) or (positive and value <= 0):
        expected = "a finite number > 0" if positive else "a finite number"
        raise ValueError(f'{owner}: argument "{arg}" must be {expected}, received {value!r}')
    return value


def _name(owner: str, name) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f'{owner}: argument "name" must be a non-empty string, received {name!r}')
    return name


class LearningRateSchedule:
    """Base class: ``schedule(step) -> float``, ``get_config`` and ``from_config``."""

    def __call__(self, step) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> "LearningRateSchedule":
        return cls(**config)

    def _step(self, step) -> float:
        """``step`` as a float; NumPy scalars and 0-d arrays (a saved ``iterations``) are numbers too."""
        try:
            if isinstance(step, bool):
                raise TypeError
            return float(step)
        except (TypeError, ValueError):
            raise TypeError(f"{type(self).__name__}: the step must be a number, received {step!r}") from None

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (the exponent floored when ``staircase``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, positive=True)
        self.decay_rate = _number(owner, "decay_rate", decay_rate)
        if not isinstance(staircase, bool):
            raise TypeError(f'{owner}: argument "staircase" must be a bool, received {staircase!r}')
        self.staircase = staircase
        self.name = _name(owner, name)

    def __call__(self, step) -> float:
        p = self._step(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate**p

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` on the i-th interval ``(boundaries[i-1], boundaries[i]]`` (the ends open-ended)."""

    def __init__(self, boundaries, values, name: str = "PiecewiseConstant"):
        owner = type(self).__name__
        for arg, seq in (("boundaries", boundaries), ("values", values)):
            if not isinstance(seq, (list, tuple)):
                raise TypeError(f'{owner}: argument "{arg}" must be a list of numbers, received {seq!r}')
            for v in seq:
                _number(owner, arg, v)
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                f"{owner}: the length of boundaries should be 1 less than the length of values, received "
                f"boundaries={list(boundaries)} of length {len(boundaries)} and values={list(values)} "
                f"of length {len(values)}"
            )
        if any(b > a for b, a in zip(boundaries, boundaries[1:])):
            raise ValueError(f'{owner}: argument "boundaries" must be non-decreasing, received {list(boundaries)}')
        self.boundaries = list(boundaries)
        self.values = list(values)
        self.name = _name(owner, name)

    def __call__(self, step) -> float:
        step = self._step(step)
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return float(value)
        return float(self.values[-1])

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay (Loshchilov & Hutter, SGDR without restarts), with an optional linear warmup."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: float | None = None, warmup_steps: float = 0):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, positive=True)
        self.alpha = _number(owner, "alpha", alpha)
        self.name = _name(owner, name)
        self.warmup_target = None if warmup_target is None else _number(owner, "warmup_target", warmup_target)
        self.warmup_steps = _number(owner, "warmup_steps", warmup_steps)
        if self.warmup_steps < 0:
            raise ValueError(f'{owner}: argument "warmup_steps" must be >= 0, received {warmup_steps!r}')

    def _decay(self, step: float, start: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step) -> float:
        step = self._step(step)
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            rise = self.warmup_target - self.initial_learning_rate
            return rise * (step / self.warmup_steps) + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


_CLASSES = {cls.__name__: cls for cls in (ExponentialDecay, PiecewiseConstantDecay, CosineDecay)}


def serialize(schedule: LearningRateSchedule) -> dict:
    """Keras's serialized form of ``schedule``."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"schedules.serialize: expected a LearningRateSchedule, received {schedule!r}")
    return {"module": KERAS_MODULE, "class_name": type(schedule).__name__, "config": schedule.get_config(),
            "registered_name": None}


def deserialize(config: dict) -> LearningRateSchedule:
    """A schedule from ``serialize``'s dict (Keras's, or any dict with ``class_name`` and ``config``)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise TypeError(f"schedules.deserialize: expected a {{'class_name', 'config'}} dict, received {config!r}")
    cls = _CLASSES.get(config["class_name"])
    if cls is None:
        raise ValueError(f"Unknown learning rate schedule {config['class_name']!r}; known: {sorted(_CLASSES)}")
    return cls.from_config(config.get("config") or {})
