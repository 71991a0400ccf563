"""convscope models as ONNX graphs: ``export_onnx(model, path)``.

The graph takes convscope's input as it is, NHWC float32 ``input`` of shape (batch, h, w, c)
with a free batch size, and gives ``output`` of convscope's output shape. Inside, image
maps are NCHW, ONNX's layout, converted lazily: a Transpose (0, 3, 1, 2) before the first
layer that needs NCHW, and one back (0, 2, 3, 1) before Flatten (so the features come out
in NHWC order, the order the following Dense kernel's rows expect), before a Dense applied
to a 4-D map (it acts on the channel axis) and at the output. Layer by layer:

* Conv2D -> Conv: kernel (kh, kw, in/groups, out) transposed to OIHW (out, in/groups, kh, kw);
  ``group``, ``strides``, ``dilations`` and explicit ``pads`` [top, left, bottom, right]
  taken from the layer's own padding, so Keras's "same" (the odd cell at the bottom /
  right) is reproduced exactly; then the activation as its own node(s).
* MaxPooling2D / AveragePooling2D -> MaxPool / AveragePool with the same explicit pads;
  ``count_include_pad=0``, so "same" average pooling leaves the padding out of the mean.
* GlobalAveragePooling2D / GlobalMaxPooling2D -> GlobalAveragePool / GlobalMaxPool + Flatten.
* Dense -> Gemm (2-D input; MatMul + Add on larger ranks), kernel (in, out) as it is.
* BatchNormalization -> BatchNormalization with the moving statistics (inference), on NCHW or 2-D input.
* Activations -> Relu, Sigmoid, Tanh, Softmax (over the channel axis), Elu, Selu (Keras's
  alpha and scale), LeakyRelu, Softplus, Softsign; silu as x * Sigmoid(x); gelu from Erf
  (Tanh when approximate). ReLU(max_value, negative_slope, threshold) -> Relu, Clip, or
  Where(x >= threshold, x, negative_slope * (x - threshold)) then Min.
* Rescaling -> Mul + Add. Dropout -> nothing (inference).

Opset 17, IR version 8, float32 throughout (float64 models are exported in float32). The
graph is built with onnx's helper API, checked with ``onnx.checker.check_model(full_check=True)``
(which also infers every shape) and written atomically.
"""

from __future__ import annotations

import math

import numpy as np

from .. import __version__
from ..layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
    ReLU,
    Rescaling,
)
from ..saving import atomic_write

OPSET = 17
IR_VERSION = 8  # the IR of opset 17's release; newer runtimes read it, older ones refuse newer IRs


def import_onnx():
    """onnx, or an ImportError saying how to get it (it is the optional ``interop`` extra)."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError("ONNX export needs the onnx package: pip install 'convscope[interop]'") from e
    return onnx


def export_onnx(model, path) -> None:
    """Write the built ``model`` to ``path`` as a checked ONNX graph (see the module docstring)."""
    proto = onnx_model(model)
    with atomic_write(path) as f:
        f.write(proto.SerializeToString())


def onnx_model(model):
    """The ONNX ``ModelProto`` of the built ``model``, checked by ``onnx.checker``."""
    if not model.built:
        raise ValueError(f'export_onnx: model "{model.name}" has not been built; call it on data or give it an Input first')
    onnx = import_onnx()
    helper = onnx.helper
    graph = _Graph(onnx, rank=len(model.input_shape))
    for layer in model.layers:
        graph.add(layer)
    graph.to_nhwc()
    graph.op("Identity", [graph.x], "output", output="output")
    float32 = onnx.TensorProto.FLOAT
    proto = helper.make_model(
        helper.make_graph(
            graph.nodes, model.name,
            [helper.make_tensor_value_info("input", float32, ["batch", *model.input_shape[1:]])],
            [helper.make_tensor_value_info("output", float32, ["batch", *model.output_shape[1:]])],
            graph.initializers,
        ),
        producer_name="convscope", producer_version=__version__,
        opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
    )
    onnx.checker.check_model(proto, full_check=True)
    return proto


class _Graph:
    """Nodes and initializers being built, and where the current tensor ``x`` stands: its rank and layout."""

    def __init__(self, onnx, rank: int):
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper
        self.nodes, self.initializers, self.used = [], [], set()
        self.x, self.rank, self.nchw = "input", rank, False

    # -- building blocks ------------------------------------------------------
    def _name(self, hint: str) -> str:
        name, i = hint, 1
        while name in self.used:
            name, i = f"{hint}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, value, hint: str) -> str:
        name = self._name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def op(self, op_type: str, inputs: list, hint: str, output: str | None = None, **attrs) -> str:
        out = output or self._name(hint)
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def to_nchw(self) -> None:
        if self.rank == 4 and not self.nchw:
            self.x, self.nchw = self.op("Transpose", [self.x], "to_nchw", perm=[0, 3, 1, 2]), True

    def to_nhwc(self) -> None:
        if self.nchw:
            self.x, self.nchw = self.op("Transpose", [self.x], "to_nhwc", perm=[0, 2, 3, 1]), False

    def per_channel(self, value, hint: str) -> str:
        """A constant that broadcasts over the channel axis where it is now (axis 1 in NCHW, last otherwise)."""
        array = np.asarray(value, dtype=np.float32)
        return self.const(array.reshape(-1, 1, 1) if self.nchw and array.ndim == 1 else array, hint)

    # -- layers -----------------------------------------------------------------
    def add(self, layer) -> None:
        name = layer.name
        if isinstance(layer, Conv2D):
            self.to_nchw()
            inputs = [self.x, self.const(layer.kernel.value.transpose(3, 2, 0, 1), f"{name}/kernel")]
            if layer.use_bias:
                inputs.append(self.const(layer.bias.value, f"{name}/bias"))
            self.x = self.op("Conv", inputs, f"{name}/conv", kernel_shape=list(layer.kernel_size),
                             strides=list(layer.strides), dilations=list(layer.dilation_rate),
                             group=layer.groups, pads=_pads(layer.pads))
            self.activation(layer.activation, name)
        elif isinstance(layer, (MaxPooling2D, AveragePooling2D)):
            self.to_nchw()
            attrs = {"count_include_pad": 0} if isinstance(layer, AveragePooling2D) else {}
            op_type = "AveragePool" if isinstance(layer, AveragePooling2D) else "MaxPool"
            self.x = self.op(op_type, [self.x], f"{name}/pool", kernel_shape=list(layer.pool_size),
                             strides=list(layer.strides), pads=_pads(layer.pads), **attrs)
        elif isinstance(layer, (GlobalAveragePooling2D, GlobalMaxPooling2D)):
            self.to_nchw()
            op_type = "GlobalAveragePool" if isinstance(layer, GlobalAveragePooling2D) else "GlobalMaxPool"
            pooled = self.op(op_type, [self.x], f"{name}/pool")
            self.x, self.rank, self.nchw = self.op("Flatten", [pooled], f"{name}/flatten", axis=1), 2, False
        elif isinstance(layer, Flatten):
            self.to_nhwc()  # NHWC order, as convscope (and Keras) flatten
            self.x, self.rank = self.op("Flatten", [self.x], f"{name}/flatten", axis=1), 2
        elif isinstance(layer, Dense):
            self.to_nhwc()
            kernel = self.const(layer.kernel.value, f"{name}/kernel")
            if self.rank == 2 and layer.use_bias:
                self.x = self.op("Gemm", [self.x, kernel, self.const(layer.bias.value, f"{name}/bias")], f"{name}/gemm")
            else:
                self.x = self.op("MatMul", [self.x, kernel], f"{name}/matmul")
                if layer.use_bias:
                    self.x = self.op("Add", [self.x, self.const(layer.bias.value, f"{name}/bias")], f"{name}/add")
            self.activation(layer.activation, name)
        elif isinstance(layer, BatchNormalization):
            self.batch_normalization(layer)
        elif isinstance(layer, ReLU):
            self.relu(layer)
        elif isinstance(layer, Activation):
            self.activation(layer.activation, name)
        elif isinstance(layer, Rescaling):
            scaled = self.op("Mul", [self.x, self.per_channel(layer.scale, f"{name}/scale")], f"{name}/mul")
            self.x = self.op("Add", [scaled, self.per_channel(layer.offset, f"{name}/offset")], f"{name}/add")
        elif not isinstance(layer, Dropout):  # dropout is the identity at inference
            raise ValueError(f'export_onnx: layer "{name}" ({type(layer).__name__}) has no ONNX export')

    def batch_normalization(self, layer) -> None:
        self.to_nchw()
        if self.rank not in (2, 4):
            raise ValueError(f'export_onnx: BatchNormalization "{layer.name}" on a rank-{self.rank} input has no ONNX export')
        channels = layer.moving_mean.value.shape[0]
        gamma = layer.gamma.value if layer.scale else np.ones(channels)
        beta = layer.beta.value if layer.center else np.zeros(channels)
        inputs = [self.x] + [
            self.const(v, f"{layer.name}/{k}")
            for k, v in (("gamma", gamma), ("beta", beta), ("moving_mean", layer.moving_mean.value),
                         ("moving_variance", layer.moving_variance.value))
        ]
        self.x = self.op("BatchNormalization", inputs, f"{layer.name}/bn", epsilon=layer.epsilon)

    def relu(self, layer) -> None:
        name, x = layer.name, self.x
        if layer.negative_slope == 0 and layer.threshold == 0:
            if layer.max_value is None:
                self.x = self.op("Relu", [x], f"{name}/relu")
            else:
                low, high = self.const(0.0, f"{name}/min"), self.const(layer.max_value, f"{name}/max")
                self.x = self.op("Clip", [x, low, high], f"{name}/clip")
            return
        threshold = self.const(layer.threshold, f"{name}/threshold")
        below = self.op("Mul", [self.op("Sub", [x, threshold], f"{name}/sub"),
                                self.const(layer.negative_slope, f"{name}/slope")], f"{name}/below")
        above = self.op("GreaterOrEqual", [x, threshold], f"{name}/above")
        self.x = self.op("Where", [above, x, below], f"{name}/where")
        if layer.max_value is not None:
            self.x = self.op("Min", [self.x, self.const(layer.max_value, f"{name}/max")], f"{name}/min")

    def activation(self, act, name: str) -> None:
        x, kind = self.x, act.name
        simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus", "softsign": "Softsign"}
        if kind == "linear":
            return
        if kind in simple:
            self.x = self.op(simple[kind], [x], f"{name}/{kind}")
        elif kind == "softmax":
            self.x = self.op("Softmax", [x], f"{name}/softmax", axis=1 if self.nchw else -1)
        elif kind == "leaky_relu":
            self.x = self.op("LeakyRelu", [x], f"{name}/leaky_relu", alpha=act.negative_slope)
        elif kind == "elu":
            self.x = self.op("Elu", [x], f"{name}/elu", alpha=act.alpha)
        elif kind == "selu":
            self.x = self.op("Selu", [x], f"{name}/selu", alpha=act.alpha, gamma=act.scale)
        elif kind == "silu":
            self.x = self.op("Mul", [x, self.op("Sigmoid", [x], f"{name}/sigmoid")], f"{name}/silu")
        elif kind == "gelu":
            self.x = self.gelu(x, act.approximate, name)
        else:
            raise ValueError(f'export_onnx: layer "{name}": activation {kind!r} has no ONNX export')

    def gelu(self, x: str, approximate: bool, name: str) -> str:
        """0.5 x (1 + erf(x / sqrt 2)), or 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) when approximate."""
        if approximate:
            cube = self.op("Mul", [self.op("Mul", [x, x], f"{name}/x2"), x], f"{name}/x3")
            inner = self.op("Add", [x, self.op("Mul", [cube, self.const(0.044715, f"{name}/c")], f"{name}/cx3")],
                            f"{name}/inner")
            scaled = self.op("Mul", [inner, self.const(math.sqrt(2 / math.pi), f"{name}/k")], f"{name}/u")
            curve = self.op("Tanh", [scaled], f"{name}/tanh")
        else:
            scaled = self.op("Div", [x, self.const(math.sqrt(2.0), f"{name}/sqrt2")], f"{name}/u")
            curve = self.op("Erf", [scaled], f"{name}/erf")
        one_plus = self.op("Add", [curve, self.const(1.0, f"{name}/one")], f"{name}/one_plus")
        half_x = self.op("Mul", [x, self.const(0.5, f"{name}/half")], f"{name}/half_x")
        return self.op("Mul", [half_x, one_plus], f"{name}/gelu")


def _pads(pads) -> list[int]:
    """convscope's ((top, bottom), (left, right)) -> ONNX's [top, left, bottom, right]."""
    (top, bottom), (left, right) = pads
    return [top, left, bottom, right]
