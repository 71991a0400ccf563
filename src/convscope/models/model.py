"""Model: a graph of layer calls, trained by backpropagation, with Keras's API.

Three ways to make one, one engine for all:

* functional: ``Model(inputs, outputs)`` on KerasTensors (``convscope.Input`` and layer
  calls); inputs and outputs may be one tensor, a list or a dict, as in Keras;
* subclassed: ``class Net(Model)`` making layers in ``__init__`` and calling them in
  ``call(self, x, training=False)``. The first forward pass in each mode (training or
  not) runs ``call`` on symbolic inputs of the data's shape and so records the calls it
  makes; training then replays that graph forward and in reverse. ``call`` may use any
  Python around the layer calls, but arithmetic on the tensors themselves (``x + y``,
  ``x[0]``, ``np.mean(x)``) fails with a ``TypeError`` naming the operation, because
  convscope differentiates layer calls only (use ``layers.Add`` and friends);
* ``Sequential``: a chain of the same graph.

The loop: ``forward`` runs the graph's plan (``models.graph``), the losses give dL/d(each
output), ``backward`` runs the plan in reverse (each layer *adding* to its parameters'
``.grad``, zeroed before each step) and the optimizer updates ``.value``. When an output
comes from a layer ending in softmax (or sigmoid) and its loss is the matching
cross-entropy, the loss is computed from that layer's pre-activation and backward starts
there from dL/dz = (p - y) / n: the same numbers, finite for any logits (as Keras's
TensorFlow backend does).

A Model is a Layer: call it on a KerasTensor inside another model (transfer learning),
or on an array (``model(x)``). ``trace(x, y)`` is the inspection door every tool uses.
"""

from __future__ import annotations

import inspect
import math
import sys

from .. import backend, formats, optimizers
from ..callbacks import Callback, History, ProgbarLogger, format_logs
from ..layers import Layer, serialize
from ..layers.base import snake_case, unique_name
from ..layers.node import KerasTensor, flatten_tensors
from . import compiled, data, graph as graph_module
from .summary import summary_lines
from .trace import trace_model

INFERENCE_SLICE = 64
"""predict / evaluate never run more samples at once than this: inference needs no
batch statistics, and slices this small keep every layer's maps in the CPU caches
(about twice the throughput of slices of 1,000 on the MNIST convnet)."""


class Model(Layer):
    """``Model(inputs, outputs, name=None)``, or a subclass with ``call``; see the module docstring."""

    def __init__(self, inputs=None, outputs=None, name: str | None = None, trainable: bool = True):
        default = "functional" if type(self) is Model else snake_case(type(self).__name__)
        super().__init__(name=name or unique_name(default), trainable=trainable)
        self._graph = None
        self._call_graphs: dict = {}
        self._tracked: list[Layer] = []
        self._tape = self._tape_plan = None
        self.optimizer = self.loss = None
        self._specs: list = []
        self.metrics: list = []
        self.stop_training = False
        self.history = None
        if (inputs is None) != (outputs is None):
            raise ValueError(f'Model "{self.name}": give both "inputs" and "outputs", or neither (a subclass with call())')
        if inputs is not None:
            self._set_graph(inputs, outputs)
        elif type(self).call is Model.call and not isinstance(self, _chain_types()):
            raise ValueError(
                f'Model "{self.name}": Model(inputs, outputs) needs both, e.g. Model(inputs=x, outputs=y) with '
                "x = convscope.Input(shape=...), or subclass Model and define call()"
            )

    # -- the graph -------------------------------------------------------------
    def __setattr__(self, name, value):
        # A subclass's layers are the ones it keeps as attributes (or in lists), in the order it assigned them.
        if not name.startswith("_") and "_tracked" in vars(self):
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                if isinstance(item, Layer) and item is not self and all(item is not t for t in self._tracked):
                    self._tracked.append(item)
        super().__setattr__(name, value)

    def _set_graph(self, inputs, outputs) -> None:
        self._input_structure = data.structure_of(inputs)
        self._output_structure = data.structure_of(outputs)
        self._graph = graph_module.GraphFunction(
            flatten_tensors(inputs), flatten_tensors(outputs), owner=f'Model "{self.name}"')
        self._adopt(self._graph)

    def _adopt(self, graph) -> None:
        shapes_in = [t.shape for t in graph.inputs]
        shapes_out = [t.shape for t in graph.outputs]
        self.input_shape = shapes_in[0] if len(shapes_in) == 1 else shapes_in
        self.output_shape = shapes_out[0] if len(shapes_out) == 1 else shapes_out
        self.built = True

    def call(self, inputs, training: bool = False):
        """A subclass's forward computation, written with layer calls (see the module docstring)."""
        raise NotImplementedError(f'Model "{self.name}" has no call(): build it with Model(inputs, outputs)')

    def _graph_for(self, training: bool, shapes=None):
        """The graph to run: the functional one, or the one a subclass's ``call`` records for this mode."""
        if self._graph is not None:
            return self._graph
        key = bool(training)
        graph = self._call_graphs.get(key)
        if graph is None or (shapes is not None and [t.shape[1:] for t in graph.inputs] != [s[1:] for s in shapes]):
            if shapes is None:
                raise ValueError(f'Model "{self.name}" has not been built: call it on data or use build(input_shape)')
            graph = self._record_call(shapes, key)
            self._call_graphs[key] = graph
        return graph

    def _record_call(self, shapes, training: bool):
        from ..layers import Input

        inputs = [Input(shape=tuple(s[1:]), name=unique_name(f"{self.name}_input")) for s in shapes]
        kwargs = {"training": training} if "training" in inspect.signature(self.call).parameters else {}
        outputs = self.call(inputs[0] if len(inputs) == 1 else inputs, **kwargs)
        self._input_structure = ("single", None) if len(inputs) == 1 else ("list", None)
        self._output_structure = data.structure_of(outputs)
        for t in flatten_tensors(outputs):
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f'Model "{self.name}": call() returned {type(t).__name__}, not the output of a layer call; '
                    "convscope can only differentiate what layers compute"
                )
        graph = graph_module.GraphFunction(inputs, flatten_tensors(outputs), owner=f'Model "{self.name}"')
        self._adopt(graph)
        return graph

    def build(self, input_shape) -> None:
        """Build a subclassed model for ``input_shape`` (batch axis first); functional models are built already."""
        if self._graph is not None:
            return
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        self._graph_for(False, [(None, *tuple(s)[1:]) for s in shapes])

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(f'Model "{self.name}" has not been built: give it an Input or call it on data before {what}')

    @property
    def inputs(self) -> list:
        self._require_built("reading inputs")
        return list(self._graph_for(False).inputs)

    @property
    def outputs(self) -> list:
        self._require_built("reading outputs")
        return list(self._graph_for(False).outputs)

    @property
    def input(self):
        inputs = self.inputs
        return inputs[0] if len(inputs) == 1 else inputs

    @property
    def output(self):
        outputs = self.outputs
        return outputs[0] if len(outputs) == 1 else outputs

    @property
    def input_names(self) -> list:
        return [t.node.layer.name for t in self.inputs]

    @property
    def output_names(self) -> list:
        """The outputs' names: the dict keys they were given as, else their layers' names, made unique
        (``name``, ``name_1``, ...) where one layer gives several outputs, so each has its own loss and logs."""
        if self._output_structure[0] == "dict":
            return list(self._output_structure[1])
        names, seen = [], {}
        for t in self.outputs:
            base = t.node.layer.name
            count = seen.get(base, 0)
            seen[base] = count + 1
            names.append(base if count == 0 else f"{base}_{count}")
        return names

    @property
    def layers(self) -> list:
        """Every layer, in Keras's order (deepest first; InputLayers included for functional models)."""
        if self._graph is not None:
            return list(self._graph.layers)
        return list(self._tracked)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if (name is None) == (index is None):
            raise ValueError(f'Model "{self.name}": get_layer() takes a name or an index, received name={name!r}, '
                             f"index={index!r}")
        layers = self.layers
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) or not -len(layers) <= index < len(layers):
                raise ValueError(f'Model "{self.name}": layer index {index!r} is out of range for {len(layers)} layers')
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f'No layer named "{name}"; layers: {", ".join(l.name for l in layers)}')

    # -- weights -----------------------------------------------------------------
    @Layer.trainable.setter
    def trainable(self, value) -> None:
        Layer.trainable.fset(self, value)
        for layer in self.layers:
            layer.trainable = value

    @property
    def parameters(self) -> list:
        """Every parameter once (a shared layer's too), layer by layer in ``layers`` order, Keras's weight order."""
        return _unique(p for layer in self.layers for p in layer.parameters)

    @property
    def trainable_parameters(self) -> list:
        if not self.trainable:
            return []
        return _unique(p for layer in self.layers for p in layer.trainable_parameters)

    @property
    def weights(self) -> list:
        return self.parameters

    @property
    def trainable_weights(self) -> list:
        return self.trainable_parameters

    @property
    def non_trainable_weights(self) -> list:
        trainable = {id(p) for p in self.trainable_parameters}
        return [p for p in self.parameters if id(p) not in trainable]

    def count_params(self) -> int:
        return int(sum(p.value.size for p in self.parameters))

    def get_weights(self) -> list:
        return [p.value.copy() for p in self.parameters]

    def set_weights(self, weights) -> None:
        weights, params = list(weights), self.parameters
        if len(weights) != len(params):
            raise ValueError(f'Model "{self.name}" expects {len(params)} weight arrays, received {len(weights)}')
        for p, w in zip(params, weights):
            w = backend.xp.asarray(w)
            if w.shape != p.value.shape:
                raise ValueError(f'Model "{self.name}": weight "{p.name}" expects shape {p.value.shape}, received {w.shape}')
            p.value = backend.cast(w, p.value.dtype).copy()

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad[...] = 0

    # -- running (a Model is also a layer of another model) -----------------------
    def compute_output_shape(self, input_shape):
        return self.output_shape

    def check_input_shape(self, shape, index: int = 0, found=None) -> None:
        if self._graph is None and not self.built:
            return
        super().check_input_shape(shape, index, found)

    def forward(self, x, training: bool = False):
        """The output(s) for input array(s) ``x``; keeps what ``backward`` needs (the fused plan)."""
        arrays = x if isinstance(x, (list, tuple)) else [x]
        graph = self._graph_for(training, [(None, *a.shape[1:]) for a in arrays])
        plan = graph.plan(fuse=True)
        outs, self._tape = graph_module.forward(plan, arrays, training, keep_state=True)
        self._tape_plan = plan
        return outs[0] if len(outs) == 1 else outs

    def backward(self, dy, need_dx: bool = True):
        """dL/d(input(s)) from dL/d(output(s)) of the last ``forward``, adding to every parameter's ``.grad``."""
        if self._tape is None:
            raise ValueError(f'Model "{self.name}": backward() needs a forward() first')
        dys = dy if len(self._tape_plan.output_slots) > 1 else [dy]
        dxs = graph_module.backward(self._tape_plan, self._tape, dys, need_input_grads=need_dx)
        return dxs[0] if len(dxs) == 1 else dxs

    # -- compiling and training ----------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None) -> None:
        names = self.output_names if self.built else ["output"]
        self._specs = compiled.output_specs(f'Model "{self.name}"', names, loss, loss_weights, metrics)
        self._compile_args = (loss, loss_weights, metrics)
        self.optimizer = optimizers.get(optimizer)
        self.loss = self._specs[0].loss if len(self._specs) == 1 else [s.loss for s in self._specs]
        self.metrics = [m for s in self._specs for m in s.metrics]

    def _require_compiled(self, what: str) -> None:
        if self.optimizer is None:
            raise ValueError(
                f'Model "{self.name}": you must call compile() before {what}(), '
                'e.g. model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])'
            )
        if self.built and len(self._specs) != len(self.output_names):
            loss, loss_weights, metrics = self._compile_args  # compiled before the graph existed (subclass)
            self._specs = compiled.output_specs(f'Model "{self.name}"', self.output_names, loss, loss_weights, metrics)

    def _inputs(self, x, arg="x") -> list:
        """``x`` as one checked array per model input (a subclass is built here from the first data)."""
        if not self.built and x is not None and self._graph is None:
            arrays = [backend.xp.asarray(a) for a in (x if isinstance(x, (list, tuple)) else [x])]
            if all(a.ndim >= 1 for a in arrays):
                self._graph_for(False, [(None, *a.shape[1:]) for a in arrays])
        self._require_built(f'using argument "{arg}"')
        names = self.input_names
        arrays = data.arrays_for(self, x, names, arg, "input")
        shapes = self.input_shape if isinstance(self.input_shape, list) else [self.input_shape]
        arrays = [data.check_input_array(self, a, s, arg if len(names) == 1 else f"{arg}[{i}]", i)
                  for i, (a, s) in enumerate(zip(arrays, shapes))]
        data.same_count(self, arrays, [arg if len(names) == 1 else f"{arg}[{i}]" for i in range(len(names))])
        return arrays

    def _targets(self, y, n: int, arg_x="x", arg="y") -> list:
        """``y`` as one checked target array per output (None for outputs without a loss), each probed by its loss."""
        names = self.output_names
        # A dict may leave out outputs that have no loss; a list or an array must match the outputs.
        given = [y.get(k) for k in names] if isinstance(y, dict) else data.arrays_for(self, y, names, arg, "output")
        targets = []
        shapes = self.output_shape if isinstance(self.output_shape, list) else [self.output_shape]
        for spec, target, shape in zip(self._specs, given, shapes):
            label = arg if len(names) == 1 else f"{arg}[{spec.name!r}]"
            if spec.loss is None:
                targets.append(None)
                continue
            if target is None:
                raise ValueError(f'{self}: argument "{label}" is required for output "{spec.name}", which has a loss')
            target = data.check_target_array(self, target, label, n, arg_x)
            probe = backend.xp.full((len(target), *shape[1:]), 0.5, dtype=backend.floatx())
            try:
                spec.loss(target, probe)
            except ValueError as e:
                raise ValueError(
                    f'{self}: argument "{label}" does not suit the loss for outputs of shape {tuple(shape)}: {e}'
                ) from e
            targets.append(target)
        return targets

    def __str__(self) -> str:
        return f'{type(self).__name__} "{self.name}"'

    def _fused_loss(self, plan, k: int, loss):
        """The from-logits twin of output ``k``'s loss when its producer ends in the matching activation, else None."""
        wanted = getattr(loss, "output_activation", None)
        step = plan.producer(k)
        if not wanted or loss.from_logits or step is None or not hasattr(step.op, "backward_from_preactivation"):
            return None
        if getattr(step.op, "activation", None) is None or step.op.activation.name != wanted:
            return None
        slot = plan.output_slots[k]
        if plan.consumers[slot] or plan.output_slots.count(slot) > 1:
            return None  # other readers need dL/dy itself, which the fused gradient skips
        return loss.with_logits()

    def _losses(self, plan, targets, outputs, preactivations, with_gradient: bool):
        """(total loss, {output: loss}, gradients per output, outputs whose gradient is dL/dz); ``preactivations``
        as ``graph.forward`` fills it."""
        total, parts, grads, from_z = 0.0, {}, [], set()
        for k, (spec, target, out) in enumerate(zip(self._specs, targets, outputs)):
            if spec.loss is None:
                grads.append(None)
                continue
            fused = self._fused_loss(plan, k, spec.loss)
            source = preactivations[k] if fused else out
            loss = fused or spec.loss
            if with_gradient:
                value, grad = loss.value_and_gradient(target, source)
                grads.append(grad if spec.weight == 1.0 else grad * spec.weight)
                if fused:
                    from_z.add(k)
            else:
                value = loss(target, source)
            parts[spec.name] = float(value)
            total += spec.weight * float(value)
        return total, parts, grads, from_z

    def train_step(self, x, y):
        """One optimizer step on one batch of checked arrays; returns (loss, predictions)."""
        xs = [backend.cast(a) for a in (x if isinstance(x, list) else [x])]
        ys = y if isinstance(y, list) else [y]
        plan = self._graph_for(True, [(None, *a.shape[1:]) for a in xs]).plan(fuse=True)
        preactivations = {}
        outs, tape = graph_module.forward(plan, xs, training=True, keep_state=True, preactivations=preactivations)
        total, parts, grads, from_z = self._losses(plan, ys, outs, preactivations, with_gradient=True)
        self.zero_grad()
        graph_module.backward(plan, tape, grads, from_z)  # nothing uses dL/dx of the data
        self.optimizer.apply(self.trainable_parameters)
        self._last_parts = parts
        return total, (outs[0] if len(outs) == 1 else outs)

    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose="auto", validation_split=0.0,
            validation_data=None, shuffle=True, callbacks=None, initial_epoch=0) -> History:
        self._require_compiled("fit")
        _check_count(batch_size, "batch_size", 1)
        _check_count(epochs, "epochs", 0)
        _check_count(initial_epoch, "initial_epoch", 0)
        if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
            raise ValueError(f'fit: argument "validation_split" must be a number in [0, 1), received {validation_split!r}')
        xs = self._inputs(x)
        self._require_compiled("fit")
        ys = self._targets(y, len(xs[0]))
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError('fit: argument "validation_data" must be a tuple (x_val, y_val)')
            xv = self._inputs(validation_data[0], "x_val")
            val = (xv, self._targets(validation_data[1], len(xv[0]), "x_val", "y_val"))
        elif validation_split:
            n = len(xs[0])
            split = int(n * (1 - validation_split))
            if split == 0 or split == n:
                raise ValueError(f"fit: validation_split={validation_split} leaves no training or no validation samples out of {n}")
            val = ([a[split:] for a in xs], [None if t is None else t[split:] for t in ys])
            xs, ys = [a[:split] for a in xs], [None if t is None else t[:split] for t in ys]
        verbose = _resolve_verbose(verbose)
        history = History()
        cbs = ([ProgbarLogger(verbose)] if verbose else []) + list(callbacks or []) + [history]
        steps = math.ceil(len(xs[0]) / batch_size)
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be convscope Callback objects, received {type(cb).__name__}")
            cb.set_model(self)
            cb.set_params({"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        _each(cbs, "on_train_begin")
        for epoch in range(initial_epoch, epochs):
            _each(cbs, "on_epoch_begin", epoch)
            logs = self._train_epoch(xs, ys, batch_size, shuffle, cbs)
            if val is not None and not self.stop_training:
                val_logs = self._evaluate_arrays(*val, batch_size)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            _each(cbs, "on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        _each(cbs, "on_train_end")
        self.history = history
        return history

    def _train_epoch(self, xs, ys, batch_size, shuffle, cbs) -> dict:
        n = len(xs[0])
        order = backend.global_rng().permutation(n) if shuffle else None
        tally, logs = compiled.Tally(self._specs), {}
        for step in range(math.ceil(n / batch_size)):
            _each(cbs, "on_train_batch_begin", step)
            batch = slice(step * batch_size, (step + 1) * batch_size)
            idx = batch if order is None else order[batch]
            xb = [a[idx] for a in xs]
            yb = [None if t is None else t[idx] for t in ys]
            value, y_pred = self.train_step(xb, yb)
            tally.add(value, self._last_parts, yb, y_pred if len(self._specs) > 1 else [y_pred], len(xb[0]))
            logs = tally.logs()
            _each(cbs, "on_train_batch_end", step, logs)
            if self.stop_training:
                break
        return logs

    # -- inference ---------------------------------------------------------------------
    def _infer(self, xs, batch_size: int):
        """Outputs of every slice of ``xs`` (lists of arrays), fused plan, nothing kept for backward."""
        plan = self._graph_for(False, [(None, *a.shape[1:]) for a in xs]).plan(fuse=True)
        batch_size = min(batch_size, INFERENCE_SLICE)
        for i in range(0, len(xs[0]), batch_size):
            batch = [backend.cast(a[i : i + batch_size]) for a in xs]
            preactivations = {}
            outs, _ = graph_module.forward(plan, batch, training=False, keep_state=False, preactivations=preactivations)
            yield plan, i, batch_size, outs, preactivations

    def predict(self, x, batch_size=32, verbose="auto"):
        """Outputs for ``x``, computed in slices of ``min(batch_size, INFERENCE_SLICE)`` samples; one array per
        output, in the structure the model's outputs were given (an array, a list or a dict)."""
        _check_count(batch_size, "batch_size", 1)
        xs = self._inputs(x)
        chunks = [outs for _, _, _, outs, _ in self._infer(xs, batch_size)]
        xp = backend.xp
        outputs = [xp.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]
        return data.pack(outputs, self._output_structure)

    def __call__(self, inputs, training=None):
        if not any(isinstance(t, KerasTensor) for t in flatten_tensors(inputs)):
            xs = [backend.cast(a) for a in self._inputs(inputs)]
            # Called on arrays: the output(s) only, nothing kept for a backward pass.
            plan = self._graph_for(bool(training), [(None, *a.shape[1:]) for a in xs]).plan(fuse=True)
            outs, _ = graph_module.forward(plan, xs, bool(training), keep_state=False)
            return data.pack(outs, self._output_structure)
        return super().__call__(inputs, training)

    def evaluate(self, x=None, y=None, batch_size=32, verbose="auto", return_dict=False):
        self._require_compiled("evaluate")
        _check_count(batch_size, "batch_size", 1)
        xs = self._inputs(x)
        ys = self._targets(y, len(xs[0]))
        results = self._evaluate_arrays(xs, ys, batch_size)
        if _resolve_verbose(verbose):
            print(format_logs(results), flush=True)
        if return_dict:
            return results
        return results["loss"] if len(results) == 1 else list(results.values())

    def _evaluate_arrays(self, xs, ys, batch_size) -> dict:
        tally = compiled.Tally(self._specs)
        for plan, i, size, outs, preactivations in self._infer(xs, batch_size):
            yb = [None if t is None else t[i : i + size] for t in ys]
            value, parts, _, _ = self._losses(plan, yb, outs, preactivations, with_gradient=False)
            tally.add(value, parts, yb, outs, len(outs[0]))
        return tally.logs()

    # -- inspection ----------------------------------------------------------------------
    def trace(self, x, y=None):
        """One record per layer call: what it received, its pre-activation and output and, given labels ``y``,
        the gradients (see ``models.trace``). The model is left exactly as it was."""
        return trace_model(self, x, y)

    def summary(self, print_fn=print, line_length=None) -> None:
        """Keras's table: layer (type), output shape, parameter count (and "Connected to" for graphs), then totals."""
        if not self.built:
            raise ValueError(f'{type(self).__name__} "{self.name}" has not been built: give it an Input or call it on data first')
        print_fn("\n".join(summary_lines(self)))

    # -- files -------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The graph as data: every layer's config and, per call, the ``[layer, call, tensor]`` it read."""
        if self._graph is None:
            raise NotImplementedError(
                f'Model "{self.name}" is a subclass of Model ({type(self).__name__}): its call() is Python code, which '
                "a model file cannot hold. Save its weights (get_weights) and rebuild it in code, or build it with "
                "the functional API"
            )
        refuse_layers_shared_across_models(self)
        graph = self._graph
        call_index = {id(t.node): 0 for t in graph.inputs}
        for layer in graph.layers:
            for k, node in enumerate(n for n in graph.nodes if n.layer is layer):
                call_index[id(node)] = k

        def ref(t):
            return [t.node.layer.name, call_index[id(t.node)], t.index]

        specs = []
        for layer in graph.layers:
            nodes = [n for n in graph.nodes if n.layer is layer]
            specs.append({
                **serialize(layer), "name": layer.name,
                "inbound_nodes": [{"args": [ref(t) for t in n.inputs], "as_list": n.as_list} for n in nodes],
            })
        return {
            "name": self.name, "trainable": self.trainable, "layers": specs,
            "input_layers": [ref(t) for t in graph.inputs], "output_layers": [ref(t) for t in graph.outputs],
            "input_structure": _structure_config(self._input_structure),
            "output_structure": _structure_config(self._output_structure),
        }

    @classmethod
    def from_config(cls, config: dict) -> "Model":
        from .rebuild import rebuild_graph

        inputs, outputs, layers = rebuild_graph(config, lambda layer, args, as_list: layer(args if as_list else args[0]))
        inputs = _restructure(inputs, config.get("input_structure"))
        outputs = _restructure(outputs, config.get("output_structure"))
        trainable = config.get("trainable", True)
        if not isinstance(trainable, bool):
            raise TypeError(f'the model config\'s "trainable" must be a bool, received {trainable!r}')
        # The model's own flag only: each layer's config already holds its own (a partly frozen model stays so).
        return cls(inputs, outputs, name=config.get("name"), trainable=trainable)

    def save(self, path) -> None:
        """Write the model (graph, weights, optimizer state) to one file, atomically; see ``convscope.saving``."""
        formats.saver()(self, path)

    def save_keras(self, path) -> None:
        """Write the model as a Keras 3 ``.keras`` file that ``keras.models.load_model`` reads; see ``convscope.interop``."""
        formats.exporter("keras")(self, path)

    def export_onnx(self, path) -> None:
        """Write the model as an ONNX graph (NHWC input, float32), checked by ``onnx.checker``; see ``convscope.interop``."""
        formats.exporter("onnx")(self, path)


def refuse_layers_shared_across_models(model) -> None:
    """A model file stores each nested model's layers inside that model's config, so a layer shared between a
    nested model and its outer model (or two nested models) would come back as two layers: refuse, naming it."""
    owners = {}

    def walk(m):
        for layer in m.layers:
            owner = owners.setdefault(id(layer), m)
            if owner is not m:
                raise ValueError(
                    f'{model}: layer "{layer.name}" is used both in model "{owner.name}" and in model "{m.name}"; a '
                    "model file keeps each nested model's layers apart, so loading would un-share it. Save the "
                    "weights (get_weights) and rebuild the model in code, or share it within one model only"
                )
            if isinstance(layer, Model):
                walk(layer)

    walk(model)


def _structure_config(structure):
    kind, keys = structure
    return {"kind": kind, "keys": keys}


def _restructure(tensors, spec):
    if isinstance(spec, dict) and spec.get("kind") == "dict" and isinstance(spec.get("keys"), list) \
            and len(spec["keys"]) == len(tensors) and all(isinstance(k, str) for k in spec["keys"]):
        return dict(zip(spec["keys"], tensors))
    if isinstance(spec, dict) and spec.get("kind") == "single" and len(tensors) == 1:
        return tensors[0]
    return tensors


def _chain_types():
    from .sequential import Sequential

    return (Sequential,)


def _unique(params) -> list:
    seen, out = set(), []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _each(callbacks, hook, *args) -> None:
    for cb in callbacks:
        getattr(cb, hook)(*args)


def _resolve_verbose(verbose) -> int:
    """Keras's "auto" is a live bar (1); when output goes to a file or pipe, one line per epoch (2) reads better."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    if verbose not in (0, 1, 2):
        raise ValueError(f'argument "verbose" must be "auto", 0, 1 or 2, received {verbose!r}')
    return verbose


def _check_count(value, arg: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f'argument "{arg}" must be an int >= {minimum}, received {value!r}')
