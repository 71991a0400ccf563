"""Inputs and targets as a model takes them: one array, a list (in ``model.inputs`` order) or a dict by name.

Every array is checked before any work starts, with messages naming the model, the
argument and what was expected: rank and sizes against the model's input shapes (with
hints for a missing batch axis or channels-first data), numeric dtypes, NaN / infinity,
equal sample counts, and the number of arrays against the number of inputs / outputs.
"""

from __future__ import annotations

from .. import backend


def structure_of(value):
    """("single" | "list" | "dict", dict keys or None) of how tensors were given (a Model's inputs / outputs)."""
    if isinstance(value, dict):
        return "dict", list(value)
    if isinstance(value, (list, tuple)):
        return "list", None
    return "single", None


def pack(values: list, structure):
    """``values`` (one per tensor) back in the structure the model was given: an array, a list or a dict."""
    kind, keys = structure
    if kind == "dict":
        return dict(zip(keys, values))
    return list(values) if kind == "list" else values[0]


def arrays_for(model, value, names: list, arg: str, what: str) -> list:
    """``value`` (an array, list or dict by name) as a list of arrays, one per name, or an error naming ``arg``."""
    if value is None:
        raise ValueError(f'{model}: argument "{arg}" is required, received None')
    count = len(names)
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        missing = [n for n in names if n not in value]
        if unknown or missing:
            raise ValueError(
                f'{model}: argument "{arg}" is a dict whose keys must be the model\'s {what} names {names}; '
                f"missing {missing}, unknown {unknown}"
            )
        return [value[n] for n in names]
    if isinstance(value, (list, tuple)) and not _is_nested_numbers(value):
        if len(value) != count:
            raise ValueError(
                f'{model}: argument "{arg}" holds {len(value)} array{"s" if len(value) != 1 else ""}, but the model '
                f"has {count} {what}s ({', '.join(names)})"
            )
        return list(value)
    if count != 1:
        raise ValueError(
            f'{model}: argument "{arg}" is a single array, but the model has {count} {what}s ({", ".join(names)}); '
            f"give a list of {count} arrays or a dict by name"
        )
    return [value]


def _is_nested_numbers(value) -> bool:
    """True for a plain list of numbers (one array written as a list), false for a list of arrays."""
    first = value[0] if value else None
    return isinstance(first, (int, float)) or (isinstance(first, (list, tuple)) and first and
                                               isinstance(first[0], (int, float, list, tuple)))


def check_input_array(model, x, expected, arg: str, index: int):
    """``x`` as an array fitting input ``index`` of shape ``expected`` (batch axis None)."""
    xp = backend.xp
    x = xp.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f'{model}: argument "{arg}" must be numeric, received dtype {x.dtype}')
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f'{model}: argument "{arg}" is empty (shape {x.shape}); expected at least one sample')
    if x.ndim != len(expected) or x.shape[1:] != tuple(expected[1:]):
        raise ValueError(
            f'Input {index} of layer "{model.name}" is incompatible with the layer: '
            f"expected shape={tuple(expected)}, found shape={tuple(x.shape)}{_shape_hint(x.shape, expected)}"
        )
    if x.dtype.kind == "f" and not xp.isfinite(x).all():
        bad = int(xp.flatnonzero(~xp.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise ValueError(f'{model}: argument "{arg}" contains NaN or infinite values (first in sample {bad})')
    return x


def _shape_hint(shape, expected) -> str:
    expected = tuple(expected[1:])
    if tuple(shape) == expected:
        return " (a single sample without the batch axis: use x[None] for a batch of one)"
    if len(shape) == 4 and len(expected) == 3 and (shape[2], shape[3], shape[1]) == expected:
        return " (this looks like channels-first NCHW data; convscope uses NHWC: x.transpose(0, 2, 3, 1))"
    return ""


def same_count(model, arrays: list, args: list) -> int:
    n = len(arrays[0])
    for a, arg in zip(arrays, args):
        if len(a) != n:
            raise ValueError(
                f'{model}: "{args[0]}" and "{arg}" must have the same number of samples, '
                f"received {args[0]}: {n} and {arg}: {len(a)}"
            )
    return n


def check_target_array(model, y, arg: str, n: int, arg_x: str):
    xp = backend.xp
    y = xp.asarray(y)
    if y.ndim == 0 or len(y) != n:
        raise ValueError(
            f'{model}: "{arg_x}" and "{arg}" must have the same number of samples, '
            f"received {arg_x}: {n} and {arg}: {y.shape[0] if y.ndim else 'a scalar'}"
        )
    if y.dtype.kind == "f" and not xp.isfinite(y).all():
        raise ValueError(f'{model}: argument "{arg}" contains NaN or infinite values')
    return y
