"""Where ``convscope show`` writes its pictures and what it calls them.

A file name is built from content someone else may have written (a layer name read from a model file, a
snapshot's key, an image's or a model's name), so every part goes through ``file_part``: a conservative
allowlist, a length cap, a hash of the original where it had to be changed. ``PictureFolder`` joins the
parts, makes the names of one command distinct, and checks that each path stays in its folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata

from ..runs import CHECKPOINT, CONFIG, FINAL_MODEL

DEFAULT_OUT = "pictures"
MAX_PART = 100      # characters of one part: the longest name (gradients_IMAGE_LAYER_kernel_gradient.png) < 255
DIGEST = 8          # hex digits of SHA-256 added to a part that had to be changed
_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")     # ASCII only; no leading "." (so not "..") nor "-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_part(text) -> str:
    """``text`` (a layer path, a model, image or file name) as one part of a file name.

    Kept as it is when every ``/``-separated piece is made of ASCII letters, digits, ``-``, ``_`` and ``.``,
    does not start with ``.`` or ``-``, and the whole is at most MAX_PART characters; the ``/`` of a nested layer's path
    becomes ``_`` (``block/inner_dw`` -> ``block_inner_dw``). Otherwise accents are dropped (``é`` -> ``e``),
    each run of other characters becomes ``-``, the result is cut to fit and ends in ``-`` and DIGEST hex digits
    of the SHA-256 of ``text``, so that two names cleaned alike still differ (``a b`` -> ``a-b-<hash>``, ``..`` ->
    ``<hash>``). The result is never empty, never ``.`` or ``..``, holds no separator, and ``file_part`` of it
    is itself.
    """
    text = str(text)
    pieces = text.split("/")
    if len(text) <= MAX_PART and all(_SAFE.fullmatch(piece) for piece in pieces):
        return "_".join(pieces)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = "_".join(_UNSAFE.sub("-", piece) for piece in ascii_text.split("/")).strip("._-")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST]
    cleaned = cleaned[: MAX_PART - DIGEST - 1].rstrip("._-")
    return f"{cleaned}-{digest}" if cleaned else digest


def inside(folder, name: str) -> str:
    """``folder/name``, or a ValueError naming ``name`` when that path, resolved (``..`` and symbolic links
    followed: a run folder from elsewhere may hold a link named like a picture), is not directly inside
    ``folder``, resolved too."""
    path = os.path.join(folder, name)
    resolved = os.path.realpath(path)
    if os.path.dirname(resolved) != os.path.realpath(folder):
        raise ValueError(f"picture name {name!r} would be written outside {os.fspath(folder)!r} (to {resolved!r})")
    return path


def default_folder(source=None) -> str:
    """Where the pictures of ``source`` go without ``--out``.

    ``RUN/pictures`` when ``source`` is a folder (a run folder: ``runs.model_file`` opens its model) or the
    run's own model file (``model.convscope`` or ``checkpoint.convscope`` beside its ``config.json``);
    ``pictures/<file_part of the file's stem>`` for any other model file, so that two models never share a
    folder; ``pictures`` when there is no source."""
    if source is None:
        return DEFAULT_OUT
    source = os.fspath(source)
    if os.path.isdir(source):
        return os.path.join(source, DEFAULT_OUT)
    folder, name = os.path.split(source)
    if name in (FINAL_MODEL, CHECKPOINT) and os.path.isfile(os.path.join(folder, CONFIG)):
        return os.path.join(folder, DEFAULT_OUT)
    return os.path.join(DEFAULT_OUT, file_part(os.path.splitext(name)[0]))


class PictureFolder:
    """The folder one command writes into (created with its first picture) and the names it gave so far."""

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self._taken: set[str] = set()

    def path(self, *parts, suffix: str = ".png") -> str:
        """``folder/PART_PART..SUFFIX`` with each part through ``file_part``; a name this command already wrote
        (``a/b`` and ``a_b`` both give ``a_b``) gets ``-2``, ``-3``, ... so that no picture replaces another."""
        stem = "_".join(file_part(part) for part in parts)
        name, count = stem + suffix, 1
        while name in self._taken:
            count += 1
            name = f"{stem}-{count}{suffix}"
        path = inside(self.folder, name)
        self._taken.add(name)
        os.makedirs(self.folder, exist_ok=True)
        return path
