"""The explorer's JSON API: a Flask blueprint over ``compute`` (numbers) and ``inputs`` (checks).

Arrays travel as ``{"shape": [...], "data": base64 of little-endian float32}``: the
exact values the model computed, about a third the size of decimal text. Every
request that runs the model works on its own copy, with the page's kernel edits
applied (``compute.edited_copy``): the loaded model and its file never change.
"""

from __future__ import annotations

import base64

import numpy as np
from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound

from . import compute, inputs

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
        return value.item()
    return value


def workspace():
    return current_app.config["EXPLORER_WORKSPACE"]


def model_for(body: dict):
    """A private copy of the model with the request's kernel edits; a bad edit is a 400."""
    try:
        return compute.edited_copy(workspace().model, inputs.edits(body))
    except ValueError as e:
        raise BadRequest(str(e)) from None


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
    return jsonify({
        "source": ws.source, "model_file": ws.model_file, "name": ws.model.name,
        "total_params": ws.model.count_params(), "layers": ws.calls,
        "dataset": ws.dataset, "test_count": int(len(ws.x_test)), "run": run, "dtype": ws.dtype,
        "limits": {"upload_bytes": inputs.MAX_UPLOAD_BYTES, "drawing": inputs.DRAWING},
    })


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
    try:
        result = compute.analyze(model_for(body), image, label, backward=inputs.flag(body, "backward"))
    except ValueError as e:
        raise BadRequest(str(e)) from None
    return jsonify(encode({"image": image, **result}))


def _answer(function, position):
    """Run one of compute's cell functions on the request's picture and model; its ValueError is a 400."""
    body = inputs.json_object(request)
    image = inputs.picture(body)
    label = inputs.label(body)
    layer, index = position(body)
    model = model_for(body)
    try:
        return jsonify(encode(function(model, image, label, layer, index)))
    except ValueError as e:
        raise BadRequest(str(e)) from None


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
    return jsonify(encode({"layers": compute.filters(model_for(body))}))


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
