"""``model.trace(x, y)``: what every layer call received, produced and sent back.

Trace is the same forward and backward pass as training (``models.graph``), run
without the ReLU + max-pooling fusion so that every map exists, in inference mode
(dropout off, batch norm on its moving statistics), with a callback that copies what
each call saw. It leaves the model as it was: parameter gradients are put back.

With labels ``y`` the loss is the compiled one (integer labels are one-hot encoded
for a categorical loss), or else cross-entropy chosen by the labels' form (integers:
sparse; one-hot rows: categorical), one per output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import backend, losses
from ..utils import to_categorical
from . import graph as graph_module
from .compiled import OutputSpec


@dataclass
class LayerTrace:
    """One layer call's view of a batch. Arrays are copies; gradient fields are None without labels.

    ``input`` is the array the call read (a list for layers called on several tensors);
    ``preactivation`` equals ``output`` for layers without an activation;
    ``grad_output`` is dL/d(output), ``grad_preactivation`` dL/d(preactivation),
    ``grad_input`` dL/d(input) (a list for several inputs); ``param_grads`` maps "kernel",
    "bias", ... to dL/d(parameter), summed over every call of a shared layer.
    ``call`` names this call (``"dense"``, or ``"dense#1"`` for the second call of a shared
    layer) and ``inbound`` the calls that produced its inputs (an Input's name for a model input);
    ``layer`` is the layer (or recorded operation) that made the call, for tools that explain it.
    """

    name: str
    class_name: str
    input: object
    preactivation: object
    output: object
    grad_output: object = None
    grad_preactivation: object = None
    grad_input: object = None
    param_grads: dict = field(default_factory=dict)
    call: str = ""
    inbound: list = field(default_factory=list)
    layer: object = None


class Trace(list):
    """The records of ``trace``, one per layer call in execution order, and dL/d(each model input) in
    ``grad_inputs`` (``grad_input`` for a single input): the sum over every layer that reads it."""

    grad_inputs: list | None = None

    @property
    def grad_input(self):
        return None if self.grad_inputs is None else self.grad_inputs[0]


def _copy(values):
    values = [None if v is None else v.copy() for v in values]
    return values[0] if len(values) == 1 else values


def trace_model(model, x, y=None) -> Trace:
    xs = [backend.cast(a) for a in model._inputs(x)]
    graph = model._graph_for(False, [(None, *a.shape[1:]) for a in xs])
    plan = graph.plan(fuse=False)
    records, by_step = Trace(), {}

    def on_forward(step, args, outs):
        op, node = step.op, step.node
        preactivation = getattr(op, "preactivation", None)
        record = LayerTrace(
            op.name, type(op).__name__, _copy(args) if step.as_list else args[0].copy(),
            (outs[0] if preactivation is None else preactivation).copy(), _copy(outs),
            call=graph.node_label(node), inbound=[graph.node_label(t.node) for t in node.inputs], layer=op,
        )
        records.append(record)
        by_step[id(step)] = record

    preactivations = {}
    outputs, tape = graph_module.forward(plan, xs, training=False, keep_state=y is not None, record=on_forward,
                                         preactivations=preactivations)
    if y is None:
        return records
    specs = _specs_for(model, y)
    targets = _targets_for(model, specs, y)
    saved = [p.grad.copy() for p in model.parameters]
    model.zero_grad()
    grads, from_z = [], set()
    for k, (spec, target, out) in enumerate(zip(specs, targets, outputs)):
        if spec.loss is None:
            grads.append(None)
            continue
        fused = model._fused_loss(plan, k, spec.loss)
        if fused is not None:
            _, grad = fused.value_and_gradient(target, preactivations[k])
            by_step[id(plan.producer(k))].grad_output = spec.loss.gradient(target, out)
            from_z.add(k)
        else:
            grad = spec.loss.gradient(target, out)
        grads.append(grad if spec.weight == 1.0 else grad * spec.weight)

    def on_backward(step, dys, dxs):
        record = by_step[id(step)]
        if record.grad_output is None:
            record.grad_output = _copy(dys)
        dz = getattr(step.op, "grad_preactivation", None)
        record.grad_preactivation = record.grad_output if dz is None else dz.copy()
        record.grad_input = _copy(dxs)

    records.grad_inputs = [None if g is None else g.copy() for g in
                           graph_module.backward(plan, tape, grads, from_z, need_input_grads=True, record=on_backward)]
    for step in plan.steps:
        op = step.op
        nested = hasattr(op, "layers")
        by_step[id(step)].param_grads = {
            (p.name if nested else p.name.rsplit("/", 1)[-1]): p.grad.copy() for p in op.parameters
        }
    for p, g in zip(model.parameters, saved):
        p.grad[...] = g
    return records


def _specs_for(model, y) -> list:
    if model._specs and model.optimizer is not None and len(model._specs) == len(model.output_names):
        return model._specs
    names = model.output_names
    ys = y if len(names) > 1 else [y]
    specs = []
    for name, target in zip(names, ys):
        labels = backend.xp.asarray(target).dtype.kind in "iu"
        specs.append(OutputSpec(name, losses.get("sparse_categorical_crossentropy" if labels else
                                                 "categorical_crossentropy"), 1.0, []))
    return specs


def _targets_for(model, specs, y) -> list:
    names = model.output_names
    ys = [y[n] for n in names] if isinstance(y, dict) else (list(y) if len(names) > 1 else [y])
    shapes = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
    targets = []
    for spec, target, shape in zip(specs, ys, shapes):
        target = backend.xp.asarray(target)
        if target.dtype.kind in "iu" and spec.loss.name == "categorical_crossentropy":
            target = to_categorical(target.reshape(-1), shape[-1])
        targets.append(target)
    return targets
