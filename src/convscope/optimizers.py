"""Optimizers, as in ``keras.optimizers``, with Keras 3's update rules.

``optimizer.apply(params)`` performs one step on a list of trainable
``Parameter`` objects, reading ``p.grad`` and updating ``p.value`` in place.
Each step, in Keras's order:

1. clip the gradients: ``clipnorm`` c per parameter (``g * c / max(||g||, c)``),
   ``global_clipnorm`` over all of them together, or ``clipvalue`` elementwise;
2. decay the weights if ``weight_decay`` w is set: ``var -= var * w * lr``;
3. the optimizer's own rule (in each class's docstring), with ``t = iterations + 1``;
4. ``iterations += 1``.

``learning_rate`` may be a float or a schedule from ``optimizers.schedules``
(Keras's ``keras.optimizers.schedules``): the step then uses
``schedule(iterations)``, read before the update. ``optimizer.learning_rate``
reads the current value; assigning a schedule replaces it, assigning a float to
an optimizer built with a schedule is refused, as in Keras.

Per-parameter state ("slots": momentum, velocity, ...) is created on the first
``apply``, one array per parameter in list order, of the parameter's shape and
dtype. ``get_state`` / ``set_state`` save and restore it exactly, keyed as
``"<slot>/<parameter index>"`` plus ``"iterations"`` and ``"learning_rate"``
(the learning rate is state too, as in Keras: callbacks may change it; with a
schedule it is config instead and not in the state), and optimizer-wide scalars
such as Nadam's ``"u_product"``.
"""

from __future__ import annotations

import math

from . import backend, schedules

# Keras config entries convscope has no counterpart for, readable only at these values.
_KERAS_DEFAULTS = {"use_ema": False, "ema_overwrite_frequency": None,
                   "loss_scale_factor": None, "gradient_accumulation_steps": None}
_KERAS_IGNORED = ("ema_momentum",)  # meaningless while use_ema is False


def _check_number(owner: str, arg: str, value, low: float, high: float = math.inf,
                  low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float, or an error naming ``owner``, ``arg``, the interval and what was received."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f'{owner}: argument "{arg}" must be a number, received {value!r}')
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high or not math.isfinite(value):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open or high == math.inf else ']'}"
        raise ValueError(f'{owner}: argument "{arg}" must be in {interval}, received {value!r}')
    return float(value)


def _check_bool(owner: str, arg: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f'{owner}: argument "{arg}" must be a bool, received {value!r}')
    return value


class Optimizer:
    """Base class: learning rate, clipping, weight decay, slots, state and config.

    Subclasses set ``default_name``, list their slots in ``slot_names()`` and
    implement ``_update(value, grad, slots, lr)`` for one parameter, where
    ``slots`` maps slot names to that parameter's arrays.
    """

    default_name = "optimizer"
    scalar_state: tuple[str, ...] = ()  # optimizer-wide float attributes saved by get_state

    def __init__(self, learning_rate: float, weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None, name: str | None = None):
        owner = type(self).__name__
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f'{owner}: argument "name" must be a non-empty string, received {name!r}')
        self.name = name or self.default_name
        self._learning_rate = None
        self.learning_rate = learning_rate
        self.weight_decay = None if weight_decay is None else _check_number(owner, "weight_decay", weight_decay, 0)
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = {k: v for k, v in clips.items() if v is not None}
        if len(given) > 1:
            raise ValueError(
                f"{owner}: at most one of clipnorm, clipvalue and global_clipnorm can be set, received {given}"
            )
        for arg, value in given.items():
            _check_number(owner, arg, value, 0, low_open=True)
        self.clipnorm, self.clipvalue, self.global_clipnorm = (
            None if v is None else float(v) for v in clips.values())
        self.iterations = 0
        self._slots: list[dict] | None = None  # per parameter: slot name -> array

    @property
    def learning_rate(self) -> float:
        """The rate the next step uses: the float, or the schedule at the current ``iterations``."""
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            return float(self._learning_rate(self.iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        owner = type(self).__name__
        if isinstance(value, schedules.LearningRateSchedule):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            raise TypeError(
                f"{owner}: this optimizer was created with a LearningRateSchedule as its learning_rate, hence its "
                f"learning rate is not settable to {value!r}; create the optimizer with a float learning_rate "
                "to set it, or assign another schedule"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f'{owner}: argument "learning_rate" must be a number or a LearningRateSchedule, '
                            f"received {value!r}")
        self._learning_rate = _check_number(owner, "learning_rate", value, 0, low_open=True)

    @property
    def schedule(self) -> "schedules.LearningRateSchedule | None":
        """The learning-rate schedule, or None for a constant (settable) rate."""
        lr = self._learning_rate
        return lr if isinstance(lr, schedules.LearningRateSchedule) else None

    # -- the step -----------------------------------------------------------
    def slot_names(self) -> tuple[str, ...]:
        """Names of the per-parameter arrays this configuration keeps."""
        return ()

    def _slot_initial_value(self, slot: str) -> float:
        return 0.0

    def _update(self, value, grad, slots: dict, lr: float) -> None:
        raise NotImplementedError

    def _begin_step(self) -> None:
        """Update optimizer-wide values once per step, before the parameters (Nadam's momentum product)."""

    def apply(self, params) -> None:
        """One step on ``params`` (trainable ``Parameter``s, the same list every call)."""
        params = list(params)
        if self._slots is None:
            self._slots = [self._new_slots(p.value) for p in params]
        else:
            self._check_params(params)
        xp = backend.xp
        grads = self._clip([xp.asarray(p.grad, dtype=p.value.dtype) for p in params])
        lr = self.learning_rate
        self._begin_step()
        for p, g, slots in zip(params, grads, self._slots):
            if self.weight_decay:
                p.value -= p.value * (self.weight_decay * lr)
            self._update(p.value, g, slots, lr)
        self.iterations += 1

    def _new_slots(self, value) -> dict:
        xp = backend.xp
        return {s: xp.full_like(value, self._slot_initial_value(s)) for s in self.slot_names()}

    def _check_params(self, params) -> None:
        owner = type(self).__name__
        if len(params) != len(self._slots):
            raise ValueError(
                f"{owner}: expected the {len(self._slots)} parameters it was first applied to, received {len(params)}; "
                "use a new optimizer for a different model"
            )
        for i, (p, slots) in enumerate(zip(params, self._slots)):
            for slot in slots.values():
                if slot.shape != p.value.shape:
                    raise ValueError(
                        f"{owner}: parameter {i} ({p.name}) expected shape {slot.shape}, received {p.value.shape}"
                    )

    def _clip(self, grads: list) -> list:
        xp = backend.xp
        if self.clipnorm is not None:
            return [g * (self.clipnorm / max(float(xp.sqrt((g * g).sum())), self.clipnorm)) for g in grads]
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
            scale = self.global_clipnorm / max(norm, self.global_clipnorm)
            return [g * scale for g in grads]
        if self.clipvalue is not None:
            return [xp.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    # -- checkpoint state ----------------------------------------------------
    def _scalar_keys(self) -> tuple[str, ...]:
        return (() if self.schedule is not None else ("learning_rate",)) + self.scalar_state

    def get_state(self) -> dict:
        """Copies of ``{"iterations", "learning_rate", <scalar_state>..., "<slot>/<index>": ...}`` as arrays
        (no ``"learning_rate"`` when it follows a schedule)."""
        xp = backend.xp
        state = {"iterations": xp.asarray(self.iterations, dtype=xp.int64)}
        for key in self._scalar_keys():
            state[key] = xp.asarray(getattr(self, key), dtype=xp.float64)
        for i, slots in enumerate(self._slots or []):
            for slot, array in slots.items():
                state[f"{slot}/{i}"] = array.copy()
        return state

    def set_state(self, state: dict, params) -> None:
        """Continue from ``get_state()`` of an optimizer that was applied to parameters shaped like ``params``.

        A state saved before the first step (no slots, iterations 0) is accepted
        too; slots are then created on the next ``apply``.
        """
        owner = f"{type(self).__name__}.set_state"
        params = list(params)
        base = {"iterations", *self._scalar_keys()}
        expected = base | {f"{s}/{i}" for s in self.slot_names() for i in range(len(params))}
        keys = set(state)
        fresh = keys == base and "iterations" in state and int(state["iterations"]) == 0
        if keys != expected and not fresh:
            raise ValueError(
                f"{owner}: expected entries {sorted(expected)} for {len(params)} parameters, "
                f"missing {sorted(expected - keys)}, unexpected {sorted(keys - expected)}"
            )
        xp = backend.xp
        iterations = xp.asarray(state["iterations"])
        if iterations.shape != () or not xp.issubdtype(iterations.dtype, xp.integer) or iterations < 0:
            raise ValueError(f'{owner}: "iterations" must be an integer scalar >= 0, received {state["iterations"]!r}')
        slots = None
        if not fresh:
            slots = []
            for i, p in enumerate(params):
                slots.append({})
                for s in self.slot_names():
                    array = xp.asarray(state[f"{s}/{i}"])
                    if array.shape != p.value.shape:
                        raise ValueError(
                            f'{owner}: "{s}/{i}" must have the shape {p.value.shape} of parameter {p.name}, '
                            f"received {array.shape}"
                        )
                    slots[i][s] = backend.cast(array, p.value.dtype).copy()
        values = {}
        for key in self._scalar_keys():
            value = xp.asarray(state[key])
            if value.shape != () or not xp.issubdtype(value.dtype, xp.number):
                raise ValueError(f'{owner}: "{key}" must be a number, received {state[key]!r}')
            values[key] = float(value)
        for key, value in values.items():
            setattr(self, key, value)
        self.iterations = int(iterations)
        self._slots = slots

    # -- config ----------------------------------------------------------------
    def get_config(self) -> dict:
        """Keras's config keys; a schedule appears as Keras serializes it (see ``schedules.serialize``)."""
        lr = self._learning_rate
        lr = schedules.serialize(lr) if isinstance(lr, schedules.LearningRateSchedule) else lr
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue}

    @classmethod
    def from_config(cls, config: dict) -> "Optimizer":
        """Rebuild from ``get_config()``; reads Keras configs too, if their EMA / loss-scale / accumulation are off."""
        config = dict(config)
        for key in _KERAS_IGNORED:
            config.pop(key, None)
        for key, default in _KERAS_DEFAULTS.items():
            if key in config and config.pop(key) != default:
                raise ValueError(f'{cls.__name__}: Keras option "{key}" is only supported at its default {default!r}')
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        lr = self.schedule if self.schedule is not None else self.learning_rate
        return f"<{type(self).__name__} name={self.name!r} learning_rate={lr} iterations={self.iterations}>"


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum.

    * ``momentum == 0``: ``var -= lr * g``;
    * otherwise ``m = momentum * m - lr * g`` and ``var += m``, or with
      ``nesterov`` ``var += momentum * m - lr * g``.
    """

    default_name = "SGD"

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = _check_number("SGD", "momentum", momentum, 0, 1)
        self.nesterov = _check_bool("SGD", "nesterov", nesterov)

    def slot_names(self):
        return ("momentum",) if self.momentum else ()

    def _update(self, value, grad, slots, lr):
        if not self.momentum:
            value -= lr * grad
            return
        m = slots["momentum"]
        m *= self.momentum
        m -= lr * grad
        if self.nesterov:
            value += self.momentum * m - lr * grad
        else:
            value += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba) in Keras's form, with ``t = iterations + 1``:

    ``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``,
    ``alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)``,
    ``var -= alpha m / (sqrt(v) + epsilon)``. With ``amsgrad`` the running
    maximum ``v_hat = max(v_hat, v)`` replaces ``v`` in the last line.
    """

    default_name = "adam"

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        owner = type(self).__name__
        self.beta_1 = _check_number(owner, "beta_1", beta_1, 0, 1, high_open=True)
        self.beta_2 = _check_number(owner, "beta_2", beta_2, 0, 1, high_open=True)
        self.epsilon = _check_number(owner, "epsilon", epsilon, 0, low_open=True)
        self.amsgrad = _check_bool(owner, "amsgrad", amsgrad)

    def slot_names(self):
        return ("momentum", "velocity", "velocity_hat") if self.amsgrad else ("momentum", "velocity")

    def _update(self, value, grad, slots, lr):
        xp = backend.xp
        t = self.iterations + 1
        alpha = lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        m, v = slots["momentum"], slots["velocity"]
        m += (grad - m) * (1 - self.beta_1)
        v += (grad * grad - v) * (1 - self.beta_2)
        if self.amsgrad:
            v = xp.maximum(slots["velocity_hat"], v, out=slots["velocity_hat"])
        value -= alpha * m / (xp.sqrt(v) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): each step first
    ``var -= var * weight_decay * lr``, then the Adam update."""

    default_name = "adamw"

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        if weight_decay is None:
            raise ValueError('AdamW: argument "weight_decay" must be a number >= 0, received None')
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """RMSprop (Hinton): ``v = rho v + (1 - rho) g^2``; the step is
    ``lr g / sqrt(v + epsilon)``, or with ``centered`` (``a = rho a + (1 - rho) g``)
    ``lr g / sqrt(v - a^2 + epsilon)``. With ``momentum`` the step feeds
    ``m = momentum m + step`` and ``var -= m``; otherwise ``var -= step``.
    """

    default_name = "rmsprop"

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        owner = type(self).__name__
        self.rho = _check_number(owner, "rho", rho, 0, 1, high_open=True)
        self.momentum = _check_number(owner, "momentum", momentum, 0, 1)
        self.epsilon = _check_number(owner, "epsilon", epsilon, 0, low_open=True)
        self.centered = _check_bool(owner, "centered", centered)

    def slot_names(self):
        optional = (("momentum",) if self.momentum else ()) + (("average_gradient",) if self.centered else ())
        return ("velocity",) + optional

    def _update(self, value, grad, slots, lr):
        xp = backend.xp
        v = slots["velocity"]
        v *= self.rho
        v += (1 - self.rho) * grad * grad
        if self.centered:
            a = slots["average_gradient"]
            a *= self.rho
            a += (1 - self.rho) * grad
            step = lr * grad / xp.sqrt(v - a * a + self.epsilon)
        else:
            step = lr * grad / xp.sqrt(v + self.epsilon)
        if self.momentum:
            m = slots["momentum"]
            m *= self.momentum
            m += step
            step = m
        value -= step

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): ``acc += g^2`` (starting at ``initial_accumulator_value``),
    ``var -= lr g / sqrt(acc + epsilon)``."""

    default_name = "adagrad"

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        owner = type(self).__name__
        self.initial_accumulator_value = _check_number(owner, "initial_accumulator_value", initial_accumulator_value, 0)
        self.epsilon = _check_number(owner, "epsilon", epsilon, 0, low_open=True)

    def slot_names(self):
        return ("accumulator",)

    def _slot_initial_value(self, slot):
        return self.initial_accumulator_value

    def _update(self, value, grad, slots, lr):
        acc = slots["accumulator"]
        acc += grad * grad
        value -= lr * grad / backend.xp.sqrt(acc + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012) with Keras's learning rate (1.0 gives the paper's form):

    ``acc_g = rho acc_g + (1 - rho) g^2``,
    ``delta = -sqrt(acc_d + epsilon) g / sqrt(acc_g + epsilon)``,
    ``acc_d = rho acc_d + (1 - rho) delta^2``, ``var += lr delta``.
    PyTorch's ``Adadelta`` is the same rule (defaults lr 1.0, rho 0.9, eps 1e-6).
    """

    default_name = "adadelta"

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.95, epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        owner = type(self).__name__
        self.rho = _check_number(owner, "rho", rho, 0, 1, high_open=True)
        self.epsilon = _check_number(owner, "epsilon", epsilon, 0, low_open=True)

    def slot_names(self):
        return ("accumulated_grad", "accumulated_delta_var")

    def _update(self, value, grad, slots, lr):
        xp = backend.xp
        acc_g, acc_d = slots["accumulated_grad"], slots["accumulated_delta_var"]
        acc_g *= self.rho
        acc_g += (1 - self.rho) * grad * grad
        delta = -(xp.sqrt(acc_d + self.epsilon) * grad) / xp.sqrt(acc_g + self.epsilon)
        acc_d *= self.rho
        acc_d += (1 - self.rho) * delta * delta
        value += lr * delta

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, section 7.1), Adam with the infinity norm, ``t = iterations + 1``:

    ``m += (g - m)(1 - beta_1)``, ``u = max(beta_2 u, |g|)``,
    ``var -= lr m / ((1 - beta_1^t)(u + epsilon))``.
    PyTorch's ``Adamax`` puts epsilon inside the maximum instead (``max(beta_2 u, |g| + eps)``, no ``+ eps``
    in the denominator); the two agree for epsilon -> 0.
    """

    default_name = "adamax"

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        owner = type(self).__name__
        self.beta_1 = _check_number(owner, "beta_1", beta_1, 0, 1, high_open=True)
        self.beta_2 = _check_number(owner, "beta_2", beta_2, 0, 1, high_open=True)
        self.epsilon = _check_number(owner, "epsilon", epsilon, 0, low_open=True)

    def slot_names(self):
        return ("momentum", "norm")

    def _update(self, value, grad, slots, lr):
        xp = backend.xp
        t = self.iterations + 1
        m, u = slots["momentum"], slots["norm"]
        m += (grad - m) * (1 - self.beta_1)
        xp.maximum(self.beta_2 * u, xp.abs(grad), out=u)
        value -= lr * m / ((1 - self.beta_1**t) * (u + self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Nadam (Dozat, 2015): Adam with Nesterov momentum and Keras's momentum schedule.

    With ``t = iterations + 1`` and ``mu_t = beta_1 (1 - 0.5 * 0.96^t)``, the
    optimizer-wide product ``u_product = mu_1 ... mu_t`` (state, 1.0 before the
    first step) is updated once per step, then for each parameter
    ``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``,
    ``m_hat = mu_{t+1} m / (1 - u_product mu_{t+1}) + (1 - mu_t) g / (1 - u_product)``,
    ``v_hat = v / (1 - beta_2^t)``, ``var -= lr m_hat / (sqrt(v_hat) + epsilon)``.
    PyTorch's ``NAdam`` is the same rule with ``momentum_decay=1.0`` (its default
    0.004 uses ``0.96^(0.004 t)``) and eps 1e-8 by default.
    """

    default_name = "nadam"
    scalar_state = ("u_product",)

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        owner = type(self).__name__
        self.beta_1 = _check_number(owner, "beta_1", beta_1, 0, 1, high_open=True)
        self.beta_2 = _check_number(owner, "beta_2", beta_2, 0, 1, high_open=True)
        self.epsilon = _check_number(owner, "epsilon", epsilon, 0, low_open=True)
        self.u_product = 1.0

    def slot_names(self):
        return ("momentum", "velocity")

    def _mu(self, t: int) -> float:
        return self.beta_1 * (1.0 - 0.5 * 0.96**t)

    def _begin_step(self):
        self.u_product *= self._mu(self.iterations + 1)

    def _update(self, value, grad, slots, lr):
        xp = backend.xp
        t = self.iterations + 1
        mu_t, mu_next = self._mu(t), self._mu(t + 1)
        u_product_next = self.u_product * mu_next
        m, v = slots["momentum"], slots["velocity"]
        m += (grad - m) * (1 - self.beta_1)
        v += (grad * grad - v) * (1 - self.beta_2)
        m_hat = (mu_next / (1 - u_product_next)) * m + ((1 - mu_t) / (1 - self.u_product)) * grad
        v_hat = v / (1 - self.beta_2**t)
        value -= lr * m_hat / (xp.sqrt(v_hat) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


# -- lookup -------------------------------------------------------------------
_CLASSES = {cls.__name__.lower(): cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam)}


def get(identifier) -> Optimizer:
    """An optimizer from a name (``"adam"``, ``"SGD"``: any case, as Keras), a
    ``{"class_name", "config"}`` dict, or an ``Optimizer`` (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, (str, dict)):
        class_name = identifier if isinstance(identifier, str) else identifier.get("class_name")
        cls = _CLASSES.get(str(class_name).lower())
        if cls is None:
            raise ValueError(f"Unknown optimizer {class_name!r}; known: {sorted(_CLASSES)}")
        return cls() if isinstance(identifier, str) else cls.from_config(identifier.get("config") or {})
    raise TypeError(
        "optimizers.get: expected an optimizer name, a {'class_name', 'config'} dict or an Optimizer, "
        f"received {identifier!r} ({type(identifier).__name__})"
    )


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name": ..., "config": ...}``, which ``get`` turns back into an equal (fresh) optimizer."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
