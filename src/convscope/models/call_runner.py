"""How a layer of the user's own (``build`` + ``call``, as in Keras) runs: one graph per mode and input shape.

The first call in a mode (training or not) for an input shape runs ``call`` on symbolic
inputs, inside ``tracing()`` so that its weights become part of the graph; the layer
calls and ``convscope.ops`` calls it makes are a ``GraphFunction``, exactly like a
subclassed model's. ``forward`` runs that graph's plan and keeps its tape, ``backward``
runs it in reverse: the layer's own weights get their gradients through the ``Operation``
nodes that read them, its sublayers' through their own backward. ``convscope.models``
registers this module with ``layers.base.register_call_runner``.
"""

from __future__ import annotations

import inspect

from .. import backend
from ..layers.base import unique_name
from ..layers.node import KerasTensor, flatten_tensors
from ..layers.operation import tracing
from . import graph as graph_module


def _graph(layer, input_shape, training: bool):
    """(graph, called on a list, several outputs) for ``input_shape`` (one shape or a list), cached per mode."""
    from ..layers import Input

    as_list = isinstance(input_shape, list)
    shapes = input_shape if as_list else [input_shape]
    key = (bool(training), as_list, tuple(tuple(s[1:]) for s in shapes))
    cache = layer.__dict__.setdefault("_call_graphs", {})
    if key not in cache:
        inputs = [Input(shape=tuple(s[1:]), name=unique_name(f"{layer.name}_input")) for s in shapes]
        kwargs = {"training": bool(training)} if "training" in inspect.signature(layer.call).parameters else {}
        with tracing() as added:
            outputs = layer.call(*inputs, **kwargs) if layer.__dict__.get("_positional_call") else layer.call(
                inputs if as_list else inputs[0], **kwargs)
        flat = flatten_tensors(outputs)
        for t in flat:
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f'Layer "{layer.name}": call() returned {type(t).__name__}, not a tensor computed from its inputs '
                    "with convscope.ops or layers, so it cannot be differentiated"
                )
        graph = graph_module.GraphFunction(inputs, flat, owner=f'Layer "{layer.name}"', added_losses=added)
        cache[key] = (graph, as_list, isinstance(outputs, (list, tuple)))
    return cache[key]


def output_shape(layer, input_shape):
    graph, _, several = _graph(layer, input_shape, training=False)
    shapes = [t.shape for t in graph.outputs]
    return shapes if several else shapes[0]


def forward(layer, x, training: bool):
    arrays = x if isinstance(x, list) else [x]
    shape = [(None, *a.shape[1:]) for a in arrays] if isinstance(x, list) else (None, *x.shape[1:])
    graph, _, several = _graph(layer, shape, training)
    plan = graph.plan(fuse=True)
    outs, tape = graph_module.forward(plan, arrays, bool(training), keep_state=True)
    layer._call_tape = (plan, tape, isinstance(x, list), several)
    layer._added_loss_values = [float(backend.xp.sum(v)) for v in tape.losses]
    return outs if several else outs[0]


def backward(layer, dy, need_dx: bool):
    plan, tape, as_list, several = layer._call_tape
    dxs = graph_module.backward(plan, tape, dy if several else [dy], need_input_grads=need_dx)
    return dxs if as_list else dxs[0]
