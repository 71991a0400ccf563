"""A bounded load test of the explorer on 127.0.0.1 (issue #8).

Starts the explorer on a small model (a subprocess running ``convscope explore``, or a thread in this
process), on an ephemeral port of 127.0.0.1, then:

* CLIENTS threads each send REQUESTS prediction requests (``POST /api/analyze`` with a drawn digit,
  the 280x280 canvas the page sends), one connection per request as the page's fetch() does against
  werkzeug's HTTP/1.0 server; the whole run also stops at --max-seconds;
* during the load, a burst of bad requests (foreign Host, cross-origin POST, NaN pixels, path traversal,
  an oversized body, a non-JSON body) must each be answered 4xx with a JSON error;
* afterwards the server must still answer (``GET /api/model`` and one more prediction);
* with ``--edit-share``, that share of the clients sends a kernel edit with every request (as a page does
  once the learner has edited a weight), and the explorer's memory (resident, and its peak) is printed
  before and after: the server lends each request one of its model replicas, so editing clients must not
  cost a copy of the model each (``--model large``: 354 MB of weights).

It prints requests, clients, p50 / p90 / p99 latency, throughput and errors, and exits 0 only when
there were no errors, every bad request got its 4xx and the server still answers. It never contacts
anything but 127.0.0.1.

    python scripts/load_test.py                          # 4 clients x 1000 requests, keras-convnet
    python scripts/load_test.py --clients 2 --requests 100 --model small --server thread
    python scripts/load_test.py --json results.json      # the figures, for docs/reliability
    python scripts/load_test.py --model large --clients 8 --requests 10 --edit-share 0.5   # memory under edits
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager

import numpy as np

HOST = "127.0.0.1"
TIMEOUT = 60  # seconds per request


def make_model(kind: str, path: str) -> str:
    """An untrained model file (weights from seed 0): the Keras convnet, or a small convnet."""
    import convscope
    from convscope import layers, runs

    convscope.utils.set_random_seed(0)
    layers.clear_session()
    if kind == "keras-convnet":
        model = runs.build_model(runs.RunConfig())
    elif kind == "small":
        model = convscope.Sequential([convscope.Input(shape=(28, 28, 1)), layers.Conv2D(4, 3, activation="relu"),
                                      layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10, activation="softmax")])
    elif kind == "large":  # 21,632 x 4,096 dense weights: 354 MB of float32, the size that made copies hurt
        model = convscope.Sequential([convscope.Input(shape=(28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                                      layers.Flatten(), layers.Dense(4096, activation="relu"),
                                      layers.Dense(10, activation="softmax")])
    else:
        raise ValueError(f"--model must be keras-convnet, small or large, received {kind!r}")
    model.save(path)
    return path


def drawn_digit() -> list:
    """A "7" drawn on the page's 280x280 canvas (white strokes on black), flattened row by row."""
    canvas = np.zeros((280, 280))
    canvas[60:80, 70:210] = 255  # the top bar
    for row in range(80, 230):  # the stroke down to the left
        col = int(200 - (row - 80) * 0.55)
        canvas[row, col - 10 : col + 10] = 255
    return canvas.reshape(-1).astype(int).tolist()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            host: str | None = None):
    """One request on a fresh connection: ``(status, content type, payload bytes)``."""
    connection = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host or f"{HOST}:{port}")
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


JSON = {"Content-Type": "application/json"}


def abuse_requests(port: int) -> list[tuple[str, tuple, tuple]]:
    """(what, expected statuses, request arguments) for the bad requests sent during the load."""
    nan_pixels = json.dumps({"pixels": [float("nan")] * 784}).encode()  # Python writes NaN; Flask reads it
    good = json.dumps({"pixels": [0] * 784}).encode()
    return [
        ("foreign Host header (DNS rebinding)", (403,), ("GET", "/api/model", None, None, "evil.example:80")),
        ("foreign Host on a prediction", (403,), ("POST", "/api/analyze", good, JSON, f"attacker.test:{port}")),
        ("cross-origin POST", (403,), ("POST", "/api/analyze", good, {**JSON, "Origin": "http://evil.example"})),
        ("NaN pixels", (400,), ("POST", "/api/analyze", nan_pixels, JSON)),
        ("infinite drawing value", (400,), ("POST", "/api/analyze", b'{"drawing": [Infinity]}', JSON)),
        ("path traversal", (400, 404), ("GET", "/static/../../../../etc/passwd")),
        ("encoded path traversal", (400, 404), ("GET", "/static/..%2f..%2fserver.py")),
        ("oversized body", (413,), ("POST", "/api/analyze", b"{" + b" " * (5 * 2**20) + b"}", JSON)),
        ("not JSON", (400, 415), ("POST", "/api/analyze", b"pixels=1", {"Content-Type": "text/plain"})),
        ("traversal out of the API", (400, 404), ("GET", "/api/../../etc/passwd")),
    ]


@contextmanager
def explorer(model_file: str, mode: str):
    """Yield the port of an explorer serving ``model_file`` on 127.0.0.1, started as ``mode`` (process / thread)."""
    if mode == "thread":
        from convscope.explorer.server import ExplorerServer
        from convscope.explorer.workspace import Workspace

        access_log = logging.getLogger("werkzeug")  # one line per request: thousands here
        level = access_log.level
        access_log.setLevel(logging.WARNING)
        server = ExplorerServer(Workspace(model_file, "mnist-sample", announce=lambda message: None), HOST, 0).start()
        try:
            yield server.port, os.getpid()
        finally:
            server.stop()
            access_log.setLevel(level)
        return
    proc = subprocess.Popen([sys.executable, "-m", "convscope.cli", "explore", model_file, "--host", HOST, "--port",
                             "0", "--no-browser", "--dataset", "mnist-sample"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        deadline = time.monotonic() + 120
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            port = int(match.group(1)) if match else None
        if port is None:
            raise RuntimeError("the explorer did not print its address")
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)  # the server stops cleanly on Ctrl-C
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def memory_mb(pid: int) -> dict:
    """A process's resident memory now and its peak (MB), from /proc (None where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return {"rss_mb": None, "peak_mb": None}
    kb = lambda key: int(fields[key].split()[0]) if key in fields else None  # noqa: E731
    return {"rss_mb": round(kb("VmRSS") / 1024, 1), "peak_mb": round(kb("VmHWM") / 1024, 1)}


def run(clients: int = 4, requests: int = 1000, model: str = "keras-convnet", server: str = "process",
        max_seconds: float = 600.0, abuse: bool = True, log=print, edit_share: float = 0.0) -> dict:
    """Run the load test; returns the figures (see the module docstring)."""
    if not (1 <= clients <= 64 and 1 <= requests <= 100_000):
        raise ValueError("clients must be 1-64 and requests per client 1-100000")
    if not 0.0 <= edit_share <= 1.0:
        raise ValueError("edit_share must be between 0 and 1")
    body = json.dumps({"drawing": drawn_digit()}).encode()
    editing = set(range(round(clients * edit_share)))

    def edited_body(i: int) -> bytes:
        edit = {"layer": "conv2d", "index": [i % 3, 1, 0, i % 4], "value": 0.5 + i}
        return json.dumps({"drawing": drawn_digit(), "edits": [edit]}).encode()

    with tempfile.TemporaryDirectory(prefix="convscope-load-") as folder:
        model_file = make_model(model, os.path.join(folder, "model.convscope"))
        with explorer(model_file, server) as (port, pid):
            # One request first: the answer is a real prediction, and start-up costs stay out of the figures.
            status, _, payload = request(port, "POST", "/api/analyze", body, JSON)
            first = json.loads(payload) if status == 200 else {}
            if status != 200 or not 0 <= first.get("prediction", -1) <= 9:
                raise RuntimeError(f"the first prediction failed: {status} {payload[:200]!r}")
            memory_before = memory_mb(pid)
            latencies = [[] for _ in range(clients)]
            failures: list[str] = []
            deadline = time.monotonic() + max_seconds
            lock = threading.Lock()

            def client(i: int) -> None:
                mine = edited_body(i) if i in editing else body
                for _ in range(requests):
                    if time.monotonic() > deadline:
                        return
                    start = time.perf_counter()
                    try:
                        status, ctype, payload = request(port, "POST", "/api/analyze", mine, JSON)
                        good = (status == 200 and ctype.startswith("application/json")
                                and b'"prediction":' in payload)
                        problem = None if good else f"status {status}: {payload[:120]!r}"
                    except (OSError, http.client.HTTPException) as e:
                        problem = f"{type(e).__name__}: {e}"
                    latencies[i].append(time.perf_counter() - start)
                    if problem:
                        with lock:
                            failures.append(problem)

            abuse_results = []

            def burst() -> None:
                time.sleep(0.2)  # while the clients are busy
                for what, expected, args in abuse_requests(port):
                    try:
                        status, ctype, payload = request(port, *args)
                        as_json = ctype.startswith("application/json") and b"Traceback" not in payload
                    except (OSError, http.client.HTTPException) as e:
                        status, as_json = f"{type(e).__name__}", False
                    abuse_results.append({"request": what, "expected": "/".join(map(str, expected)),
                                          "status": status, "ok": status in expected and as_json})

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            if abuse:
                threads.append(threading.Thread(target=burst))
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            after_model = request(port, "GET", "/api/model")[0]
            after_predict = request(port, "POST", "/api/analyze", body, JSON)[0]
            memory_after = memory_mb(pid)
    flat = np.array([t for per_client in latencies for t in per_client]) * 1000
    sent = len(flat)
    result = {
        "model": model, "server": server, "clients": clients, "requests_per_client": requests,
        "requests": sent, "planned": clients * requests, "stopped_by_deadline": sent < clients * requests,
        "wall_s": round(wall, 3), "throughput_rps": round(sent / wall, 1) if wall else None,
        "p50_ms": round(float(np.percentile(flat, 50)), 1), "p90_ms": round(float(np.percentile(flat, 90)), 1),
        "p99_ms": round(float(np.percentile(flat, 99)), 1), "max_ms": round(float(flat.max()), 1),
        "errors": len(failures), "first_errors": failures[:5], "prediction": first["prediction"],
        "abuse": abuse_results, "abuse_ok": all(r["ok"] for r in abuse_results),
        "answers_afterwards": after_model == 200 and after_predict == 200,
        "editing_clients": len(editing), "memory_before": memory_before, "memory_after": memory_after,
    }
    result["passed"] = (result["errors"] == 0 and result["abuse_ok"] and result["answers_afterwards"]
                        and not result["stopped_by_deadline"])
    return result


def report(r: dict) -> str:
    lines = [
        f"explorer load test: {r['model']} model, server in a {r['server']}, 127.0.0.1",
        f"  requests     {r['requests']} of {r['planned']} ({r['clients']} clients x {r['requests_per_client']})"
        + ("  STOPPED BY --max-seconds" if r["stopped_by_deadline"] else ""),
        f"  clients      {r['clients']}",
        f"  latency      p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms",
        f"  throughput   {r['throughput_rps']} requests/s over {r['wall_s']} s",
        f"  errors       {r['errors']}" + (f"  e.g. {r['first_errors'][0]}" if r["errors"] else ""),
        f"  editing      {r['editing_clients']} of {r['clients']} clients send a kernel edit with every request",
        f"  memory       server resident {r['memory_before']['rss_mb']} MB before the load, "
        f"{r['memory_after']['rss_mb']} MB after (peak {r['memory_after']['peak_mb']} MB)",
    ]
    if r["abuse"]:
        lines.append(f"  bad requests {sum(a['ok'] for a in r['abuse'])}/{len(r['abuse'])} answered as expected "
                     "during the load:")
        lines += [f"    {a['status']} (expected {a['expected']})  {a['request']}" for a in r["abuse"]]
    lines.append(f"  afterwards   {'the server still answers' if r['answers_afterwards'] else 'NO ANSWER'}")
    lines.append("PASSED" if r["passed"] else "FAILED")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "A bounded load test of the explorer.").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per client (default 1000)")
    parser.add_argument("--model", choices=("keras-convnet", "small", "large"), default="keras-convnet")
    parser.add_argument("--edit-share", type=float, default=0.0,
                        help="share of the clients that send a kernel edit with every request (default 0)")
    parser.add_argument("--server", choices=("process", "thread"), default="process",
                        help="run the explorer as a subprocess (default) or a thread of this process")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop sending after this long (default 600)")
    parser.add_argument("--no-abuse", action="store_true", help="skip the burst of bad requests")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    result = run(args.clients, args.requests, args.model, args.server, args.max_seconds, not args.no_abuse,
                 edit_share=args.edit_share)
    print(report(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
