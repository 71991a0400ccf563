"""convscope models as ONNX graphs: ``export_onnx(model, path)``.

Inputs and outputs are convscope's, NHWC float32 with a free batch size: a model with one
input and one output reads ``input`` and writes ``output``; with several, each input is
named after its input layer and each output after ``model.output_names`` (a ``_1`` suffix
keeps a repeated name apart).

The export walks the model's graph (``model._graph_for(False)``): its nodes in execution
order, one ONNX tensor per KerasTensor, so branches, merges, a layer called twice (its
weights written once) and several inputs and outputs come out as they are. A nested model
(a Model called as a layer) is inlined: its own graph is walked with its inputs bound to the
outer tensors, once per call, its node names prefixed ``outer_layer_name/``.

Layouts: ONNX's convolutions and pools want NCHW. Every tensor remembers its name in each
layout made so far, converted lazily: a Transpose (0, 3, 1, 2) the first time a layer needs
a rank-4 tensor in NCHW, (0, 2, 3, 1) the first time one needs it in NHWC (Flatten and
Reshape, which must keep convscope's element order, a Dense, which acts on the last axis,
and the outputs); each conversion is made once per tensor however many layers read it.
Element-wise layers, merges, padding, cropping and the normalizations work in whichever
layout their input has, with their axes and constants mapped into it.

Layer by layer (the registry ``ONNX_EMITTERS``, keyed by exact class):

* Conv2D -> Conv: kernel (kh, kw, in/groups, out) transposed to OIHW; ``group``,
  ``strides``, ``dilations`` and explicit ``pads`` [top, left, bottom, right] from the
  layer's own padding, so Keras's "same" (the odd cell at the bottom / right) is exact.
* DepthwiseConv2D -> Conv with ``group`` = C, kernel (kh, kw, C, M) read as (kh, kw, 1, C*M)
  (output channel c*M + m), then OIHW. SeparableConv2D -> that Conv without bias, then a 1x1
  Conv with the pointwise kernel and the bias.
* Conv2DTranspose -> ConvTranspose, kernel (kh, kw, F, C) to (C, F, kh, kw); convscope trims
  ``(top, bottom)`` cells of the full scatter (``arraymath.conv_transpose``): ``pads`` = the trims,
  and a negative ``bottom`` (the output reaches past the scatter) becomes
  ``output_padding = -bottom``, rows that receive only the bias, as in convscope.
* MaxPooling2D / AveragePooling2D -> MaxPool / AveragePool with the same explicit pads;
  ``count_include_pad=0``, so "same" average pooling leaves the padding out of the mean.
* GlobalAveragePooling2D / GlobalMaxPooling2D -> GlobalAveragePool / GlobalMaxPool + Flatten (none with keepdims).
* UpSampling2D -> Resize with scales (1, 1, sh, sw): "nearest" as mode nearest, asymmetric
  coordinates, floor (y[i] = x[i // s]); "bilinear" as mode linear with half_pixel
  coordinates (u = (i + 0.5) / s - 0.5, clamped at the edges: TensorFlow's resize).
* ZeroPadding2D -> Pad (constant 0); Cropping2D -> Slice; Reshape -> Reshape to
  (0, *target_shape) on the NHWC tensor; Permute -> one Transpose (composed with the NCHW
  conversion when the input is NCHW); Flatten -> Flatten on the NHWC tensor.
* Dense -> Gemm (2-D input; MatMul + Add on larger ranks), kernel (in, out) as it is.
* BatchNormalization -> BatchNormalization with the moving statistics (rank 2 and NCHW
  maps); other ranks: (x - mean) * (1 / sqrt(var + eps)) * gamma + beta as Sub, Mul, Mul, Add.
* LayerNormalization -> LayerNormalization when the normalized axes are the trailing axes
  of the tensor's layout (gamma / beta reordered to match); otherwise, and with
  ``rms_scaling``, built from ReduceMean, Sub, Mul, Sqrt, Reciprocal (``arraymath.normalization``).
* Normalization -> Sub, Div by std = max(sqrt(variance), 1e-7) (``invert``: Mul, Add).
* Rescaling -> Mul + Add. Dropout, InputLayer -> nothing (inference).
* RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast, RandomBrightness ->
  nothing (the identity at inference; a node fixed to training=True is refused). RandomCrop (at
  inference the centred aspect-ratio window) and CenterCrop -> Slice, then Resize to the target
  when the window differs from it; Resizing -> Pad (pad_to_aspect_ratio, constant fill_value) or
  Slice (crop_to_aspect_ratio), then Resize to sizes (batch, channels from Shape, the target height
  and width): bilinear as mode linear with half_pixel coordinates, nearest as half_pixel with
  round_prefer_ceil (source row floor((i + 0.5) * in / out), as Keras).
* Add / Subtract / Multiply -> chains of Add / Sub / Mul (convscope's summation order);
  Average -> Mean; Maximum / Minimum -> Max / Min; Concatenate -> Concat on the mapped axis.
* Activations (``ACTIVATION_EMITTERS``, keyed by the activation's class): Relu, Sigmoid,
  Tanh, Softplus, Softsign, Elu, Selu (Keras's alpha and scale), LeakyRelu, Softmax (the
  last NHWC axis, mapped), silu as x * Sigmoid(x), gelu from Erf (Tanh when approximate),
  relu6 as Clip(0, 6), hard_sigmoid as HardSigmoid(1/6, 0.5), hard_silu as HardSwish. The
  ReLU layer (max_value, negative_slope, threshold) -> Relu, Clip, or
  Where(x >= threshold, x, negative_slope * (x - threshold)) then Min; LeakyReLU -> LeakyRelu;
  Softmax(axis) -> Softmax on one axis, ReduceMax / Exp / ReduceSum / Div over several.

A layer class the ONNX graph cannot express would sit in ``NOT_SUPPORTED`` with the reason;
exporting it, or any class in neither table, raises ValueError naming the layer. The graph is
inference: a node fixed to ``training=True`` on a layer that trains differently (Dropout,
an unfrozen BatchNormalization) is refused.

Opset 17, IR version 8, float32 throughout (float64 models are exported in float32). The
graph is built with onnx's helper API, checked with ``onnx.checker.check_model(full_check=True)``
(which also infers every shape) and written atomically.

Example:
    >>> export_onnx(model, "model.onnx")
    >>> onnxruntime.InferenceSession("model.onnx").run(None, {"input": x})[0]   # == model.predict(x)
"""

from __future__ import annotations

import math

import numpy as np

from .. import __version__, activations
from ..layers import (
    Activation,
    Add,
    Average,
    AveragePooling2D,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Conv2DTranspose,
    Cropping2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    InputLayer,
    LayerNormalization,
    LeakyReLU,
    Maximum,
    MaxPooling2D,
    Minimum,
    Multiply,
    Normalization,
    Permute,
    ReLU,
    Rescaling,
    Reshape,
    SeparableConv2D,
    Softmax,
    Subtract,
    UpSampling2D,
    ZeroPadding2D,
)
from ..layers import (
    CenterCrop, RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation,
    RandomZoom, Resizing,
)
from ..models import Model, Sequential
from ..saving import atomic_write

OPSET = 17
IR_VERSION = 8  # the IR of opset 17's release; newer runtimes read it, older ones refuse newer IRs

NHWC, NCHW = "NHWC", "NCHW"
TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)
NCHW_POSITION = (0, 2, 3, 1)
"""Where NHWC axis a of a rank-4 tensor sits in its NCHW form: h -> 2, w -> 3, c -> 1."""


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
        raise ValueError(f'export_onnx: model "{model.name}" has not been built; call it on data or give it an '
                         "Input first")
    onnx = import_onnx()
    helper = onnx.helper
    graph = model._graph_for(False)
    input_names = ["input"] if len(graph.inputs) == 1 else list(model.input_names)
    output_names = ["output"] if len(graph.outputs) == 1 else _distinct(model.output_names, taken=input_names)
    g = _Graph(onnx, reserved=input_names + output_names)
    inputs = [_Tensor(t.shape, {NHWC: name}) for t, name in zip(graph.inputs, input_names)]
    outputs = _walk(g, graph, inputs, prefix="", training=False)
    for tensor, name in zip(outputs, output_names):
        g.op("Identity", [g.get(tensor, NHWC)], name, output=name)
    float32 = onnx.TensorProto.FLOAT

    def value_info(name, tensor):
        return helper.make_tensor_value_info(name, float32, ["batch", *tensor.shape[1:]])

    proto = helper.make_model(
        helper.make_graph(
            g.nodes, model.name,
            [value_info(n, t) for n, t in zip(input_names, graph.inputs)],
            [value_info(n, t) for n, t in zip(output_names, graph.outputs)],
            g.initializers,
        ),
        producer_name="convscope", producer_version=__version__,
        opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
    )
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _distinct(names, taken) -> list[str]:
    """``names`` with a ``_k`` suffix on any repeat (of each other or of ``taken``): ONNX names are unique."""
    used, result = set(taken), []
    for name in names:
        unique, k = name, 1
        while unique in used:
            unique, k = f"{name}_{k}", k + 1
        used.add(unique)
        result.append(unique)
    return result


# -- the walk ------------------------------------------------------------------------------
class _Tensor:
    """One KerasTensor's value in the ONNX graph: its NHWC-order ``shape`` and its name in each layout made."""

    __slots__ = ("shape", "names")

    def __init__(self, shape, names: dict):
        self.shape, self.names = tuple(shape), names

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def layout(self) -> str:
        """The layout to work in when either will do: NCHW once the tensor has it (the spatial layers' layout)."""
        return NCHW if NCHW in self.names else NHWC


class _Call:
    """One node being emitted: its ``layer``, input ``_Tensor``s, the ``name`` its ONNX nodes start with,
    and ``training``, the mode the call runs in (the node's own, or the enclosing call's)."""

    __slots__ = ("layer", "inputs", "name", "training")

    def __init__(self, layer, inputs, name, training):
        self.layer, self.inputs, self.name, self.training = layer, inputs, name, training

    @property
    def x(self) -> _Tensor:
        return self.inputs[0]

    @property
    def owner(self) -> str:
        return f'{type(self.layer).__name__} "{self.layer.name}"'


def _walk(g, graph, inputs: list, prefix: str, training: bool) -> list:
    """Emit ``graph``'s nodes in order with its inputs bound to ``inputs``; its outputs' ``_Tensor``s."""
    # One environment per walk: a nested model called twice has the same KerasTensors both times.
    env = {id(t): v for t, v in zip(graph.inputs, inputs)}
    for node in graph.nodes:
        mode = training if node.training is None else bool(node.training)
        call = _Call(node.layer, [env[id(t)] for t in node.inputs], prefix + node.layer.name, mode)
        produced = _emitter_for(node.layer)(g, call)
        produced = produced if isinstance(produced, list) else [produced]
        for keras_tensor, value in zip(node.outputs, produced):
            value.shape = tuple(keras_tensor.shape)
            env[id(keras_tensor)] = value
    return [env[id(t)] for t in graph.outputs]


def _emitter_for(layer):
    emitter = ONNX_EMITTERS.get(type(layer))
    if emitter is not None:
        return emitter
    if type(layer) in NOT_SUPPORTED:
        raise ValueError(f'export_onnx: layer "{layer.name}" ({type(layer).__name__}) has no ONNX export: '
                         f"{NOT_SUPPORTED[type(layer)]}")
    if isinstance(layer, Model):  # a user's subclass of Model: its call() recorded a graph like any model's
        return _nested_model
    raise ValueError(f'export_onnx: layer "{layer.name}" ({type(layer).__name__}) has no ONNX export '
                     f"(exportable: {', '.join(sorted(cls.__name__ for cls in ONNX_EMITTERS))})")


class _Graph:
    """Nodes and initializers being built, unique names, and the layout conversions."""

    def __init__(self, onnx, reserved):
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper
        self.nodes, self.initializers = [], []
        self.used = set(reserved)
        self.weights: dict = {}

    def _name(self, hint: str) -> str:
        name, i = hint, 1
        while name in self.used:
            name, i = f"{hint}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, value, hint: str, dtype=np.float32) -> str:
        name = self._name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, values, hint: str) -> str:
        return self.const(values, hint, dtype=np.int64)

    def weight(self, call: _Call, tag: str, make) -> str:
        """The initializer ``make()`` of ``call.layer``'s weight ``tag``, written once however often the layer
        is called (a shared layer, a nested model called twice)."""
        key = (id(call.layer), tag)
        if key not in self.weights:
            self.weights[key] = self.const(make(), f"{call.layer.name}/{tag}")
        return self.weights[key]

    def op(self, op_type: str, inputs: list, hint: str, output: str | None = None, **attrs) -> str:
        out = output or self._name(hint)
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def get(self, tensor: _Tensor, layout: str) -> str:
        """``tensor``'s name in ``layout`` (NCHW only for rank 4), transposed once on first demand."""
        if tensor.rank != 4:
            layout = NHWC
        if layout not in tensor.names:
            other = tensor.names[NCHW if layout == NHWC else NHWC]
            perm = TO_NCHW if layout == NCHW else TO_NHWC
            tensor.names[layout] = self.op("Transpose", [other], f"to_{layout.lower()}", perm=list(perm))
        return tensor.names[layout]

    def in_layout(self, value, layout: str, hint: str) -> str:
        """A constant of the input's rank, in NHWC order with 1 on broadcast axes, moved into ``layout``."""
        array = np.asarray(value, dtype=np.float32)
        return self.const(array.transpose(TO_NCHW) if layout == NCHW and array.ndim == 4 else array, hint)

    def per_channel(self, value, layout: str, hint: str) -> str:
        """A scalar or a per-channel constant that broadcasts over the channel axis of ``layout``."""
        array = np.asarray(value, dtype=np.float32)
        if layout == NCHW and array.ndim == 1:
            array = array.reshape(-1, 1, 1)
        return self.const(array, hint)


def _position(layout: str, rank: int, axis: int) -> int:
    """Where NHWC axis ``axis`` (negative counts from the end) sits in a tensor of ``layout``."""
    axis %= rank
    return NCHW_POSITION[axis] if layout == NCHW else axis


def _result(name: str, layout: str) -> _Tensor:
    """A layer's output; ``_walk`` fills in its shape."""
    return _Tensor((), {layout: name})


def _same_layout(tensors) -> str:
    """The layout a merge works in: the one most inputs have already (NCHW on a tie); NHWC unless rank 4."""
    if tensors[0].rank != 4:
        return NHWC
    nchw = sum(NCHW in t.names for t in tensors)
    return NCHW if 2 * nchw >= len(tensors) else NHWC


# -- emitters: convolutions --------------------------------------------------------------------
def _pads(pads) -> list[int]:
    """convscope's ((top, bottom), (left, right)) -> ONNX's [top, left, bottom, right]."""
    (top, bottom), (left, right) = pads
    return [top, left, bottom, right]


def _conv(g, call, x: str, kernel: str, bias, group: int, layer, hint: str) -> str:
    inputs = [x, kernel] + ([bias] if bias is not None else [])
    return g.op("Conv", inputs, f"{call.name}/{hint}", kernel_shape=list(layer.kernel_size),
                strides=list(layer.strides), dilations=list(layer.dilation_rate), group=group, pads=_pads(layer.pads))


def _bias(g, call):
    layer = call.layer
    return g.weight(call, "bias", lambda: layer.bias.value) if layer.use_bias else None


def _conv2d(g, call):
    layer = call.layer
    kernel = g.weight(call, "kernel", lambda: layer.kernel.value.transpose(3, 2, 0, 1))
    z = _conv(g, call, g.get(call.x, NCHW), kernel, _bias(g, call), layer.groups, layer, "conv")
    return _activate(g, call, z, NCHW)


def _depthwise_oihw(kernel):
    """(kh, kw, C, M) -> (C*M, 1, kh, kw): filter c*M + m of a Conv with group=C reads channel c only."""
    kh, kw, c, m = kernel.shape
    return kernel.reshape(kh, kw, 1, c * m).transpose(3, 2, 0, 1)


def _depthwise_conv2d(g, call):
    layer = call.layer
    kernel = g.weight(call, "kernel", lambda: _depthwise_oihw(layer.kernel.value))
    z = _conv(g, call, g.get(call.x, NCHW), kernel, _bias(g, call), layer.kernel.value.shape[2], layer, "depthwise")
    return _activate(g, call, z, NCHW)


def _separable_conv2d(g, call):
    layer = call.layer
    depthwise = g.weight(call, "depthwise_kernel", lambda: _depthwise_oihw(layer.depthwise_kernel.value))
    pointwise = g.weight(call, "pointwise_kernel", lambda: layer.pointwise_kernel.value.transpose(3, 2, 0, 1))
    mid = _conv(g, call, g.get(call.x, NCHW), depthwise, None, layer.depthwise_kernel.value.shape[2], layer,
                "depthwise")
    inputs = [mid, pointwise] + ([_bias(g, call)] if layer.use_bias else [])
    z = g.op("Conv", inputs, f"{call.name}/pointwise", kernel_shape=[1, 1])
    return _activate(g, call, z, NCHW)


def _conv2d_transpose(g, call):
    layer = call.layer
    kernel = g.weight(call, "kernel", lambda: layer.kernel.value.transpose(3, 2, 0, 1))
    (top, bottom), (left, right) = layer.pads
    inputs = [g.get(call.x, NCHW), kernel] + ([_bias(g, call)] if layer.use_bias else [])
    # A negative trim is output the scatter never reaches: ONNX's output_padding, which also gets the bias.
    z = g.op("ConvTranspose", inputs, f"{call.name}/conv_transpose", kernel_shape=list(layer.kernel_size),
             strides=list(layer.strides), dilations=list(layer.dilation_rate),
             pads=[top, left, max(bottom, 0), max(right, 0)], output_padding=[max(-bottom, 0), max(-right, 0)])
    return _activate(g, call, z, NCHW)


# -- emitters: pooling, resampling, shapes -------------------------------------------------------
def _window_pool(op_type: str, **attrs):
    def emit(g, call):
        layer = call.layer
        return _result(g.op(op_type, [g.get(call.x, NCHW)], f"{call.name}/pool", kernel_shape=list(layer.pool_size),
                            strides=list(layer.strides), pads=_pads(layer.pads), **attrs), NCHW)

    return emit


def _global_pool(op_type: str):
    def emit(g, call):
        pooled = g.op(op_type, [g.get(call.x, NCHW)], f"{call.name}/pool")
        if call.layer.keepdims:  # (N, C, 1, 1): an NCHW map of one cell
            return _result(pooled, NCHW)
        return _result(g.op("Flatten", [pooled], f"{call.name}/flatten", axis=1), NHWC)

    return emit


def _upsampling2d(g, call):
    layer = call.layer
    scales = g.const([1.0, 1.0, *layer.size], f"{call.name}/scales")
    if layer.interpolation == "nearest":
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    else:
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    return _result(g.op("Resize", [g.get(call.x, NCHW), "", scales], f"{call.name}/resize", **attrs), NCHW)


def _spatial_axes(layout: str) -> list[int]:
    return [_position(layout, 4, 1), _position(layout, 4, 2)]


def _zero_padding2d(g, call):
    layout = call.x.layout
    (top, bottom), (left, right) = call.layer.padding
    begins, ends = [0] * 4, [0] * 4
    (h, w) = _spatial_axes(layout)
    begins[h], begins[w], ends[h], ends[w] = top, left, bottom, right
    pads = g.ints(begins + ends, f"{call.name}/pads")
    return _result(g.op("Pad", [g.get(call.x, layout), pads], f"{call.name}/pad", mode="constant"), layout)


def _cropping2d(g, call):
    layout = call.x.layout
    (top, bottom), (left, right) = call.layer.cropping
    _, h, w, _ = call.x.shape
    starts, ends = g.ints([top, left], f"{call.name}/starts"), g.ints([h - bottom, w - right], f"{call.name}/ends")
    axes = g.ints(_spatial_axes(layout), f"{call.name}/axes")
    return _result(g.op("Slice", [g.get(call.x, layout), starts, ends, axes], f"{call.name}/slice"), layout)


def _flatten(g, call):
    # NHWC order, as convscope (and Keras) flatten: the next Dense kernel's rows expect it.
    return _result(g.op("Flatten", [g.get(call.x, NHWC)], f"{call.name}/flatten", axis=1), NHWC)


def _reshape(g, call):
    shape = g.ints([0, *call.layer.target_shape], f"{call.name}/shape")  # 0: keep the batch size
    return _result(g.op("Reshape", [g.get(call.x, NHWC), shape], f"{call.name}/reshape"), NHWC)


def _permute(g, call):
    dims = (0, *call.layer.dims)
    layout = call.x.layout
    # From NCHW, one Transpose does both moves: output axis i is NHWC axis dims[i], found at NCHW_POSITION of it.
    perm = [NCHW_POSITION[d] for d in dims] if layout == NCHW else list(dims)
    return _result(g.op("Transpose", [g.get(call.x, layout)], f"{call.name}/transpose", perm=perm), NHWC)


# -- emitters: dense, normalizations, rescaling ----------------------------------------------------
def _dense(g, call):
    layer = call.layer
    x = g.get(call.x, NHWC)
    kernel = g.weight(call, "kernel", lambda: layer.kernel.value)
    bias = _bias(g, call)
    if call.x.rank == 2 and bias is not None:
        z = g.op("Gemm", [x, kernel, bias], f"{call.name}/gemm")
    else:
        z = g.op("MatMul", [x, kernel], f"{call.name}/matmul")
        if bias is not None:
            z = g.op("Add", [z, bias], f"{call.name}/add")
    return _activate(g, call, z, NHWC)


def _check_inference(call, what: str) -> None:
    if call.training:
        raise ValueError(f"export_onnx: {call.owner} is called with training=True, where it {what}; an ONNX "
                         "graph is inference only: call it with training=False (or None) to export")


def _batch_normalization(g, call):
    layer = call.layer
    if layer.trainable:
        _check_inference(call, "normalizes with the batch's statistics")
    channels = layer.moving_mean.value.shape[0]

    def gamma():
        return layer.gamma.value if layer.scale else np.ones(channels)

    def beta():
        return layer.beta.value if layer.center else np.zeros(channels)

    if call.x.rank in (2, 4):
        inputs = [g.get(call.x, NCHW)] + [
            g.weight(call, k, make) for k, make in (("gamma", gamma), ("beta", beta),
                                                    ("moving_mean", lambda: layer.moving_mean.value),
                                                    ("moving_variance", lambda: layer.moving_variance.value))
        ]
        layout = NCHW if call.x.rank == 4 else NHWC
        return _result(g.op("BatchNormalization", inputs, f"{call.name}/bn", epsilon=layer.epsilon), layout)
    # The channels are last at any other rank, where ONNX's BatchNormalization wants them on axis 1.
    inv_std = g.weight(call, "inv_std", lambda: 1 / np.sqrt(
        layer.moving_variance.value.astype(np.float32) + np.float32(layer.epsilon)))
    y = g.op("Sub", [g.get(call.x, NHWC), g.weight(call, "moving_mean", lambda: layer.moving_mean.value)],
             f"{call.name}/centre")
    y = g.op("Mul", [y, inv_std], f"{call.name}/normalize")
    y = g.op("Mul", [y, g.weight(call, "gamma", gamma)], f"{call.name}/scale")
    return _result(g.op("Add", [y, g.weight(call, "beta", beta)], f"{call.name}/shift"), NHWC)


def _layer_normalization(g, call):
    layer = call.layer
    rank, layout = call.x.rank, call.x.layout
    x = g.get(call.x, layout)
    positions = [_position(layout, rank, a) for a in layer.axis]
    kept = tuple(call.x.shape[a] for a in layer.axis)

    def param(p, default):
        return (np.full(kept, default, dtype=np.float32) if p is None
                else p.value.astype(np.float32).reshape(kept))

    gamma, beta = param(layer.gamma, 1.0), param(layer.beta, 0.0)
    k = len(positions)
    if not layer.rms_scaling and sorted(positions) == list(range(rank - k, rank)):
        order = list(np.argsort(positions))  # gamma's axes (NHWC order) in the layout's order
        scale = g.weight(call, f"gamma_{layout}", lambda: gamma.transpose(order))
        bias = g.weight(call, f"beta_{layout}", lambda: beta.transpose(order))
        return _result(g.op("LayerNormalization", [x, scale, bias], f"{call.name}/layer_norm", axis=rank - k,
                            epsilon=layer.epsilon), layout)
    broadcast = [1] * rank
    for a, size in zip(layer.axis, kept):
        broadcast[a] = size
    axes = sorted(positions)
    mean = g.op("ReduceMean", [x], f"{call.name}/mean", axes=axes, keepdims=1)
    centred = g.op("Sub", [x, mean], f"{call.name}/centred")
    variance = g.op("ReduceMean", [g.op("Mul", [centred, centred], f"{call.name}/square")], f"{call.name}/variance",
                    axes=axes, keepdims=1)
    shifted = g.op("Add", [variance, g.const(layer.epsilon, f"{call.name}/epsilon")], f"{call.name}/var_eps")
    std = g.op("Sqrt", [shifted], f"{call.name}/std")
    inv_std = g.op("Reciprocal", [std], f"{call.name}/inv_std")
    # rms_scaling (Keras's deprecated variant) divides by the centred std but does not centre, and has no beta.
    y = g.op("Mul", [x if layer.rms_scaling else centred, inv_std], f"{call.name}/normalized")
    y = g.op("Mul", [y, g.in_layout(gamma.reshape(broadcast), layout, f"{call.name}/gamma")], f"{call.name}/scale")
    if layer.beta is not None:
        y = g.op("Add", [y, g.in_layout(beta.reshape(broadcast), layout, f"{call.name}/beta")], f"{call.name}/shift")
    return _result(y, layout)


def _normalization(g, call):
    layer = call.layer
    layout = call.x.layout
    # The statistics broadcast to the input, computed as convscope computes them in float32.
    mean, variance = (np.asarray(v) for v in layer.statistics(np.float32))
    std = np.maximum(np.sqrt(variance), np.float32(1e-7))
    mean_name = g.in_layout(mean, layout, f"{call.name}/mean")
    std_name = g.in_layout(std, layout, f"{call.name}/std")
    x = g.get(call.x, layout)
    if layer.invert:
        y = g.op("Add", [g.op("Mul", [x, std_name], f"{call.name}/scale"), mean_name], f"{call.name}/shift")
    else:
        y = g.op("Div", [g.op("Sub", [x, mean_name], f"{call.name}/centre"), std_name], f"{call.name}/normalize")
    return _result(y, layout)


def _rescaling(g, call):
    layer, layout = call.layer, call.x.layout
    scaled = g.op("Mul", [g.get(call.x, layout), g.per_channel(layer.scale, layout, f"{call.name}/scale")],
                  f"{call.name}/mul")
    return _result(g.op("Add", [scaled, g.per_channel(layer.offset, layout, f"{call.name}/offset")],
                        f"{call.name}/add"), layout)


def _identity(g, call):
    return call.x


def _dropout(g, call):
    if call.layer.rate > 0:
        _check_inference(call, "drops values at random")
    return call.x


def _augmentation(what: str):
    """A random augmentation layer: the identity at inference."""

    def emit(g, call):
        _check_inference(call, what)
        return call.x

    return emit


def _resized(g, call, x, out_hw, interpolation):
    """NCHW tensor ``x`` resized to ``out_hw`` as Keras's ops.image.resize (half-pixel, no antialias)."""
    batch_channels = g.op("Slice", [g.op("Shape", [x], f"{call.name}/shape"), g.ints([0], f"{call.name}/zero"),
                                    g.ints([2], f"{call.name}/two")], f"{call.name}/batch_channels")
    sizes = g.op("Concat", [batch_channels, g.ints(list(out_hw), f"{call.name}/hw")], f"{call.name}/sizes", axis=0)
    if interpolation == "nearest":
        # round_prefer_ceil((i + 0.5) / scale - 0.5) = floor((i + 0.5) * in / out): Keras's source row.
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel", "nearest_mode": "round_prefer_ceil"}
    else:
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    return g.op("Resize", [x, "", "", sizes], f"{call.name}/resize", **attrs)


def _window_then_resize(g, call, window, out_hw, interpolation="bilinear"):
    """Slice the (top, left, height, width) ``window`` out of the input, then resize it to ``out_hw`` unless it
    has that size already."""
    top, left, height, width = window
    _, h, w, _ = call.x.shape
    x = g.get(call.x, NCHW)
    if (top, left, height, width) != (0, 0, h, w):
        x = g.op("Slice", [x, g.ints([top, left], f"{call.name}/starts"),
                           g.ints([top + height, left + width], f"{call.name}/ends"),
                           g.ints([2, 3], f"{call.name}/axes")], f"{call.name}/slice")
    if (height, width) != tuple(out_hw):
        x = _resized(g, call, x, out_hw, interpolation)
    return _result(x, NCHW)


def _random_crop(g, call):
    _check_inference(call, "crops at a random place")
    layer = call.layer
    return _window_then_resize(g, call, layer.window(call.x.shape[1:3]), (layer.height, layer.width))


def _center_crop(g, call):
    layer = call.layer
    return _window_then_resize(g, call, layer.window(call.x.shape[1:3]), (layer.height, layer.width))


def _resizing(g, call):
    layer = call.layer
    target = (layer.height, layer.width)
    if not layer.pad_to_aspect_ratio:
        return _window_then_resize(g, call, layer.window(call.x.shape[1:3]), target, layer.interpolation)
    x = g.get(call.x, NCHW)
    top, left, h, w = layer.padding(call.x.shape[1:3])
    if (top, left) != (0, 0):
        pads = g.ints([0, 0, top, left, 0, 0, top, left], f"{call.name}/pads")
        x = g.op("Pad", [x, pads, g.const(layer.fill_value, f"{call.name}/fill_value")], f"{call.name}/pad",
                 mode="constant")
    if (h, w) != target:
        x = _resized(g, call, x, target, layer.interpolation)
    return _result(x, NCHW)


def _nested_model(g, call):
    return _walk(g, call.layer._graph_for(False), call.inputs, prefix=f"{call.name}/", training=call.training)


# -- emitters: merging ----------------------------------------------------------------------------
def _chain(op_type: str):
    """x_0 op x_1 op x_2 ... left to right, the order convscope accumulates in."""

    def emit(g, call):
        layout = _same_layout(call.inputs)
        names = [g.get(t, layout) for t in call.inputs]
        y = names[0]
        for other in names[1:]:
            y = g.op(op_type, [y, other], f"{call.name}/{op_type.lower()}")
        return _result(y, layout)

    return emit


def _variadic(op_type: str):
    def emit(g, call):
        layout = _same_layout(call.inputs)
        return _result(g.op(op_type, [g.get(t, layout) for t in call.inputs], f"{call.name}/{op_type.lower()}"),
                       layout)

    return emit


def _concatenate(g, call):
    layout = _same_layout(call.inputs)
    axis = _position(layout, call.x.rank, call.layer.axis)
    return _result(g.op("Concat", [g.get(t, layout) for t in call.inputs], f"{call.name}/concat", axis=axis), layout)


# -- emitters: activations ------------------------------------------------------------------------
def _activation_layer(g, call):
    layout = call.x.layout
    return _activate(g, call, g.get(call.x, layout), layout)


def _activate(g, call, z: str, layout: str) -> _Tensor:
    """``call.layer.activation`` applied to the pre-activation ``z`` (in ``layout``)."""
    act = call.layer.activation
    emitter = ACTIVATION_EMITTERS.get(type(act))
    if emitter is None:
        raise ValueError(f'export_onnx: layer "{call.layer.name}": activation {act.name!r} '
                         f"({type(act).__name__}) has no ONNX export")
    # Every activated layer keeps its input's rank, so the last NHWC axis is the input's.
    return _result(emitter(g, z, act, call.name, _position(layout, call.x.rank, -1)), layout)


def _simple(op_type: str, **attrs):
    def emit(g, x, act, name, channel_axis):
        return g.op(op_type, [x], f"{name}/{act.name}", **attrs)

    return emit


def _leaky_relu(g, x, act, name, channel_axis):
    return g.op("LeakyRelu", [x], f"{name}/leaky_relu", alpha=act.negative_slope)


def _elu(g, x, act, name, channel_axis):
    return g.op("Elu", [x], f"{name}/elu", alpha=act.alpha)


def _selu(g, x, act, name, channel_axis):
    return g.op("Selu", [x], f"{name}/selu", alpha=act.alpha, gamma=act.scale)


def _silu(g, x, act, name, channel_axis):
    return g.op("Mul", [x, g.op("Sigmoid", [x], f"{name}/sigmoid")], f"{name}/silu")


def _relu6(g, x, act, name, channel_axis):
    return g.op("Clip", [x, g.const(0.0, f"{name}/zero"), g.const(6.0, f"{name}/six")], f"{name}/relu6")


def _softmax_activation(g, x, act, name, channel_axis):
    return g.op("Softmax", [x], f"{name}/softmax", axis=channel_axis)


def _gelu(g, x, act, name, channel_axis):
    """0.5 x (1 + erf(x / sqrt 2)), or 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) when approximate."""
    if act.approximate:
        cube = g.op("Mul", [g.op("Mul", [x, x], f"{name}/x2"), x], f"{name}/x3")
        inner = g.op("Add", [x, g.op("Mul", [cube, g.const(0.044715, f"{name}/c")], f"{name}/cx3")], f"{name}/inner")
        scaled = g.op("Mul", [inner, g.const(math.sqrt(2 / math.pi), f"{name}/k")], f"{name}/u")
        curve = g.op("Tanh", [scaled], f"{name}/tanh")
    else:
        scaled = g.op("Div", [x, g.const(math.sqrt(2.0), f"{name}/sqrt2")], f"{name}/u")
        curve = g.op("Erf", [scaled], f"{name}/erf")
    one_plus = g.op("Add", [curve, g.const(1.0, f"{name}/one")], f"{name}/one_plus")
    half_x = g.op("Mul", [x, g.const(0.5, f"{name}/half")], f"{name}/half_x")
    return g.op("Mul", [half_x, one_plus], f"{name}/gelu")


def _linear(g, x, act, name, channel_axis):
    return x


ACTIVATION_EMITTERS = {
    activations.Linear: _linear,
    activations.ReLU: _simple("Relu"),
    activations.Sigmoid: _simple("Sigmoid"),
    activations.Tanh: _simple("Tanh"),
    activations.Softplus: _simple("Softplus"),
    activations.Softsign: _simple("Softsign"),
    activations.LeakyReLU: _leaky_relu,
    activations.ELU: _elu,
    activations.SELU: _selu,
    activations.GELU: _gelu,
    activations.SiLU: _silu,
    activations.ReLU6: _relu6,
    activations.HardSigmoid: _simple("HardSigmoid", alpha=1 / 6, beta=0.5),
    activations.HardSiLU: _simple("HardSwish"),
    activations.Softmax: _softmax_activation,
}
"""Activation class -> ``emit(graph, x, activation, name, channel_axis) -> output name`` (element-wise,
so any layout; ``channel_axis`` is where the last NHWC axis sits, for softmax)."""


def _relu_layer(g, call):
    layer, layout = call.layer, call.x.layout
    name, x = call.name, g.get(call.x, layout)
    if layer.negative_slope == 0 and layer.threshold == 0:
        if layer.max_value is None:
            return _result(g.op("Relu", [x], f"{name}/relu"), layout)
        low, high = g.const(0.0, f"{name}/min"), g.const(layer.max_value, f"{name}/max")
        return _result(g.op("Clip", [x, low, high], f"{name}/clip"), layout)
    threshold = g.const(layer.threshold, f"{name}/threshold")
    below = g.op("Mul", [g.op("Sub", [x, threshold], f"{name}/sub"), g.const(layer.negative_slope, f"{name}/slope")],
                 f"{name}/below")
    above = g.op("GreaterOrEqual", [x, threshold], f"{name}/above")
    y = g.op("Where", [above, x, below], f"{name}/where")
    if layer.max_value is not None:
        y = g.op("Min", [y, g.const(layer.max_value, f"{name}/max")], f"{name}/min")
    return _result(y, layout)


def _leaky_relu_layer(g, call):
    layout = call.x.layout
    return _result(g.op("LeakyRelu", [g.get(call.x, layout)], f"{call.name}/leaky_relu",
                        alpha=call.layer.negative_slope), layout)


def _softmax_layer(g, call):
    layer, layout, rank = call.layer, call.x.layout, call.x.rank
    x, name = g.get(call.x, layout), call.name
    axes = sorted(_position(layout, rank, a) for a in ([layer.axis] if isinstance(layer.axis, int) else layer.axis))
    if len(axes) == 1:
        return _result(g.op("Softmax", [x], f"{name}/softmax", axis=axes[0]), layout)
    # ONNX's Softmax takes one axis; over several, the stable formula exp(x - max) / sum exp(x - max).
    peak = g.op("ReduceMax", [x], f"{name}/max", axes=axes, keepdims=1)
    e = g.op("Exp", [g.op("Sub", [x, peak], f"{name}/shifted")], f"{name}/exp")
    total = g.op("ReduceSum", [e, g.ints(axes, f"{name}/axes")], f"{name}/sum", keepdims=1)
    return _result(g.op("Div", [e, total], f"{name}/softmax"), layout)


ONNX_EMITTERS = {
    InputLayer: _identity,
    Dropout: _dropout,
    Conv2D: _conv2d,
    DepthwiseConv2D: _depthwise_conv2d,
    SeparableConv2D: _separable_conv2d,
    Conv2DTranspose: _conv2d_transpose,
    MaxPooling2D: _window_pool("MaxPool"),
    AveragePooling2D: _window_pool("AveragePool", count_include_pad=0),
    GlobalAveragePooling2D: _global_pool("GlobalAveragePool"),
    GlobalMaxPooling2D: _global_pool("GlobalMaxPool"),
    UpSampling2D: _upsampling2d,
    ZeroPadding2D: _zero_padding2d,
    Cropping2D: _cropping2d,
    Flatten: _flatten,
    Reshape: _reshape,
    Permute: _permute,
    Dense: _dense,
    BatchNormalization: _batch_normalization,
    LayerNormalization: _layer_normalization,
    Normalization: _normalization,
    Rescaling: _rescaling,
    Add: _chain("Add"),
    Subtract: _chain("Sub"),
    Multiply: _chain("Mul"),
    Average: _variadic("Mean"),
    Maximum: _variadic("Max"),
    Minimum: _variadic("Min"),
    Concatenate: _concatenate,
    Activation: _activation_layer,
    ReLU: _relu_layer,
    LeakyReLU: _leaky_relu_layer,
    Softmax: _softmax_layer,
    RandomFlip: _augmentation("flips images at random"),
    RandomRotation: _augmentation("rotates images at random"),
    RandomZoom: _augmentation("zooms images at random"),
    RandomTranslation: _augmentation("shifts images at random"),
    RandomContrast: _augmentation("changes contrast at random"),
    RandomBrightness: _augmentation("changes brightness at random"),
    RandomCrop: _random_crop,
    CenterCrop: _center_crop,
    Resizing: _resizing,
    Model: _nested_model,
    Sequential: _nested_model,
}
"""Layer class (exact type) -> ``emit(graph, call) -> _Tensor`` (a list of them for a nested model)."""

NOT_SUPPORTED: dict = {}
"""Layer class -> why the ONNX graph cannot express it (export raises ValueError with the reason).
Every registered layer has an emitter today."""
