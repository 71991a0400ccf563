"""Download dataset files from public mirrors into the cache, verified by SHA-256.

Each file is streamed into a hidden temporary file beside its final name and
moved there with ``os.replace`` only once its content has been verified, so a
failed, truncated or corrupt download never appears under the final name and
leaves no temporary file behind.

A file passes when the SHA-256 of its *decompressed* IDX bytes matches the
known hash, so both a mirror's ``.gz`` and a re-compressed or uncompressed
copy pass; where the mirrors' own ``.gz`` hash is known, it is accepted too.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
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
# of Zalando's repository (its .gz bytes differ from the mirrors'); the .gz
# hashes of Zalando's original files are the ones independent public downloaders
# agree on. Neither could be checked against a mirror here (no network).
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
            # Zalando's S3 website endpoint serves plain HTTP only; the hash check makes that safe.
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ),
        files=tuple(
            FileSpec(name, size, sha, gz_sha)
            for name, size, (sha, gz_sha) in zip(FILE_NAMES, _SIZES, (
                ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                 "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc"),
                ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                 "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc"),
                ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                 "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229"),
                ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                 "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf"),
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
) -> Path:
    """Fetch dataset ``name``'s files that ``dest`` lacks and return ``dest``.

    ``dest`` defaults to ``cache_dir(name)``; ``mirrors`` and ``files`` default
    to ``DATASETS[name]``. Each mirror is tried ``1 + retries`` times for
    errors that may pass (time-outs, dropped connections, HTTP 5xx, truncated
    bodies), waiting ``backoff * attempt`` seconds between tries, and once for
    the others (HTTP 4xx, wrong content, over ``max_bytes``). ``timeout`` bounds
    each connect and read, in seconds. Raises ``DownloadError`` when no mirror
    delivers a file, saying where to put the files by hand.
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
            failures = _fetch(spec, mirrors, dest, timeout, retries, backoff, max_bytes, progress)
            if failures is not None:
                raise DownloadError(_advice(name, spec, dest, files, failures))
    return dest


class _MirrorError(Exception):
    """One failed try; ``retry`` says whether trying the same URL again may help."""

    def __init__(self, reason: str, retry: bool):
        super().__init__(reason)
        self.retry = retry


def _fetch(spec, mirrors, dest, timeout, retries, backoff, max_bytes, progress) -> list[str] | None:
    """Download ``spec`` into ``dest``; ``None`` on success, else one line per failed try."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + f"/{spec.name}.gz"
        for attempt in range(1, retries + 2):
            try:
                _fetch_once(url, spec, dest, timeout, max_bytes, progress)
                return None
            except _MirrorError as exc:
                failures.append(f"{url}: {exc}")
                if not exc.retry or attempt > retries:
                    break
                time.sleep(backoff * attempt)
    return failures


def _fetch_once(url, spec, dest, timeout, max_bytes, progress) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "convscope"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            declared = int(declared) if declared and declared.isdigit() else None
            if declared is not None and declared > max_bytes:
                raise _MirrorError(f"declares {declared} bytes, over the {max_bytes}-byte limit", retry=False)
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{spec.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out, _progress_bar(progress, declared, spec.name) as bar:
                    received = _copy(response, out, max_bytes, bar)
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
    except urllib.error.HTTPError as exc:
        raise _MirrorError(f"HTTP {exc.code} {exc.reason}", retry=exc.code >= 500 or exc.code == 429) from exc
    except urllib.error.URLError as exc:
        raise _MirrorError(str(exc.reason), retry=True) from exc
    except (OSError, http.client.HTTPException) as exc:
        # Time-outs and dropped connections while reading the body land here.
        raise _MirrorError(str(exc) or type(exc).__name__, retry=True) from exc


def _copy(response, out, max_bytes, bar) -> int:
    received = 0
    while chunk := response.read(2**16):
        received += len(chunk)
        if received > max_bytes:
            raise _MirrorError(f"sent more than the {max_bytes}-byte limit", retry=False)
        out.write(chunk)
        bar.update(len(chunk))
    return received


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
