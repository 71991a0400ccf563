"""Keras 3 model configs of whole graphs: functional models, and models inside models, both ways.

Writing (``keras_model_config``): a ``Sequential`` is ``{"class_name": "Sequential", "config":
{"name", "trainable", "layers": [InputLayer(batch_shape), layer, ...]}, "build_config"}``; a
functional model is ``{"class_name": "Functional", "config": {"name", "trainable", "layers",
"input_layers", "output_layers"}}`` where every layer carries its calls, Keras 3's way::

    {"class_name": "Add", "config": {...}, "name": "add",
     "inbound_nodes": [{"args": [[<tensor>, <tensor>]], "kwargs": {}}]}   # a merge: one list argument
    <tensor> = {"class_name": "__keras_tensor__",
                "config": {"shape": [null, 8, 8, 2], "dtype": "float32", "keras_history": ["conv2d", 0, 0]}}

``keras_history`` is ``[layer name, call index of that layer, output index]``; InputLayers are
layers with no calls, and ``input_layers`` / ``output_layers`` are such triples (one triple for a
single input or output, as Keras writes; there Keras counts a nested functional model's calls from
1, its call 0 being the model's own graph). A nested model is written as its own config plus ``name``
and ``inbound_nodes``. Layers are listed in Keras's order (convscope's ``model.layers``), which is
also the order Keras numbers their weight groups in (``keras_weights.keras3_groups``).

Reading (``model_spec_from_keras``): the same, and Keras 2's ``[[name, call, index, kwargs], ...]``
calls, into convscope's own model spec (``{"class_name": "Sequential" | "Functional", "config"}``,
``Model.from_config``'s), every leaf layer through ``keras_config.layer_from_config`` (the closed
registry and its checks). Calls may set no keyword argument that changes a layer (``training=False``
and ``mask=None`` are what Keras records on plain calls); anything else is a ``ModelFileError``.
"""

from __future__ import annotations

from .. import backend
from ..errors import ModelFileError
from ..layers import InputLayer, serialize
from .keras_config import (
    INPUT_LAYER, SUPPORTED_ALL, batch_shape_sizes, check_builtin, input_layer_shape, keras_layer_config,
    layer_from_config,
)

MODEL_KINDS = ("Sequential", "Functional", "Model")
MAX_DEPTH = 32
MAX_LISTED = 40  # layer names an error lists (keras.applications graphs have hundreds)


# -- writing ------------------------------------------------------------------------------------
def keras_model_config(model) -> dict:
    """The Keras 3 config of a built convscope ``Sequential`` or functional ``Model``, nested models included."""
    from ..models import Functional, Sequential

    if isinstance(model, Sequential):
        return _sequential_config(model)
    if type(model) is not Functional:
        raise ValueError(
            f'Model "{model.name}" is a subclass of Model ({type(model).__name__}): its call() is Python code, '
            "which a Keras file cannot hold; save it as .convscope, or build it with the functional API"
        )
    return _functional_config(model)


def _layer_config(layer) -> dict:
    from ..models import Model

    return keras_model_config(layer) if isinstance(layer, Model) else keras_layer_config(layer)


def _sequential_config(model) -> dict:
    batch_shape = [None, *model.input_shape[1:]]
    input_layer = {
        "module": "keras.layers",
        "class_name": INPUT_LAYER,
        "config": {"batch_shape": batch_shape, "dtype": backend.floatx(), "sparse": False, "name": "input_layer"},
        "registered_name": None,
    }
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": model.name,
            "trainable": model.trainable,
            "layers": [input_layer, *(_layer_config(layer) for layer in model.layers)],
        },
        "registered_name": None,
        "build_config": {"input_shape": batch_shape},
    }


def _functional_config(model) -> dict:
    graph = model._graph
    call_index = {id(t.node): 0 for t in graph.inputs}
    for layer in graph.layers:
        for k, node in enumerate(n for n in graph.nodes if n.layer is layer):
            call_index[id(node)] = k

    def history(t) -> list:
        return [t.node.layer.name, call_index[id(t.node)], t.index]

    def tensor(t) -> dict:
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(t.shape), "dtype": t.dtype, "keras_history": history(t)}}

    specs = []
    for layer in graph.layers:
        if type(layer) is InputLayer:
            specs.append({
                "module": "keras.layers", "class_name": INPUT_LAYER,
                "config": {"batch_shape": [None, *layer.shape], "dtype": backend.floatx(), "sparse": False,
                           "name": layer.name},
                "registered_name": None, "name": layer.name, "inbound_nodes": [],
            })
            continue
        nodes = [n for n in graph.nodes if n.layer is layer]
        calls = [{"args": [[tensor(t) for t in n.inputs]] if n.as_list else [tensor(n.inputs[0])], "kwargs": {}}
                 for n in nodes]
        specs.append({**_layer_config(layer), "name": layer.name, "inbound_nodes": calls})
    ends = [[_end(history(t), t.node.layer) for t in tensors] for tensors in (graph.inputs, graph.outputs)]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": model.name,
            "trainable": model.trainable,
            "layers": specs,
            # One triple for a single input / output, as Keras writes them for a model of one tensor.
            "input_layers": ends[0][0] if len(ends[0]) == 1 else ends[0],
            "output_layers": ends[1][0] if len(ends[1]) == 1 else ends[1],
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
    }


def _end(history: list, layer) -> list:
    """A model input / output reference: Keras counts a nested functional model's calls there from 1 (its
    call 0 is the model's own graph), while calls refer to it from 0."""
    from ..models import Model, Sequential

    nested_functional = isinstance(layer, Model) and not isinstance(layer, Sequential)
    return [history[0], history[1] + 1, history[2]] if nested_functional else history


# -- reading ------------------------------------------------------------------------------------
def model_spec_from_keras(config, source: str, depth: int = 0) -> dict:
    """convscope's model spec (``serialize(model)``'s form) of a Keras Sequential or functional model config."""
    if depth > MAX_DEPTH:
        raise ModelFileError(f"{source}: models nested more than {MAX_DEPTH} deep")
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ModelFileError(f"{source}: the model config is not a Keras model description")
    kind, body = config.get("class_name"), config["config"]
    check_builtin(config, kind, source)
    specs = body.get("layers")
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ModelFileError(f"{source}: the model config has no list of layers")
    name = body.get("name") if isinstance(body.get("name"), str) else None
    trainable = body.get("trainable", True)
    if not isinstance(trainable, bool):
        raise ModelFileError(f'{source}: model "{name}": "trainable" must be true or false, received {trainable!r}')
    if kind == "Sequential":
        return {"class_name": "Sequential", "config": _sequential_body(specs, body, config, name, trainable,
                                                                       source, depth)}
    if kind in ("Functional", "Model"):
        return {"class_name": "Functional", "config": _functional_body(specs, body, name, trainable, source, depth)}
    raise ModelFileError(f"{source}: a Keras {kind!r} model; convscope reads Sequential and Functional models")


def has_nested_model(config) -> bool:
    """Whether a Keras model config holds a model among its layers."""
    body = config.get("config") if isinstance(config, dict) else None
    specs = body.get("layers") if isinstance(body, dict) else None
    return isinstance(specs, list) and any(isinstance(s, dict) and s.get("class_name") in MODEL_KINDS for s in specs)


def _leaf_or_model(spec, source, depth) -> dict:
    if spec.get("class_name") in MODEL_KINDS:
        return model_spec_from_keras(spec, source, depth + 1)
    return serialize(layer_from_config(spec, source))


def _sequential_body(specs, body, config, name, trainable, source, depth) -> dict:
    input_shape = None
    if specs and specs[0].get("class_name") == INPUT_LAYER:
        check_builtin(specs[0], INPUT_LAYER, source)
        input_shape, specs = input_layer_shape(specs[0].get("config"), source), specs[1:]
    else:
        for candidate in (body.get("build_input_shape"), (config.get("build_config") or {}).get("input_shape")):
            if candidate is not None:
                input_shape = batch_shape_sizes(candidate, source)
                break
    if input_shape is None and depth == 0:
        raise ModelFileError(f"{source}: the Sequential model declares no input shape")
    return {"name": name, "trainable": trainable, "input_shape": None if input_shape is None else list(input_shape),
            "layers": [_leaf_or_model(spec, source, depth) for spec in specs]}


def _functional_body(specs, body, name, trainable, source, depth) -> dict:
    layers = []
    for spec in specs:
        layer_name = _spec_name(spec)
        if not isinstance(layer_name, str):
            raise ModelFileError(f"{source}: a functional model's layer has no name: {str(spec)[:200]}")
        if spec.get("class_name") == INPUT_LAYER:
            check_builtin(spec, INPUT_LAYER, source)
            shape = input_layer_shape(spec.get("config"), source)
            # Keras's InputLayer config holds no "trainable": it follows its model's flag, as in Keras.
            input_layer = InputLayer(shape, name=layer_name)
            input_layer.trainable = trainable
            converted = {**serialize(input_layer), "inbound_nodes": []}
        else:
            converted = {**_leaf_or_model(spec, source, depth), "inbound_nodes": _calls(spec, layer_name, source)}
        layers.append({**converted, "name": layer_name})
    _check_connections(layers, source)
    functional = {layer["name"] for layer in layers if layer["class_name"] == "Functional"}
    inputs, outputs = (_ends(body.get(key), functional, source) for key in ("input_layers", "output_layers"))
    # One input or output is a tensor, not a list of one (Keras 2 wrote every end as a list).
    return {
        "name": name, "trainable": trainable, "layers": layers, "input_layers": inputs, "output_layers": outputs,
        "input_structure": _structure(inputs), "output_structure": _structure(outputs),
    }


def _ends(value, functional: set, source) -> list:
    """``input_layers`` / ``output_layers`` as convscope's references, a nested functional model's call counted
    from 0 again (see ``_end``)."""
    ends = []
    for layer, call, index in _endpoints(value, source):
        shifted = layer in functional and isinstance(call, int) and not isinstance(call, bool) and call > 0
        ends.append([layer, call - 1 if shifted else call, index])
    return ends


def _check_connections(layers: list, source) -> None:
    """Refuse a graph whose calls read a layer or a call that is not there, or, through one another, their own
    output; the message names the call, and the file's layers or the cycle.

    A call is ``(layer name, call index)``; it reads the calls its arguments' ``[layer, call, index]`` name
    (an InputLayer has one call, 0: the input).
    """
    reads = {(layer["name"], k): [(ref[0], ref[1]) for ref in call["args"]]
             for layer in layers for k, call in enumerate(layer["inbound_nodes"])}
    calls = {layer["name"]: max(len(layer["inbound_nodes"]), 1) for layer in layers}
    for (name, k), refs in reads.items():
        for layer, call in refs:
            if layer not in calls:
                listed = ", ".join(list(calls)[:MAX_LISTED]) + (f", ... ({len(calls)} in all)"
                                                               if len(calls) > MAX_LISTED else "")
                raise ModelFileError(
                    f'{source}: layer "{name}", call {k} reads from layer {layer!r}, which the file does not define; '
                    f"its layers are: {listed}"
                )
            if not (isinstance(call, int) and not isinstance(call, bool) and 0 <= call < calls[layer]):
                raise ModelFileError(
                    f'{source}: layer "{name}", call {k} reads call {call!r} of layer "{layer}", which the file '
                    f"calls {calls[layer]} time(s) (calls count from 0)"
                )
    done, on_path = set(), {}
    for start in reads:
        if start in done:
            continue
        path, stack = [start], [iter(reads[start])]  # depth first, without recursion: graphs may be deep
        on_path[start] = 0
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                finished = path.pop()
                done.add(finished)
                del on_path[finished]
                stack.pop()
            elif nxt in on_path:
                cycle = [*path[on_path[nxt]:], nxt]
                described = " -> ".join(f'"{name}" call {k}' for name, k in cycle)
                raise ModelFileError(
                    f"{source}: the graph has a cycle: {described} (each call reads the output of the next), so "
                    "nothing in it can be computed; a Keras functional model's calls read only tensors computed "
                    "before them"
                )
            elif nxt in reads and nxt not in done:
                on_path[nxt] = len(path)
                path.append(nxt)
                stack.append(iter(reads[nxt]))


def _structure(ends: list) -> dict:
    return {"kind": "single" if len(ends) == 1 else "list", "keys": None}


def _spec_name(spec: dict):
    config = spec.get("config")
    return spec.get("name", config.get("name") if isinstance(config, dict) else None)


def _calls(spec, name, source) -> list:
    nodes = spec.get("inbound_nodes")
    if not isinstance(nodes, list):
        raise ModelFileError(f'{source}: layer "{name}" has no list of calls ("inbound_nodes")')
    return [_call(node, name, k, source) for k, node in enumerate(nodes)]


def _call(node, name, k, source) -> dict:
    """One Keras call as convscope's ``{"args": [[layer, call, index], ...], "as_list": bool}``."""
    if isinstance(node, dict):  # Keras 3: {"args": [tensor] or [[tensor, ...]], "kwargs": {...}}
        args, kwargs = node.get("args"), node.get("kwargs", {})
        if not isinstance(args, list) or len(args) != 1:
            count = len(args) if isinstance(args, list) else "no"
            raise ModelFileError(
                f'{source}: layer "{name}" does not take exactly one input (a tensor, or a list of tensors for a '
                f"merging layer): its call {k} passes {count} arguments"
            )
        as_list = isinstance(args[0], list)
        refs = [_history(t, name, k, source) for t in (args[0] if as_list else args)]
    elif isinstance(node, list) and node and all(isinstance(e, list) and len(e) >= 3 for e in node):
        # Keras 2: [[name, call, index, kwargs], ...]: several entries are a merging layer's list.
        as_list, refs = len(node) > 1, [list(e[:3]) for e in node]
        kwargs = node[0][3] if len(node[0]) > 3 else {}
    else:
        raise ModelFileError(f'{source}: layer "{name}", call {k} is malformed: {str(node)[:200]}')
    # Keras 3 records ``training=False`` / ``mask=None`` on plain calls; anything set beyond that changes the layer.
    plain = isinstance(kwargs, dict) and all(v is None or (key, v) == ("training", False) for key, v in kwargs.items())
    if not plain:
        raise ModelFileError(
            f'{source}: layer "{name}" is called with arguments {kwargs!r}; convscope reads plain calls'
        )
    return {"args": refs, "as_list": as_list}


def _history(tensor, name, k, source) -> list:
    history = None
    if isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__":
        config = tensor.get("config")
        history = config.get("keras_history") if isinstance(config, dict) else None
    if not isinstance(history, list) or len(history) != 3:
        raise ModelFileError(
            f'{source}: layer "{name}", call {k}: an argument is not a tensor of the graph '
            f"(convscope reads calls on tensors only; supported layers: {SUPPORTED_ALL}): {str(tensor)[:200]}"
        )
    return history


def _endpoints(value, source) -> list:
    """``input_layers`` / ``output_layers`` as a list of ``[name, call, index]``: Keras 3 may write a single one."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, list) and v and isinstance(v[0], str)
                                                           for v in value):
        raise ModelFileError(f"{source}: malformed input_layers / output_layers: {str(value)[:200]}")
    if not all(len(v) >= 3 for v in value):
        raise ModelFileError(f"{source}: malformed input_layers / output_layers: {str(value)[:200]}")
    return [list(v[:3]) for v in value]
