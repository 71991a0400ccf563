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

A KerasTensor holds no values, so array code on it (``x + y``, ``x[0]``,
``np.mean(x)``) cannot be part of a model convscope differentiates: every such
operation raises a ``TypeError`` that names it and the layer that made the tensor.
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
            "values, and convscope differentiates only layer calls. Use a layer for it (layers.Add, Subtract, "
            "Multiply, Concatenate, Reshape, Permute, Activation, ...)"
        )

    def __bool__(self):
        self._refuse("bool() (an `if` or `and` on a tensor's values)")

    def __len__(self):
        self._refuse("len()")

    def __iter__(self):
        self._refuse("iteration")

    def __getitem__(self, key):
        self._refuse(f"indexing [{key!r}]")

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


def _refusing(symbol: str):
    def method(self, *args):
        self._refuse(f'the "{symbol}" operator')

    return method


for _dunder, _symbol in {
    "add": "+", "radd": "+", "sub": "-", "rsub": "-", "mul": "*", "rmul": "*", "truediv": "/", "rtruediv": "/",
    "floordiv": "//", "rfloordiv": "//", "mod": "%", "pow": "**", "rpow": "**", "matmul": "@", "rmatmul": "@",
    "neg": "unary -", "pos": "unary +", "abs": "abs", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
    "and": "&", "or": "|", "xor": "^", "invert": "~",
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
        return not self.inputs

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
