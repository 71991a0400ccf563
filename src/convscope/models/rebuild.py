"""A functional model's graph rebuilt from its config, as untrusted data.

The config lists layers (``{"class_name", "config", "name", "inbound_nodes"}``); each
inbound node is one call, ``{"args": [[layer name, call index, tensor index], ...],
"as_list": bool}``, and ``input_layers`` / ``output_layers`` name tensors the same way.
``rebuild_graph`` creates the layers from the closed registry, then makes the calls in
dependency order with ``apply(layer, args, as_list)``, refusing, with a message naming
them, duplicate layer names, references to missing layers, calls or tensors, and
cycles. The same walk serves twice: with real layer calls (``Model.from_config``) and,
before anything is allocated, with shapes only (the loader's check of a file's weights).
"""

from __future__ import annotations

import heapq

from ..layers import InputLayer, deserialize


def _name_of(spec, i):
    name = spec.get("name") if isinstance(spec, dict) else None
    if name is None and isinstance(spec, dict) and isinstance(spec.get("config"), dict):
        name = spec["config"].get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"layer {i} of the graph has no name")
    return name


def _ref(value, where: str):
    if (not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], str)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value[1:])):
        raise ValueError(f"{where}: a tensor reference must be [layer name, call index, tensor index], received {value!r}")
    return value[0], value[1], value[2]


def rebuild_graph(config: dict, apply, make_layer=deserialize, input_of=lambda layer: layer.output):
    """(input tensors, output tensors, {name: layer}) of ``config``; ``apply`` makes each call's outputs (a list
    or one value), ``input_of(input_layer)`` gives an InputLayer's tensor."""
    specs = config.get("layers")
    if not isinstance(specs, list) or not specs:
        raise ValueError('the model config needs a non-empty list "layers"')
    layers, calls, call_counts = {}, [], {}
    produced = {}
    for i, spec in enumerate(specs):
        name = _name_of(spec, i)
        if name in layers:
            raise ValueError(f'layer name "{name}" appears twice in the graph')
        layer = make_layer(spec)
        if layer.name != name:
            raise ValueError(f'layer {i} is named "{name}" in the graph but "{layer.name}" in its config')
        layers[name] = layer
        nodes = spec.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise ValueError(f'layer "{name}": "inbound_nodes" must be a list')
        call_counts[name] = max(len(nodes), 1 if isinstance(layer, InputLayer) else 0)
        if isinstance(layer, InputLayer):
            if nodes:
                raise ValueError(f'InputLayer "{name}" cannot be called on other tensors')
            produced[(name, 0)] = [input_of(layer)]
            continue
        for k, node in enumerate(nodes):
            if not isinstance(node, dict) or not isinstance(node.get("args"), list) or not node["args"]:
                raise ValueError(f'layer "{name}", call {k}: expected {{"args": [tensor references], "as_list": bool}}')
            refs = [_ref(r, f'layer "{name}", call {k}') for r in node["args"]]
            as_list = node.get("as_list", len(refs) > 1)
            if not isinstance(as_list, bool) or (not as_list and len(refs) != 1):
                raise ValueError(f'layer "{name}", call {k}: "as_list" must be true for several inputs')
            calls.append((name, k, refs, as_list))
    for name, k, refs, _ in calls:
        for source, call, _ in refs:
            if source not in layers:
                raise ValueError(f'layer "{name}", call {k} reads from layer "{source}", which is not in the graph')
            if call >= call_counts[source]:
                raise ValueError(f'layer "{name}", call {k}: layer "{source}" has no call {call}')
    # Kahn's order, lowest config position first: a config listed in order runs in order, any other in time
    # linear in its size (a repeated sweep over the waiting calls is quadratic for a reverse-listed one).
    unmet, dependents = [], {}
    for position, (name, k, refs, _) in enumerate(calls):
        needed = {(source, call) for source, call, _ in refs} - produced.keys()
        unmet.append(len(needed))
        for key in needed:
            dependents.setdefault(key, []).append(position)
    ready = [position for position, count in enumerate(unmet) if count == 0]
    heapq.heapify(ready)
    done = 0
    while ready:
        name, k, refs, as_list = calls[heapq.heappop(ready)]
        args = [_tensor(produced, ref, f'layer "{name}", call {k}') for ref in refs]
        out = apply(layers[name], args, as_list)
        produced[(name, k)] = out if isinstance(out, list) else [out]
        done += 1
        for position in dependents.pop((name, k), ()):
            unmet[position] -= 1
            if unmet[position] == 0:
                heapq.heappush(ready, position)
    if done < len(calls):
        missing = sorted({f'"{n}" call {k}' for (n, k, _, _), count in zip(calls, unmet) if count})
        raise ValueError(
            f"the graph cannot be computed: {', '.join(missing[:10])} wait(s) on calls that never happen "
            "(a cycle, or a call index that does not exist)"
        )
    ends = []
    for key in ("input_layers", "output_layers"):
        refs = config.get(key)
        if not isinstance(refs, list) or not refs:
            raise ValueError(f'the model config needs a non-empty list "{key}"')
        ends.append([_tensor(produced, _ref(r, key), key) for r in refs])
    return ends[0], ends[1], layers


def _tensor(produced, ref, where: str):
    source, call, index = ref
    outputs = produced.get((source, call))
    if outputs is None:
        raise ValueError(f'{where}: layer "{source}" has no call {call}')
    if index >= len(outputs):
        raise ValueError(f'{where}: tensor index {index} is out of range: call {call} of "{source}" has '
                         f"{len(outputs)} output(s)")
    return outputs[index]
