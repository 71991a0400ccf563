"""The explorer's JSON API: a Flask blueprint over ``compute`` (numbers) and ``inputs`` (checks).

Arrays travel as ``{"shape": [...], "data": base64 of little-endian float32}``: the
exact values the model computed, about a third the size of decimal text; a number
that is not finite travels as null (JSON has no NaN). Every request that runs the
model borrows a replica of it, with the page's kernel edits applied for that request
only (``workspace.ModelPool``): the loaded model and its file never change.
"""

from __future__ import annotations

import base64
import contextlib
import math

import numpy as np
from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound, ServiceUnavailable

from . import compute, inputs
from .workspace import Busy

api = Blueprint("api", __name__, url_prefix="/api")


def encode(value):
    """JSON-able form of compute's results: float arrays as base64 float32, bool arrays as lists, numpy scalars
    as Python numbers."""
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype == bool or value.dtype.kind in "iu":
            return value.tolist()
        data = np.ascontiguousarray(value, dtype="<f4").tobytes()
        return {"shape": list(value.shape), "data": base64.b64encode(data).decode("ascii")}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def workspace():
    return current_app.config["EXPLORER_WORKSPACE"]


@contextlib.contextmanager
def model_for(body: dict):
    """A replica of the model with the request's kernel edits, for the ``with`` block; a bad edit or a
    ValueError of the computation is a 400, every replica busy for too long a 503."""
    try:
        with workspace().pool.lend(inputs.edits(body)) as model:
            yield model
    except ValueError as e:
        raise BadRequest(str(e)) from None
    except Busy as e:
        raise ServiceUnavailable(str(e)) from None


@api.get("/model")
def model_info():
    ws = workspace()
    run = None
    if ws.run_dir is not None:
        epochs = sorted({epoch for snaps in ws.snapshots.values() for epoch, _, _ in snaps})
        # One colour limit per layer across all epochs, so the page shows growth honestly.
        limits = {name: float(max(np.abs(kernel).max() for _, kernel, _ in snaps)) for name, snaps in ws.snapshots.items()}
        run = {"folder": ws.run_dir, "history": ws.history, "epochs": epochs, "layers": list(ws.snapshots),
               "limits": limits}
    return jsonify(encode({   # encode: a snapshot's NaN becomes null
        "source": ws.source, "model_file": ws.model_file, "name": ws.model.name,
        "total_params": ws.model.count_params(), "layers": ws.calls,
        "dataset": ws.dataset, "test_count": int(len(ws.x_test)), "run": run, "dtype": ws.dtype,
        "limits": {"upload_bytes": inputs.MAX_UPLOAD_BYTES, "drawing": inputs.DRAWING},
    }))


@api.get("/test-image/<int:index>")
def test_image(index: int):
    ws = workspace()
    if not 0 <= index < len(ws.x_test):
        raise NotFound(f"test image {index} does not exist: {ws.dataset} has images 0-{len(ws.x_test) - 1}")
    return jsonify({"index": index, "label": int(ws.y_test[index]), "dataset": ws.dataset,
                    "pixels": ws.x_test[index].tolist()})


@api.post("/analyze")
def analyze():
    body = inputs.json_object(request)
    image = inputs.picture(body)
    label = inputs.label(body)
    backward = inputs.flag(body, "backward")
    with model_for(body) as model:  # encoded inside: an answer may hold views of the replica's weights
        return jsonify(encode({"image": image, **compute.analyze(model, image, label, backward=backward)}))


def _answer(function, position):
    """Run one of compute's cell functions on the request's picture and model; its ValueError is a 400."""
    body = inputs.json_object(request)
    image = inputs.picture(body)
    label = inputs.label(body)
    layer, index = position(body)
    with model_for(body) as model:
        return jsonify(encode(function(model, image, label, layer, index)))


@api.post("/cell")
def cell():
    """The arithmetic of one output value (the forward pass)."""
    return _answer(lambda model, image, label, layer, index: compute.cell(model, image, layer, index),
                   inputs.cell_position)


@api.post("/kernel-gradient")
def kernel_gradient():
    """dL/dK[i, j, c, f] of a conv call as the correlation of its input with dL/dz."""
    return _answer(compute.kernel_gradient_cell, inputs.kernel_position)


@api.post("/input-gradient")
def input_gradient():
    """dL/dx at one cell of a conv or pooling call's input."""
    return _answer(compute.input_gradient_cell, inputs.cell_position)


@api.post("/pool-gradient")
def pool_gradient():
    """Where one pooling window's gradient goes."""
    return _answer(compute.pool_gradient_cell, inputs.cell_position)


@api.get("/mistakes")
def mistakes():
    """The test images the (unedited) model misclassifies, computed once per server."""
    ws = workspace()
    return jsonify({"dataset": ws.dataset, "of": int(len(ws.x_test)), "indices": ws.mistakes()})


@api.post("/filters")
def filters():
    body = inputs.json_object(request)
    with model_for(body) as model:
        return jsonify(encode({"layers": compute.filters(model)}))


@api.get("/run/filters/<int:epoch>")
def run_filters(epoch: int):
    ws = workspace()
    layers = [{"name": name, "kernel": kernel, "bias": bias}
              for name, snaps in ws.snapshots.items() for e, kernel, bias in snaps if e == epoch]
    if not layers:
        raise NotFound(f"no filter snapshot for epoch {epoch}" if ws.run_dir else "the explorer was not opened on a "
                       "run folder")
    return jsonify(encode({"epoch": epoch, "layers": layers}))


@api.post("/upload")
def upload():
    """A picture file sent as the raw request body; answered with the 28x28 input made from it."""
    length = request.content_length
    if length is not None and length > inputs.MAX_UPLOAD_BYTES:
        raise BadRequest(f"the upload is larger than {inputs.MAX_UPLOAD_BYTES} bytes")
    return jsonify({"image": inputs.upload(request.get_data(cache=False)).tolist()})
