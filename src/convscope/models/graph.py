"""The graph of a model and how it runs: topology, the execution plan, forward and backward.

A model's graph is the set of nodes (layer calls, see ``layers.node``) between its
input and output KerasTensors. ``GraphFunction`` checks it (every output computable
from the inputs, every input used, no cycles, unique layer names), orders it, and runs
it as a plan of steps: each step is one node, or two nodes fused into one (ReLU then
max pooling, see ``convscope.fusion``).

* ``forward`` runs the steps in topological order, holding each intermediate array
  only until its last consumer has read it. When a backward pass will follow, it
  keeps each step's ``forward_state()`` (what that call's backward needs), so a layer
  called several times backpropagates each call with its own inputs.
* ``backward`` runs the steps in reverse. The gradient reaching a tensor is the *sum*
  over every consumer of that tensor, and each layer *adds* to its parameters'
  gradients: branches, shared layers and nested models need nothing else.

Both passes take an optional ``record`` callback: ``Model.trace`` uses it to copy what
each call received, produced and sent back, so inspection runs the same code as training.

A layer with an ``activity_regularizer`` r adds r(y) / batch to the loss for each output y
of each call (Keras 3's scaling): ``forward`` hands the value to the innermost
``activity_penalties()`` block (nested models included) and, when a backward pass will
follow, keeps dr/dy / batch on the tape, which ``backward`` adds to that call's dL/dy.
The losses a traced ``call`` adds with ``add_loss`` are extra outputs of its graph
(``added_losses``): ``forward`` hands their summed values to the same block, and
``backward`` starts them with dL/d(loss) = 1, since they enter the total loss as they are.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict

from .. import backend, fusion, regularizers
from ..layers.base import Parameter
from ..layers.node import KerasTensor
from ..layers.operation import tracing


_penalty_sinks: list = []


def regularizer_gradient(regularizer, x):
    """d regularizer(x) / dx: the regularizer's own ``gradient`` when it has one by formula; for one written with
    convscope.ops only (a function, or a subclass defining ``__call__`` alone, as Keras lets you write it), the
    backward pass of its traced graph, in which ``x`` is a captured weight (so ``axis=0`` keeps its meaning)."""
    if type(regularizer).gradient is not regularizers.Regularizer.gradient or (
            type(regularizer).__call__ is regularizers.Regularizer.__call__):
        return regularizer.gradient(x)
    cache = regularizer.__dict__.setdefault("_traced", {})
    key = (tuple(x.shape), str(x.dtype))
    if key not in cache:
        holder = Parameter(x, "regularized")
        with tracing():
            out = regularizer(holder)
        if not isinstance(out, KerasTensor):
            raise TypeError(f"the regularizer {regularizer!r} returned {type(out).__name__}, not a value computed "
                            "from the weight with convscope.ops, so it cannot be differentiated")
        cache[key] = (holder, GraphFunction([], [out], owner=f"regularizer {regularizer!r}").plan(fuse=False))
    holder, plan = cache[key]
    holder.value, holder.grad = x, backend.xp.zeros_like(x)
    (value,), tape = forward(plan, [], training=False, keep_state=True)
    backward(plan, tape, [backend.xp.ones_like(value)])
    return holder.grad


@contextlib.contextmanager
def activity_penalties():
    """Collect the activity-regularization terms of every forward pass inside the block (a list of floats)."""
    sink: list = []
    _penalty_sinks.append(sink)
    try:
        yield sink
    finally:
        _penalty_sinks.pop()


class Tape(list):
    """Each step's ``(forward_state(), activity gradients)``, and the added losses' values of that pass."""

    losses: list = []


class GraphFunction:
    """The nodes from ``inputs`` to ``outputs`` (lists of KerasTensors), checked and ordered; ``added_losses``
    (tensors given to ``add_loss`` while the graph was traced) are computed too, as extra outputs."""

    def __init__(self, inputs, outputs, owner: str = "Model", added_losses=()):
        self.owner = owner
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.added_losses = list(added_losses)
        for what, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            for t in tensors:
                if not isinstance(t, KerasTensor):
                    raise TypeError(
                        f'{owner}: "{what}" must be symbolic tensors (from convscope.Input and layer calls), '
                        f"received {type(t).__name__}"
                    )
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError(f"{owner}: the same tensor appears twice among the inputs")
        self.nodes, self.layers = _map_graph(self.inputs, self.outputs + self.added_losses, owner)
        self._plans = {}

    def plan(self, fuse: bool):
        """The steps to run: with ``fuse``, ReLU + max-pooling pairs become one step (training, predict);
        without, one step per node (``trace``, which shows every map)."""
        if fuse not in self._plans:
            self._plans[fuse] = Plan(self, fuse)
            backend.keep_freed_memory()
        return self._plans[fuse]

    def node_label(self, node) -> str:
        """``name`` for a layer's only call in this graph, ``name#k`` for the k-th of several."""
        calls = [n for n in self.nodes if n.layer is node.layer]
        return node.layer.name if len(calls) <= 1 else f"{node.layer.name}#{calls.index(node)}"


def _map_graph(inputs, outputs, owner):
    """(nodes in execution order, layers in Keras's order): Keras's depth-first map of the graph.

    As Keras's ``map_graph``: a depth-first walk from each output back to the inputs lists the nodes
    (inputs first) and numbers the layers in the order first reached; a node's depth is the longest path
    from it to an output, raised to the deepest depth its layer has had so far (a shared layer); layers are
    listed deepest first, ties in the order first reached. Model inputs are leaves of the walk.
    """
    input_ids = {id(t) for t in inputs}
    ordered, first_seen, state = [], {}, {}

    def enter(tensor, stack):
        """Reach ``tensor``: a leaf is listed at once, another call is opened (pushed) to visit its inputs."""
        node = tensor.node
        mark = state.get(id(node))
        if mark == "done":
            return
        if mark == "open":
            raise ValueError(f"{owner}: the graph has a cycle through layer \"{node.layer.name}\"")
        if id(tensor) in input_ids:
            if node.is_input:
                first_seen.setdefault(node.layer, len(first_seen))
                state[id(node)] = "done"
                ordered.append(node)
            return
        if node.is_input:
            raise ValueError(
                f'{owner}: Graph disconnected: an output depends on the Input "{node.layer.name}" '
                f"{tensor.shape}, which is not among the model's inputs "
                f"({', '.join(t.node.layer.name for t in inputs)})"
            )
        first_seen.setdefault(node.layer, len(first_seen))
        state[id(node)] = "open"
        stack.append((node, iter(node.inputs)))

    def visit(tensor):
        # Depth first with a stack of its own, not recursion: a chain of thousands of layers is a valid model.
        stack = []
        enter(tensor, stack)
        while stack:
            node, pending = stack[-1]
            following = next(pending, None)
            if following is None:
                stack.pop()
                state[id(node)] = "done"
                ordered.append(node)
            else:
                enter(following, stack)

    for t in outputs:
        visit(t)
    used = {id(t) for n in ordered for t in n.inputs} | {id(t) for t in outputs}
    for t in inputs:
        if id(t) not in used:
            raise ValueError(
                f'{owner}: input "{t.node.layer.name}" {t.shape} is disconnected: no output depends on it. '
                "Remove it from the inputs or connect it"
            )
    in_graph = {id(n) for n in ordered}
    node_depth, layer_depth = {}, {}
    for node in reversed(ordered):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = node_depth[id(node)] = depth
        for t in node.inputs:
            if id(t.node) in in_graph:
                node_depth[id(t.node)] = max(depth + 1, node_depth.get(id(t.node), 0))
    layers = sorted(layer_depth, key=lambda layer: (-layer_depth[layer], first_seen[layer]))
    # Counted once (linear): a file may hold tens of thousands of layers.
    counts = Counter(layer.name for layer in layers)
    for layer in layers:
        if counts[layer.name] > 1:
            raise ValueError(
                f'{owner}: layer names must be unique, "{layer.name}" is used {counts[layer.name]} times')
    return [n for n in ordered if not n.is_input], layers


class Step:
    """One unit of the plan: ``op`` (a layer, a nested model, or a fused pair) reading and writing tensor slots."""

    __slots__ = ("op", "nodes", "inputs", "outputs", "as_list", "release", "need_dx", "training", "produces")

    def __init__(self, op, nodes, inputs, outputs, as_list):
        self.op, self.nodes, self.inputs, self.outputs, self.as_list = op, nodes, inputs, outputs, as_list
        self.training = nodes[0].training
        self.release: list = []
        self.need_dx = True
        self.produces: list = []  # the model outputs this step computes

    @property
    def node(self):
        """The node whose outputs this step produces (the last of a fused pair)."""
        return self.nodes[-1]


class Plan:
    """The graph as steps over integer tensor slots, with what each step may free and whether it needs dL/dx."""

    def __init__(self, graph: GraphFunction, fuse: bool):
        slot = {}

        def slot_of(t):
            return slot.setdefault(id(t), len(slot))

        self.input_slots = [slot_of(t) for t in graph.inputs]
        consumers = defaultdict(list)
        for node in graph.nodes:
            for t in node.inputs:
                consumers[id(t)].append(node)
        output_ids = {id(t) for t in graph.outputs}
        fused_pools = {}
        if fuse:
            for node in graph.nodes:
                readers = consumers[id(node.outputs[0])]
                if (len(node.outputs) == 1 and len(readers) == 1 and id(node.outputs[0]) not in output_ids
                        and fusion.fusable(node.layer, readers[0].layer) and len(readers[0].inputs) == 1
                        and getattr(node.layer, "activity_regularizer", None) is None
                        and readers[0].training == node.training):
                    fused_pools[id(readers[0])] = node
        fused_first = {id(first) for first in fused_pools.values()}
        self.steps = []
        for node in graph.nodes:
            if id(node) in fused_first:
                continue
            first = fused_pools.get(id(node))
            if first is not None:
                op, nodes, ins = fusion.ReluThenMaxPool(first.layer, node.layer), [first, node], first.inputs
            else:
                op, nodes, ins = node.layer, [node], node.inputs
            self.steps.append(Step(op, nodes, [slot_of(t) for t in ins], [slot_of(t) for t in node.outputs],
                                   node.as_list))
        self.output_slots = [slot_of(t) for t in graph.outputs]
        self.loss_slots = [slot_of(t) for t in graph.added_losses]
        self.slot_count = len(slot)
        keep = set(self.output_slots) | set(self.loss_slots)
        last_use = {}
        for i, step in enumerate(self.steps):
            for s in step.inputs:
                last_use[s] = i
        for s, i in last_use.items():
            if s not in keep:
                self.steps[i].release.append(s)
        data = set(self.input_slots)
        for step in self.steps:
            step.need_dx = not all(s in data for s in step.inputs)
        reads = Counter(s for step in self.steps for s in set(step.inputs))  # one pass: models may be deep
        self.consumers = {s: reads[s] for s in range(self.slot_count)}
        for k in range(len(self.output_slots)):
            step = self.producer(k)
            if step is not None:
                step.produces.append(k)

    def producer(self, output_index: int) -> Step | None:
        """The step that computes output ``output_index`` (None when that output is an input)."""
        target = self.output_slots[output_index]
        return next((s for s in self.steps if target in s.outputs), None)


def forward(plan: Plan, arrays, training: bool, keep_state: bool, record=None, preactivations=None):
    """Run the plan on input ``arrays``; returns ``(outputs, tape)``, the tape holding each step's state
    (None unless ``keep_state``) for ``backward``. ``record(step, inputs, outputs)`` sees every step. A dict
    ``preactivations`` receives, for each output, its producing call's pre-activation (or None), taken right
    after that call: a layer called again later overwrites its own attribute."""
    values = [None] * plan.slot_count
    for s, a in zip(plan.input_slots, arrays):
        values[s] = a
    tape = Tape() if keep_state else None
    for step in plan.steps:
        args = [values[s] for s in step.inputs]
        mode = training if step.training is None else step.training
        out = step.op.forward(args if step.as_list else args[0], training=mode)
        outs = out if len(step.outputs) > 1 else [out]
        for s, v in zip(step.outputs, outs):
            values[s] = v
        regularizer = getattr(step.op, "activity_regularizer", None)
        activity = None
        if regularizer is not None and (keep_state or _penalty_sinks):
            batch = max(len(outs[0]), 1) if outs[0].ndim else 1
            penalties = [float(regularizer(o)) / batch for o in outs]
            step.op._activity_loss_values = penalties  # what layer.losses lists after this call
            if _penalty_sinks:
                _penalty_sinks[-1].append(sum(penalties))
            if keep_state:
                activity = [regularizer_gradient(regularizer, o) / batch for o in outs]
        if keep_state and activity is None and getattr(step.op, "_added_loss_values", None):
            activity = [backend.xp.zeros_like(o) for o in outs]  # its own added losses need its backward
        if keep_state:
            tape.append((step.op.forward_state(), activity))
        if preactivations is not None:
            for k in step.produces:
                preactivations[k] = getattr(step.op, "preactivation", None)
        if record is not None:
            record(step, args, outs)
        for s in step.release:
            values[s] = None
    if plan.loss_slots:
        added = [values[s] for s in plan.loss_slots]
        if _penalty_sinks:
            _penalty_sinks[-1].append(sum(float(backend.xp.sum(v)) for v in added))
        if keep_state:
            tape.losses = added
    return [values[s] for s in plan.output_slots], tape


def backward(plan: Plan, tape, output_grads, from_preactivation=(), need_input_grads: bool = False, record=None):
    """dL/d(inputs) (a list, None where not needed) from dL/d(outputs) (None where an output has no loss).

    ``from_preactivation`` holds the output indices whose gradient is dL/dz of the producing layer's
    pre-activation (a final softmax fused with cross-entropy). ``record(step, dys, dxs)`` sees every step.
    """
    grads = [None] * plan.slot_count
    for s, value in zip(plan.loss_slots, tape.losses):
        _accumulate(grads, s, backend.xp.ones_like(value))
    preactivation_steps = {}
    for k, g in enumerate(output_grads):
        if g is None:
            continue
        if k in from_preactivation:
            preactivation_steps[id(plan.producer(k))] = g
        else:
            _accumulate(grads, plan.output_slots[k], g)
    data = set(plan.input_slots)
    for i in range(len(plan.steps) - 1, -1, -1):
        step = plan.steps[i]
        dz = preactivation_steps.get(id(step))
        state, activity = tape[i]
        dys = [grads[s] for s in step.outputs]
        if activity is not None:
            dys = [g if d is None else d + g for d, g in zip(dys, activity)]
        for s in step.outputs:
            grads[s] = None
        if dz is None and all(d is None for d in dys):
            continue  # no loss depends on this call
        step.op.restore_forward_state(state)
        need_dx = step.need_dx or need_input_grads
        if dz is not None:
            dx = step.op.backward_from_preactivation(dz, need_dx=need_dx)
        else:
            dy = dys if len(dys) > 1 else dys[0]
            dx = step.op.backward(dy, need_dx=need_dx)
        dxs = (dx if dx is not None else [None] * len(step.inputs)) if step.as_list else [dx]
        if record is not None:
            record(step, dys, dxs)
        for s, d in zip(step.inputs, dxs):
            if d is not None and (need_input_grads or s not in data):
                _accumulate(grads, s, d)
    tape.clear()
    return [grads[s] for s in plan.input_slots]


def _accumulate(grads, slot, g) -> None:
    # A new array, never +=: a layer may hand back a view of its own input or output gradient.
    grads[slot] = g if grads[slot] is None else grads[slot] + g
