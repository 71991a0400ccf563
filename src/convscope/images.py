"""Any picture of a digit as an MNIST-style 28x28 array (needs Pillow: ``pip install convscope[images]``).

MNIST's own recipe: grayscale, white digit on black (a dark-on-light picture is
inverted), the digit's bounding box scaled so its longer side is 20 pixels, then
placed in a 28x28 field so that its centre of mass sits at the centre.
A picture with transparency is first laid on the background that shows its strokes:
white under dark strokes, black under light ones (dark strokes on a transparent
background, as drawing programs save them, would otherwise be black on black: blank).
``ink_pixels`` counts what is left, so that a caller can flag a blank or nearly blank input.
Decoding is bounded: files over ``MAX_FILE_BYTES`` or ``MAX_PIXELS`` are refused.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import DataFileError

MAX_FILE_BYTES = 20 * 2**20
MAX_PIXELS = 40_000_000
BOX = 20
SIZE = 28


def load_digit(path) -> np.ndarray:
    """``(28, 28)`` uint8, white digit on black, from a PNG/JPEG/... file; ``DataFileError`` if unreadable."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("Reading images needs Pillow: pip install 'convscope[images]'") from e
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DataFileError(f"{path!r} is a folder, not an image file")
    if not os.path.isfile(path):
        raise DataFileError(f"Image file {path!r} does not exist")
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise DataFileError(f"Image file {path!r} is larger than {MAX_FILE_BYTES} bytes")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise DataFileError(f"Image {path!r} has {img.width}x{img.height} pixels, more than {MAX_PIXELS}")
            gray = np.asarray(opaque(img).convert("L"))  # uint8: to_mnist keeps it, 8x less memory than float64
    except DataFileError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
        raise DataFileError(f"Cannot read image {path!r}: {e}") from e
    return to_mnist(gray)


def opaque(img):
    """``img`` without transparency, laid on white if its visible strokes are dark, else on black."""
    from PIL import Image

    if img.mode not in ("RGBA", "LA", "PA") and "transparency" not in img.info:
        return img
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
    alpha = rgba[..., 3] / 255.0
    if alpha.min() == 1.0:
        return img
    luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
    strokes_dark = (luminance * alpha).sum() / max(alpha.sum(), 1e-9) < 128
    background = 255.0 if strokes_dark else 0.0
    gray = luminance * alpha + background * (1 - alpha)
    return Image.fromarray(np.clip(np.round(gray), 0, 255).astype(np.uint8), mode="L")


BLANK_INK = 12
"""Fewer ink pixels than this (MNIST's digits have about 150) and a 28x28 digit is flagged as (nearly) blank."""


def ink_pixels(digit) -> int:
    """How many of a 28x28 digit's pixels hold ink (above a fifth of full white)."""
    return int((np.asarray(digit) > 51).sum())


def to_mnist(gray) -> np.ndarray:
    """A grayscale array (any size) fitted into MNIST's 28x28 frame (see the module docstring)."""
    from PIL import Image

    gray = np.asarray(gray)
    if gray.dtype != np.uint8:
        # uint8 stays uint8 (every step below gives the same numbers for it): a 40-megapixel upload is 40 MB, not 320.
        gray = gray.astype(np.float64)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 127:
        gray = 255 - gray
    ink = gray > 0.2 * gray.max() if gray.max() > 0 else np.zeros_like(gray, dtype=bool)
    if not ink.any():
        return np.zeros((SIZE, SIZE), np.uint8)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = BOX / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize((w, h), Image.LANCZOS), dtype=np.float64)
    total = small.sum()
    cy = (small.sum(axis=1) @ np.arange(h)) / total if total else (h - 1) / 2
    cx = (small.sum(axis=0) @ np.arange(w)) / total if total else (w - 1) / 2
    top = int(np.clip(round(SIZE / 2 - 0.5 - cy), 0, SIZE - h))
    left = int(np.clip(round(SIZE / 2 - 0.5 - cx), 0, SIZE - w))
    out = np.zeros((SIZE, SIZE))
    out[top : top + h, left : left + w] = small
    return np.clip(out, 0, 255).astype(np.uint8)
