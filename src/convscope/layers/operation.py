"""Calls of ``convscope.ops`` functions on symbolic tensors: graph nodes, exactly like layer calls.

``convscope.ops.multiply(x, 2.0)`` on a KerasTensor (and ``x * 2.0``, which calls it)
records a ``Node`` whose layer is an ``Operation``: the function's name, where each
argument comes from (a tensor input of the node, a captured ``Parameter``, or a
constant) and its keyword attributes. The graph engine runs it like any layer:
``forward`` computes ``arraymath.functions`` on the arrays, ``backward`` returns dL/d(each
tensor input) and *adds* dL/dw to each captured parameter's ``.grad``. So arithmetic
in a subclassed model's ``call``, a custom layer's ``call`` (``ops.matmul(x, self.w)``)
and a loss written as a function all train through the one backward pass.

While a ``call`` or a loss function is being traced (``tracing()``), a ``Parameter``
given to an op makes the op symbolic even without a tensor argument, so that
``ops.sum(ops.square(self.w))`` stays a function of the weight and is not frozen into a
constant at trace time. On arrays alone an op computes at once and returns an array.

Output shapes come from running the function on two probes, with every unknown
(batch) size set to 2 and then to 3: a size that follows the probe is unknown (None).
"""

from __future__ import annotations

import contextlib

from .. import backend
from ..arraymath.functions import FUNCTIONS
from .base import Layer, Parameter, unique_name
from .node import KerasTensor, Node

_added_losses: list = []  # one list per trace in progress, innermost last


@contextlib.contextmanager
def tracing():
    """Within this block, a ``Parameter`` passed to an op is recorded as part of the graph being traced, and
    ``layer.add_loss(t)`` adds the symbolic ``t`` to the list the block yields (the trace's added losses)."""
    added: list = []
    _added_losses.append(added)
    try:
        yield added
    finally:
        _added_losses.pop()


def tracing_in_progress() -> bool:
    return bool(_added_losses)


def add_loss(owner: str, value) -> None:
    """``Layer.add_loss``: ``value`` (a tensor computed in ``call``) joins the losses of the trace in progress."""
    if not _added_losses:
        raise ValueError(f"{owner}: add_loss() of a symbolic tensor works inside call(), where the tensor is "
                         "computed from the call's inputs or weights")
    if not isinstance(value, KerasTensor):
        raise TypeError(f"{owner}: add_loss() takes a tensor computed in call() with convscope.ops, received "
                        f"{type(value).__name__}; a constant has no gradient to add")
    _added_losses[-1].append(value)


def _constant(value):
    """A non-tensor argument as the op will see it: Python numbers stay weak scalars, float arrays take floatx."""
    if isinstance(value, backend.xp.generic) and value.ndim == 0:
        value = value.item()  # np.float64(0.5) would make a float32 graph float64 (NumPy's strong scalar types)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    array = backend.xp.asarray(value)
    return backend.cast(array) if backend.xp.issubdtype(array.dtype, backend.xp.floating) else array


def apply(function: str, *args, **attrs):
    """``FUNCTIONS[function]`` on ``args``: an array at once, or a KerasTensor recording an ``Operation`` node."""
    symbolic = any(isinstance(a, KerasTensor) for a in args) or (
        bool(_added_losses) and any(isinstance(a, Parameter) for a in args))
    if not symbolic:
        arrays = [a.value if isinstance(a, Parameter) else a for a in args]
        result = FUNCTIONS[function].forward(*[backend.xp.asarray(a) for a in arrays], **attrs)
        return backend.eager(result[0] if FUNCTIONS[function].stateful else result)
    template, tensors = [], []
    for a in args:
        if isinstance(a, KerasTensor):
            template.append(("tensor", len(tensors)))
            tensors.append(a)
        elif isinstance(a, Parameter):
            template.append(("parameter", a))
        else:
            template.append(("constant", _constant(a)))
    return _operation_class(function)(function, template, attrs).record(tensors)


_OPERATION_CLASSES: dict = {}


def _operation_class(function: str):
    """``Operation`` under Keras's name for the function (``Multiply`` for multiply), as summaries show it."""
    if function not in _OPERATION_CLASSES:
        name = "".join(part.capitalize() for part in function.split("_"))
        _OPERATION_CLASSES[function] = type(name, (Operation,), {"__module__": __name__})
    return _OPERATION_CLASSES[function]


class Dim:
    """A size known only when the graph runs: axis ``axis`` of ``tensor`` (``ops.shape(x)[0]`` of a batch).
    ``convscope.random``'s functions take it in a shape; it prints as None."""

    def __init__(self, tensor: KerasTensor, axis: int):
        self.tensor, self.axis = tensor, axis

    def __repr__(self) -> str:
        return "None"

    def __index__(self):
        raise TypeError(f"the size of axis {self.axis} of {self.tensor} is known only when the model runs (None)")


def shape_template(shape):
    """``(template, reference tensors)`` for a shape that may hold ``Dim`` entries: each becomes
    ``("dim", i, axis)``, read at run time off the i-th reference tensor."""
    template, refs = [], []
    for d in shape:
        if isinstance(d, Dim):
            if all(d.tensor is not r for r in refs):
                refs.append(d.tensor)
            template.append(("dim", next(i for i, r in enumerate(refs) if r is d.tensor), d.axis))
        else:
            template.append(int(d))
    return tuple(template), refs


class Operation(Layer):
    """One call of a ``convscope.ops`` function in a graph (see the module docstring).

    ``template`` lists, per positional argument, ``("tensor", i)`` (the node's i-th input),
    ``("parameter", p)`` (a weight read at run time, so that it follows training) or
    ``("constant", value)``; ``attrs`` are the function's keyword arguments (``axis``, ...).
    """

    is_operation = True

    def __init__(self, function: str, template, attrs):
        super().__init__(name=unique_name(function))
        self.function, self.template, self.attrs = function, list(template), dict(attrs)
        self._arrays = self._output = self._state = None

    def _arguments(self, xs):
        return [xs[ref] if kind == "tensor" else ref.value if kind == "parameter" else ref
                for kind, ref in self.template]

    def _probe(self, tensors, size: int):
        arrays = [backend.xp.ones(tuple(size if d is None else d for d in t.shape), dtype=t.dtype) for t in tensors]
        # A random op probes with a throwaway seed: tracing must not advance anyone's stream.
        attrs = {**self.attrs, "generator": 0} if "generator" in self.attrs else self.attrs
        with backend.xp.errstate(all="ignore"):
            result = FUNCTIONS[self.function].forward(*self._arguments(arrays), **attrs)
        return backend.xp.asarray(result[0] if FUNCTIONS[self.function].stateful else result)

    def record(self, tensors) -> KerasTensor:
        """The KerasTensor this call produces, its shape and dtype found by two probes (see the module docstring)."""
        try:
            a, b = self._probe(tensors, 2), self._probe(tensors, 3)
        except (ValueError, TypeError, IndexError) as e:
            shapes = ", ".join(str(t.shape) for t in tensors)
            raise ValueError(f"convscope.ops.{self.function} cannot be applied to tensors of shapes {shapes} "
                             f"with {self.attrs or 'no options'}: {e}") from e
        shape = tuple(None if m != n else m for m, n in zip(a.shape, b.shape)) if a.ndim == b.ndim else None
        if shape is None:
            raise ValueError(f"convscope.ops.{self.function}: the rank of its result depends on the batch size")
        self.input_shape = [t.shape for t in tensors]
        self.output_shape = shape
        self.built = True
        output = KerasTensor(shape, str(a.dtype), name=f"{self.name}/output_0")
        self._inbound_nodes.append(Node(self, tensors, [output], as_list=True))
        return output

    def forward(self, xs, training: bool = False):
        self._arrays = self._arguments(xs)
        result = FUNCTIONS[self.function].forward(*self._arrays, **self.attrs)
        if FUNCTIONS[self.function].stateful:
            result, self._state = result
        self._output = result
        return result

    def backward(self, dy, need_dx: bool = True):
        f = FUNCTIONS[self.function]
        grads = f.backward(dy, self._arrays, self._state if f.stateful else self._output, **self.attrs)
        dxs = []
        for (kind, ref), g in zip(self.template, grads):
            if kind == "tensor":
                dxs.append(g if need_dx else None)
            elif kind == "parameter" and g is not None:
                ref.grad += g
        return dxs

    def get_config(self) -> dict:
        raise TypeError(
            f'The call of convscope.ops.{self.function} ("{self.name}") is Python code in the model, which a model '
            "file cannot hold; save the weights (model.save_weights) and rebuild the model from its code"
        )
