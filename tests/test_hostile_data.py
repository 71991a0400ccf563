"""Data readers bounded by what they will allocate (issue 16): IDX, ``.npz`` datasets, run-folder filter snapshots,
and downloads with an overall deadline and a minimum rate.

Hostile files are generated here, small, with honest headers for big shapes. The bombs run in a fresh interpreter
that prints its time and its peak memory above its level before the read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from convscope.datasets import download, idx, mnist
from convscope.errors import DataFileError, DownloadError
from convscope.viz import evolution

MAX_SECONDS = 2.0
MAX_PEAK_MB = 200.0

MEASURE = r"""
import json, sys, time
import numpy as np
from convscope.datasets import idx, mnist
from convscope.viz import evolution

def kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))

with open("/proc/self/clear_refs", "w") as f:  # the peak (VmHWM) restarts from the current level
    f.write("5")
before = kb("VmRSS:")
start = time.perf_counter()
try:
    exec(sys.argv[1])
    outcome, message = "loaded", ""
except Exception as e:
    outcome, message = type(e).__name__, str(e)
print(json.dumps({"outcome": outcome, "message": message, "seconds": time.perf_counter() - start,
                  "peak_mb": (kb("VmHWM:") - before) / 1024}))
"""


def measured(statement: str, env=None, timeout=30) -> dict:
    """Run ``statement`` in a fresh interpreter: outcome, message, seconds and peak MB above its level."""
    done = subprocess.run([sys.executable, "-c", MEASURE, statement], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    print(f"{statement}: {result['outcome']} in {result['seconds']:.3f} s, peak {result['peak_mb']:.1f} MB: "
          f"{result['message']}")
    return result


def assert_within(result, outcome="DataFileError", match="", max_peak_mb=MAX_PEAK_MB):
    assert result["outcome"] == outcome and match in result["message"], result
    assert result["seconds"] < MAX_SECONDS and result["peak_mb"] < max_peak_mb, result


def budget_env(monkeypatch, size: str) -> dict:
    import os

    monkeypatch.setenv("CONVSCOPE_MAX_BYTES", size)
    return dict(os.environ)


# ----------------------------------------------------------------------------------------------- IDX


def labels_header(n: int) -> bytes:
    return struct.pack(">II", idx.LABELS_MAGIC, n)


def test_idx_declared_size_is_checked_against_the_budget_before_reading(tmp_path, monkeypatch):
    """An honest 10 MiB label file, under max_bytes: with a 4 MB budget it is refused from its header."""
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(labels_header(10 * 2**20) + bytes(10 * 2**20), 9))
    env = budget_env(monkeypatch, "4M")
    result = measured(f"idx.read_idx({str(path)!r})", env=env)
    assert_within(result, match="labels.gz: IDX data of dimensions (10485760,) would take 10.5 MB, above the memory "
                                "budget of 4.19 MB")
    with pytest.raises(DataFileError, match="above the memory budget"):
        idx.read_idx(path)


def test_idx_gzip_bomb_after_a_small_header_is_counted_not_kept(tmp_path):
    """A header declaring 60 bytes, then 101 MiB of zeros (100 KB of gzip): the reader keeps the 60 bytes and one
    1 MiB chunk, never the stream (the whole stream was read into memory before)."""
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(struct.pack(">I3I", idx.IMAGES_MAGIC, 3, 4, 5) + bytes(101 * 2**20), 9))
    result = measured(f"idx.read_idx({str(path)!r})")
    assert_within(result, match="bomb.gz: decompresses to more than the 104857600-byte limit", max_peak_mb=16)


def test_idx_within_the_budget_still_reads(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    idx.write_idx(tmp_path / "x.gz", array)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "x.gz", max_memory=array.nbytes), array)
    with pytest.raises(DataFileError, match=r"x.gz: IDX data of dimensions \(5, 28, 28\) would take 3920 bytes"):
        idx.read_idx(tmp_path / "x.gz", max_memory=array.nbytes - 1)


# ----------------------------------------------------------------------------------------------- npz datasets


def npy(array=None, header_shape=None, dtype="|u1") -> bytes:
    """A .npy file; ``header_shape`` forges the shape its header declares."""
    buffer = io.BytesIO()
    if header_shape is None:
        np.save(buffer, array)
    else:
        np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False,
                                                      "shape": header_shape})
        buffer.write(b"" if array is None else np.asarray(array).tobytes())
    return buffer.getvalue()


def mnist_npz(path, extra=(), compression=zipfile.ZIP_STORED):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "y_train": np.arange(20, dtype=np.uint8) % 10,
              "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), "y_test": np.arange(10, dtype=np.uint8)}
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, array in arrays.items():
            archive.writestr(f"{name}.npy", npy(array))
        for name, data in extra:
            archive.writestr(name, data)
    return arrays


def test_npz_raw_member_beside_the_array_is_refused(tmp_path):
    """np.load prefers a raw member ``x_train`` to ``x_train.npy``: it handed back bytes (an AttributeError)."""
    mnist_npz(tmp_path / "m.npz", extra=[("x_train", b"not an array")])
    with pytest.raises(DataFileError, match="m.npz: holds both x_train and x_train.npy; which one is the array"):
        mnist.load_data(tmp_path / "m.npz")


def test_npz_raw_member_with_a_terabyte_header_is_refused_within_bounds(tmp_path):
    """The raw ``x_train`` a valid .npy declaring a TiB: np.load tried to allocate it, past the size cap that only
    looked at ``x_train.npy``."""
    path = tmp_path / "m.npz"
    mnist_npz(path, extra=[("x_train", npy(header_shape=(2**40,)))])
    assert_within(measured(f"mnist.load_data({str(path)!r})"), match="holds both x_train and x_train.npy")


def test_npz_duplicate_members_are_refused(tmp_path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        mnist_npz(tmp_path / "m.npz", extra=[("y_test.npy", npy(np.zeros(10, np.uint8)))])
    with pytest.raises(DataFileError, match="m.npz: holds two members named y_test.npy"):
        mnist.load_data(tmp_path / "m.npz")


def test_npz_arrays_are_checked_against_the_budget(tmp_path, monkeypatch):
    arrays = mnist_npz(tmp_path / "m.npz", compression=zipfile.ZIP_DEFLATED)
    (x, _), _ = mnist.load_data(tmp_path / "m.npz")
    np.testing.assert_array_equal(x, arrays["x_train"])
    budget_env(monkeypatch, "20000")
    with pytest.raises(DataFileError, match=r"m.npz: its four arrays would take 23550 bytes, above the memory budget"):
        mnist.load_data(tmp_path / "m.npz")


# ----------------------------------------------------------------------------------------------- snapshots


def snapshot_folder(tmp_path, members: dict, compression=zipfile.ZIP_STORED, epochs=(0,)):
    folder = tmp_path / "run" / "filters"
    folder.mkdir(parents=True)
    for epoch in epochs:
        with zipfile.ZipFile(folder / f"epoch_{epoch:03d}.npz", "w", compression) as archive:
            for name, data in members.items():
                archive.writestr(f"{name}.npy", data)
    return tmp_path / "run"


def test_snapshot_with_a_forged_header_is_refused_before_allocation(tmp_path):
    """A kernel header declaring 2**40 floats over 64 bytes of data: np.load raised MemoryError (a traceback in
    ``show evolution`` and ``explore``)."""
    run = snapshot_folder(tmp_path, {"conv2d/kernel": npy(np.zeros(16, np.float32), (2**20, 2**10, 2**5, 2**5),
                                                          "<f4")})
    with pytest.raises(DataFileError, match=r"epoch_000.npz: conv2d/kernel declares shape \(1048576, 1024, 32, 32\) "
                                            r"of float32 \(4398046511104 bytes\), more values than its 64 bytes hold"):
        evolution.load_snapshots(run)


def test_snapshot_bomb_is_refused_by_the_budget_before_inflating(tmp_path, monkeypatch):
    """Zeros deflate a thousandfold: 100 MB of declared kernel in 100 KB (the issue's was 1.65 GB in 1.5 MB, over
    the default 1 GiB budget; here the budget is lowered to keep the test small)."""
    run = snapshot_folder(tmp_path, {})
    with zipfile.ZipFile(run / "filters" / "epoch_000.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("conv2d/kernel.npy", "w", force_zip64=True) as member:
            member.write(npy(header_shape=(5, 5, 1000, 1000), dtype="<f4"))
            for _ in range(100):
                member.write(bytes(10**6))
    assert (run / "filters" / "epoch_000.npz").stat().st_size < 200_000
    env = budget_env(monkeypatch, "32M")
    result = measured(f"evolution.load_snapshots({str(run)!r})", env=env)
    assert_within(result, match="the filter snapshots of 'conv2d' in", max_peak_mb=16)
    assert "would take 100 MB, above the memory budget of 33.6 MB" in result["message"]


def test_snapshots_must_be_float_kernels_with_matching_biases(tmp_path):
    run = snapshot_folder(tmp_path, {"conv2d/kernel": npy(np.zeros((3, 3, 1, 4), np.int64))})
    with pytest.raises(DataFileError, match="conv2d/kernel has dtype int64, expected float16, float32, float64"):
        evolution.load_snapshots(run)
    run = snapshot_folder(tmp_path / "b", {"conv2d/kernel": npy(np.zeros((3, 3, 1, 4), np.float32)),
                                           "conv2d/bias": npy(np.zeros(5, np.float32))})
    with pytest.raises(ValueError, match=r"expected \(height, width, channels, filters\) and \(filters,\)"):
        evolution.load_snapshots(run)
    run = snapshot_folder(tmp_path / "c", {"conv2d/kernel": npy(np.ones((3, 3, 1, 4), np.float32)),
                                           "conv2d/bias": npy(np.ones(4, np.float32))}, epochs=(0, 1))
    layer, snapshots = evolution.load_snapshots(run)
    assert layer == "conv2d" and [e for e, _, _ in snapshots] == [0, 1]
    np.testing.assert_array_equal(snapshots[1][1], np.ones((3, 3, 1, 4), np.float32))


# ----------------------------------------------------------------------------------------------- downloads

NAME = "train-labels-idx1-ubyte"
CONTENT = labels_header(300) + bytes(np.arange(300, dtype=np.uint8) % 10)
GZ = gzip.compress(CONTENT, mtime=0)
SPEC = download.FileSpec(NAME, len(CONTENT), hashlib.sha256(CONTENT).hexdigest())


class Dripping(BaseHTTPRequestHandler):
    """``/good/``: the file at once. ``/body/``: headers, then one body byte every 50 ms. ``/headers/``: the status
    line, then one header byte every 50 ms. Dripping stops when the client hangs up (or after 30 s)."""

    def do_GET(self):
        self.server.hits.append(self.path)
        if self.path.startswith("/good/"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(GZ)))
            self.end_headers()
            self.wfile.write(GZ)
            return
        if self.path.startswith("/body/"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(GZ)))
            self.end_headers()
            drip = GZ
        else:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            drip = b"X-Slow: " + b"a" * 10**6
        try:
            for i in range(min(len(drip), 600)):
                self.wfile.write(drip[i : i + 1])
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:  # the client gave up: that is the point
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    httpd.daemon_threads, httpd.block_on_close, httpd.hits = True, False, []
    httpd.handle_error = lambda request, address: None
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield base
    httpd.shutdown()
    httpd.server_close()


def fetch(dest, mirrors, **kwargs):
    options = dict(files=(SPEC,), mirrors=tuple(mirrors), timeout=0.3, retries=1, backoff=0.0, progress=False)
    options.update(kwargs)
    return download.download("mnist", dest, **options)


def test_a_mirror_dripping_its_body_is_abandoned_for_the_next(server, tmp_path):
    """One byte every 50 ms never trips a 0.3 s read time-out; the minimum rate does (20 B/s < 1000 B/s)."""
    start = time.monotonic()
    fetch(tmp_path, [f"{server}/body/", f"{server}/good/"], min_rate=1000)
    elapsed = time.monotonic() - start
    print(f"dripping body abandoned, good mirror used: {elapsed:.2f} s")
    assert elapsed < 3.0 and (tmp_path / f"{NAME}.gz").read_bytes() == GZ


def test_a_mirror_dripping_its_headers_meets_the_deadline(server, tmp_path):
    """Headers dripping in are read by http.client line by line, out of reach of any rate check: the watchdog
    shuts the connection down at the deadline."""
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"/headers/train-labels-idx1-ubyte.gz: took longer than the "
                                            r"1-second deadline"):
        fetch(tmp_path, [f"{server}/headers/"], deadline=1.0, retries=3)
    elapsed = time.monotonic() - start
    print(f"dripping headers given up after {elapsed:.2f} s")
    assert elapsed < 3.0
    assert list(tmp_path.iterdir()) == []


def test_the_slow_message_names_the_rate(server, tmp_path):
    with pytest.raises(DownloadError, match=r"too slow: \d+ bytes/s over [\d.]+ s, below the minimum of 1000"):
        fetch(tmp_path, [f"{server}/body/"], min_rate=1000)


def test_mirrors_are_https_and_plain_http_comes_last_and_is_explained():
    for name, remote in download.DATASETS.items():
        schemes = [mirror.split("://")[0] for mirror in remote.mirrors]
        assert set(schemes) <= {"https", "http"} and schemes == sorted(schemes, reverse=True), name
        for mirror in remote.mirrors:
            if mirror.startswith("http://"):
                host = mirror.split("/")[2]
                assert host.split(".")[0] in download.__doc__ and "SHA-256" in download.__doc__, mirror
