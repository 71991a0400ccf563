"""Download dataset files from public mirrors into the cache, verified by SHA-256.

Each file is streamed into a hidden temporary file beside its final name and
moved there with ``os.replace`` only once its content has been verified, so a
failed, truncated or corrupt download never appears under the final name and
leaves no temporary file behind.

A file passes when the SHA-256 of its *decompressed* IDX bytes matches the
known hash, so both a mirror's ``.gz`` and a re-compressed or uncompressed
copy pass; where the mirrors' own ``.gz`` hash is known, it is accepted too.

Mirrors are HTTPS wherever one serves the files. The last Fashion-MNIST mirror,
Zalando's S3 website (fashion-mnist.s3-website.eu-central-1.amazonaws.com),
speaks plain HTTP only: anyone on the network path can
change what it sends, and the SHA-256 check refuses any change, so the worst
it can do is fail and leave the error message below.

Each try is bounded three ways: ``timeout`` for any one connect or read, a
``deadline`` for the whole try (connecting, headers and body: a watchdog shuts
the connection down wherever it waits), and ``min_rate``, the bytes per second
it must keep up over every ``timeout`` seconds; a mirror that drips one byte at
a time is abandoned for the next within ``timeout`` seconds.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFileError, DownloadError
from . import idx

#: Standard IDX file names, without ``.gz``, in the order train images, train labels, test images, test labels.
FILE_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: Upper bound on one downloaded file, compressed or not (the largest, uncompressed, is 47,040,016 bytes).
MAX_DOWNLOAD_BYTES = 64 * 2**20
#: Seconds one try may take in all, and the bytes per second it must keep up (the largest .gz, 26 MB, needs 44 KB/s
#: to finish within the deadline; a try below MIN_RATE would not).
DEADLINE = 600.0
MIN_RATE = 16 * 2**10


@dataclass(frozen=True)
class FileSpec:
    """One IDX file: standard ``name`` (no ``.gz``), decompressed ``size`` in bytes,
    ``sha256`` of the decompressed bytes, and optionally ``gz_sha256``, the
    hash of the ``.gz`` file as the mirrors serve it."""

    name: str
    size: int
    sha256: str
    gz_sha256: str | None = None


@dataclass(frozen=True)
class Remote:
    """Where a dataset's files come from: base URLs tried in turn, and the files to fetch."""

    mirrors: tuple[str, ...]
    files: tuple[FileSpec, ...]


_SIZES = (47040016, 60008, 7840016, 10008)

# MNIST: decompressed hashes from shared/data/mnist/README.md.
# Fashion-MNIST: no published decompressed hashes were found. These were computed from
# Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1, a re-compressed copy
# of Zalando's repository (its .gz bytes differ from the mirrors'). The .gz hashes
# are those of Zalando's own files as every mirror serves them (the ones
# tensorflow-datasets pins; their MD5s are the ones Zalando's README publishes); both
# hashes of the two label files were checked against Zalando's repository. No
# mirror could be reached from here (no network).
DATASETS: dict[str, Remote] = {
    "mnist": Remote(
        mirrors=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
        ),
        files=tuple(
            FileSpec(name, size, sha)
            for name, size, sha in zip(FILE_NAMES, _SIZES, (
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ))
        ),
    ),
    "fashion-mnist": Remote(
        mirrors=(
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
            # Zalando's repository holds the original .gz files (29 KB to 26 MB, plain git objects).
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            # Zalando's S3 website endpoint serves plain HTTP only, so it comes last: the SHA-256 check is what
            # protects its content (see the module docstring).
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ),
        files=tuple(
            FileSpec(name, size, sha, gz_sha)
            for name, size, (sha, gz_sha) in zip(FILE_NAMES, _SIZES, (
                ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                 "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
                ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                 "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
                ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                 "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
                ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                 "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
            ))
        ),
    ),
}


def cache_dir(name: str) -> Path:
    """The cache folder for dataset ``name``: ``$XDG_CACHE_HOME/convscope/<name>``, else ``~/.cache/convscope/<name>``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says to ignore a relative value.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "convscope" / name


def local_file(folder: str | os.PathLike, name: str) -> Path | None:
    """The IDX file ``name`` in ``folder``, as ``name.gz`` or ``name``, or ``None``."""
    for candidate in (Path(folder) / f"{name}.gz", Path(folder) / name):
        if candidate.is_file():
            return candidate
    return None


def verify(path: str | os.PathLike, spec: FileSpec) -> str | None:
    """``None`` when the file at ``path`` holds ``spec``'s content, else the reason it does not."""
    if spec.gz_sha256 is not None and _sha256_of_file(path) == spec.gz_sha256:
        return None
    digest = hashlib.sha256()
    try:
        for chunk in idx.iter_bytes(path, max_bytes=spec.size):
            digest.update(chunk)
    except DataFileError as exc:
        return str(exc)
    if digest.hexdigest() != spec.sha256:
        return f"content SHA-256 {digest.hexdigest()} does not match the expected {spec.sha256}"
    return None


def download(
    name: str,
    dest: str | os.PathLike | None = None,
    *,
    mirrors: tuple[str, ...] | None = None,
    files: tuple[FileSpec, ...] | None = None,
    timeout: float = 30.0,
    retries: int = 2,
    backoff: float = 1.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    progress: bool = True,
    deadline: float = DEADLINE,
    min_rate: float = MIN_RATE,
) -> Path:
    """Fetch dataset ``name``'s files that ``dest`` lacks and return ``dest``.

    ``dest`` defaults to ``cache_dir(name)``; ``mirrors`` and ``files`` default
    to ``DATASETS[name]``. Each mirror is tried ``1 + retries`` times for
    errors that may pass (time-outs, dropped connections, HTTP 5xx, truncated
    bodies), waiting ``backoff * attempt`` seconds between tries, and once for
    the others (HTTP 4xx, wrong content, over ``max_bytes``, too slow). ``timeout``
    bounds each connect and read, in seconds; ``deadline`` a whole try; and a try
    that receives fewer than ``min_rate`` bytes per second over any ``timeout``
    seconds is abandoned. Raises ``DownloadError`` when no mirror delivers a
    file, saying where to put the files by hand. ``progress`` shows a bar per
    file (with tqdm) and, on standard error, a line per mirror tried and one per
    failed try (its reason, and the wait before the next).
    """
    if name not in DATASETS:
        raise ValueError(f"download: unknown dataset {name!r}, expected one of {sorted(DATASETS)}")
    remote = DATASETS[name]
    mirrors = remote.mirrors if mirrors is None else tuple(mirrors)
    files = remote.files if files is None else tuple(files)
    dest = cache_dir(name) if dest is None else Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for spec in files:
        if local_file(dest, spec.name) is None:
            limits = _Limits(timeout, deadline, min_rate, max_bytes)
            failures = _fetch(name, spec, mirrors, dest, limits, retries, backoff, progress)
            if failures is not None:
                raise DownloadError(_advice(name, spec, dest, files, failures))
    return dest


class _MirrorError(Exception):
    """One failed try; ``retry`` says whether trying the same URL again may help."""

    def __init__(self, reason: str, retry: bool):
        super().__init__(reason)
        self.retry = retry


@dataclass(frozen=True)
class _Limits:
    timeout: float
    deadline: float
    min_rate: float
    max_bytes: int


def _fetch(name, spec, mirrors, dest, limits, retries, backoff, progress) -> list[str] | None:
    """Download ``spec`` into ``dest``; ``None`` on success, else one line per failed try.

    With ``progress``, says on standard error what it tries, so that the waits between tries are not silent::

        Downloading mnist train-images-idx3-ubyte.gz from https://storage.googleapis.com/cvdf-datasets/mnist/
          [Errno -2] Name or service not known; retrying in 1 s (attempt 2 of 3)
    """
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + f"/{spec.name}.gz"
        _say(progress, f"Downloading {name} {spec.name}.gz from {mirror}")
        for attempt in range(1, retries + 2):
            try:
                with _Watchdog(limits.deadline) as watchdog:
                    _fetch_once(url, spec, dest, limits, progress, watchdog)
                return None
            except _MirrorError as exc:
                failures.append(f"{url}: {exc}")
                if not exc.retry or attempt > retries:
                    _say(progress, f"  {exc}")
                    break
                wait = backoff * attempt
                _say(progress, f"  {exc}; retrying in {wait:g} s (attempt {attempt + 1} of {retries + 1})")
                time.sleep(wait)
    return failures


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, file=sys.stderr, flush=True)


def _fetch_once(url, spec, dest, limits, progress, watchdog) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "convscope"})
    try:
        with watchdog.opener.open(request, timeout=limits.timeout) as response:
            declared = response.headers.get("Content-Length")
            declared = int(declared) if declared and declared.isdigit() else None
            if declared is not None and declared > limits.max_bytes:
                raise _MirrorError(f"declares {declared} bytes, over the {limits.max_bytes}-byte limit", retry=False)
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{spec.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out, _progress_bar(progress, declared, spec.name) as bar:
                    received = _copy(response, out, limits, bar, watchdog)
                if declared is not None and received < declared:
                    raise _MirrorError(f"truncated: received {received} of {declared} bytes", retry=True)
                problem = verify(tmp, spec)
                if problem is not None:
                    raise _MirrorError(problem, retry=False)
                final = dest / (f"{spec.name}.gz" if idx.is_gzip(tmp) else spec.name)
                os.replace(tmp, final)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    except _MirrorError:
        raise
    except Exception as exc:
        if watchdog.expired:  # whatever the shut-down connection made the reader raise
            raise _MirrorError(f"took longer than the {limits.deadline:g}-second deadline", retry=False) from exc
        if isinstance(exc, urllib.error.HTTPError):
            raise _MirrorError(f"HTTP {exc.code} {exc.reason}", retry=exc.code >= 500 or exc.code == 429) from exc
        if isinstance(exc, urllib.error.URLError):
            raise _MirrorError(str(exc.reason), retry=True) from exc
        if isinstance(exc, (OSError, http.client.HTTPException)):
            # Time-outs and dropped connections while reading the body land here.
            raise _MirrorError(str(exc) or type(exc).__name__, retry=True) from exc
        raise


def _copy(response, out, limits, bar, watchdog) -> int:
    """Copy the body, returning its length. ``read1`` returns as soon as any bytes arrive, so the deadline and
    the rate are checked however slowly they come (``read`` would wait for a whole 64 KiB)."""
    received = 0
    mark_time, mark_bytes = time.monotonic(), 0
    while chunk := response.read1(2**16):
        received += len(chunk)
        if received > limits.max_bytes:
            raise _MirrorError(f"sent more than the {limits.max_bytes}-byte limit", retry=False)
        out.write(chunk)
        bar.update(len(chunk))
        now = time.monotonic()
        if watchdog.expired:
            raise _MirrorError(f"took longer than the {limits.deadline:g}-second deadline", retry=False)
        if now - mark_time >= limits.timeout:
            rate = (received - mark_bytes) / (now - mark_time)
            if rate < limits.min_rate:
                raise _MirrorError(f"too slow: {rate:.0f} bytes/s over {now - mark_time:.3g} s, below the minimum "
                                   f"of {limits.min_rate:.0f}", retry=False)
            mark_time, mark_bytes = now, received
    if watchdog.expired:  # the shut-down connection ended the body early, or before it began
        raise _MirrorError(f"took longer than the {limits.deadline:g}-second deadline", retry=False)
    return received


class _Watchdog:
    """Shuts down a try's connection once ``seconds`` have passed, wherever the try waits (headers dripping in,
    a read that always returns a byte just in time): the blocked read then returns and the try fails as
    ``expired``. ``opener`` opens URLs whose connections it watches (redirects included)."""

    def __init__(self, seconds: float):
        self.expired = False
        self._socket = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        handlers = _WatchedHTTP(), _WatchedHTTPS()
        for handler in handlers:
            handler.watchdog = self
        self.opener = urllib.request.build_opener(*handlers)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        self._timer.cancel()
        return False

    def watch(self, sock) -> None:
        with self._lock:
            self._socket = sock
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._socket is not None:
                _shut(self._socket)


class _Watched:
    """Mixed into urllib's HTTP(S) handlers: each connection they open hands its socket to ``watchdog`` once
    connected (``do_open`` is the one place both handlers create connections)."""

    watchdog: _Watchdog

    def do_open(self, http_class, req, **kwargs):
        watchdog = self.watchdog

        class Connection(http_class):
            def connect(self):
                super().connect()
                watchdog.watch(self.sock)

        return super().do_open(Connection, req, **kwargs)


class _WatchedHTTP(_Watched, urllib.request.HTTPHandler):
    pass


class _WatchedHTTPS(_Watched, urllib.request.HTTPSHandler):
    pass


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by the reader: nothing to wake
        pass


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def update(self, n: int) -> None:
        pass


def _progress_bar(enabled: bool, total: int | None, desc: str):
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is the optional "progress" extra
            pass
        else:
            return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)
    return _NoBar()


def _sha256_of_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def _advice(name, spec, dest, files, failures) -> str:
    names = ", ".join(f"{f.name}.gz" for f in files)
    tries = "\n".join(f"  {line}" for line in failures) or "  (no mirrors given)"
    return (
        f"could not download {spec.name}.gz for {name} from any mirror:\n{tries}\n"
        f"To work offline, put the files ({names}; gzip-compressed or not) in {dest}, "
        f"or put them in a folder DIR/{name} and set the environment variable CONVSCOPE_DATA=DIR."
    )
