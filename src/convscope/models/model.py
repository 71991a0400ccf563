"""Model: a graph of layer calls, trained by backpropagation, with Keras's API.

Three ways to make one, one engine for all:

* functional: ``Model(inputs, outputs)`` on KerasTensors (``convscope.Input`` and layer
  calls); inputs and outputs may be one tensor, a list or a dict, as in Keras;
* subclassed: ``class Net(Model)`` making layers in ``__init__`` and calling them in
  ``call(self, x, training=False)``. The first forward pass in each mode (training or
  not) runs ``call`` on symbolic inputs of the data's shape and so records the calls it
  makes; training then replays that graph forward and in reverse. ``call`` may use any
  Python around the layer calls; arithmetic on the tensors (``x + y``, ``x[:, 0]``) and
  ``convscope.ops`` calls are recorded too (``layers.operation``), while what asks a
  tensor for values (``if x:``, ``np.mean(x)``) fails with a ``TypeError`` naming it;
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

import contextlib
import inspect
import math

from .. import backend, budget, formats, optimizers
from ..callbacks import CallbackList
from ..layers import Conv2D, Conv2DTranspose, Layer, SeparableConv2D, registered, serialize
from ..layers.base import snake_case, unique_name
from ..layers.node import KerasTensor, flatten_tensors
from ..layers.operation import tracing
from . import compiled, data, graph as graph_module
from .summary import summary_lines
from .trace import trace_model

INFERENCE_SLICE = 64
"""predict / evaluate never run more samples at once than this: inference needs no
batch statistics, and slices this small keep every layer's maps in the CPU caches
(about twice the throughput of slices of 1,000 on the MNIST convnet). Fewer when the
memory budget says so (``Model.inference_batch``)."""


class Model(Layer):
    """``Model(inputs, outputs, name=None)``, or a subclass with ``call``; see the module docstring."""

    def __new__(cls, *args, **kwargs):
        # As Keras: Model(inputs, outputs) is a Functional (its summary and files say so).
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            cls = Functional
        return super().__new__(cls)

    def __init__(self, inputs=None, outputs=None, name: str | None = None, trainable: bool = True):
        default = "functional" if type(self) is Model else snake_case(type(self).__name__)
        super().__init__(name=name or unique_name(default), trainable=trainable)
        self._graph = None
        self._call_graphs: dict = {}
        self._tape = self._tape_plan = None
        self.optimizer = self.loss = None
        self._specs: list = []
        self.metrics: list = []
        self.stop_training = False
        self.history = None
        # A callback resuming training (BackupAndRestore) sets the epoch fit starts from; fit clears it.
        self._initial_epoch = None
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

    def _graph_for_cached(self, training: bool, shapes):
        graph = self._call_graphs.get(bool(training))
        if graph is not None and [t.shape[1:] for t in graph.inputs] == [tuple(s)[1:] for s in shapes]:
            return graph
        return None

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

        if type(self).build is not Model.build and not self.__dict__.get("_user_built"):
            self._user_built = True  # the subclass's own build() (add_weight ...) runs once, before its first trace
            self.build(shapes[0] if len(shapes) == 1 else list(shapes))
            if self._graph_for_cached(training, shapes) is not None:
                return self._graph_for_cached(training, shapes)  # its build() called super().build(): traced
        keys = self.__dict__.get("_call_keys")
        names = keys or [unique_name(f"{self.name}_input") for _ in shapes]
        inputs = [Input(shape=tuple(s[1:]), name=name) for s, name in zip(shapes, names)]
        kwargs = {"training": training} if "training" in inspect.signature(self.call).parameters else {}
        given = dict(zip(keys, inputs)) if keys else inputs[0] if len(inputs) == 1 else inputs
        with tracing() as added:
            outputs = self.call(given, **kwargs)
        self._input_structure = data.structure_of(given)
        self._output_structure = data.structure_of(outputs)
        for t in flatten_tensors(outputs):
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f'Model "{self.name}": call() returned {type(t).__name__}, not the output of a layer call; '
                    "convscope differentiates what layers and convscope.ops compute from the inputs"
                )
        graph = graph_module.GraphFunction(inputs, flatten_tensors(outputs), owner=f'Model "{self.name}"',
                                           added_losses=added)
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
    def operations(self) -> list:
        """Every layer and ``convscope.ops`` call of the graph, in Keras's order (what ``summary`` lists)."""
        if self._graph is not None:
            return list(self._graph.layers)
        return self.sublayers

    @property
    def layers(self) -> list:
        """Every layer, in Keras's order (deepest first; InputLayers included for functional models); the
        ``convscope.ops`` calls between them are in ``operations``, as in Keras."""
        return [layer for layer in self.operations if not layer.is_operation]

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
        """Every parameter once (a shared layer's too): a subclass's own (``add_weight``) first, then layer by
        layer in ``layers`` order, Keras's weight order."""
        return _unique([*self._params, *(p for layer in self.layers for p in layer.parameters)])

    @property
    def trainable_parameters(self) -> list:
        if not self.trainable:
            return []
        return _unique([*(p for p in self._params if p.trainable),
                        *(p for layer in self.layers for p in layer.trainable_parameters)])

    @property
    def weights(self) -> list:
        return self.parameters

    @property
    def losses(self) -> list:
        """Keras's ``model.losses``: what ``add_loss`` added in the last forward pass (in the model's own call and
        in its layers'), the activity penalties of that pass, and the weight penalties, each layer once."""
        found = list(self.__dict__.get("_added_loss_values", ()))
        found += [float(p.regularizer(p.value)) for p in self._params if p.trainable and p.regularizer is not None]
        for layer in self.layers:
            found += layer.losses
        return found

    @property
    def trainable_weights(self) -> list:
        return self.trainable_parameters

    @property
    def non_trainable_weights(self) -> list:
        trainable = {id(p) for p in self.trainable_parameters}
        return [p for p in self.parameters if id(p) not in trainable]

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f'You tried to call count_params on {self}, but the model is not built yet: call it on '
                             "data or build(input_shape) first")
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
        self._added_loss_values = [float(backend.xp.sum(v)) for v in self._tape.losses]
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
            if isinstance(x, dict):  # call() will receive a dict of tensors under the same keys
                self._call_keys = list(x)
            values = list(x.values()) if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else [x]
            arrays = [backend.xp.asarray(a) for a in values]
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
        if y is None and all(spec.loss is None for spec in self._specs):
            return [None] * len(names)  # nothing to compare with: the losses come from add_loss
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
        if getattr(step.op, "activity_regularizer", None) is not None:
            return None  # its penalty's gradient is on dL/dy, which the fused path skips
        slot = plan.output_slots[k]
        if plan.consumers[slot] or plan.output_slots.count(slot) > 1:
            return None  # other readers need dL/dy itself, which the fused gradient skips
        return loss.with_logits()

    def _losses(self, plan, targets, outputs, preactivations, with_gradient: bool, sample_weights=None):
        """(total loss, {output: loss}, gradients per output, outputs whose gradient is dL/dz); ``preactivations``
        as ``graph.forward`` fills it; ``sample_weights`` one array (or None) per output."""
        total, parts, grads, from_z = 0.0, {}, [], set()
        weights = sample_weights or [None] * len(self._specs)
        for k, (spec, target, out, w) in enumerate(zip(self._specs, targets, outputs, weights)):
            if spec.loss is None:
                grads.append(None)
                continue
            fused = self._fused_loss(plan, k, spec.loss)
            source = preactivations[k] if fused else out
            loss = fused or spec.loss
            if with_gradient:
                value, grad = loss.value_and_gradient(target, source, sample_weight=w)
                grads.append(grad if spec.weight == 1.0 else grad * spec.weight)
                if fused:
                    from_z.add(k)
            else:
                value = loss(target, source, sample_weight=w)
            parts[spec.name] = float(value)
            total += spec.weight * float(value)
        return total, parts, grads, from_z

    def train_step(self, x, y, sample_weight=None):
        """One optimizer step on one batch of checked arrays; returns ``(loss, predictions)``.

        loss = sum_k w_k * loss_k(y_k, f_k(x), sample_weight_k) + sum_p penalty_p(p), the second sum over the
        trainable parameters with a ``regularizer`` (Keras reports it as part of the loss). Each such parameter's
        ``grad`` gains the penalty's gradient before the optimizer's update; after it, every trainable parameter
        with a ``constraint`` is projected, ``value[...] = constraint(value)``, as Keras's optimizer does.
        ``sample_weight``: None, or one ``(n,)`` array (or None) per output.
        """
        xs = [backend.cast(a) for a in (x if isinstance(x, list) else [x])]
        ys = y if isinstance(y, list) else [y]
        plan = self._graph_for(True, [(None, *a.shape[1:]) for a in xs]).plan(fuse=True)
        preactivations = {}
        with graph_module.activity_penalties() as activity:
            outs, tape = graph_module.forward(plan, xs, training=True, keep_state=True, preactivations=preactivations)
        total, parts, grads, from_z = self._losses(plan, ys, outs, preactivations, with_gradient=True,
                                                   **_weights_keyword(sample_weight))
        if not activity and all(spec.loss is None for spec in self._specs) and not any(
                p.regularizer is not None for p in self.trainable_parameters):
            raise ValueError(f'{self}: no loss to compute. Give compile() a loss, e.g. '
                             'loss="sparse_categorical_crossentropy", or add one in a layer with add_loss()')
        total += sum(activity)
        self.zero_grad()
        graph_module.backward(plan, tape, grads, from_z)  # nothing uses dL/dx of the data
        params = self.trainable_parameters
        total += _penalty(params, with_gradient=True)
        self.optimizer.apply(params)
        for p in params:
            if p.constraint is not None:
                p.value[...] = p.constraint(p.value)
        self._last_parts = parts
        return total, (outs[0] if len(outs) == 1 else outs)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs - initial_epoch`` epochs; Keras 3's arguments and meaning. Returns the ``History``.

        * ``x`` / ``y``: arrays or nested lists (one per input / output, or dicts by name), a
          ``convscope.utils.PyDataset`` or a generator of ``(x, y)`` / ``(x, y, sample_weight)`` batches
          (then ``y`` and ``sample_weight`` stay None). ``batch_size`` for arrays: 32 unless given, or
          ``ceil(n / steps_per_epoch)`` when only that is.
        * ``sample_weight``: one weight per sample, ``(n,)``, multiplying each sample's loss (or one array
          per output, as a list or dict). ``class_weight``: ``{class: weight}``, each sample weighing its
          label's weight (single-output models only). Compiled metrics are not weighted, as in Keras 3.
        * ``steps_per_epoch``: batches per epoch, the next epoch going on where the last stopped; an epoch
          that reaches the end of the data stops short (see ``models.data.EpochIterator``).
        * ``validation_split``: the last fraction of the arrays, before shuffling, is validation data;
          ``validation_data``: ``(x_val, y_val)``, ``(x_val, y_val, val_sample_weight)``, a PyDataset or a
          generator (it wins over ``validation_split``), evaluated in batches of ``validation_batch_size``
          (else ``batch_size``), ``validation_steps`` of them, after every ``validation_freq``-th epoch
          (an int, or a list of the 1-based epochs), giving the ``val_*`` logs.
        * ``callbacks`` see every hook with Keras's logs; validation fires ``on_test_*`` on them.
          ``initial_epoch``: the first epoch's index (a callback resuming training may set the model's
          ``_initial_epoch`` in ``on_train_begin`` instead).
        """
        self._require_compiled("fit")
        for arg, value in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch),
                           ("validation_steps", validation_steps), ("validation_batch_size", validation_batch_size)):
            if value is not None:
                _check_count(value, arg, 1)
        _check_count(epochs, "epochs", 0)
        _check_count(initial_epoch, "initial_epoch", 0)
        if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
            raise ValueError(f'fit: argument "validation_split" must be a number in [0, 1), received {validation_split!r}')
        if shuffle not in (True, False, "batch"):
            raise ValueError(f'fit: argument "shuffle" must be True, False or "batch", received {shuffle!r}')
        _check_validation_freq(validation_freq)
        verbose = _resolve_verbose(verbose)
        val_batch_size = validation_batch_size or batch_size
        if validation_split and validation_data is None:
            train_parts, val_parts = data.split_for_validation(self, x, y, sample_weight, class_weight,
                                                               validation_split)
            train = data.array_batches(train_parts, batch_size, steps_per_epoch, shuffle)
            val = data.array_batches(val_parts, val_batch_size, validation_steps, False)
        else:
            train = data.batch_source(self, x, y, sample_weight, class_weight, batch_size, shuffle, steps_per_epoch)
            val = None if validation_data is None else \
                data.validation_source(self, validation_data, val_batch_size, validation_steps)
        batches = data.EpochIterator(train, steps_per_epoch)
        val_batches = None if val is None else data.EpochIterator(val, validation_steps)
        cbs = _callback_list(self, callbacks, verbose, epochs, batches.num_batches, add_history=True)
        self.stop_training = False
        cbs.on_train_begin()
        first = self._initial_epoch if self._initial_epoch is not None else initial_epoch
        logs = {}
        for epoch in range(first, epochs):
            cbs.on_epoch_begin(epoch)
            logs = self._train_epoch(batches, cbs)
            if val_batches is not None and _should_validate(epoch, validation_freq):
                val_batches.reset()
                logs.update({f"val_{k}": v for k, v in self._evaluate_batches(val_batches, cbs).items()})
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training or batches.exhausted:
                break
        self._initial_epoch = None
        cbs.on_train_end(logs)
        return self.history

    def _train_epoch(self, batches, cbs) -> dict:
        """One epoch of ``train_step`` over ``batches`` (an ``EpochIterator``); the epoch's logs."""
        tally = compiled.Tally(self._specs)
        with contextlib.closing(batches.epoch()) as epoch:
            for step, (xs, ys, ws) in epoch:
                cbs.on_train_batch_begin(step)
                value, y_pred = self.train_step(xs, ys, ws)
                tally.add(value, self._last_parts, ys, y_pred if len(self._specs) > 1 else [y_pred], len(xs[0]))
                cbs.on_train_batch_end(step, tally.logs())
                if self.stop_training:
                    break
        return tally.logs()

    # -- inference ---------------------------------------------------------------------
    def activation_bytes(self) -> list:
        """``[(layer call, bytes), ...]``: the activation memory one sample leaves in the layers once the model
        has inferred it, per step of its plan (a fused ReLU + max-pooling pair is one step, named
        ``"conv2d+max_pooling2d"``); ``inference_batch`` adds the largest step once more for the moment a
        layer computes the next slice.

        Computed from the layers' output shapes alone (nothing runs), in the dtype the model computes in
        (``floatx()``, or its weights' if wider)::

            bytes = itemsize * (2 * outputs + unfolded)

        per step: its outputs count twice, because a layer keeps what it computed until the next batch
        (the output, and its pre-activation, pooling's argmax or mask); ``unfolded`` is the window matrix
        a convolution builds (im2col): ``OH * OW * KH * KW * C_in`` for ``Conv2D``, ``H * W * KH * KW *
        filters`` for ``Conv2DTranspose`` (over its input positions), ``OH * OW * C_in * depth_multiplier``
        for ``SeparableConv2D``'s pointwise step. A nested model's steps are its own plan's. The sum is
        about twice the peak a run of the MNIST convnet measures (480 KB against 250 KB per sample), and
        the peak itself on a ``Conv2D(327680, 1)`` then a grouped 1x1 conv (3.1 GB per 28x28 image)."""
        self._require_built("activation_bytes()")
        itemsize = _activation_dtype(self).itemsize
        return [(label, n * itemsize) for label, _, n in _plan_elements(self._graph_for(False).plan(fuse=True))]

    def inference_batch(self) -> int:
        """The most samples ``predict`` and ``evaluate`` run at once: ``INFERENCE_SLICE``, or fewer so that a
        slice fits the memory budget (``budget.limit()``, 1 GiB unless ``$CONVSCOPE_MAX_BYTES`` says otherwise).

        A slice of ``n`` samples needs ``n * (kept + largest)`` bytes: ``kept``, the sum of
        ``activation_bytes()``, is what the layers hold once it has run; ``largest``, its biggest step,
        is there twice while that layer computes the next slice and what it kept from the one before is
        still alive. A model whose single sample does not fit is refused with a ValueError naming that
        layer and the bytes, before anything is allocated."""
        self._require_built("inference_batch()")
        return self._inference_slice(self._graph_for(False).plan(fuse=True))

    def _inference_slice(self, plan) -> int:
        dtype = _activation_dtype(self)
        steps = _plan_elements(plan)
        kept = sum(n for _, _, n in steps) * dtype.itemsize
        label, what, largest = max(steps, key=lambda step: step[2], default=("", "", 0))
        need, limit = kept + largest * dtype.itemsize, budget.limit()
        if need > limit:
            raise ValueError(
                f"{self}: one sample needs {budget.human(need)} of activations ({dtype.name}): {budget.human(kept)} "
                f"that its layers keep, and {budget.human(largest * dtype.itemsize)} more while the largest, layer "
                f"{label!r} ({what}), replaces what it kept; above the memory budget of {budget.human(limit)}. "
                f"Nothing was run; for a genuinely big model raise the budget with ${budget.ENVIRONMENT}, e.g. "
                f"{budget.ENVIRONMENT}=8G")
        return max(1, min(INFERENCE_SLICE, limit // max(need, 1)))

    def _infer(self, xs):
        """One batch's outputs, slice by slice of at most ``inference_batch()`` samples (fused plan, nothing
        kept for backward): ``(plan, slice, outputs, preactivations, activity penalty)`` per slice."""
        plan = self._graph_for(False, [(None, *a.shape[1:]) for a in xs]).plan(fuse=True)
        size = self._inference_slice(plan)
        for i in range(0, len(xs[0]), size):
            part = slice(i, i + size)
            preactivations = {}
            with graph_module.activity_penalties() as activity:
                outs, _ = graph_module.forward(plan, [backend.cast(a[part]) for a in xs], training=False,
                                               keep_state=False, preactivations=preactivations)
            yield plan, part, outs, preactivations, sum(activity)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` (arrays, a PyDataset or a generator; targets in its batches are ignored), one array
        per output in the structure the model's outputs were given (an array, a list or a dict). Batches of
        ``batch_size`` (32 unless given), ``steps`` of them if given; ``callbacks`` see ``on_predict_*``,
        ``on_predict_batch_end`` receiving ``{"outputs": <the batch's outputs>}``."""
        for arg, value in (("batch_size", batch_size), ("steps", steps)):
            if value is not None:
                _check_count(value, arg, 1)
        verbose = _resolve_verbose(verbose)
        batches = data.EpochIterator(data.batch_source(self, x, batch_size=batch_size, steps=steps, targets=False),
                                     steps)
        cbs = _callback_list(self, callbacks, verbose, 1, batches.num_batches)
        self.stop_predicting = False
        cbs.on_predict_begin()
        chunks = []
        with contextlib.closing(batches.epoch()) as epoch:
            for step, (xs, _, _) in epoch:
                cbs.on_predict_batch_begin(step)
                parts = [outs for _, _, outs, _, _ in self._infer(xs)]
                chunks.append([backend.xp.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))])
                cbs.on_predict_batch_end(step, {"outputs": data.pack(chunks[-1], self._output_structure)})
                if self.stop_predicting:
                    break
        cbs.on_predict_end()
        if not chunks:
            raise ValueError(f'{self}: predict() received no batches from argument "x"')
        outputs = [backend.xp.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]
        return data.pack(outputs, self._output_structure)

    def __call__(self, inputs, training=None):
        if not any(isinstance(t, KerasTensor) for t in flatten_tensors(inputs)):
            xs = [backend.cast(a) for a in self._inputs(inputs)]
            # Called on arrays: the output(s) only, nothing kept for a backward pass.
            plan = self._graph_for(bool(training), [(None, *a.shape[1:]) for a in xs]).plan(fuse=True)
            outs, _ = graph_module.forward(plan, xs, bool(training), keep_state=False)
            return data.pack(backend.eager(outs), self._output_structure)
        return super().__call__(inputs, training=training)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss (regularization penalties included, as Keras) and compiled metrics on ``x`` / ``y`` (taken as
        ``fit`` takes them), in batches of ``batch_size`` (32 unless given), ``steps`` of them if given.
        Returns the loss alone when nothing else is logged, else the list in Keras's order (loss, each
        output's loss, the metrics), or with ``return_dict`` the dict by log name (sorted, as Keras's).
        ``callbacks`` see ``on_test_begin``, ``on_test_batch_begin`` / ``_end`` and ``on_test_end``."""
        self._require_compiled("evaluate")
        for arg, value in (("batch_size", batch_size), ("steps", steps)):
            if value is not None:
                _check_count(value, arg, 1)
        verbose = _resolve_verbose(verbose)
        source = data.batch_source(self, x, y, sample_weight, None, batch_size, False, steps)
        batches = data.EpochIterator(source, steps)
        results = self._evaluate_batches(batches, _callback_list(self, callbacks, verbose, 1, batches.num_batches))
        if return_dict:
            return dict(sorted(results.items()))
        return results["loss"] if len(results) == 1 else list(results.values())

    def _evaluate_batches(self, batches, cbs) -> dict:
        """One pass of ``batches`` (an ``EpochIterator``) without training, firing the ``on_test_*`` hooks; the logs."""
        penalty = _penalty(self.trainable_parameters, with_gradient=False)
        tally = compiled.Tally(self._specs)
        self.stop_evaluating = False
        cbs.on_test_begin()
        with contextlib.closing(batches.epoch()) as epoch:
            for step, (xs, ys, ws) in epoch:
                cbs.on_test_batch_begin(step)
                for plan, part, outs, preactivations, activity in self._infer(xs):
                    yb = [None if t is None else t[part] for t in ys]
                    wb = [None if w is None else w[part] for w in ws]
                    value, parts, _, _ = self._losses(plan, yb, outs, preactivations, with_gradient=False,
                                                      **_weights_keyword(wb))
                    tally.add(value + penalty + activity, parts, yb, outs, len(outs[0]))
                cbs.on_test_batch_end(step, tally.logs())
                if self.stop_evaluating:
                    break
        logs = tally.logs()
        if not logs:
            raise ValueError(
                f"{self}: the evaluation data gave no batches. A generator is read once: to validate on one after "
                "every epoch, make it loop forever and give validation_steps, or use a PyDataset"
            )
        cbs.on_test_end(logs)
        return logs

    # -- inspection ----------------------------------------------------------------------
    def trace(self, x, y=None):
        """One record per layer call: what it received, its pre-activation and output and, given labels ``y``,
        the gradients (see ``models.trace``). The model is left exactly as it was.

        A trace keeps every layer's input, pre-activation and output, and with ``y`` their gradients too: about
        ``activation_bytes()`` per sample, twice that with ``y``, plus the largest step once more. That is checked
        against the memory budget before anything runs (the explorer and the lessons trace on every request)."""
        xs = self._inputs(x)
        steps = _plan_elements(self._graph_for(False, [(None, *a.shape[1:]) for a in xs]).plan(fuse=False))
        per_sample = sum(n for _, _, n in steps) * (1 if y is None else 2) + max((n for _, _, n in steps), default=0)
        samples = len(xs[0])
        budget.check(samples * per_sample * _activation_dtype(self).itemsize,
                     f"{self}.trace() of {samples} sample(s){' with gradients' if y is not None else ''}",
                     hint="a trace keeps every layer's tensors; nothing was run: trace fewer samples")
        return trace_model(self, x, y)

    def summary(self, line_length=None, positions=None, print_fn=print, expand_nested=False, show_trainable=False,
                layer_range=None) -> None:
        """Keras's table: layer (type), output shape, parameter count (and "Connected to" for graphs), then the
        totals split into trainable and non-trainable; ``expand_nested`` lists nested models' layers,
        ``show_trainable`` marks each layer Y / N. ``line_length``, ``positions`` and ``layer_range`` are
        accepted for Keras's signature; the table sizes itself and shows every layer."""
        if not self.built:
            raise ValueError(f'{type(self).__name__} "{self.name}" has not been built: give it an Input or call it on data first')
        print_fn("\n".join(summary_lines(self, expand_nested=expand_nested, show_trainable=show_trainable)))

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
        calls = {id(layer): [] for layer in graph.layers}  # each layer's calls in order, found in one pass
        for node in graph.nodes:
            calls.setdefault(id(node.layer), []).append(node)
        for nodes in calls.values():
            for k, node in enumerate(nodes):
                call_index[id(node)] = k

        def ref(t):
            return [t.node.layer.name, call_index[id(t.node)], t.index]

        specs = []
        for layer in graph.layers:
            nodes = calls[id(layer)]
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
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Model":
        """The model a ``get_config()`` describes; ``custom_objects`` maps the class names of layers of your own
        to their classes (``{"CustomDense": CustomDense}``), as in Keras."""
        from ..layers import deserialize
        from .rebuild import rebuild_graph

        inputs, outputs, layers = rebuild_graph(config, lambda layer, args, as_list: layer(args if as_list else args[0]),
                                                make_layer=lambda spec: deserialize(spec, custom_objects))
        inputs = _restructure(inputs, config.get("input_structure"))
        outputs = _restructure(outputs, config.get("output_structure"))
        trainable = config.get("trainable", True)
        if not isinstance(trainable, bool):
            raise TypeError(f'the model config\'s "trainable" must be a bool, received {trainable!r}')
        # The model's own flag only: each layer's config already holds its own (a partly frozen model stays so).
        return cls(inputs, outputs, name=config.get("name"), trainable=trainable)

    def save(self, path) -> None:
        """Write the model to one file, atomically, in the format its suffix names (as Keras 3):

        * ``.convscope``: convscope's own file: graph, weights, compile configuration and the
          optimizer's state, so that training resumes exactly (``convscope.saving``);
        * ``.keras``: a Keras 3 archive, ``.h5`` / ``.hdf5``: Keras's legacy HDF5 file; both hold
          the architecture, the weights and the compile configuration in Keras's own form, so
          ``keras.models.load_model`` reads them compiled (``convscope.interop``).

        Any other name is a ValueError listing these suffixes; ``convscope.saving.save_model``
        writes the native file whatever the name.
        """
        formats.saver_for(path)(self, path)

    def save_keras(self, path) -> None:
        """Write the model as a Keras 3 ``.keras`` file that ``keras.models.load_model`` reads; see ``convscope.interop``."""
        formats.exporter("keras")(self, path)

    def save_weights(self, path) -> None:
        """Write the weights alone to ``path``, which must end in ``.weights.h5``, in Keras 3's layout
        (``keras_model.load_weights`` reads it into the same architecture); see ``convscope.interop``."""
        formats.exporter("weights")(self, path)

    def load_weights(self, path) -> None:
        """Fill the built model with the weights of a ``.weights.h5``, ``.keras`` or legacy ``.h5`` file
        holding the same architecture. Every count and shape is checked before any weight changes."""
        formats.exporter("load_weights")(self, path)

    def export_onnx(self, path) -> None:
        """Write the model as an ONNX graph (NHWC input, float32), checked by ``onnx.checker``; see ``convscope.interop``."""
        formats.exporter("onnx")(self, path)


class Functional(Model):
    """A model built as ``Model(inputs, outputs)`` (Keras's class of the same name): nothing of its own."""


def refuse_unregistered_layers(model) -> None:
    """A model file names only convscope's own layer classes (its loader imports no code): refuse a layer class of
    the user's own, or a Lambda or ops call inside the model, naming it and what to do instead."""
    def walk(layer):
        for inner in [*getattr(layer, "operations", []), *layer.sublayers]:
            inner.get_config()  # an ops call or a Lambda says why it cannot be written
            if not registered(inner):
                raise TypeError(
                    f'Layer "{inner.name}" is of your own class {type(inner).__name__}, which a model file cannot '
                    "name (convscope never loads code from a file); save the weights (model.save_weights) and "
                    "rebuild the model from its code"
                )
            walk(inner)

    walk(model)


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


def _activation_dtype(model):
    """The dtype activations take: ``floatx()``, promoted by the weights' (a float64 model computes in float64)."""
    return backend.xp.result_type(backend.floatx(), *{p.value.dtype for p in model.parameters})


def _plan_elements(plan) -> list:
    """``[(step label, "<class>, output <shape>", elements per sample), ...]``: ``Model.activation_bytes``'s
    formula, step by step."""
    found = []
    for step in plan.steps:
        label = "+".join(node.layer.name for node in step.nodes)
        last = step.nodes[-1]
        what = f"{type(last.layer).__name__}, output {last.outputs[0].shape}"
        if isinstance(step.op, Model):
            inner = step.op._graph_for(False, [t.shape for t in step.nodes[0].inputs]).plan(fuse=True)
            found.append((label, what, sum(n for _, _, n in _plan_elements(inner))))
            continue
        outputs = sum(_sample_elements(t.shape) for node in step.nodes for t in node.outputs)
        found.append((label, what, 2 * outputs + sum(_unfolded_elements(node) for node in step.nodes)))
    return found


def _sample_elements(shape) -> int:
    """Elements of one sample of a tensor of ``shape`` (batch axis first)."""
    return math.prod(int(d) for d in shape[1:])


def _unfolded_elements(node) -> int:
    """Elements of the window matrix a convolution call unfolds for one sample (see ``Model.activation_bytes``)."""
    layer = node.layer
    if not isinstance(layer, (Conv2D, Conv2DTranspose, SeparableConv2D)):
        return 0
    (_, in_h, in_w, c_in), (_, out_h, out_w, c_out) = node.inputs[0].shape, node.outputs[0].shape
    window = math.prod(layer.kernel_size)
    if isinstance(layer, Conv2DTranspose):
        return in_h * in_w * window * c_out
    if isinstance(layer, SeparableConv2D):
        return out_h * out_w * c_in * layer.depth_multiplier
    return out_h * out_w * window * c_in


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


def _callback_list(model, callbacks, verbose: int, epochs: int, steps, add_history: bool = False) -> CallbackList:
    """Keras's wiring: the user's callbacks (then History for fit, then a ProgbarLogger unless verbose=0) with
    params ``{"verbose", "epochs", "steps"}``; a CallbackList given (fit's, to its validation) is used as it is."""
    if isinstance(callbacks, CallbackList):
        return callbacks
    return CallbackList(callbacks, add_history=add_history, add_progbar=verbose != 0, model=model,
                        verbose=verbose, epochs=epochs, steps=steps)


def _weights_keyword(sample_weights) -> dict:
    """``{"sample_weights": [...]}`` for the losses when any output's batch is weighted, else nothing."""
    if sample_weights is None or all(w is None for w in sample_weights):
        return {}
    return {"sample_weights": sample_weights}


def _penalty(params, with_gradient: bool) -> float:
    """sum of ``p.regularizer(p.value)`` over ``params``; with ``with_gradient``, each ``p.grad`` also gains
    the penalty's gradient ``p.regularizer.gradient(p.value)``."""
    total = 0.0
    for p in params:
        if p.regularizer is not None:
            total += float(p.regularizer(p.value))
            if with_gradient:
                p.grad += graph_module.regularizer_gradient(p.regularizer, p.value)
    return total


def _check_validation_freq(freq) -> None:
    ok = (isinstance(freq, int) and not isinstance(freq, bool) and freq >= 1) or (
        isinstance(freq, (list, tuple)) and all(isinstance(e, int) and not isinstance(e, bool) for e in freq))
    if not ok:
        raise ValueError(
            'fit: argument "validation_freq" must be an int >= 1 (validate every N epochs) or a list of epochs '
            f"(counted from 1), received {freq!r} of type {type(freq).__name__}"
        )


def _should_validate(epoch: int, freq) -> bool:
    """Keras's rule, epochs counted from 1: every ``freq``-th epoch, or the epochs listed."""
    return (epoch + 1) % freq == 0 if isinstance(freq, int) else epoch + 1 in freq


def _resolve_verbose(verbose) -> int:
    """Keras's "auto" is 1 wherever the output goes; the progress display fits itself to a terminal or a pipe."""
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(f'argument "verbose" must be "auto", 0, 1 or 2, received {verbose!r}')
    return verbose


def _check_count(value, arg: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f'argument "{arg}" must be an int >= {minimum}, received {value!r}')
