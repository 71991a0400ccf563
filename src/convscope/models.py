"""Sequential: a stack of layers trained by backpropagation, with Keras's API.

The model owns the loop: ``forward`` runs the layers in order, the loss gives
dL/d(output), ``backward`` runs the layers in reverse, each filling its
parameters' ``.grad``, and the optimizer updates ``.value``. When the last layer
ends in softmax (or sigmoid) and the loss is the matching cross-entropy, the
model computes the loss from the logits and starts backward from
dL/dz = (p - y) / n: the same numbers, but finite for any logits (Keras's
TensorFlow backend does the same).

``trace(x, y)`` is the inspection door that every tool uses: what each layer
received and produced and, given labels, the gradients, without changing the model.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from . import backend, fusion, losses, metrics as metrics_module, optimizers
from .callbacks import Callback, History, ProgbarLogger, format_logs
from .layers import ActivatedLayer, InputLayer, Layer, deserialize, serialize
from .layers.base import unique_name
from .utils import to_categorical


INFERENCE_SLICE = 64
"""predict / evaluate never run more samples at once than this: inference needs no
batch statistics, and slices this small keep every layer's maps in the CPU caches
(about twice the throughput of slices of 1,000 on the MNIST convnet)."""


@dataclass
class LayerTrace:
    """One layer's view of a batch. Arrays are copies; gradient fields are None without labels.

    ``preactivation`` equals ``output`` for layers without an activation;
    ``grad_output`` is dL/d(output), ``grad_preactivation`` dL/d(preactivation),
    ``grad_input`` dL/d(input); ``param_grads`` maps "kernel", "bias", ... to dL/d(parameter).
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


class Sequential:
    def __init__(self, layers=None, name: str | None = None):
        self.name = name or unique_name("sequential")
        self._layers: list[Layer] = []
        self._plan = None
        self.input_shape = self.output_shape = None
        self.built = False
        self.optimizer = self.loss = None
        self.metrics: list = []
        self.stop_training = False
        for layer in layers or []:
            self.add(layer)

    # -- structure ----------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def add(self, layer) -> None:
        if isinstance(layer, InputLayer):
            if self._layers or self.built:
                raise ValueError(f'Sequential "{self.name}": an Input can only be the first element')
            self.build((None, *layer.shape))
            return
        if not isinstance(layer, Layer):
            raise TypeError(f'Sequential "{self.name}": expected a convscope layer, received {type(layer).__name__}')
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f'Sequential "{self.name}": layer names must be unique, "{layer.name}" appears twice')
        self._layers.append(layer)
        self._plan = None
        if self.built:
            layer.build(self.output_shape)
            self.output_shape = layer.output_shape

    def build(self, input_shape) -> None:
        shape = (None, *tuple(input_shape)[1:])
        self.input_shape = shape
        for layer in self._layers:
            if not layer.built:
                layer.build(shape)
            elif layer.input_shape[1:] != shape[1:]:
                raise ValueError(
                    f'Input 0 of layer "{layer.name}" is incompatible with the layer: '
                    f"expected shape={layer.input_shape}, found shape={shape}"
                )
            shape = layer.output_shape
        self.output_shape = shape
        self.built = True

    @property
    def parameters(self):
        return [p for layer in self._layers for p in layer.parameters]

    @property
    def trainable_parameters(self):
        return [p for layer in self._layers for p in layer.trainable_parameters]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self._layers)

    def get_layer(self, name: str) -> Layer:
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f'No layer named "{name}"; layers: {", ".join(l.name for l in self._layers)}')

    def get_weights(self) -> list:
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        expected = sum(len(layer.parameters) for layer in self._layers)
        if len(weights) != expected:
            raise ValueError(f'Sequential "{self.name}" expects {expected} weight arrays, received {len(weights)}')
        for layer in self._layers:
            count = len(layer.parameters)
            layer.set_weights(weights[:count])
            weights = weights[count:]

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "input_shape": None if self.input_shape is None else list(self.input_shape[1:]),
            "layers": [serialize(layer) for layer in self._layers],
        }

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        model = cls([deserialize(spec) for spec in config["layers"]], name=config.get("name"))
        if config.get("input_shape") is not None:
            model.build((None, *config["input_shape"]))
        return model

    # -- inputs -------------------------------------------------------------
    def _check_x(self, x, arg="x"):
        xp = backend.xp
        if x is None:
            raise ValueError(f'Sequential "{self.name}": argument "{arg}" is required, received None')
        x = xp.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f'Sequential "{self.name}": argument "{arg}" must be numeric, received dtype {x.dtype}')
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f'Sequential "{self.name}": argument "{arg}" is empty (shape {x.shape}); expected at least one sample')
        if not self.built:
            self.build((None, *x.shape[1:]))
        expected = self.input_shape
        if x.ndim != len(expected) or x.shape[1:] != expected[1:]:
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: '
                f"expected shape={expected}, found shape={tuple(x.shape)}{self._shape_hint(x.shape)}"
            )
        if x.dtype.kind == "f" and not xp.isfinite(x).all():
            bad = int(xp.flatnonzero(~xp.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
            raise ValueError(f'Sequential "{self.name}": argument "{arg}" contains NaN or infinite values (first in sample {bad})')
        return x

    def _shape_hint(self, shape) -> str:
        expected = self.input_shape[1:]
        if tuple(shape) == expected:
            return " (a single sample without the batch axis: use x[None] for a batch of one)"
        if len(shape) == 4 and len(expected) == 3 and (shape[2], shape[3], shape[1]) == expected:
            return " (this looks like channels-first NCHW data; convscope uses NHWC: x.transpose(0, 2, 3, 1))"
        return ""

    def _check_xy(self, x, y, arg_x="x", arg_y="y"):
        x = self._check_x(x, arg_x)
        if y is None:
            raise ValueError(f'Sequential "{self.name}": argument "{arg_y}" is required, received None')
        y = backend.xp.asarray(y)
        if y.ndim == 0 or len(y) != len(x):
            raise ValueError(
                f'Sequential "{self.name}": "{arg_x}" and "{arg_y}" must have the same number of samples, '
                f"received {arg_x}: {len(x)} and {arg_y}: {y.shape[0] if y.ndim else 'a scalar'}"
            )
        if y.dtype.kind == "f" and not backend.xp.isfinite(y).all():
            raise ValueError(f'Sequential "{self.name}": argument "{arg_y}" contains NaN or infinite values')
        # One pass over all targets with the loss's own checks, so a bad label fails before training starts.
        probe = backend.xp.full((len(y), *self.output_shape[1:]), 0.5, dtype=backend.floatx())
        try:
            self.loss(y, probe)
        except ValueError as e:
            raise ValueError(
                f'Sequential "{self.name}": argument "{arg_y}" does not suit the loss for outputs of shape '
                f"{self.output_shape}: {e}"
            ) from e
        return x, y

    # -- training -----------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        if loss is None:
            raise ValueError(f'Sequential "{self.name}": compile() needs a loss, e.g. loss="categorical_crossentropy"')
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metrics = [metrics_module.get(m, self.loss) for m in (metrics or [])]

    def _require_compiled(self, what: str) -> None:
        if self.loss is None:
            raise ValueError(
                f'Sequential "{self.name}": you must call compile() before {what}(), '
                'e.g. model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])'
            )

    def _steps(self) -> list:
        """The layers as the training loop runs them: ReLU + max-pool pairs fused (see ``convscope.fusion``)."""
        if self._plan is None:
            self._plan = fusion.plan(self._layers)
            backend.keep_freed_memory()
        return self._plan

    def forward(self, x, training: bool = False):
        """The output for a batch, through the fused steps (``trace`` shows every layer's maps instead)."""
        for step in self._steps():
            x = step.forward(x, training=training)
        return x

    def _logits_loss(self, loss):
        """The from-logits twin of ``loss`` when the last layer's activation can be fused with it, else None."""
        last = self._layers[-1] if self._layers else None
        wanted = getattr(loss, "output_activation", None)
        if wanted and not loss.from_logits and isinstance(last, ActivatedLayer) and last.activation.name == wanted:
            return loss.with_logits()
        return None

    def _loss_and_grad(self, loss, y, y_pred):
        """(loss value, gradient, whether the gradient is dL/d(last preactivation))."""
        fused = self._logits_loss(loss)
        if fused is not None:
            return (*fused.value_and_gradient(y, self._layers[-1].preactivation), True)
        return (*loss.value_and_gradient(y, y_pred), False)

    def backward(self, grad, grad_is_preactivation: bool = False, need_input_grad: bool = True):
        """Run every layer's backward in reverse order; returns dL/d(input) (None if not ``need_input_grad``)."""
        steps = self._steps()
        for i, step in enumerate(reversed(steps)):
            if isinstance(step, (ActivatedLayer, fusion.ReluThenMaxPool)):
                fused = i == 0 and grad_is_preactivation
                grad = step.backward(grad, dy_is_preactivation=fused, need_dx=need_input_grad or i < len(steps) - 1)
            else:
                grad = step.backward(grad)
        return grad

    def train_step(self, x, y) -> tuple[float, object]:
        """One optimizer step on one batch; returns (loss, predictions)."""
        y_pred = self.forward(backend.cast(x), training=True)
        value, grad, fused = self._loss_and_grad(self.loss, y, y_pred)
        self.backward(grad, fused, need_input_grad=False)  # nothing uses dL/dx of the data
        self.optimizer.apply(self.trainable_parameters)
        return float(value), y_pred

    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose="auto", validation_split=0.0,
            validation_data=None, shuffle=True, callbacks=None, initial_epoch=0) -> History:
        self._require_compiled("fit")
        _check_count(batch_size, "batch_size", 1)
        _check_count(epochs, "epochs", 0)
        _check_count(initial_epoch, "initial_epoch", 0)
        if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
            raise ValueError(f'fit: argument "validation_split" must be a number in [0, 1), received {validation_split!r}')
        x, y = self._check_xy(x, y)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError('fit: argument "validation_data" must be a tuple (x_val, y_val)')
            val = self._check_xy(*validation_data, arg_x="x_val", arg_y="y_val")
        elif validation_split:
            split = int(len(x) * (1 - validation_split))
            if split == 0 or split == len(x):
                raise ValueError(f"fit: validation_split={validation_split} leaves no training or no validation samples out of {len(x)}")
            x, y, val = x[:split], y[:split], (x[split:], y[split:])
        verbose = _resolve_verbose(verbose)
        history = History()
        cbs = ([ProgbarLogger(verbose)] if verbose else []) + list(callbacks or []) + [history]
        steps = math.ceil(len(x) / batch_size)
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be convscope Callback objects, received {type(cb).__name__}")
            cb.set_model(self)
            cb.set_params({"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        _each(cbs, "on_train_begin")
        for epoch in range(initial_epoch, epochs):
            _each(cbs, "on_epoch_begin", epoch)
            logs = self._train_epoch(x, y, batch_size, shuffle, cbs)
            if val is not None and not self.stop_training:
                val_logs = self.evaluate(*val, batch_size=batch_size, verbose=0, return_dict=True)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            _each(cbs, "on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        _each(cbs, "on_train_end")
        return history

    def _train_epoch(self, x, y, batch_size, shuffle, cbs) -> dict:
        order = backend.global_rng().permutation(len(x)) if shuffle else None
        for metric in self.metrics:
            metric.reset()
        total, seen, logs = 0.0, 0, {}
        for step in range(math.ceil(len(x) / batch_size)):
            _each(cbs, "on_train_batch_begin", step)
            batch = slice(step * batch_size, (step + 1) * batch_size)
            idx = batch if order is None else order[batch]
            xb, yb = x[idx], y[idx]
            value, y_pred = self.train_step(xb, yb)
            total, seen = total + value * len(xb), seen + len(xb)
            for metric in self.metrics:
                metric.update(yb, y_pred)
            logs = {"loss": total / seen, **{m.name: m.result() for m in self.metrics}}
            _each(cbs, "on_train_batch_end", step, logs)
            if self.stop_training:
                break
        return logs

    # -- inference ----------------------------------------------------------
    def predict(self, x, batch_size=32, verbose="auto"):
        """Outputs for ``x``, computed in slices of ``min(batch_size, INFERENCE_SLICE)`` samples."""
        _check_count(batch_size, "batch_size", 1)
        x = self._check_x(x)
        batch_size = min(batch_size, INFERENCE_SLICE)
        outputs = [
            self.forward(backend.cast(x[i : i + batch_size]), training=False) for i in range(0, len(x), batch_size)
        ]
        return backend.xp.concatenate(outputs)

    def evaluate(self, x=None, y=None, batch_size=32, verbose="auto", return_dict=False):
        self._require_compiled("evaluate")
        _check_count(batch_size, "batch_size", 1)
        x, y = self._check_xy(x, y)
        batch_size = min(batch_size, INFERENCE_SLICE)
        for metric in self.metrics:
            metric.reset()
        total = 0.0
        for i in range(0, len(x), batch_size):
            xb, yb = backend.cast(x[i : i + batch_size]), y[i : i + batch_size]
            y_pred = self.forward(xb, training=False)
            fused = self._logits_loss(self.loss)
            value = fused(yb, self._layers[-1].preactivation) if fused else self.loss(yb, y_pred)
            total += float(value) * len(xb)
            for metric in self.metrics:
                metric.update(yb, y_pred)
        results = {"loss": total / len(x), **{m.name: m.result() for m in self.metrics}}
        if _resolve_verbose(verbose):
            print(format_logs(results), flush=True)
        if return_dict:
            return results
        return results["loss"] if not self.metrics else list(results.values())

    # -- inspection ---------------------------------------------------------
    def trace(self, x, y=None) -> list[LayerTrace]:
        """Every layer's input, pre-activation, output and (given labels ``y``) gradients, in order.

        Runs in inference mode (dropout off, batch norm on its moving statistics)
        and restores every parameter's ``.grad``: the model is left as it was.
        With labels, the loss is the compiled one (integer labels are one-hot
        encoded for a categorical loss), or else cross-entropy chosen by the
        labels' form (integers: sparse; one-hot rows: categorical).
        """
        x = backend.cast(self._check_x(x))
        records, h = [], x
        for layer in self._layers:
            out = layer.forward(h, training=False)
            pre = layer.preactivation if isinstance(layer, ActivatedLayer) else out
            records.append(LayerTrace(layer.name, type(layer).__name__, h.copy(), pre.copy(), out.copy()))
            h = out
        if y is None:
            return records
        y = backend.xp.asarray(y)
        labels = y.dtype.kind in "iu"
        loss = self.loss or losses.get("sparse_categorical_crossentropy" if labels else "categorical_crossentropy")
        if labels and loss.name == "categorical_crossentropy":
            y = to_categorical(y.reshape(-1), self.output_shape[-1])
        saved = [p.grad.copy() for p in self.parameters]
        _, grad, fused = self._loss_and_grad(loss, y, h)
        records[-1].grad_output = loss.gradient(y, h)
        for i, (layer, record) in enumerate(zip(reversed(self._layers), reversed(records))):
            if i > 0 or not fused:
                record.grad_output = grad.copy()
            if isinstance(layer, ActivatedLayer):
                if not (i == 0 and fused):
                    grad = layer.activation.gradient(record.preactivation, record.output, grad)
                record.grad_preactivation = grad.copy()
                grad = layer.backward(grad, dy_is_preactivation=True)
            else:
                record.grad_preactivation = record.grad_output
                grad = layer.backward(grad)
            record.grad_input = grad.copy()
            record.param_grads = {p.name.rsplit("/", 1)[-1]: p.grad.copy() for p in layer.parameters}
        for p, g in zip(self.parameters, saved):
            p.grad[...] = g
        return records

    def summary(self, print_fn=print) -> None:
        """Keras's table: layer (type), output shape, parameter count, then the totals."""
        if not self.built:
            raise ValueError(f'Sequential "{self.name}" has not been built: give it an Input or call it on data first')
        rows = [(f"{l.name} ({type(l).__name__})", str(l.output_shape), f"{l.count_params():,}") for l in self._layers]
        widths = [max(33, *(len(r[0]) + 2 for r in rows)), max(24, *(len(r[1]) + 2 for r in rows)), 15]
        trainable = sum(p.value.size for p in self.trainable_parameters)
        total = self.count_params()
        itemsize = backend.xp.dtype(backend.floatx()).itemsize

        def line(left, mid, right, fill):
            return left + mid.join(fill * w for w in widths) + right

        def row(cells, sep):
            return sep + sep.join(
                (" " + c).ljust(w) if i < 2 else (c + " ").rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            ) + sep

        out = [f'Model: "{self.name}"', line("┏", "┳", "┓", "━"),
               row(("Layer (type)", "Output Shape", "Param #"), "┃"), line("┡", "╇", "┩", "━")]
        for i, r in enumerate(rows):
            out.append(row(r, "│"))
            if i < len(rows) - 1:
                out.append(line("├", "┼", "┤", "─"))
        out.append(line("└", "┴", "┘", "─"))
        for label, count in (("Total", total), ("Trainable", trainable), ("Non-trainable", total - trainable)):
            out.append(f" {label} params: {count:,} ({_human_bytes(count * itemsize)})")
        print_fn("\n".join(out))

    def save(self, path) -> None:
        """Write the model (config, weights, optimizer state) to one file, atomically; see ``convscope.saving``."""
        from .saving import save_model

        save_model(self, path)

    def save_keras(self, path) -> None:
        """Write the model as a Keras 3 ``.keras`` file that ``keras.models.load_model`` reads; see ``convscope.interop``."""
        from .interop import save_keras

        save_keras(self, path)

    def export_onnx(self, path) -> None:
        """Write the model as an ONNX graph (NHWC input, float32), checked by ``onnx.checker``; see ``convscope.interop``."""
        from .interop import export_onnx

        export_onnx(self, path)


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


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
