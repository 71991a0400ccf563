"""The layer contract every layer of convscope follows.

* ``__init__(**hyperparameters)`` validates them (``ValueError`` / ``TypeError``
  naming the layer and the argument) and creates nothing else;
* ``build(input_shape)`` creates the parameters for an input shape
  ``(batch, ...)`` whose batch entry is ``None``;
* ``forward(x, training=False)`` returns the output and remembers what
  ``backward`` needs;
* ``backward(dy)`` takes dL/d(output) of the last forward and returns
  dL/d(input), filling ``.grad`` of every parameter;
* ``get_config()`` returns JSON-able constructor arguments, so that
  ``type(layer)(**layer.get_config())`` rebuilds the layer.

Parameters are ``Parameter`` objects holding ``.value`` and ``.grad`` arrays.
"""

from __future__ import annotations

import re
from collections import defaultdict

from .. import activations, backend

_name_counts: defaultdict[str, int] = defaultdict(int)


def unique_name(prefix: str) -> str:
    """Keras's automatic names: ``conv2d``, ``conv2d_1``, ``conv2d_2``, ..."""
    count = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session() -> None:
    """Restart automatic layer names from zero (as ``keras.backend.clear_session``)."""
    _name_counts.clear()


def snake_case(name: str) -> str:
    """``MaxPooling2D`` -> ``max_pooling2d``, the prefix of automatic names."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def check_positive_int(value, arg: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{owner}: argument "{arg}" must be a positive int, received {value!r}')
    return value


def lookup(getter, identifier, arg: str, owner: str):
    """``getter(identifier)`` (``activations.get``, ``initializers.get``, ...), with errors naming ``owner`` and ``arg``."""
    try:
        return getter(identifier)
    except (ValueError, TypeError) as e:
        raise type(e)(f'{owner}: argument "{arg}" is not valid: {e}') from e


def check_image_input(layer, input_shape) -> None:
    """Refuse anything but a 4-D (batch, height, width, channels) input with known sizes."""
    if len(input_shape) != 4 or any(d is None for d in input_shape[1:]):
        raise ValueError(
            f'Input 0 of layer "{layer.name}" is incompatible with the layer: expected ndim=4 '
            f"(batch, height, width, channels), found shape={tuple(input_shape)}"
        )


class Parameter:
    """A learnable (or tracked) array: ``value`` and its gradient ``grad`` of the same shape.

    ``trainable=False`` marks state the optimizer must not touch (batch norm's
    moving statistics); its ``grad`` stays zero.
    """

    def __init__(self, value, name: str, trainable: bool = True):
        self.value = value
        self.grad = backend.xp.zeros_like(value)
        self.name = name
        self.trainable = trainable

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"


class Layer:
    """Base class: naming, building on first call, input checks, weights in Keras order."""

    def __init__(self, name: str | None = None, trainable: bool = True):
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"{type(self).__name__}: argument \"name\" must be a non-empty string, received {name!r}")
        if not isinstance(trainable, bool):
            raise TypeError(f"{type(self).__name__}: argument \"trainable\" must be a bool, received {trainable!r}")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.trainable = trainable
        self.built = False
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self._params: list[Parameter] = []

    # -- the contract -------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create parameters for ``input_shape`` ``(None, ...)``; the base creates none."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def param_shapes(self, input_shape) -> dict:
        """``{name: shape}`` of the parameters ``build`` creates for ``input_shape``, in order; none here."""
        return {}

    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    # -- parameters -----------------------------------------------------------
    def add_parameter(self, name: str, value, trainable: bool = True) -> Parameter:
        param = Parameter(backend.cast(value), f"{self.name}/{name}", trainable)
        self._params.append(param)
        return param

    @property
    def parameters(self) -> list[Parameter]:
        """All parameters in Keras's weight order (trainable ones first, as created)."""
        return list(self._params)

    @property
    def trainable_parameters(self) -> list[Parameter]:
        return [p for p in self._params if p.trainable and self.trainable]

    def count_params(self) -> int:
        return int(sum(p.value.size for p in self._params))

    def get_weights(self) -> list:
        """Copies of the parameter values in Keras's order (kernel, bias; gamma, beta, moving mean, moving variance)."""
        return [p.value.copy() for p in self._params]

    def set_weights(self, weights) -> None:
        if len(weights) != len(self._params):
            raise ValueError(
                f'Layer "{self.name}" expects {len(self._params)} weights, received {len(weights)}'
            )
        for param, w in zip(self._params, weights):
            w = backend.xp.asarray(w)
            if w.shape != param.value.shape:
                raise ValueError(
                    f'Layer "{self.name}" weight "{param.name}" expects shape {param.value.shape}, received {w.shape}'
                )
            param.value = backend.cast(w, param.value.dtype).copy()

    def zero_grad(self) -> None:
        for p in self._params:
            p.grad[...] = 0

    # -- calling --------------------------------------------------------------
    def check_input(self, x) -> None:
        """Refuse an input whose rank or non-batch dimensions differ from the built shape (Keras's message)."""
        expected = self.input_shape
        if x.ndim != len(expected) or any(e is not None and e != r for e, r in zip(expected[1:], x.shape[1:])):
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: '
                f"expected shape={expected}, found shape={tuple(x.shape)}"
            )

    def __call__(self, x, training: bool = False):
        x = backend.xp.asarray(x)
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))
        self.check_input(x)
        return self.forward(x, training=training)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class ActivatedLayer(Layer):
    """A layer whose output is ``activation(z)`` for a pre-activation ``z`` it computes.

    ``forward`` is ``activate(forward_linear(x))``: it records ``preactivation`` (z)
    and ``output`` (y) as public attributes for inspection. ``backward(dy)`` applies the activation's
    derivative element-wise and then ``backward_linear(dz)``; with
    ``dy_is_preactivation=True`` the caller already holds dL/dz (the model does
    this when it fuses a final softmax with cross-entropy).
    """

    def __init__(self, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.activation = lookup(activations.get, activation, "activation", f'{type(self).__name__} "{self.name}"')
        self.preactivation = None
        self.output = None

    def forward(self, x, training: bool = False):
        return self.activate(self.forward_linear(x, training))

    def forward_linear(self, x, training: bool = False):
        """The pre-activation z (remembering what ``backward_linear`` needs)."""
        raise NotImplementedError

    def activate(self, z):
        self.preactivation = z
        self.output = z if self.activation.name == "linear" else self.activation(z)
        return self.output

    def backward(self, dy, dy_is_preactivation: bool = False, need_dx: bool = True):
        if dy_is_preactivation or self.activation.name == "linear":
            dz = dy
        else:
            dz = self.activation.gradient(self.preactivation, self.output, dy)
        return self.backward_linear(dz, need_dx)

    def backward_linear(self, dz, need_dx: bool = True):
        """Parameter gradients from dL/dz; returns dL/dx, or None when ``need_dx`` is False (a first layer)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}
