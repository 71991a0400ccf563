"""Symbolic tensors and the layer calls that make them: the graph a model is.

``convscope.Input(shape=(28, 28, 1))`` returns a ``KerasTensor``: a shape with a
``None`` batch axis, a dtype and the call that produced it, no numbers. Calling a
layer on KerasTensors records a ``Node`` (that layer, these input tensors, these
output tensors) and returns new KerasTensors, so

    x = convscope.Input(shape=(28, 28, 1))
    y = layers.Conv2D(8, 3)(x)

describes the computation y = conv(x) without doing it. A model is the set of
nodes between its input and output tensors; one layer called twice has two nodes
and one set of weights.

Arithmetic on KerasTensors (``x + y``, ``2 * x``, ``x @ w``, ``x[:, 0]``, ``-x``,
``x > 0``) records calls of ``convscope.ops`` functions (see ``layers.operation``),
differentiated like layer calls. What a symbolic tensor cannot do is give values:
``bool(x)``, ``len(x)``, iteration, ``float(x)`` and NumPy functions on it raise a
``TypeError`` that names the operation and the layer that made the tensor.
"""

from __future__ import annotations

from .. import backend


class KerasTensor:
    """A symbolic tensor: ``shape`` (batch axis ``None``), ``dtype``, ``name`` and its producing ``node``."""

    def __init__(self, shape, dtype=None, node=None, index=0, name=None):
        self.shape = tuple(shape)
        self.dtype = dtype or backend.floatx()
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def layer(self):
        """The layer whose call produced this tensor (an ``InputLayer`` for a model input)."""
        return self.node.layer

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def _refuse(self, operation: str):
        raise TypeError(
            f'{operation} on the output of layer "{self.node.layer.name}" ({self}): a symbolic tensor holds no '
            "values yet. Write the computation with convscope.ops (ops.mean, ops.where, ...) or layers, which "
            "the model differentiates"
        )

    def __bool__(self):
        self._refuse("bool() (an `if` or `and` on a tensor's values)")

    def __len__(self):
        self._refuse("len()")

    def __iter__(self):
        self._refuse("iteration")

    def record_call(self, function: str, *args, **attrs):
        """``convscope.ops``'s recording of ``function`` on these arguments, for code below the layers that meets a
        KerasTensor (a loss called inside a traced ``call``) and cannot import ``layers.operation`` itself."""
        return _op(function, *args, **attrs)

    def __getitem__(self, key):
        return _op("getitem", self, key=_static_key(self, key))

    def __array__(self, *args, **kwargs):
        self._refuse("conversion to a NumPy array")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        self._refuse(f"np.{ufunc.__name__}")

    def __array_function__(self, func, types, args, kwargs):
        self._refuse(f"np.{func.__name__}")

    def __float__(self):
        self._refuse("float()")

    def __int__(self):
        self._refuse("int()")


def _op(function: str, *args, **attrs):
    from .operation import apply

    return apply(function, *args, **attrs)


def _static_key(tensor, key):
    """An index made of ints, slices, None and Ellipsis (a tensor as an index has no values to index with)."""
    parts = key if isinstance(key, tuple) else (key,)
    for part in parts:
        if not (part is None or part is Ellipsis or isinstance(part, (int, slice))) or isinstance(part, bool):
            tensor._refuse(f"indexing with {type(part).__name__} {part!r} (only ints, slices, None and ...)")
    return key


def _operator(function: str, reflected: bool = False):
    if reflected:
        return lambda self, other: _op(function, other, self)
    return lambda self, other: _op(function, self, other)


for _dunder, _function in {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide", "pow": "power", "matmul": "matmul",
}.items():
    setattr(KerasTensor, f"__{_dunder}__", _operator(_function))
    setattr(KerasTensor, f"__r{_dunder}__", _operator(_function, reflected=True))
for _dunder, _function in {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}.items():
    setattr(KerasTensor, f"__{_dunder}__", _operator(_function))
KerasTensor.__neg__ = lambda self: _op("negative", self)
KerasTensor.__abs__ = lambda self: _op("abs", self)
KerasTensor.__pos__ = lambda self: self


def _refusing(symbol: str):
    def method(self, *args):
        self._refuse(f'the "{symbol}" operator')

    return method


for _dunder, _symbol in {
    "floordiv": "//", "rfloordiv": "//", "mod": "%", "and": "&", "or": "|", "xor": "^", "invert": "~",
}.items():
    setattr(KerasTensor, f"__{_dunder}__", _refusing(_symbol))

# Comparisons of identity stay usable (tensors are dict keys and list members), so no __eq__ override.
KerasTensor.__hash__ = object.__hash__


class Node:
    """One call of ``layer``: the KerasTensors it read and the ones it produced.

    ``as_list`` records whether the layer was called on a list (merging layers,
    models with several inputs) or on one tensor; the engine calls ``forward``
    the same way when it runs the graph. ``training`` is None (the call follows the
    model's mode) or the mode the call was fixed to (``base(x, training=False)``).
    """

    def __init__(self, layer, inputs, outputs, as_list: bool, training=None):
        self.layer = layer
        self.training = training
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.as_list = as_list
        for i, tensor in enumerate(self.outputs):
            tensor.node, tensor.index = self, i

    @property
    def parents(self) -> list:
        """The nodes that produced this node's inputs, in input order (repeats kept)."""
        return [t.node for t in self.inputs]

    @property
    def is_input(self) -> bool:
        """A model input's node (an ``InputLayer``'s); an op with no tensor arguments also has no inputs."""
        return self.layer.is_input_layer

    def __repr__(self) -> str:
        return f"<Node {self.layer.name} #{self.layer._inbound_nodes.index(self)}>"


def flatten_tensors(structure) -> list:
    """The KerasTensors (or arrays) of a tensor, a list / tuple of them or a dict of them (values in key order)."""
    if isinstance(structure, dict):
        return [v for k in structure for v in flatten_tensors(structure[k])]
    if isinstance(structure, (list, tuple)):
        return [v for item in structure for v in flatten_tensors(item)]
    return [structure]


def is_symbolic(structure) -> bool:
    return any(isinstance(t, KerasTensor) for t in flatten_tensors(structure))
