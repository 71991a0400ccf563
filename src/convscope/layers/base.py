"""The layer contract every layer of convscope follows.

* ``__init__(**hyperparameters)`` validates them (``ValueError`` / ``TypeError``
  naming the layer and the argument) and creates nothing else;
* ``build(input_shape)`` creates the parameters for an input shape
  ``(batch, ...)`` whose batch entry is ``None``;
* ``forward(x, training=False)`` returns the output and remembers what
  ``backward`` needs;
* ``backward(dy, need_dx=True)`` takes dL/d(output) of the last forward and
  returns dL/d(input) (None when ``need_dx`` is False), *adding* dL/dp to
  ``.grad`` of every parameter p: a layer called twice, or a model with
  branches, sums its gradients without any special case. The model zeroes the
  gradients before each step;
* calling a layer on KerasTensors (``layer(convscope.Input(...))``) records a
  ``Node`` and returns KerasTensors (see ``layers.node``); calling it on arrays
  computes.
* ``get_config()`` returns JSON-able constructor arguments, so that
  ``type(layer)(**layer.get_config())`` rebuilds the layer.

Parameters are ``Parameter`` objects holding ``.value`` and ``.grad`` arrays.

A layer of the user's own, as in Keras, defines ``build`` (creating weights with
``add_weight``) and ``call`` written with ``convscope.ops`` and other layers; its
``forward`` and ``backward`` then replay the calls ``call`` makes, recorded once per mode
and input shape (the same graph engine as a subclassed ``Model``, which ``convscope.models``
registers here with ``register_call_runner``).
"""

from __future__ import annotations

import math
import re

from .. import activations, backend, constraints, initializers, regularizers
from .node import KerasTensor, Node, flatten_tensors, is_symbolic

_call_runner = None


def register_call_runner(runner) -> None:
    """The engine that runs layers defined by ``call`` (``convscope.models`` sets it: layers cannot import models)."""
    global _call_runner
    _call_runner = runner


unique_name, clear_session = backend.unique_name, backend.clear_session


def snake_case(name: str) -> str:
    """``MaxPooling2D`` -> ``max_pooling2d``, the prefix of automatic names."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def finite_number(value) -> bool:
    """Whether ``value`` is a real number (an int or a float, not a bool) that is finite.

    Every float hyperparameter check starts here: NaN (JSON's ``NaN`` in a config) compares false with
    everything, so ``epsilon <= 0`` or ``max_value < 0`` alone let it through; the infinities and ints too large
    for a float are refused with it.

        >>> finite_number(0.5), finite_number(float("nan")), finite_number(float("inf")), finite_number(10**400)
        (True, False, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


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


def _declared_input_shape(owner: str, input_shape, input_dim):
    """TensorFlow tutorials' first-layer style, which Keras 3 still accepts: ``Dense(64, input_shape=(784,))``
    or ``input_dim=784`` declares the input a ``Sequential`` starts with (as an ``Input`` first would)."""
    if input_shape is not None and input_dim is not None:
        raise ValueError(f'{owner}: give "input_shape" or "input_dim", not both')
    if input_dim is not None:
        input_shape = (input_dim,)
    if input_shape is None:
        return None
    if not isinstance(input_shape, (tuple, list)) or not input_shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape):
        raise ValueError(f'{owner}: argument "input_shape" / "input_dim" must be positive int sizes (no batch axis), '
                         f"received {input_shape!r}")
    return tuple(input_shape)


class Parameter:
    """A learnable (or tracked) array: ``value`` and its gradient ``grad`` of the same shape.

    ``trainable=False`` marks state the optimizer must not touch (batch norm's
    moving statistics); its ``grad`` stays zero.
    """

    def __init__(self, value, name: str, trainable: bool = True, regularizer=None, constraint=None):
        self.value = value
        self.grad = backend.xp.zeros_like(value)
        self.name = name
        self.trainable = trainable
        # Training adds regularizer(value) to the loss (and its gradient to grad) and sets
        # value[...] = constraint(value) after each optimizer step; None: nothing.
        self.regularizer = regularizer
        self.constraint = constraint

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def path(self) -> str:
        """``"<layer>/<weight>"``, as Keras's ``variable.path``."""
        return self.name

    def numpy(self):
        """A copy of the value, as Keras's ``variable.numpy()``."""
        return self.value.copy()

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def assign(self, value) -> None:
        """Set the value in place (Keras's ``variable.assign``); the shape must stay the same."""
        self.value[...] = self._checked(value, "assign")

    def assign_add(self, delta) -> None:
        """``value += delta`` in place (Keras's ``variable.assign_add``), in a call on arrays."""
        self.value += self._checked(delta, "assign_add")

    def assign_sub(self, delta) -> None:
        self.value -= self._checked(delta, "assign_sub")

    def _checked(self, value, method: str):
        if is_symbolic(value):
            raise TypeError(
                f'Parameter "{self.name}": {method}() of a symbolic tensor: inside a model\'s graph, convscope\'s '
                "layers compute pure functions of their inputs and weights; update the weight in a call on arrays "
                "(layer(x)) or in a callback"
            )
        value = backend.xp.asarray(value)
        if backend.xp.broadcast_shapes(value.shape, self.value.shape) != self.value.shape:
            raise ValueError(f'Parameter "{self.name}": {method}() expects shape {self.value.shape}, '
                             f"received {value.shape}")
        return value

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"


def _parameter_operator(function: str, reflected: bool = False):
    def method(self, other):
        from .operation import apply

        return apply(function, other, self) if reflected else apply(function, self, other)

    return method


_UFUNC_FUNCTIONS = {
    "add": "add", "subtract": "subtract", "multiply": "multiply", "true_divide": "divide", "power": "power",
    "maximum": "maximum", "minimum": "minimum", "negative": "negative", "exp": "exp", "log": "log",
    "square": "square", "sqrt": "sqrt", "absolute": "abs", "tanh": "tanh", "matmul": "matmul", "sign": "sign",
    "greater": "greater", "greater_equal": "greater_equal", "less": "less", "less_equal": "less_equal",
}


def _parameter_ufunc(self, ufunc, method, *inputs, **kwargs):
    # NumPy on a weight (``mask * self.w``, ``np.exp(self.w)``) is a convscope.ops call too, so that inside a traced
    # call() the weight is not frozen into a constant; other NumPy functions read its value.
    from .operation import apply

    name = _UFUNC_FUNCTIONS.get(ufunc.__name__)
    if method == "__call__" and name is not None and not kwargs:
        return apply(name, *inputs)
    return getattr(ufunc, method)(*[i.value if isinstance(i, Parameter) else i for i in inputs], **kwargs)


Parameter.__array_ufunc__ = _parameter_ufunc
# A weight in arithmetic (``x @ self.w + self.b`` in a custom layer's call) is a convscope.ops call, as in Keras.
for _dunder, _function in {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide",
                           "pow": "power", "matmul": "matmul"}.items():
    setattr(Parameter, f"__{_dunder}__", _parameter_operator(_function))
    setattr(Parameter, f"__r{_dunder}__", _parameter_operator(_function, reflected=True))
Parameter.__neg__ = lambda self: self * -1.0


class Layer:
    """Base class: naming, building on first call, input checks, weights in Keras order."""

    is_input_layer = False
    is_operation = False  # a convscope.ops call in a graph (layers.operation), not a layer of model.layers

    def __init__(self, name: str | None = None, trainable: bool = True, input_shape=None, input_dim=None,
                 activity_regularizer=None):
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"{type(self).__name__}: argument \"name\" must be a non-empty string, received {name!r}")
        if not isinstance(trainable, bool):
            raise TypeError(f"{type(self).__name__}: argument \"trainable\" must be a bool, received {trainable!r}")
        self.declared_input_shape = _declared_input_shape(type(self).__name__, input_shape, input_dim)
        self.name = name or unique_name(snake_case(type(self).__name__))
        # Keras's base-layer argument: training adds activity_regularizer(output) / batch size to the loss.
        self.activity_regularizer = lookup(regularizers.get, activity_regularizer, "activity_regularizer",
                                           f'{type(self).__name__} "{self.name}"')
        self._trainable = trainable
        self.built = False
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self._params: list[Parameter] = []
        self._inbound_nodes: list[Node] = []

    @property
    def trainable(self) -> bool:
        """False freezes the layer: the optimizer leaves its weights alone (and BatchNormalization runs in
        inference mode, as in Keras)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value) -> None:
        if not isinstance(value, bool):
            raise TypeError(f'{type(self).__name__} "{self.name}": "trainable" must be a bool, received {value!r}')
        self._trainable = value
        for layer in self.sublayers:
            layer.trainable = value

    @property
    def sublayers(self) -> list:
        """The layers a layer or model defined by ``call`` keeps in its public attributes, directly or in lists,
        tuples and dicts (looked up when asked, so a layer appended to a list later counts), in the order they
        were assigned, as Keras tracks them; none for convscope's own layers."""
        if type(self).call is Layer.call:
            return []
        found: list = []

        def visit(value):
            if isinstance(value, Layer):
                if value is not self and all(value is not f for f in found):
                    found.append(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    visit(item)
            elif isinstance(value, dict):
                for item in value.values():
                    visit(item)

        for name, value in vars(self).items():
            if not name.startswith("_"):
                visit(value)
        return found

    def _defines_call(self) -> bool:
        return type(self).call is not Layer.call and type(self).forward is Layer.forward

    # -- the contract -------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create parameters for ``input_shape`` ``(None, ...)``; the base creates none."""
        # Several inputs (merging layers): a list of shapes, as they were given.
        self.input_shape = [tuple(s) for s in input_shape] if isinstance(input_shape, list) else tuple(input_shape)
        if not self._defines_call():  # call() may need the weights build() is about to create
            self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def _build_for(self, input_shape) -> None:
        """``build`` on first use; a layer defined by ``call`` then learns its output shape from tracing it."""
        self.build(input_shape)
        if self._defines_call():
            self.input_shape = [tuple(s) for s in input_shape] if isinstance(input_shape, list) else tuple(input_shape)
            self.built = True
            self.output_shape = self.compute_output_shape(self.input_shape)

    def compute_output_shape(self, input_shape) -> tuple:
        if self._defines_call():
            return _call_runner.output_shape(self, input_shape)
        return tuple(input_shape)

    def call(self, inputs, training: bool = False):
        """A layer of your own: its computation on KerasTensors, with convscope.ops and other layers (Keras's
        ``call``); see the module docstring."""
        raise NotImplementedError(f"{type(self).__name__} defines neither forward() nor call()")

    def param_shapes(self, input_shape) -> dict:
        """``{name: shape}`` of the parameters ``build`` creates for ``input_shape``, in order; none here."""
        return {}

    def forward(self, x, training: bool = False):
        if not self._defines_call():
            raise NotImplementedError(f"{type(self).__name__} defines neither forward() nor call()")
        return _call_runner.forward(self, x, training)

    def backward(self, dy, need_dx: bool = True):
        if not self._defines_call():
            raise NotImplementedError(f"{type(self).__name__} defines no backward()")
        return _call_runner.backward(self, dy, need_dx)

    def forward_state(self):
        """What ``backward`` needs from the last ``forward`` (a shallow copy of the attributes), so that the
        engine can run the forward passes of a layer's several calls and then the backward of each."""
        return dict(vars(self))

    def restore_forward_state(self, state) -> None:
        vars(self).update(state)

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable}
        if self.activity_regularizer is not None:  # written only when set, as Keras does
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    # -- parameters -----------------------------------------------------------
    def add_parameter(self, name: str, value, trainable: bool = True, regularizer=None, constraint=None) -> Parameter:
        param = Parameter(backend.cast(value), f"{self.name}/{name}", trainable, regularizer, constraint)
        self._params.append(param)
        return param

    def add_weight(self, shape=None, initializer=None, dtype=None, trainable: bool = True, regularizer=None,
                   constraint=None, name: str | None = None, **keras_only) -> Parameter:
        """Keras's ``add_weight`` for layers of your own: a ``Parameter`` of ``shape`` drawn from ``initializer``
        (default ``"glorot_uniform"`` for floats, ``"zeros"`` otherwise, as Keras). ``autocast``,
        ``aggregation`` and ``overwrite_with_gradient`` are accepted and have no effect here."""
        owner = f'Layer "{self.name}"'
        unknown = set(keras_only) - {"autocast", "aggregation", "overwrite_with_gradient"}
        if unknown:
            raise TypeError(f"{owner}: add_weight() got unexpected arguments {sorted(unknown)}")
        shape = () if shape is None else tuple(int(d) for d in shape)
        dtype = dtype or backend.floatx()
        floating = backend.xp.issubdtype(backend.xp.dtype(dtype), backend.xp.floating)
        init = lookup(initializers.get, initializer or ("glorot_uniform" if floating else "zeros"), "initializer",
                      owner)
        param = self.add_parameter(f"variable_{len(self._params)}" if name is None else name, init(shape, dtype),
                                   trainable, lookup(regularizers.get, regularizer, "regularizer", owner),
                                   lookup(constraints.get, constraint, "constraint", owner))
        if param.value.dtype != backend.xp.dtype(dtype):  # add_parameter casts to floatx; keep an int weight int
            param.value = param.value.astype(dtype)
            param.grad = backend.xp.zeros_like(param.value)
        return param

    add_variable = add_weight

    def add_loss(self, loss) -> None:
        """Keras's ``add_loss`` inside ``call``: ``loss`` (a tensor computed with convscope.ops) is added to the
        training loss, its elements summed, and differentiated with the rest (see ``models.graph``). In a call
        on arrays (``layer(x)``), the number is recorded in ``layer.losses``."""
        from .operation import add_loss, tracing_in_progress

        if not tracing_in_progress() and not is_symbolic(loss):
            self.__dict__.setdefault("_added_loss_values", []).append(float(backend.xp.sum(backend.xp.asarray(loss))))
            return
        add_loss(f'Layer "{self.name}"', loss)

    @property
    def losses(self) -> list:
        """The losses ``add_loss`` added in the last forward pass and its activity penalty there, its sublayers'
        (recursively), then the penalties of its own weights' regularizers, as Keras lists them."""
        own = list(self.__dict__.get("_added_loss_values", ())) + list(self.__dict__.get("_activity_loss_values", ()))
        for layer in self.sublayers:
            own += layer.losses
        trainable = self._params if self.trainable else []
        return own + [float(p.regularizer(p.value)) for p in trainable if p.trainable and p.regularizer is not None]

    @property
    def parameters(self) -> list[Parameter]:
        """All parameters in Keras's weight order (trainable ones first, as created), then its sublayers'."""
        own = list(self._params)
        for layer in self.sublayers:
            own += [p for p in layer.parameters if all(p is not q for q in own)]
        return own

    @property
    def trainable_parameters(self) -> list[Parameter]:
        if not self.trainable:
            return []
        own = [p for p in self._params if p.trainable]
        for layer in self.sublayers:
            own += [p for p in layer.trainable_parameters if all(p is not q for q in own)]
        return own

    @property
    def weights(self) -> list[Parameter]:
        return self.parameters

    @property
    def trainable_weights(self) -> list[Parameter]:
        return self.trainable_parameters

    @property
    def non_trainable_weights(self) -> list[Parameter]:
        trainable = {id(p) for p in self.trainable_parameters}
        return [p for p in self.parameters if id(p) not in trainable]

    def count_params(self) -> int:
        return int(sum(p.value.size for p in self.parameters))

    def get_weights(self) -> list:
        """Copies of the parameter values in Keras's order (kernel, bias; gamma, beta, moving mean, moving variance)."""
        return [p.value.copy() for p in self.parameters]

    def set_weights(self, weights) -> None:
        params = self.parameters
        if len(weights) != len(params):
            raise ValueError(
                f'Layer "{self.name}" expects {len(params)} weights, received {len(weights)}'
            )
        for param, w in zip(params, weights):
            w = backend.xp.asarray(w)
            if w.shape != param.value.shape:
                raise ValueError(
                    f'Layer "{self.name}" weight "{param.name}" expects shape {param.value.shape}, received {w.shape}'
                )
            param.value = backend.cast(w, param.value.dtype).copy()

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad[...] = 0

    # -- calling --------------------------------------------------------------
    def check_input(self, x, index: int = 0) -> None:
        """Refuse an array whose rank or non-batch dimensions differ from the built shape (Keras's message)."""
        self.check_input_shape(tuple(x.shape), index, found=tuple(x.shape))

    def check_input_shape(self, shape, index: int = 0, found=None) -> None:
        """Refuse input ``index`` of shape ``shape`` when it differs from what the layer was built for."""
        if isinstance(self.input_shape, list) and index >= len(self.input_shape):
            raise ValueError(f'Layer "{self.name}" was built for {len(self.input_shape)} inputs, received input {index}')
        expected = self.input_shape[index] if isinstance(self.input_shape, list) else self.input_shape
        if len(shape) != len(expected) or any(e is not None and r is not None and e != r
                                              for e, r in zip(expected[1:], shape[1:])):
            raise ValueError(
                f'Input {index} of layer "{self.name}" is incompatible with the layer: '
                f"expected shape={expected}, found shape={found or tuple(shape)}"
            )

    def __call__(self, inputs, *more_inputs, training=None):
        """On KerasTensors: record this call in the graph and return its symbolic output (``training=True`` /
        ``False`` fixes the mode of this call whatever the model runs in, as in Keras). On arrays: build on
        first use, check the input and return ``forward(inputs)``. A layer defined by ``call`` may take
        several positional inputs (``endpoint(targets, logits)``), passed on to ``call`` as they came."""
        if more_inputs:
            if not self._defines_call():
                raise TypeError(f'Layer "{self.name}" takes one input (a tensor or a list of them), received '
                                f"{1 + len(more_inputs)} positional arguments")
            self._positional_call = True
            inputs = [inputs, *more_inputs]
        elif self.__dict__.get("_positional_call") and isinstance(inputs, (list, tuple)):
            raise TypeError(f'Layer "{self.name}" was called with separate positional inputs before; call it the same '
                            "way again (layer(a, b)), not on a list")
        if is_symbolic(inputs):
            return self._call_symbolic(inputs, training)
        if isinstance(inputs, (list, tuple)):
            arrays = [backend.xp.asarray(x) for x in inputs]
            shape = [(None, *a.shape[1:]) for a in arrays]
        else:
            arrays = backend.xp.asarray(inputs)
            shape = (None, *arrays.shape[1:])
        if self._defines_call():
            return self._call_eagerly(arrays, shape, training)
        if not self.built:
            self._build_for(shape)
        for i, a in enumerate(arrays if isinstance(arrays, list) else [arrays]):
            self.check_input(a, i)
        out = self.forward(arrays, training=bool(training))
        if self.activity_regularizer is not None:
            self._activity_loss_values = [float(self.activity_regularizer(o)) / max(len(o), 1)
                                          for o in (out if isinstance(out, list) else [out])]
        return backend.eager(out)

    def _call_eagerly(self, arrays, shape, training):
        """A layer of your own on arrays runs its ``call`` at once, on arrays, as Keras runs it eagerly: Python
        may look at the values, weights may be updated in place (``assign_add``), ``add_loss`` takes numbers."""
        if not self.built:
            self.build(shape)
            self.input_shape = [tuple(s) for s in shape] if isinstance(shape, list) else tuple(shape)
            self.built = True
        import inspect

        kwargs = {"training": bool(training)} if "training" in inspect.signature(self.call).parameters else {}
        self._added_loss_values = []
        if self.__dict__.get("_positional_call"):
            out = self.call(*arrays, **kwargs)
        else:
            out = self.call(arrays, **kwargs)
        out = [p.numpy() if isinstance(p, Parameter) else p for p in out] if isinstance(out, (list, tuple)) else (
            out.numpy() if isinstance(out, Parameter) else out)
        if self.output_shape is None:
            shapes = [(None, *backend.xp.shape(o)[1:]) for o in (out if isinstance(out, (list, tuple)) else [out])]
            self.output_shape = shapes if isinstance(out, (list, tuple)) else shapes[0]
        return backend.eager(out)

    def _call_symbolic(self, inputs, training=None):
        as_list = isinstance(inputs, (list, tuple))
        tensors = flatten_tensors(inputs)
        if not all(isinstance(t, KerasTensor) for t in tensors):
            raise TypeError(
                f'Layer "{self.name}" was called on a mix of symbolic tensors and arrays: '
                f"{[type(t).__name__ for t in tensors]}; give it the outputs of convscope.Input or of other layers"
            )
        shapes = [t.shape for t in tensors]
        shape = shapes if as_list else shapes[0]
        if not self.built:
            self._build_for(shape)
        elif not self._defines_call():  # call() is traced once per input shape, so any shape is its own call
            for i, s in enumerate(shapes):
                self.check_input_shape(s, i)
        out_shape = self.compute_output_shape(shape)
        multiple = isinstance(out_shape, list)
        dtype = tensors[0].dtype if tensors else backend.floatx()
        outputs = [KerasTensor(s, dtype, name=f"{self.name}/output_{i}") for i, s in
                   enumerate(out_shape if multiple else [out_shape])]
        node = Node(self, tensors, outputs, as_list, training)
        self._inbound_nodes.append(node)
        return outputs if multiple else outputs[0]

    # -- Keras's graph attributes ---------------------------------------------------
    def _node_attribute(self, node_index: int, attr: str, what: str):
        if not self._inbound_nodes:
            raise AttributeError(f'Layer "{self.name}" has never been called on a symbolic tensor and thus has no '
                                 f"defined {what}")
        if not 0 <= node_index < len(self._inbound_nodes):
            raise ValueError(f'Asked for the {what} of layer "{self.name}" at call {node_index}, but it has been '
                             f"called {len(self._inbound_nodes)} times")
        values = getattr(self._inbound_nodes[node_index], attr)
        return values[0] if len(values) == 1 else values

    def _single_node_attribute(self, attr: str, what: str):
        if len(self._inbound_nodes) > 1:
            raise ValueError(
                f'Layer "{self.name}" has been called {len(self._inbound_nodes)} times (it has several inbound nodes), '
                f'so "layer.{what}" is ill-defined; use layer.get_{what}_at(node_index) instead'
            )
        return self._node_attribute(0, attr, what)

    @property
    def input(self):
        """The symbolic input of the layer's one call (Keras's ``layer.input``)."""
        return self._single_node_attribute("inputs", "input")

    @property
    def output(self):
        """The symbolic output of the layer's one call (Keras's ``layer.output``), e.g. for
        ``Model(model.inputs, [layer.output for layer in model.layers])``."""
        return self._single_node_attribute("outputs", "output")

    def get_input_at(self, node_index: int):
        return self._node_attribute(node_index, "inputs", "input")

    def get_output_at(self, node_index: int):
        return self._node_attribute(node_index, "outputs", "output")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class ActivatedLayer(Layer):
    """A layer whose output is ``activation(z)`` for a pre-activation ``z`` it computes.

    ``forward`` is ``activate(forward_linear(x))``: it records ``preactivation`` (z)
    and ``activated`` (y) as public attributes for inspection. ``backward(dy)``
    applies the activation's derivative element-wise and then
    ``backward_from_preactivation(dz)``, which records ``grad_preactivation`` (dL/dz)
    and calls ``backward_linear``. The model enters at ``backward_from_preactivation``
    when it already holds dL/dz (a final softmax fused with cross-entropy).
    """

    def __init__(self, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.activation = lookup(activations.get, activation, "activation", f'{type(self).__name__} "{self.name}"')
        self.preactivation = None
        self.activated = None
        self.grad_preactivation = None

    def forward(self, x, training: bool = False):
        return self.activate(self.forward_linear(x, training))

    def forward_linear(self, x, training: bool = False):
        """The pre-activation z (remembering what ``backward_linear`` needs)."""
        raise NotImplementedError

    def activate(self, z):
        self.preactivation = z
        self.activated = z if self.activation.name == "linear" else self.activation(z)
        return self.activated

    def backward(self, dy, need_dx: bool = True):
        if self.activation.name == "linear":
            return self.backward_from_preactivation(dy, need_dx)
        return self.backward_from_preactivation(self.activation.gradient(self.preactivation, self.activated, dy), need_dx)

    def backward_from_preactivation(self, dz, need_dx: bool = True):
        self.grad_preactivation = dz
        return self.backward_linear(dz, need_dx)

    def backward_linear(self, dz, need_dx: bool = True):
        """Add the parameter gradients from dL/dz; return dL/dx, or None when ``need_dx`` is False (a first layer)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}
