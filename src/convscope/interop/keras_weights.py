"""Keras weights from HDF5, each checked against the model before a byte of it is read.

Two layouts, both in convscope's parameter order (Keras saves trainable variables
first, then the others, each group in creation order: Conv2D / Dense ``kernel, bias``;
BatchNormalization ``gamma, beta, moving_mean, moving_variance``; SeparableConv2D
``depthwise_kernel, pointwise_kernel, bias``; an adapted Normalization ``mean, variance, count``).
Kernels need no conversion: Keras stores Conv2D kernels as (kh, kw, in, out), Dense as (in, out),
DepthwiseConv2D as (kh, kw, in, multiplier) and Conv2DTranspose as (kh, kw, out, in), as convscope does.

* Keras 3 (``model.weights.h5`` in a ``.keras`` file, and ``.weights.h5`` files):
  ``layers/<path>/vars/<i>``. ``<path>`` is not the layer's name but its Keras class name in
  snake case (the registry's ``weights_path``), numbered per class in model order (``conv2d``,
  ``max_pooling2d``, ``conv2d_1``, ``re_lu``, ...: see ``keras_paths``); ``<i>`` is 0, 1, ... in the order above.
* Legacy HDF5 (Keras 2, and Keras 3's ``model.save("x.h5")``): ``model_weights/<layer name>``
  (the file root for a weights-only file), whose attribute ``weight_names`` (split into
  ``weight_names0``, ``weight_names1``, ... when long) names each dataset, in the order above.
  As in Keras, the layers that hold weights are matched in order (``layer_names``), not by name.

Trust: only hard links inside the file are followed (no soft or external links), datasets
must be stored in the file (not external or virtual), of a float type (an integer one for the
registry's ``integer_weights``, Normalization's ``count``) of at most 8 bytes, of exactly the
shape the model needs, and not expand more than ``MAX_EXPANSION`` times from the bytes
stored; anything else is a ``ModelFileError``. Every dataset is checked before any is read; then
all of them together must not expand more than ``MAX_EXPANSION`` times from the bytes of the file
on disk (``ReadLimits.disk_bytes``: a compressed zip member holding an HDF5 file with compressed
chunks multiplies the two ratios), and what reading them allocates, with what the caller has
already committed (``ReadLimits.reserved``), must fit the memory budget (``convscope.budget``).
Legacy name lists are bounded by the file's own groups before they are followed.

Models inside models (Keras 3): a nested model's group is named after its class
(``sequential``, ``functional``) and holds its own ``layers/...``; a functional model lists
its InputLayers among its layers (``layers/input_layer``, no variables), a Sequential does
not. In legacy files a nested model is one entry of ``model_weights`` holding all its weights,
trainable ones first (Keras's ``layer.trainable_weights + layer.non_trainable_weights``).
``write_keras3`` / ``write_legacy`` write these layouts; ``read_keras3_model`` /
``read_legacy_model`` read them into a built model, every weight checked before any is returned.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import budget
from ..errors import ModelFileError
from .keras_config import keras_mapping

BOMB_FLOOR_BYTES = 2**20
MAX_EXPANSION = 1000
MAX_ITEMSIZE = 8  # float64 / int64: the widest type a weight is read as


class ReadLimits(NamedTuple):
    """What reading weights may take: ``disk_bytes``, the size of the file on disk, which the weights read may
    not exceed ``MAX_EXPANSION`` times (above ``BOMB_FLOOR_BYTES``) whatever compression lies between, and
    ``reserved``, the bytes the caller holds for this load already (an inflated archive member, the model
    built to receive the weights), counted with them against the memory budget."""

    disk_bytes: int
    reserved: int = 0


def import_h5py():
    """h5py, or an ImportError saying how to get it (it is the optional ``interop`` extra)."""
    try:
        import h5py
    except ImportError as e:
        raise ImportError("Keras files are HDF5 inside; install h5py: pip install 'convscope[interop]'") from e
    return h5py


def keras_paths(layers, prefix: str = "") -> list[str]:
    """Where Keras 3 stores each layer's variables: ``layers/conv2d``, ``layers/conv2d_1``, ...

    The registry's ``weights_path`` of the layer's class, numbered per class in model order; a
    ValueError for a layer with no Keras twin in the registry."""
    counts, paths = {}, []
    for layer in layers:
        base = _class_path(layer)
        paths.append(f"{prefix}layers/{base}" if base not in counts else f"{prefix}layers/{base}_{counts[base]}")
        counts[base] = counts.get(base, 0) + 1
    return paths


def _class_path(layer) -> str:
    from ..layers import InputLayer, registered
    from ..layers.base import snake_case
    from ..models import Functional, Model, Sequential

    if isinstance(layer, Sequential):
        return "sequential"
    if isinstance(layer, Model):
        if type(layer) is not Functional:
            raise ValueError(
                f'Model "{layer.name}" is a subclass of Model ({type(layer).__name__}): Keras files hold '
                "Sequential and functional models only"
            )
        return "functional"
    if type(layer) is InputLayer:
        return "input_layer"
    if not registered(layer):  # a layer of the user's own: Keras names its path after the class, snake-cased
        return snake_case(type(layer).__name__)
    return keras_mapping(layer).weights_path


def keras3_groups(model) -> list[tuple[str, object]]:
    """``(path, object)`` for ``model`` ("") and every layer inside it, nested models walked, in Keras's order.

    The object's variables live at ``<path>/vars`` (the model's own, none, at ``vars``)."""
    from ..models import Model

    entries = [("", model)]

    def walk(m, prefix):
        for layer, path in zip(m.layers, keras_paths(m.layers, prefix)):
            entries.append((path, layer))
            if isinstance(layer, Model):
                walk(layer, f"{path}/")

    walk(model, "")
    return entries


def legacy_weights(layer) -> list:
    """A layer's (or nested model's) parameters in the order legacy HDF5 files hold them: trainable ones first."""
    trainable = layer.trainable_parameters
    ids = {id(p) for p in trainable}
    return trainable + [p for p in layer.parameters if id(p) not in ids]


def write_keras3(root, model) -> None:
    """Write ``model``'s weights into the HDF5 group ``root`` in Keras 3's layout (``layers/<path>/vars/<i>``)."""
    from ..models import Model

    for path, obj in keras3_groups(model):
        group = root.create_group(f"{path}/vars" if path else "vars")
        group.attrs["name"] = obj.name
        if not isinstance(obj, Model):
            for i, param in enumerate(obj.parameters):
                group.create_dataset(str(i), data=param.value)


def write_legacy(group, model, keras_version: str) -> None:
    """Write ``model``'s weights into ``group`` as Keras's legacy HDF5 ``model_weights``: a group per layer
    (its ``weight_names`` attribute lists the datasets, ``legacy_weights`` order), and the layers' names."""
    from ..models import Model

    group.attrs["layer_names"] = [layer.name.encode("utf8") for layer in model.layers]
    group.attrs["backend"] = b"numpy"
    group.attrs["keras_version"] = keras_version.encode("utf8")
    for layer in [*model.layers, None]:
        layer_group = group.create_group("top_level_model_weights" if layer is None else layer.name)
        params = [] if layer is None else legacy_weights(layer)
        # A parameter is named "<layer>/<weight>"; a nested model's are prefixed with the model's name, as in Keras.
        prefix = f"{layer.name}/" if isinstance(layer, Model) else ""
        names = [f"{prefix}{p.name}" for p in params]
        # h5py cannot write an empty list of strings: Keras writes an empty float array there too.
        layer_group.attrs["weight_names"] = [n.encode("utf8") for n in names] if names else []
        for name, param in zip(names, params):
            layer_group.create_dataset(name, data=param.value)


def read_keras3_model(root, model, source: str, limits: ReadLimits) -> list:
    """The weights of the built ``model`` (``model.parameters`` order) from a Keras 3 weights root."""
    from ..models import Model

    groups = keras3_groups(model)
    slots = [(path, layer, _wanted(layer)) for path, layer in groups if not isinstance(layer, Model)]
    containers = [path for path, obj in groups if isinstance(obj, Model)]
    arrays = _read_slots(root, slots, containers, source, limits)
    by_param = {}
    for (_, layer, _), values in zip(slots, _split(arrays, [len(s[2]) for s in slots])):
        by_param.update({id(p): v for p, v in zip(layer.parameters, values)})
    return [by_param[id(p)] for p in model.parameters]


def read_legacy_model(root, model, source: str, limits: ReadLimits) -> list:
    """The weights of the built ``model`` (``model.parameters`` order) from a legacy HDF5 file."""
    entries = []
    for layer in model.layers:
        params = legacy_weights(layer)
        entries.append((layer, [(_short(p), p.value.shape, _is_integer(p)) for p in params]))
    arrays = _read_legacy_entries(root, entries, source, limits)
    by_param = {}
    for (layer, _), values in zip(entries, _split(arrays, [len(e[1]) for e in entries])):
        by_param.update({id(p): v for p, v in zip(legacy_weights(layer), values)})
    return [by_param[id(p)] for p in model.parameters]


def _wanted(layer) -> dict:
    return {_short(p): p.value.shape for p in layer.parameters}


def _short(param) -> str:
    return param.name.rsplit("/", 1)[-1]


def _is_integer(param) -> bool:
    return param.value.dtype.kind in "iu"


def _split(arrays: list, sizes: list) -> list:
    out, start = [], 0
    for size in sizes:
        out.append(arrays[start:start + size])
        start += size
    return out


def is_keras3_layout(root) -> bool:
    return "layers" in root


def read_keras3(root, layers, shapes: list[dict], source: str, limits: ReadLimits) -> list:
    """The weights of ``layers`` (``shapes``: each layer's ``{parameter: shape}``) from a Keras 3 weights root, in order."""
    return _read_slots(root, list(zip(keras_paths(layers), layers, shapes)), [""], source, limits)


def _read_slots(root, slots, containers, source: str, limits: ReadLimits) -> list:
    """The weights of each ``(path, layer, {parameter: shape})`` slot, in order; ``containers``: the paths of the
    models holding them (a ``layers`` group under one of them that is no slot must hold no weights)."""
    h5py = import_h5py()
    datasets = []
    for path, layer, wanted in slots:
        vars_group = _get(h5py, root, f"{path}/vars", source)
        stored = len(vars_group) if isinstance(vars_group, h5py.Group) else 0
        if stored != len(wanted):
            raise ModelFileError(
                f'{source}: layer "{layer.name}" ({type(layer).__name__}) has {len(wanted)} weights, '
                f"the file holds {stored} at {path}/vars"
            )
        integer = _integer_weights(layer)
        for i, (name, shape) in enumerate(wanted.items()):
            what = f'weight "{name}" of layer "{layer.name}"'
            datasets.append(_dataset(h5py, vars_group, str(i), shape, what, source, integer=name in integer))
    known = {path for path, _, _ in slots} | set(containers)
    extra = [
        f"{prefix}layers/{name}" for prefix in (f"{c}/" if c else "" for c in containers)
        for name in _child_names(h5py, root, f"{prefix}layers", source)
        if f"{prefix}layers/{name}" not in known and _child_names(h5py, root, f"{prefix}layers/{name}/vars", source)
    ]
    if extra:
        names = ", ".join(e.split("/")[-1] if len(containers) == 1 else e for e in extra)
        raise ModelFileError(f"{source}: the file holds weights for layers the model does not have: {names}")
    return _read_all(datasets, source, limits)


def _integer_weights(layer) -> tuple:
    from ..layers import InputLayer, registered

    if type(layer) is InputLayer or not registered(layer):
        return ()  # a layer of the user's own: its weights are read with the dtypes it created them with
    return keras_mapping(layer).integer_weights


def read_legacy(root, layers, shapes: list[dict], source: str, limits: ReadLimits) -> list:
    """The weights of ``layers`` from a legacy HDF5 file: its ``model_weights`` group, or the root of a weights-only file."""
    entries = []
    for layer, wanted in zip(layers, shapes):
        integer = keras_mapping(layer).integer_weights
        entries.append((layer, [(name, shape, name in integer) for name, shape in wanted.items()]))
    return _read_legacy_entries(root, entries, source, limits)


def _read_legacy_entries(root, entries, source: str, limits: ReadLimits) -> list:
    """The weights of each ``(layer, [(parameter, shape, integer?)])`` entry, matched as Keras matches them: in
    order, the model's layers that have weights against the file's layers (``layer_names``) that hold some."""
    h5py = import_h5py()
    if "model_weights" in root:
        root = _get(h5py, root, "model_weights", source)
    most = sum(len(wanted) for _, wanted in entries)
    stored_layers = []
    for name in _layer_names(h5py, root, source):
        group = _get(h5py, root, name, source)
        if not isinstance(group, h5py.Group):
            # Keras's loader reads f[name] for every listed layer: a name with no group is a broken file.
            raise ModelFileError(f"{source}: layer_names lists {name!r}, which {root.name} does not hold")
        # The model has ``most`` weights in all: a longer list cannot match, whatever it says.
        names = _attribute_list(group, "weight_names", source, at_most=most)
        if names:
            stored_layers.append((name, group, names))
    wanted_layers = [(layer, wanted) for layer, wanted in entries if wanted]
    if len(stored_layers) != len(wanted_layers):
        raise ModelFileError(
            f"{source}: the model has {len(wanted_layers)} layers with weights "
            f"({', '.join(layer.name for layer, _ in wanted_layers)}), the file holds weights for "
            f"{len(stored_layers)} ({', '.join(name for name, _, _ in stored_layers)})"
        )
    datasets = []
    for (layer, wanted), (stored_name, group, stored) in zip(wanted_layers, stored_layers):
        if len(stored) != len(wanted):
            raise ModelFileError(
                f'{source}: layer "{layer.name}" ({type(layer).__name__}) has {len(wanted)} weights, '
                f'the file holds {len(stored)} for it (in its layer "{stored_name}")'
            )
        for weight_name, (name, shape, integer) in zip(stored, wanted):
            what = f'weight "{name}" of layer "{layer.name}"'
            datasets.append(_dataset(h5py, group, weight_name, shape, what, source, integer=integer))
    return _read_all(datasets, source, limits)


def _layer_names(h5py, root, source: str) -> list[str]:
    """The legacy ``layer_names`` of ``root``, each once: a name is a group of ``root``, so the list cannot be
    longer than the groups it holds (checked from the attribute's shape, before its values are read)."""
    names = _attribute_list(root, "layer_names", source, at_most=len(root))
    if len(set(names)) != len(names):
        raise ModelFileError(f"{source}: layer_names lists a layer twice; layer names are unique")
    return names


def _get(h5py, group, path: str, source: str):
    """The object at ``path`` under ``group`` through hard links only, or None if absent."""
    node = group
    for part in path.split("/"):
        if not isinstance(node, h5py.Group) or not part:
            return None
        link = node.get(part, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            where = f"{node.name.rstrip('/')}/{part}"
            raise ModelFileError(
                f"{source}: {where!r} is an h5py {type(link).__name__}; convscope follows no soft or external links"
            )
        node = node[part]
    return node


def _child_names(h5py, root, path, source) -> list[str]:
    group = _get(h5py, root, path, source)
    return list(group) if isinstance(group, h5py.Group) else []


def _dataset(h5py, group, path: str, shape: tuple, what: str, source: str, integer: bool = False):
    """``(dataset, what)`` at ``path``, checked (stored in the file, type, shape, expansion) but not read."""
    dataset = _get(h5py, group, path, source)
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFileError(f"{source}: {what} is missing (no dataset {path!r} in {group.name})")
    if dataset.external or dataset.is_virtual:
        raise ModelFileError(f"{source}: {what} is stored outside the file; refusing it")
    try:
        dtype = dataset.dtype
    except (ValueError, TypeError) as e:  # a damaged type message: e.g. a float h5py cannot map to NumPy
        raise ModelFileError(f"{source}: {what} has a data type convscope cannot read: {e}") from e
    if dtype.kind not in ("iu" if integer else "f") or dtype.itemsize > MAX_ITEMSIZE:
        raise ModelFileError(f"{source}: {what} has dtype {dtype}, not {'an integer' if integer else 'a float'} type "
                             f"of at most {MAX_ITEMSIZE} bytes")
    if dataset.shape != tuple(shape):
        raise ModelFileError(f"{source}: {what} has shape {dataset.shape} in the file, the model needs {tuple(shape)}")
    size = dataset.size * dtype.itemsize
    if size > BOMB_FLOOR_BYTES and size > MAX_EXPANSION * dataset.id.get_storage_size():
        # Compression can make a huge array of fill values out of a few bytes on disk.
        raise ModelFileError(f"{source}: {what} expands to {size} bytes from {dataset.id.get_storage_size()} stored")
    return dataset, what


def _read_all(datasets: list, source: str, limits: ReadLimits) -> list:
    """The arrays of the checked ``(dataset, what)`` pairs, once all of them together are known to fit: at most
    ``MAX_EXPANSION`` times the file on disk, and within the memory budget with what the caller reserved (plus
    the largest one again: the model copies each weight as it takes it)."""
    sizes = [dataset.size * dataset.dtype.itemsize for dataset, _ in datasets]
    total = sum(sizes)
    if total > BOMB_FLOOR_BYTES and total > MAX_EXPANSION * limits.disk_bytes:
        raise ModelFileError(
            f"{source}: reading its weights expands to {total} bytes from the {limits.disk_bytes} bytes of the file, "
            f"more than {MAX_EXPANSION} times (compressed data inside compressed data); refusing a decompression bomb"
        )
    largest = max(range(len(sizes)), key=sizes.__getitem__, default=None)
    what = f"{source}: reading its {len(datasets)} weight arrays"
    if largest is not None:
        what += f" (the largest, {datasets[largest][1]}, {datasets[largest][0].shape} {datasets[largest][0].dtype})"
    budget.check(limits.reserved + total + max(sizes, default=0), what, error=ModelFileError)
    return [dataset[()] for dataset, _ in datasets]


def _attribute_list(group, key: str, source: str, at_most: int) -> list[str]:
    """A legacy list attribute as strings, joined from ``key0``, ``key1``, ... when Keras split it; refused when
    its parts' shapes (read before their values) say it holds more than ``at_most`` names."""
    attrs = group.attrs
    if key in attrs:
        parts = [key]
    else:
        parts = []
        while f"{key}{len(parts)}" in attrs:
            parts.append(f"{key}{len(parts)}")
            if len(parts) > max(at_most, 1):  # Keras splits a list only when it is long: each part holds names
                break
    count = sum(_attribute_length(attrs, part, group, source) for part in parts)
    if count > at_most or len(parts) > max(at_most, 1):
        raise ModelFileError(
            f"{source}: {group.name} lists {count} {key} in {len(parts)} attribute(s), more than the {at_most} it "
            "can hold; refusing the list before reading it"
        )
    values = [v for part in parts for v in attrs[part]]
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _attribute_length(attrs, name: str, group, source: str) -> int:
    """How many values the list attribute ``name`` holds, from its dataspace: its values are not read."""
    shape = attrs.get_id(name).shape
    if shape is None:  # an empty (null) dataspace
        return 0
    if len(shape) != 1:
        raise ModelFileError(f"{source}: the attribute {name!r} of {group.name} has shape {shape}, not a list")
    return int(shape[0])
