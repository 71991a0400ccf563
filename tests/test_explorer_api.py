"""The explorer's JSON API on a real server (a thread, 127.0.0.1, ephemeral port): the numbers it serves, and every
kind of bad request refused with the right status and a JSON error, the server still answering afterwards."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("flask", reason="the explorer needs the optional [explorer] extra (Flask)")

from convscope import runs
from convscope.datasets import mnist_sample
from convscope.explorer import compute
from convscope.explorer.server import ExplorerServer, create_app
from convscope.explorer.workspace import Workspace


@pytest.fixture(scope="module")
def server(run_dir):
    model_file = run_dir / runs.FINAL_MODEL
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    running = ExplorerServer(Workspace(run_dir, "mnist-sample", announce=lambda message: None)).start()
    yield running
    running.stop()
    assert hashlib.sha256(model_file.read_bytes()).hexdigest() == digest, "the explorer must never change the model file"


@pytest.fixture(scope="module")
def test_set():
    return mnist_sample.load_data()[1]


def send(server, method, path, body=None, headers=None, host=None):
    """A raw HTTP request (paths and headers exactly as given): ``(status, headers, bytes)``."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    all_headers = {"Host": f"127.0.0.1:{server.port}" if host is None else host}
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        all_headers["Content-Type"] = "application/json"
    if isinstance(body, str):
        body = body.encode()
    all_headers.update(headers or {})
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in all_headers.items():
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), payload


def ok(server, method, path, body=None, **kwargs):
    status, _, payload = send(server, method, path, body, **kwargs)
    assert status == 200, payload[:300]
    return json.loads(payload)


def refused(server, status_wanted, method, path, body=None, **kwargs) -> str:
    """Send a bad request: the status is ``status_wanted``, the body a JSON error without a traceback, and the
    server still answers. Returns the error message."""
    status, headers, payload = send(server, method, path, body, **kwargs)
    assert status == status_wanted, payload[:300]
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(payload)["error"]
    assert "Traceback" not in payload.decode() and 'File "' not in payload.decode()
    assert send(server, "GET", "/api/model")[0] == 200
    return error


def decode(t):
    return np.frombuffer(base64.b64decode(t["data"]), "<f4").reshape(t["shape"])


def pixels(test_set, index=0):
    return test_set[0][index].reshape(-1).tolist()


# ----------------------------------------------------------------------------------------------- the numbers


def test_model_description_and_run(server, run_dir):
    info = ok(server, "GET", "/api/model")
    assert [(l["name"], l["output_shape"], l["params"]) for l in info["layers"]] == [
        ("conv2d", [26, 26, 32], 320), ("max_pooling2d", [13, 13, 32], 0), ("conv2d_1", [11, 11, 64], 18496),
        ("max_pooling2d_1", [5, 5, 64], 0), ("flatten", [1600], 0), ("dropout", [1600], 0), ("dense", [10], 16010)]
    assert info["total_params"] == 34826 and info["dataset"] == "mnist-sample" and info["test_count"] == 1000
    assert info["run"]["epochs"] == [0, 1, 2] and info["run"]["layers"] == ["conv2d", "conv2d_1"]
    assert info["run"]["history"] == json.loads((run_dir / "history.json").read_text())


def test_analyze_matches_the_models_forward_pass(server, test_set):
    model = server.app.config["EXPLORER_WORKSPACE"].model
    result = ok(server, "POST", "/api/analyze", {"pixels": pixels(test_set, 4), "label": int(test_set[1][4])})
    records = model.trace(test_set[0][4:5, :, :, None].astype("float32") / 255.0, test_set[1][4:5].astype(int))
    np.testing.assert_allclose(result["probabilities"], records[-1].output[0], rtol=1e-6)
    assert result["prediction"] == int(np.argmax(records[-1].output[0]))
    assert result["label"] == int(test_set[1][4]) and result["label_source"] == "given"
    conv = result["layers"][0]
    np.testing.assert_array_equal(decode(conv["preactivation"]), records[0].preactivation[0])
    np.testing.assert_array_equal(decode(conv["output"]), records[0].output[0])
    np.testing.assert_array_equal(decode(conv["kernel_gradient"]), records[0].param_grads["kernel"])
    np.testing.assert_array_equal(decode(result["input_gradient"]), records[0].grad_input[0, :, :, 0])
    assert "preactivation" not in result["layers"][1]  # pooling has no activation


def test_a_drawing_is_fitted_like_images_to_mnist(server):
    from convscope.images import to_mnist

    canvas = np.zeros((280, 280))
    canvas[40:240, 130:150] = 255  # a "1"
    result = ok(server, "POST", "/api/analyze", {"drawing": canvas.reshape(-1).tolist()})
    np.testing.assert_array_equal(result["image"], to_mnist(canvas))
    assert result["label_source"] == "predicted" and result["label"] == result["prediction"]


def test_kernel_edits_change_a_copy_only(server, test_set):
    body = {"pixels": pixels(test_set, 0), "layer": "conv2d", "row": 12, "col": 14, "channel": 3}
    before = ok(server, "POST", "/api/cell", body)
    edit = {"layer": "conv2d", "index": [1, 1, 0, 3], "value": 2.5}
    after = ok(server, "POST", "/api/cell", {**body, "edits": [edit]})
    patch = decode(before["patch"])
    expected = before["z"] + (2.5 - decode(before["kernel"])[1, 1, 0]) * patch[1, 1, 0]
    assert after["z"] == pytest.approx(expected, rel=1e-5)
    assert after["matches"]  # the edited model's own forward pass agrees with the arithmetic
    again = ok(server, "POST", "/api/cell", body)
    assert again["z"] == before["z"]  # the next request without edits sees the original weights
    filters = ok(server, "POST", "/api/filters", {"edits": [edit]})
    assert decode(filters["layers"][0]["kernel"])[1, 1, 0, 3] == np.float32(2.5)


def test_cell_arithmetic_equals_the_loop_reference(server, test_set):
    """Item 4: the page's numbers for one cell are the loop definition's numbers for that cell."""
    from convscope.arraymath.reference import conv2d_loops, max_pool2d_loops

    model = server.app.config["EXPLORER_WORKSPACE"].model
    records = model.trace(test_set[0][2:3, :, :, None].astype("float32") / 255.0)
    for layer, row, col, channel in (("conv2d", 0, 0, 0), ("conv2d", 13, 9, 17), ("conv2d_1", 5, 6, 40),
                                     ("conv2d_1", 10, 10, 63)):
        cell = ok(server, "POST", "/api/cell", {"pixels": pixels(test_set, 2), "layer": layer, "row": row,
                                                 "col": col, "channel": channel})
        position = [l.name for l in model.layers].index(layer)
        kernel = model.get_layer(layer).kernel.value
        bias = model.get_layer(layer).bias.value
        z = conv2d_loops(records[position].input, kernel[..., channel : channel + 1], bias[channel : channel + 1])
        assert cell["z"] == pytest.approx(float(z[0, row, col, 0]), rel=1e-5, abs=1e-6)
        assert cell["output"] == pytest.approx(max(float(z[0, row, col, 0]), 0.0), rel=1e-5, abs=1e-6)
        assert cell["sum"] + cell["bias"] == pytest.approx(cell["z"])
        assert np.sum(decode(cell["products"]), dtype=np.float64) == pytest.approx(cell["sum"], rel=1e-6, abs=1e-7)
        np.testing.assert_array_equal(decode(cell["kernel"]), kernel[:, :, :, channel])
        assert cell["output"] == pytest.approx(cell["traced_output"], abs=1e-6)
        assert cell["matches"] == (np.float32(cell["output"]) == np.float32(cell["traced_output"]))
    cell = ok(server, "POST", "/api/cell", {"pixels": pixels(test_set, 2), "layer": "max_pooling2d_1", "row": 4,
                                             "col": 1, "channel": 9})
    pooled = max_pool2d_loops(records[2].output)  # the pooling layer's input is conv2d_1's output
    assert cell["kind"] == "max" and cell["output"] == pytest.approx(float(pooled[0, 4, 1, 9]))
    assert cell["receptive_field"] == {"top": 16, "bottom": 25, "left": 4, "right": 13, "whole": False}


def test_gradient_cells_equal_the_traced_gradients(server, test_set):
    """The backward panels' sums are the model's own dL/dK and dL/dx, within float32 rounding of a sum."""
    model = server.app.config["EXPLORER_WORKSPACE"].model
    label = int(test_set[1][2])
    records = model.trace(test_set[0][2:3, :, :, None].astype("float32") / 255.0, np.array([label]))
    body = {"pixels": pixels(test_set, 2), "label": label}
    for layer, index in (("conv2d", [1, 2, 0, 7]), ("conv2d_1", [0, 2, 31, 40])):
        cell = ok(server, "POST", "/api/kernel-gradient", {**body, "layer": layer, "index": index})
        traced = float(records[[r.call for r in records].index(layer)].param_grads["kernel"][tuple(index)])
        assert cell["traced"] == traced and abs(cell["sum"] - traced) <= cell["bound"] + 1e-7 * abs(traced)
        assert cell["matches"] == (np.float32(cell["sum"]) == np.float32(traced)) and cell["label"] == label
    cell = ok(server, "POST", "/api/input-gradient", {**body, "layer": "conv2d_1", "row": 6, "col": 7, "channel": 3})
    traced = float(records[2].grad_input[0, 6, 7, 3])
    assert cell["traced"] == traced and abs(cell["sum"] - traced) <= cell["bound"] + 1e-7 * abs(traced)
    assert len(cell["filters"]) == 64 and decode(cell["rotated_kernel"]).shape == (3, 3, 64)
    pool = ok(server, "POST", "/api/pool-gradient", {**body, "layer": "max_pooling2d", "row": 6, "col": 6, "channel": 0})
    assert pool["pool"] == "max" and pool["matches"] and len(pool["argmax"]) == 2
    analysis = ok(server, "POST", "/api/analyze", {**body, "backward": True})
    conv = analysis["layers"][0]
    np.testing.assert_array_equal(decode(conv["grad_preactivation"]), records[0].grad_preactivation[0])
    np.testing.assert_array_equal(decode(conv["grad_input"]), records[0].grad_input[0])
    assert "grad_output" not in ok(server, "POST", "/api/analyze", body)["layers"][0]


def test_a_blank_input_is_flagged(server, test_set):
    from convscope.images import BLANK_INK

    blank = ok(server, "POST", "/api/analyze", {"pixels": [0] * 784})
    assert blank["blank"] and blank["ink"] == 0
    faint = [0] * 784
    for k in range(BLANK_INK - 1):
        faint[300 + k] = 255
    assert ok(server, "POST", "/api/analyze", {"pixels": faint})["blank"]
    digit = ok(server, "POST", "/api/analyze", {"pixels": pixels(test_set, 0)})
    assert not digit["blank"] and digit["ink"] == int((test_set[0][0] > 51).sum()) and digit["dtype"] == "float32"


def test_mistakes_are_the_misclassified_test_images(server, test_set):
    model = server.app.config["EXPLORER_WORKSPACE"].model
    answer = ok(server, "GET", "/api/mistakes")
    predicted = np.argmax(model.predict(test_set[0][..., None].astype("float32") / 255.0, verbose=0), axis=1)
    assert answer["indices"] == np.flatnonzero(predicted != test_set[1]).tolist() and answer["of"] == 1000
    assert ok(server, "GET", "/api/mistakes") == answer


def test_test_images_and_run_snapshots(server, test_set, run_dir):
    image = ok(server, "GET", "/api/test-image/999")
    assert image["pixels"] == test_set[0][999].tolist() and image["label"] == int(test_set[1][999])
    snapshot = ok(server, "GET", "/api/run/filters/1")
    with np.load(run_dir / "filters" / "epoch_001.npz") as npz:
        np.testing.assert_array_equal(decode(snapshot["layers"][1]["kernel"]), npz["conv2d_1/kernel"])


def test_the_page_and_its_files_are_served(server):
    status, headers, body = send(server, "GET", "/")
    assert status == 200 and b"convscope explorer" in body and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for name in ("app.js", "style.css"):
        assert send(server, "GET", f"/static/{name}")[0] == 200


# ----------------------------------------------------------------------------------------------- bad requests

SECRET_MARKERS = (b"def create_app", b"root:", b"[build-system]", b"import ")


@pytest.mark.parametrize("path", [
    "/static/../server.py", "/static/..%2fserver.py", "/static/%2e%2e/server.py", "/static/%2e%2e%2fserver.py",
    "/static/..%5cserver.py", "/static/%252e%252e%252fserver.py", "/static/....//server.py",
    "/static/..%c0%afserver.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/../../../etc/passwd",
    "/static/../../../../pyproject.toml", "/static/app.js%00.html", "/static/", "/static/.", "/api/../server.py",
    "/%2e%2e/%2e%2e/etc/passwd", "/static/..\\server.py",
])
def test_no_path_leaves_the_static_folder(server, path):
    status, _, payload = send(server, "GET", path)
    assert status in (400, 404)
    assert not any(marker in payload for marker in SECRET_MARKERS)
    assert send(server, "GET", "/api/model")[0] == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "127.0.0.1", "localhost",
                                  "127.0.0.1.evil.example:{port}", "[::2]:{port}", "a b:{port}", ""])
def test_foreign_host_headers_are_refused(server, host):
    error = refused(server, 403, "GET", "/api/model", host=host.format(port=server.port))
    assert "Host" in error


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "LOCALHOST:{port}"])
def test_local_host_headers_are_served(server, host):
    assert send(server, "GET", "/api/model", host=host.format(port=server.port))[0] == 200


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://localhost:1"},
    {"Origin": "https://127.0.0.1:{port}"}, {"Origin": "http://127.0.0.1:{port}/path"},
    {"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "cross-site"},
])
def test_cross_origin_posts_are_refused(server, test_set, headers):
    headers = {k: v.format(port=server.port) for k, v in headers.items()}
    error = refused(server, 403, "POST", "/api/analyze", {"pixels": pixels(test_set)}, headers=headers)
    assert "cross" in error


def test_same_origin_posts_are_served(server, test_set):
    for origin in (f"http://127.0.0.1:{server.port}", f"http://localhost:{server.port}"):
        status, _, _ = send(server, "POST", "/api/analyze", {"pixels": pixels(test_set)},
                            headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
        assert status == 200


def test_a_non_local_host_answers_only_to_the_names_it_allows(run_dir):
    """Issue 16: a wildcard or LAN bind no longer answers any Host (DNS rebinding): it must name its Host values,
    and it keeps the Origin check."""
    workspace = Workspace(run_dir, "mnist-sample", announce=lambda message: None)
    for host in ("0.0.0.0", "192.168.7.7", "::"):
        with pytest.raises(ValueError, match=f"--host {re.escape(host)} serves beyond this machine: name the Host values"):
            create_app(workspace, host=host)
    with pytest.raises(ValueError, match="expected a host name or address without a port"):
        create_app(workspace, host="0.0.0.0", allow_hosts=["my-box.lan:8050"])
    anywhere = create_app(workspace, host="0.0.0.0", allow_hosts=["my-box.lan", "192.168.7.7"])
    anywhere.config["EXPLORER_PORT"] = 8050
    client = anywhere.test_client()
    for name, status in (("my-box.lan", 200), ("192.168.7.7", 200), ("localhost", 200), ("evil.example", 403),
                         ("rebound.attacker.example", 403)):
        assert client.get("/api/model", headers={"Host": f"{name}:8050"}).status_code == status, name
    body = {"pixels": [0] * 784}
    assert client.post("/api/analyze", json=body, headers={"Host": "my-box.lan:8050",
                                                            "Origin": "http://my-box.lan:8050"}).status_code == 200
    assert client.post("/api/analyze", json=body, headers={"Host": "my-box.lan:8050",
                                                            "Origin": "http://evil.example:8050"}).status_code == 403


NAN_PIXELS = '{"pixels": [NaN' + ", 0" * 783 + "]}"
INF_DRAWING = '{"drawing": [Infinity' + ", 0" * (280 * 280 - 1) + "]}"
HUGE_PIXELS = '{"pixels": [1e400' + ", 0" * 783 + "]}"


@pytest.mark.parametrize("body, message", [
    ({"drawing": [0] * 100}, "280"), ({"drawing": [0] * (280 * 280 + 1)}, "78400 numbers"),
    ({"pixels": [0] * 783}, "784 numbers"), ({"pixels": [[0] * 28] * 28}, "784 numbers"),
    (NAN_PIXELS, "finite"), (INF_DRAWING, "finite"), (HUGE_PIXELS, "finite"),
    ({"pixels": [-1] + [0] * 783}, "between 0 and 255"), ({"pixels": [256] + [0] * 783}, "between 0 and 255"),
    ({"pixels": [10**400] + [0] * 783}, "finite"), ('{"pixels": ' + "[" * 100_000 + "]" * 100_000 + "}", "JSON object"),
    ({"pixels": ["1"] + [0] * 783}, "only numbers"), ({"pixels": [True] + [0] * 783}, "only numbers"),
    ({"pixels": None}, "784 numbers"), ({"pixels": [0] * 784, "drawing": [0] * 78400}, "exactly one"), ({}, "exactly one"),
    ([1, 2, 3], "JSON object"), ('{"pixels": [', "JSON object"), ("null", "JSON object"),
    ({"pixels": [0] * 784, "label": 10}, "label"), ({"pixels": [0] * 784, "label": "3"}, "label"),
    ({"pixels": [0] * 784, "label": 2.5}, "label"), ({"pixels": [0] * 784, "label": True}, "label"),
    ({"pixels": [0] * 784, "edits": {}}, "edits"),
    ({"pixels": [0] * 784, "edits": [{"layer": "nope", "index": [0, 0, 0, 0], "value": 1}]}, "not a conv layer"),
    ({"pixels": [0] * 784, "edits": [{"layer": "dense", "index": [0, 0, 0, 0], "value": 1}]}, "not a conv layer"),
    ({"pixels": [0] * 784, "edits": [{"layer": "conv2d", "index": [3, 0, 0, 0], "value": 1}]}, "inside the kernel"),
    ({"pixels": [0] * 784, "edits": [{"layer": "conv2d", "index": [0, 0, 0], "value": 1}]}, "inside the kernel"),
    ({"pixels": [0] * 784, "edits": [{"layer": "conv2d", "index": [0, 0, 0, -1], "value": 1}]}, "inside the kernel"),
    ({"pixels": [0] * 784, "edits": [{"layer": "conv2d", "index": [0, 0, 0, 0], "value": 1e6}]}, "finite number"),
    ({"pixels": [0] * 784, "edits": [{"layer": "conv2d", "index": [0, 0, 0, 0], "value": 10**20}]}, "finite number"),
    ({"pixels": [0] * 784, "edits": [{"layer": "conv2d", "index": [0, 0, 0, 0], "value": -(10**400)}]}, "finite number"),
    ({"pixels": [0] * 784, "edits": [{"layer": "conv2d", "index": [0, 0, 0, 0], "value": "1"}]}, "finite number"),
    ({"pixels": [0] * 784, "edits": [{"layer": "conv2d", "index": [0, 0, 0, 0]}]}, "each edit must be"),
    ({"pixels": [0] * 784, "edits": [{"layer": "conv2d", "index": [0, 0, 0, 0], "value": 1}] * 1001}, "at most 1000"),
])
def test_bad_analyze_bodies_get_400(server, body, message):
    error = refused(server, 400, "POST", "/api/analyze", body, headers={"Content-Type": "application/json"})
    assert message in error


def test_nan_in_an_edit_gets_400(server):
    body = '{"pixels": [' + ", ".join(["0"] * 784) + '], "edits": [{"layer": "conv2d", "index": [0,0,0,0], "value": NaN}]}'
    assert "finite number" in refused(server, 400, "POST", "/api/analyze", body, headers={"Content-Type": "application/json"})


def test_non_json_bodies_get_400(server):
    error = refused(server, 400, "POST", "/api/analyze", "pixels=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert "application/json" in error


@pytest.mark.parametrize("fields, message", [
    ({"layer": "dense", "row": 0, "col": 0, "channel": 0}, "outside 'dense'"),
    ({"layer": "dense", "unit": 10}, "outside 'dense'"),
    ({"layer": "flatten", "row": 0, "col": 0, "channel": 0}, "'flatten' is a Flatten: the page explains conv"),
    ({"layer": "nope", "row": 0, "col": 0, "channel": 0}, "no layer call named 'nope'"),
    ({"layer": "conv2d", "row": 26, "col": 0, "channel": 0}, "outside"),
    ({"layer": "conv2d", "row": 0, "col": 0, "channel": 32}, "outside"),
    ({"layer": "conv2d", "row": -1, "col": 0, "channel": 0}, "non-negative integers"),
    ({"layer": "conv2d", "row": 1.5, "col": 0, "channel": 0}, "non-negative integers"),
    ({"layer": "conv2d", "col": 0, "channel": 0}, "non-negative integers"),
    ({"layer": "dense", "unit": -1}, "non-negative integers"),
    ({"row": 0, "col": 0, "channel": 0}, "name of a layer call"),
])
def test_bad_cells_get_400(server, test_set, fields, message):
    assert message in refused(server, 400, "POST", "/api/cell", {"pixels": pixels(test_set), **fields})


@pytest.mark.parametrize("route, fields, message", [
    ("kernel-gradient", {"layer": "conv2d", "index": [3, 0, 0, 0]}, "outside 'conv2d''s kernel"),
    ("kernel-gradient", {"layer": "conv2d", "index": [0, 0, 1, 0]}, "outside 'conv2d''s kernel"),
    ("kernel-gradient", {"layer": "conv2d_1", "index": [0, 0, 0, 64]}, "outside 'conv2d_1''s kernel"),
    ("kernel-gradient", {"layer": "conv2d", "index": [0, 0, 0]}, "4 non-negative integers"),
    ("kernel-gradient", {"layer": "conv2d", "index": [0, 0, 0, -1]}, "4 non-negative integers"),
    ("kernel-gradient", {"layer": "conv2d", "index": [0, 0, 0, 1.0]}, "4 non-negative integers"),
    ("kernel-gradient", {"layer": "conv2d", "index": "0,0,0,0"}, "4 non-negative integers"),
    ("kernel-gradient", {"layer": "max_pooling2d", "index": [0, 0, 0, 0]}, "is a MaxPooling2D: this gradient"),
    ("kernel-gradient", {"layer": "dense", "index": [0, 0, 0, 0]}, "is a Dense: this gradient"),
    ("kernel-gradient", {"layer": "nope", "index": [0, 0, 0, 0]}, "no layer call named"),
    ("kernel-gradient", {"layer": "conv2d", "index": [0, 0, 0, 0], "label": 10}, "label"),
    ("input-gradient", {"layer": "conv2d", "row": 28, "col": 0, "channel": 0}, "outside 'conv2d''s input"),
    ("input-gradient", {"layer": "conv2d_1", "row": 0, "col": 0, "channel": 32}, "outside 'conv2d_1''s input"),
    ("input-gradient", {"layer": "conv2d", "row": 0, "col": 0}, "non-negative integers"),
    ("input-gradient", {"layer": "flatten", "row": 0, "col": 0, "channel": 0}, "is a Flatten: this gradient"),
    ("input-gradient", {"layer": "dense", "unit": 0}, "is a Dense: this gradient"),
    ("input-gradient", {"layer": "max_pooling2d", "row": 26, "col": 0, "channel": 0}, "outside 'max_pooling2d''s input"),
    ("pool-gradient", {"layer": "max_pooling2d", "row": 13, "col": 0, "channel": 0}, "outside 'max_pooling2d''s output"),
    ("pool-gradient", {"layer": "conv2d", "row": 0, "col": 0, "channel": 0}, "is a Conv2D: this gradient"),
    ("pool-gradient", {"layer": "max_pooling2d", "row": True, "col": 0, "channel": 0}, "non-negative integers"),
    ("pool-gradient", {"layer": 3, "row": 0, "col": 0, "channel": 0}, "name of a layer call"),
])
def test_bad_gradient_cells_get_400(server, test_set, route, fields, message):
    assert message in refused(server, 400, "POST", f"/api/{route}", {"pixels": pixels(test_set), **fields})


@pytest.mark.parametrize("route, fields", [
    ("kernel-gradient", '"layer": "conv2d", "index": [0, 0, 0, NaN]'),
    ("input-gradient", '"layer": "conv2d", "row": NaN, "col": 0, "channel": 0'),
    ("pool-gradient", '"layer": "max_pooling2d", "row": 0, "col": Infinity, "channel": 0'),
    ("cell", '"layer": "dense", "unit": NaN'),
])
def test_nan_positions_get_400(server, route, fields):
    body = '{"pixels": [' + ", ".join(["0"] * 784) + "], " + fields + "}"
    assert "non-negative integers" in refused(server, 400, "POST", f"/api/{route}", body,
                                              headers={"Content-Type": "application/json"})


def test_bad_backward_flags_and_pictures_on_new_routes_get_400(server, test_set):
    assert '"backward" must be true or false' in refused(server, 400, "POST", "/api/analyze",
                                                         {"pixels": pixels(test_set), "backward": "yes"})
    for route in ("kernel-gradient", "input-gradient", "pool-gradient"):
        body = NAN_PIXELS[:-1] + ', "layer": "conv2d", "index": [0, 0, 0, 0], "row": 0, "col": 0, "channel": 0}'
        assert "finite" in refused(server, 400, "POST", f"/api/{route}", body,
                                   headers={"Content-Type": "application/json"})
        assert "exactly one" in refused(server, 400, "POST", f"/api/{route}", {"layer": "conv2d"})
    refused(server, 405, "POST", "/api/mistakes", {})


def test_missing_things_get_404(server):
    assert "0-999" in refused(server, 404, "GET", "/api/test-image/1000")
    refused(server, 404, "GET", "/api/test-image/-1")
    assert "epoch 99" in refused(server, 404, "GET", "/api/run/filters/99")
    refused(server, 404, "GET", "/api/nothing")
    refused(server, 405, "GET", "/api/analyze")


def test_oversized_bodies_are_refused(server):
    refused(server, 413, "POST", "/api/analyze", b"{" + b" " * (5 * 2**20) + b"}",
            headers={"Content-Type": "application/json"})


def png_bytes(array) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_are_decoded_within_bounds(server, test_set):
    from convscope.images import to_mnist

    big = np.kron(255 - test_set[0][3], np.ones((5, 5), np.uint8))  # 140x140, dark digit on white
    result = ok(server, "POST", "/api/upload", png_bytes(big), headers={"Content-Type": "image/png"})
    np.testing.assert_array_equal(result["image"], to_mnist(big))
    headers = {"Content-Type": "application/octet-stream"}
    assert "empty" in refused(server, 400, "POST", "/api/upload", b"", headers=headers)
    assert "cannot read" in refused(server, 400, "POST", "/api/upload", b"not an image at all", headers=headers)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    assert "cannot read" in refused(server, 400, "POST", "/api/upload", svg, headers=headers)
    truncated = png_bytes(big)[:200]
    assert "cannot read" in refused(server, 400, "POST", "/api/upload", truncated, headers=headers)
    # A small file that declares 4.2 million pixels: refused from its header, before decompression.
    bomb = png_bytes(np.zeros((2100, 2000), np.uint8))
    assert len(bomb) < 100_000
    assert "more than" in refused(server, 400, "POST", "/api/upload", bomb, headers=headers)
    assert "larger than" in refused(server, 400, "POST", "/api/upload", os.urandom(3 * 2**20), headers=headers)


def test_an_internal_error_is_a_json_500_without_traceback(server, test_set, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /home/someone")

    monkeypatch.setattr(compute, "analyze", broken)
    error = refused(server, 500, "POST", "/api/analyze", {"pixels": pixels(test_set)})
    assert error.startswith("internal error (RuntimeError)") and "secret" not in error


def test_explore_command_serves_prints_its_address_and_warns_off_local(run_dir):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for host, warned in (("127.0.0.1", False), ("0.0.0.0", True)):
        allow = ["--allow-host", "my-box.lan"] if warned else []
        process = subprocess.Popen(
            [sys.executable, "-m", "convscope.cli", "explore", str(run_dir), "--port", "0", "--no-browser",
             "--dataset", "mnist-sample", "--host", host, *allow],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            line = ""
            while "convscope explorer:" not in line:
                line = process.stdout.readline()
                assert line, process.stderr.read()
            url = line.split()[2]
            assert url.startswith("http://127.0.0.1:")
            port = int(url.rstrip("/").rsplit(":", 1)[1])
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/api/model")
            assert connection.getresponse().status == 200
        finally:
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
        assert process.returncode == 0
        assert ("warning: serving on 0.0.0.0" in err) == warned
        assert ("by the name(s) my-box.lan: they see the model" in err) == warned


def test_a_public_bind_without_allowed_names_is_a_one_line_error(run_dir, capsys):
    from convscope.cli import main

    assert main(["explore", str(run_dir), "--host", "0.0.0.0", "--no-browser", "--dataset", "mnist-sample"]) == 2
    assert "--host 0.0.0.0 serves beyond this machine: name the Host values" in capsys.readouterr().err


def test_errors_the_http_layer_answers_itself_are_json(server):
    """A request line or a header over Python's limits is refused by http.server before the app: as JSON too."""
    status, headers, payload = send(server, "GET", "/api/test-image/0?" + "x" * 70_000)
    assert status == 414 and headers["Content-Type"] == "application/json" and json.loads(payload)["status"] == 414
    status, headers, payload = send(server, "GET", "/api/model", headers={f"X-{k}": "y" for k in range(120)})
    assert status == 431 and headers["Content-Type"] == "application/json" and json.loads(payload)["status"] == 431
    assert send(server, "GET", "/api/model")[0] == 200


def test_idle_and_surplus_connections_are_closed(server):
    """Half-sent requests cannot hold the server: an idle connection is closed after IDLE_SECONDS, and connections
    past MAX_CONNECTIONS are closed at once; the server answers throughout."""
    import socket
    import time

    from convscope.explorer import server as server_module

    held = []
    for _ in range(server_module.MAX_CONNECTIONS + 8):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        held.append(sock)
    time.sleep(0.5)
    surplus = held[-1]
    surplus.settimeout(5)
    assert surplus.recv(100) == b""  # closed without an answer
    start = time.monotonic()
    held[0].settimeout(server_module.IDLE_SECONDS + 10)
    answer = held[0].recv(100)  # returns (no socket timeout): closed, or a timeout answer, then closed
    assert answer == b"" or answer.startswith(b"HTTP/1."), answer
    assert time.monotonic() - start <= server_module.IDLE_SECONDS + 5
    for sock in held:
        sock.close()
    time.sleep(0.5)
    assert send(server, "GET", "/api/model")[0] == 200


def test_non_finite_numbers_travel_as_null_never_as_bare_nan(server, test_set, monkeypatch):
    """JSON has no NaN: a model whose outputs are not finite is answered with null, which the page can parse."""
    analyze = compute.analyze

    def non_finite(*args, **kwargs):
        result = analyze(*args, **kwargs)
        result["probabilities"] = [float("nan"), float("inf")] + result["probabilities"][2:]
        return result

    monkeypatch.setattr(compute, "analyze", non_finite)
    status, _, payload = send(server, "POST", "/api/analyze", {"pixels": pixels(test_set)})
    assert status == 200 and b"NaN" not in payload and b"Infinity" not in payload
    answer = json.loads(payload, parse_constant=lambda name: pytest.fail(f"bare {name} in the JSON"))
    assert answer["probabilities"][:2] == [None, None]


def test_a_run_history_with_nan_is_answered_with_null(run_dir, tmp_path):
    """/api/model sent the run's history (and snapshot colour limits) past ``encode``: a diverged run's NaN in
    history.json reached the page as a bare NaN, which JSON.parse refuses."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    history = json.loads((run / "history.json").read_text())
    history["loss"][0] = float("nan")
    (run / "history.json").write_text(json.dumps(history))
    running = ExplorerServer(Workspace(run, "mnist-sample", announce=lambda message: None)).start()
    try:
        status, _, payload = send(running, "GET", "/api/model")
    finally:
        running.stop()
    assert status == 200 and b"NaN" not in payload
    answer = json.loads(payload, parse_constant=lambda name: pytest.fail(f"bare {name} in the JSON"))
    assert answer["run"]["history"]["loss"][0] is None


@pytest.mark.parametrize("content, message", [
    ('{"loss": [1, 2], "accuracy": "high"}', r"history.json: expected \{metric: \[number, ...\]\}"),
    ("[" * 100_000, "history.json: not valid JSON"),
    (" " * (runs.MAX_HISTORY_BYTES + 1), r"history.json: 16777217 bytes, more than the 16777216 a run history can need"),
])
def test_a_tampered_run_history_is_refused_in_one_line(run_dir, tmp_path, content, message):
    """history.json was read whole with json.load, unchecked, by ``show history`` and the explorer."""
    from convscope.cli import main

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "history.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        runs.read_history(run)
    assert main(["show", "history", str(run), "--out", str(tmp_path / "pictures")]) == 2


def test_a_busy_port_is_a_plain_error(server, run_dir):
    workspace = server.app.config["EXPLORER_WORKSPACE"]
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{server.port}: .*choose another --port"):
        ExplorerServer(workspace, port=server.port)
