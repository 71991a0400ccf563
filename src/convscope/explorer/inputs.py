"""Checking what the page sends before any of it reaches the model: every bad value becomes an HTTP 400.

Pixels arrive as flat JSON lists (a 28x28 input, or the 280x280 drawing canvas),
uploads as picture bytes read by ``convscope.images.read_picture`` within fixed bounds; both end as a
(28, 28) uint8 picture, the drawing and the upload fitted into MNIST's frame
exactly as ``convscope.images`` fits a picture file.
"""

from __future__ import annotations

import numpy as np
from werkzeug.exceptions import BadRequest

from ..errors import DataFileError
from ..images import read_picture, to_mnist

SIZE = 28
DRAWING = 280  # the page's canvas: ten screen pixels per MNIST pixel
MAX_UPLOAD_BYTES = 2 * 2**20
MAX_UPLOAD_PIXELS = 4_000_000  # a phone photo; far below images.MAX_PIXELS, since anyone who can reach the page may upload


def json_object(request) -> dict:
    """The request's JSON body as a dict; 400 for anything else (Flask answers 415 for a non-JSON type)."""
    try:
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:  # JSON nested deeper than Python's parser recurses: malformed for us
        body = None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object sent as application/json")
    return body


def picture(body: dict) -> np.ndarray:
    """The (28, 28) uint8 input from ``"pixels"`` (784 values 0-255) or ``"drawing"`` (280x280 values 0-255)."""
    if ("pixels" in body) == ("drawing" in body):
        raise BadRequest('send exactly one of "pixels" (28x28 values) or "drawing" (280x280 values)')
    key, side = ("pixels", SIZE) if "pixels" in body else ("drawing", DRAWING)
    values = _numbers(body[key], key, side)
    if values.min() < 0 or values.max() > 255:
        raise BadRequest(f'"{key}" values must lie between 0 and 255')
    grid = values.reshape(side, side)
    return to_mnist(grid) if key == "drawing" else np.rint(grid).astype(np.uint8)


def _numbers(raw, key: str, side: int) -> np.ndarray:
    """A flat list of side x side finite numbers, row by row."""
    if not isinstance(raw, list) or len(raw) != side * side:
        raise BadRequest(f'"{key}" must be a flat list of {side * side} numbers ({side}x{side}, row by row), received '
                         f'{f"{len(raw)} items" if isinstance(raw, list) else type(raw).__name__}')
    if not all(type(v) in (int, float) for v in raw):  # bools and nested lists are not pixel values
        raise BadRequest(f'"{key}" must hold only numbers')
    if any(type(v) is int and not -(2**53) <= v <= 2**53 for v in raw):  # a 400-digit integer is no float
        raise BadRequest(f'"{key}" must hold only finite numbers (no NaN or infinity)')
    values = np.asarray(raw, dtype=np.float64)
    if not np.isfinite(values).all():
        raise BadRequest(f'"{key}" must hold only finite numbers (no NaN or infinity)')
    return values


def label(body: dict):
    """``"label"``: a digit 0-9, or absent / null (then the predicted class is used)."""
    value = body.get("label")
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= 9:
        raise BadRequest('"label" must be an integer from 0 to 9 or null')
    return value


def edits(body: dict) -> list:
    """``"edits"``: the page's kernel edits (checked in detail by ``compute.edited_copy``); default none."""
    value = body.get("edits", [])
    if not isinstance(value, list):
        raise BadRequest('"edits" must be a list')
    return value


def _layer(body: dict) -> str:
    layer = body.get("layer")
    if not isinstance(layer, str) or not layer:
        raise BadRequest('"layer" must be the name of a layer call (e.g. "conv2d" or "dense#1")')
    return layer


def _counts(body: dict, keys) -> tuple:
    numbers = [body.get(k) for k in keys]
    if not all(type(n) is int and n >= 0 for n in numbers):
        raise BadRequest(" and ".join(f'"{k}"' for k in keys) + " must be non-negative integers")
    return tuple(numbers)


def cell_position(body: dict):
    """``(layer call, index)`` of the value the page asks about: ``"row"``, ``"col"``, ``"channel"`` for a cell
    of a map, ``"unit"`` for an entry of a vector (a dense layer's output)."""
    layer = _layer(body)
    if "unit" in body:
        return layer, _counts(body, ("unit",))
    return layer, _counts(body, ("row", "col", "channel"))


def kernel_position(body: dict):
    """``(layer call, (i, j, c, f))``: a kernel entry, ``"index"`` as 4 non-negative integers."""
    layer = _layer(body)
    index = body.get("index")
    if not isinstance(index, list) or len(index) != 4 or not all(type(n) is int and n >= 0 for n in index):
        raise BadRequest('"index" must be 4 non-negative integers [i, j, c, f] (kernel row, column, input channel, '
                         'filter)')
    return layer, tuple(index)


def flag(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if type(value) is not bool:
        raise BadRequest(f'"{key}" must be true or false')
    return value


def upload(data: bytes) -> np.ndarray:
    """An uploaded picture (PNG, JPEG, GIF, BMP, WebP) as the (28, 28) MNIST-style input; 400 if it is empty,
    too large, not one of those formats or undecodable. ``convscope.images.read_picture`` reads it, as it
    reads ``convscope predict``'s files, with the upload's own smaller bounds: the header and the file's
    structure are checked before anything is decompressed."""
    try:
        gray = read_picture(data, label="cannot read the upload", max_bytes=MAX_UPLOAD_BYTES,
                            max_pixels=MAX_UPLOAD_PIXELS)
    except DataFileError as e:
        raise BadRequest(str(e)) from None
    return to_mnist(gray)
