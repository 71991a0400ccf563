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

Trust: only hard links inside the file are followed (no soft or external links), datasets
must be stored in the file (not external or virtual), of a float type (an integer one for the
registry's ``integer_weights``, Normalization's ``count``), of exactly the
shape the model needs, and not expand more than ``MAX_EXPANSION`` times from the bytes
stored; anything else is a ``ModelFileError``.
"""

from __future__ import annotations

from ..errors import ModelFileError
from .keras_config import keras_mapping

BOMB_FLOOR_BYTES = 2**20
MAX_EXPANSION = 1000


def import_h5py():
    """h5py, or an ImportError saying how to get it (it is the optional ``interop`` extra)."""
    try:
        import h5py
    except ImportError as e:
        raise ImportError("Keras files are HDF5 inside; install h5py: pip install 'convscope[interop]'") from e
    return h5py


def keras_paths(layers) -> list[str]:
    """Where Keras 3 stores each layer's variables: ``layers/conv2d``, ``layers/conv2d_1``, ...

    The registry's ``weights_path`` of the layer's class, numbered per class in model order; a
    ValueError for a layer with no Keras twin in the registry."""
    counts, paths = {}, []
    for layer in layers:
        base = keras_mapping(layer).weights_path
        paths.append(f"layers/{base}" if base not in counts else f"layers/{base}_{counts[base]}")
        counts[base] = counts.get(base, 0) + 1
    return paths


def is_keras3_layout(root) -> bool:
    return "layers" in root


def read_keras3(root, layers, shapes: list[dict], source: str) -> list:
    """The weights of ``layers`` (``shapes``: each layer's ``{parameter: shape}``) from a Keras 3 weights root, in order."""
    h5py = import_h5py()
    paths, arrays = keras_paths(layers), []
    for layer, path, wanted in zip(layers, paths, shapes):
        vars_group = _get(h5py, root, f"{path}/vars", source)
        stored = len(vars_group) if isinstance(vars_group, h5py.Group) else 0
        if stored != len(wanted):
            raise ModelFileError(
                f'{source}: layer "{layer.name}" ({type(layer).__name__}) has {len(wanted)} weights, '
                f"the file holds {stored} at {path}/vars"
            )
        integer = keras_mapping(layer).integer_weights
        for i, (name, shape) in enumerate(wanted.items()):
            what = f'weight "{name}" of layer "{layer.name}"'
            arrays.append(_read(h5py, vars_group, str(i), shape, what, source, integer=name in integer))
    known = {path.split("/", 1)[1] for path in paths}
    extra = [
        name for name in _child_names(h5py, root, "layers", source)
        if name not in known and _child_names(h5py, root, f"layers/{name}/vars", source)
    ]
    if extra:
        raise ModelFileError(f"{source}: the file holds weights for layers the model does not have: {', '.join(extra)}")
    return arrays


def read_legacy(root, layers, shapes: list[dict], source: str) -> list:
    """The weights of ``layers`` from a legacy HDF5 file: its ``model_weights`` group, or the root of a weights-only file."""
    h5py = import_h5py()
    if "model_weights" in root:
        root = _get(h5py, root, "model_weights", source)
    arrays, names = [], {layer.name for layer in layers}
    for layer, wanted in zip(layers, shapes):
        group = _get(h5py, root, layer.name, source) if wanted else None
        stored = _attribute_list(group, "weight_names") if isinstance(group, h5py.Group) else []
        if len(stored) != len(wanted):
            raise ModelFileError(
                f'{source}: layer "{layer.name}" ({type(layer).__name__}) has {len(wanted)} weights, '
                f"the file holds {len(stored)} for it"
            )
        integer = keras_mapping(layer).integer_weights
        for stored_name, (name, shape) in zip(stored, wanted.items()):
            what = f'weight "{name}" of layer "{layer.name}"'
            arrays.append(_read(h5py, group, stored_name, shape, what, source, integer=name in integer))
    for name in _attribute_list(root, "layer_names"):
        group = _get(h5py, root, name, source)
        if name not in names and isinstance(group, h5py.Group) and _attribute_list(group, "weight_names"):
            raise ModelFileError(f'{source}: the file holds weights for a layer "{name}" the model does not have')
    return arrays


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


def _read(h5py, group, path: str, shape: tuple, what: str, source: str, integer: bool = False):
    dataset = _get(h5py, group, path, source)
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFileError(f"{source}: {what} is missing (no dataset {path!r} in {group.name})")
    if dataset.external or dataset.is_virtual:
        raise ModelFileError(f"{source}: {what} is stored outside the file; refusing it")
    try:
        dtype = dataset.dtype
    except (ValueError, TypeError) as e:  # a damaged type message: e.g. a float h5py cannot map to NumPy
        raise ModelFileError(f"{source}: {what} has a data type convscope cannot read: {e}") from e
    if dtype.kind not in ("iu" if integer else "f"):
        raise ModelFileError(f"{source}: {what} has dtype {dtype}, not {'an integer' if integer else 'a float'} type")
    if dataset.shape != tuple(shape):
        raise ModelFileError(f"{source}: {what} has shape {dataset.shape} in the file, the model needs {tuple(shape)}")
    size = dataset.size * dtype.itemsize
    if size > BOMB_FLOOR_BYTES and size > MAX_EXPANSION * dataset.id.get_storage_size():
        # Compression can make a huge array of fill values out of a few bytes on disk.
        raise ModelFileError(f"{source}: {what} expands to {size} bytes from {dataset.id.get_storage_size()} stored")
    return dataset[()]


def _attribute_list(group, key: str) -> list[str]:
    """A legacy list attribute as strings, joined from ``key0``, ``key1``, ... when Keras split it."""
    if key in group.attrs:
        values = list(group.attrs[key])
    else:
        values, i = [], 0
        while f"{key}{i}" in group.attrs:
            values.extend(group.attrs[f"{key}{i}"])
            i += 1
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
