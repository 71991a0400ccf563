"""Downloads against a local HTTP server on 127.0.0.1: mirrors, retries, time-outs, checksums, cleanup."""

import gzip
import hashlib
import socket
import sys
import threading
import time
import types
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from convscope.datasets import download, idx
from convscope.errors import DownloadError

NAME = "train-labels-idx1-ubyte"


def idx_bytes(n=300, seed=0):
    """A small IDX label file: magic 2049, count n, then n labels."""
    labels = np.random.default_rng(seed).integers(0, 10, n, dtype=np.uint8)
    return idx.LABELS_MAGIC.to_bytes(4, "big") + n.to_bytes(4, "big") + labels.tobytes()


CONTENT = idx_bytes()
GZ = gzip.compress(CONTENT, mtime=0)
SPEC = download.FileSpec(NAME, len(CONTENT), hashlib.sha256(CONTENT).hexdigest())


@dataclass
class Reply:
    body: bytes = GZ
    status: int = 200
    delay: float = 0.0
    send_bytes: int | None = None  # stop after this many body bytes, keeping the full Content-Length
    content_length: bool = True


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.append(self.path)
        reply = self.server.routes.get(self.path, Reply(status=404))
        time.sleep(reply.delay)
        if reply.status != 200:
            self.send_error(reply.status)
            return
        self.send_response(200)
        if reply.content_length:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body[: reply.send_bytes])
        self.close_connection = True

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    block_on_close = False

    def handle_error(self, request, client_address):
        # Clients that time out hang up before a slow reply is written; that is the point.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def server():
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.routes, httpd.hits = {}, []
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    # A short poll interval keeps shutdown() quick.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def serve(server, mirror, reply, name=NAME):
    server.routes[f"/{mirror}/{name}.gz"] = reply
    return f"{server.base}/{mirror}/"


def fetch(dest, mirrors, spec=SPEC, **kwargs):
    options = dict(files=(spec,), mirrors=tuple(mirrors), timeout=2.0, retries=1, backoff=0.0, progress=False)
    options.update(kwargs)
    return download.download("mnist", dest, **options)


def test_good_download_is_verified_and_kept(server, tmp_path):
    mirror = serve(server, "a", Reply())
    assert fetch(tmp_path, [mirror]) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{NAME}.gz"]
    assert (tmp_path / f"{NAME}.gz").read_bytes() == GZ
    assert idx.read_idx(tmp_path / f"{NAME}.gz").tobytes() == CONTENT[8:]


def test_recompressed_and_uncompressed_copies_pass(server, tmp_path):
    recompressed = gzip.compress(CONTENT, compresslevel=1, mtime=12345)
    assert recompressed != GZ
    fetch(tmp_path / "re", [serve(server, "re", Reply(recompressed))])
    assert (tmp_path / "re" / f"{NAME}.gz").read_bytes() == recompressed
    # An uncompressed body is kept under the name without .gz, so the name tells the truth.
    fetch(tmp_path / "raw", [serve(server, "raw", Reply(CONTENT))])
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [NAME]


def test_mirrors_own_gz_hash_is_accepted(server, tmp_path):
    spec = download.FileSpec(NAME, len(CONTENT), "0" * 64, gz_sha256=hashlib.sha256(GZ).hexdigest())
    fetch(tmp_path, [serve(server, "a", Reply())], spec=spec)
    assert (tmp_path / f"{NAME}.gz").read_bytes() == GZ


def test_http_403_moves_to_next_mirror_without_retry(server, tmp_path):
    mirrors = [serve(server, "forbidden", Reply(status=403)), serve(server, "good", Reply())]
    fetch(tmp_path, mirrors, retries=3)
    assert server.hits == [f"/forbidden/{NAME}.gz", f"/good/{NAME}.gz"]
    assert (tmp_path / f"{NAME}.gz").read_bytes() == GZ


def test_http_500_is_retried_then_next_mirror(server, tmp_path):
    mirrors = [serve(server, "broken", Reply(status=500)), serve(server, "good", Reply())]
    fetch(tmp_path, mirrors, retries=2)
    assert server.hits == [f"/broken/{NAME}.gz"] * 3 + [f"/good/{NAME}.gz"]


def test_truncated_body_is_never_kept(server, tmp_path):
    mirrors = [serve(server, "short", Reply(send_bytes=len(GZ) // 2)), serve(server, "good", Reply())]
    fetch(tmp_path, mirrors, retries=1)
    assert server.hits.count(f"/short/{NAME}.gz") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{NAME}.gz"]
    assert (tmp_path / f"{NAME}.gz").read_bytes() == GZ


def test_truncated_body_without_content_length(server, tmp_path):
    mirror = serve(server, "short", Reply(send_bytes=len(GZ) - 10, content_length=False))
    with pytest.raises(DownloadError, match="damaged or truncated gzip data"):
        fetch(tmp_path, [mirror])
    assert list(tmp_path.iterdir()) == []


def test_corrupt_content_is_rejected_and_nothing_is_left(server, tmp_path):
    corrupt = gzip.compress(idx_bytes(seed=1), mtime=0)
    with pytest.raises(DownloadError, match="content SHA-256 [0-9a-f]{64} does not match the expected"):
        fetch(tmp_path, [serve(server, "bad", Reply(corrupt))], retries=3)
    assert server.hits == [f"/bad/{NAME}.gz"]  # wrong content is not retried on the same mirror
    assert list(tmp_path.iterdir()) == []


def test_oversized_content_is_rejected(server, tmp_path):
    spec = download.FileSpec(NAME, len(CONTENT) - 1, SPEC.sha256)
    with pytest.raises(DownloadError, match="decompresses to more than the"):
        fetch(tmp_path, [serve(server, "a", Reply())], spec=spec)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content_length, match", [(True, "declares 210 bytes, over the 100-byte limit"),
                                                   (False, "sent more than the 100-byte limit")])
def test_download_size_is_bounded(server, tmp_path, content_length, match):
    body = bytes(210)
    with pytest.raises(DownloadError, match=match):
        fetch(tmp_path, [serve(server, "a", Reply(body, content_length=content_length))], max_bytes=100)
    assert list(tmp_path.iterdir()) == []


def test_slow_mirror_times_out(server, tmp_path):
    mirrors = [serve(server, "slow", Reply(delay=1.0)), serve(server, "good", Reply())]
    start = time.monotonic()
    fetch(tmp_path, mirrors, timeout=0.2, retries=0)
    assert time.monotonic() - start < 1.0
    assert (tmp_path / f"{NAME}.gz").read_bytes() == GZ


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_mirrors_failing_says_how_to_work_offline(server, tmp_path):
    dest = tmp_path / "cache" / "mnist"
    mirrors = [
        f"http://127.0.0.1:{closed_port()}/nothing/",
        serve(server, "slow", Reply(delay=1.0)),
        serve(server, "forbidden", Reply(status=403)),
    ]
    with pytest.raises(DownloadError) as info:
        fetch(dest, mirrors, timeout=0.2, retries=0)
    message = str(info.value)
    assert f"could not download {NAME}.gz for mnist from any mirror" in message
    assert "timed out" in message and "HTTP 403" in message and "/nothing/" in message
    assert str(dest) in message
    assert "CONVSCOPE_DATA=DIR" in message and "DIR/mnist" in message
    assert f"{NAME}.gz" in message
    assert list(dest.iterdir()) == []


def test_present_files_are_not_fetched_again(server, tmp_path):
    (tmp_path / NAME).write_bytes(CONTENT)
    fetch(tmp_path, [serve(server, "a", Reply())])
    assert server.hits == []


def test_default_destination_is_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert fetch(None, [serve(server, "a", Reply())]) == tmp_path / "convscope" / "mnist"
    assert (tmp_path / "convscope" / "mnist" / f"{NAME}.gz").is_file()


def test_progress_bar_with_and_without_tqdm(server, tmp_path, monkeypatch, capsys):
    mirror = serve(server, "a", Reply())
    fetch(tmp_path / "bar", [mirror], progress=True)
    # A None entry in sys.modules makes "import tqdm" fail, as when the extra is not installed.
    monkeypatch.setitem(sys.modules, "tqdm", None)
    fetch(tmp_path / "nobar", [mirror], progress=True)
    assert (tmp_path / "nobar" / f"{NAME}.gz").read_bytes() == GZ


def test_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        download.download("cifar", tmp_path)


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert download.cache_dir("mnist") == tmp_path / "xdg" / "convscope" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.cache_dir("fashion-mnist") == tmp_path / "home" / ".cache" / "convscope" / "fashion-mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert download.cache_dir("mnist") == tmp_path / "home" / ".cache" / "convscope" / "mnist"


def test_verify(tmp_path):
    path = tmp_path / "f.gz"
    path.write_bytes(GZ)
    assert download.verify(path, SPEC) is None
    assert "does not match" in download.verify(path, download.FileSpec(NAME, SPEC.size, "0" * 64))


def test_known_table_is_complete():
    for name, remote in download.DATASETS.items():
        assert [f.name for f in remote.files] == list(download.FILE_NAMES), name
        assert all(len(f.sha256) == 64 for f in remote.files), name
        assert remote.mirrors, name


def test_each_mirror_and_each_retry_is_said_on_stderr(server, tmp_path, monkeypatch, capsys):
    waits = []
    # The back-off, without waiting (download's own time only: the test server sleeps through the time module).
    monkeypatch.setattr(download, "time", types.SimpleNamespace(sleep=waits.append, monotonic=time.monotonic))
    monkeypatch.setattr(download, "_progress_bar", lambda *args: download._NoBar())
    mirrors = [serve(server, "busy", Reply(status=500)), serve(server, "gone", Reply(status=404)),
               serve(server, "good", Reply())]
    fetch(tmp_path, mirrors, retries=2, backoff=1.0, progress=True)
    assert waits == [1.0, 2.0]
    assert capsys.readouterr() == ("", "\n".join([
        f"Downloading mnist {NAME}.gz from {mirrors[0]}",
        "  HTTP 500 Internal Server Error; retrying in 1 s (attempt 2 of 3)",
        "  HTTP 500 Internal Server Error; retrying in 2 s (attempt 3 of 3)",
        "  HTTP 500 Internal Server Error",
        f"Downloading mnist {NAME}.gz from {mirrors[1]}",
        "  HTTP 404 Not Found",                                   # not worth a retry
        f"Downloading mnist {NAME}.gz from {mirrors[2]}",
    ]) + "\n")
    fetch(tmp_path / "quiet", mirrors, retries=2, backoff=1.0, progress=False)
    assert capsys.readouterr() == ("", "")
