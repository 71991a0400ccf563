"""Any picture of a digit as an MNIST-style 28x28 array (needs Pillow: ``pip install convscope[images]``).

``read_picture`` is the one picture reader (``convscope predict``, the pictures of ``convscope show``, the
explorer's upload). It reads a closed list of formats, ``FORMATS`` (PNG, JPEG, GIF, BMP, WebP), and never
an external program (Pillow's PostScript plugin, for one, would start Ghostscript); anything else is refused
with the format it was found to be. Before any pixel is decoded it checks, from the bytes and the header:

* the file size: at most ``max_bytes`` (``MAX_FILE_BYTES``, 20 MiB), and a regular file (a FIFO would block);
* the structures Pillow walks one by one, mostly in Python, before any pixel: PNG chunks, GIF blocks, JPEG
  marker segments, BMP run-length codes, each walked here up to a cap (``MAX_PNG_CHUNKS``...) far above what
  real files hold; and a JPEG's scans (``MAX_JPEG_SCANS``), since each scan of a progressive JPEG is one more
  decoding pass over every pixel;
* the pixel budget: width x height at most ``max_pixels`` (``MAX_PIXELS``, 16 million);
* the memory decoding takes, from the format and pixel mode (``_bytes_per_pixel``: a WebP is held three
  times in RGBA, a multi-scan JPEG keeps every coefficient): at most ``MAX_DECODE_BYTES`` (96 MiB). Every
  step after decoding works on one byte a pixel, so a picture costs at most about 100 MB and a second;
* one frame: an animated GIF, PNG or WebP (or a multi-picture JPEG) is refused, since which frame is
  meant cannot be guessed.

What it accepts it reads right: EXIF orientation applied; 16-bit greyscale scaled by its real range
(0-65535 onto 0-255, the high byte, as Pillow reads 16-bit colour); transparency laid on the background
that shows the strokes (``opaque``).

``load_digit`` then follows MNIST's own recipe (``to_mnist``): grayscale, white digit on black (a
dark-on-light picture is inverted), the digit's bounding box scaled so its longer side is 20 pixels, then
placed in a 28x28 field so that its centre of mass sits at the centre. ``ink_pixels`` counts what is left,
so that a caller can flag a blank or nearly blank input.

    >>> digit = load_digit("seven.png")    # doctest: +SKIP
    >>> digit.shape, digit.dtype           # doctest: +SKIP
    ((28, 28), dtype('uint8'))
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib

import numpy as np

from .errors import DataFileError

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
MAX_FILE_BYTES = 20 * 2**20
MAX_PIXELS = 16_000_000
MAX_DECODE_BYTES = 96 * 2**20
# Caps on the structures Pillow walks one by one (most of them in Python, a few microseconds each), far above
# what real files hold: libjpeg's progressive JPEGs have 6 (grey) or 10 (colour) scans, each a pass over every
# pixel, and a few dozen other segments; a 20 MB PNG in 8 KB IDAT chunks has 2,600 chunks; a 20 MB GIF in full
# 255-byte sub-blocks 82,000 of them.
MAX_JPEG_SCANS = 64
MAX_JPEG_SEGMENTS = 4096
MAX_PNG_CHUNKS = 65536
MAX_GIF_BLOCKS = 131072
MAX_BMP_RLE_BYTES = 2**20
BOX = 20
SIZE = 28

_NAMES = "PNG, JPEG, GIF, BMP, WebP"
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")  # 16-bit greyscale PNG (mode "I" in older Pillow)
_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
# EXIF orientation -> the transpose that undoes it (the table of ImageOps.exif_transpose), by Image.Transpose name.
_ORIENTATION = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
                7: "TRANSVERSE", 8: "ROTATE_90"}
_EXIF_ORIENTATION = 0x0112
# Inside a JPEG scan a 0xFF byte is followed by 0x00 (a stuffed byte) or a restart marker; anything else ends it.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_FILL = re.compile(rb"\xff+")


def load_digit(path) -> np.ndarray:
    """``(28, 28)`` uint8, white digit on black, from a picture file (``read_picture``); ``DataFileError`` if
    it is not one it reads."""
    return to_mnist(read_picture(path))


def read_picture(source, *, label: str | None = None, max_bytes: int = MAX_FILE_BYTES,
                 max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A picture file (a path) or its bytes as an opaque ``(height, width)`` uint8 grayscale array, upright.

    ``label`` begins every error message (default ``Cannot read image '<path>'`` or ``Cannot read the
    picture``). Raises ``DataFileError`` (one line) for a missing, oversized, foreign, animated or damaged
    picture, before decoding whenever the header tells; ``ImportError`` without Pillow.
    """
    image_module = _pillow()
    data, label = _picture_bytes(source, label, max_bytes)
    scans = _structure_counts(data, label)  # before Pillow's header parsing, which walks these structures too
    try:
        img = image_module.open(io.BytesIO(data), formats=FORMATS)
    except image_module.UnidentifiedImageError:
        raise DataFileError(f"{label}: {_not_allowed(data)}") from None
    except image_module.DecompressionBombError as e:  # a header beyond twice Pillow's own MAX_IMAGE_PIXELS
        raise DataFileError(f"{label}: {e}") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, struct.error, zlib.error) as e:
        raise DataFileError(f"{label}: {type(e).__name__}: {e}") from None
    with img:
        if img.format == "JPEG":
            img.draft("L", None)  # decode the luma only (of a colour JPEG): a third of the memory, the same greys
        _check_header(img, scans, label, max_pixels)
        try:
            img.load()
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            gray, alpha = _gray_and_alpha(img)
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, struct.error, zlib.error) as e:
            raise DataFileError(f"{label}: a damaged {img.format} picture ({type(e).__name__}: {e})") from None
    # The decoded picture is released here (closing an image frees its pixels); what follows works on 1 byte a pixel.
    gray = _composite(gray, alpha)
    if isinstance(orientation, int) and orientation in _ORIENTATION:
        gray = gray.transpose(getattr(image_module.Transpose, _ORIENTATION[orientation]))
    return np.asarray(gray)


def _pillow():
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("Reading pictures needs Pillow: pip install 'convscope[images]'") from e
    return Image


def _picture_bytes(source, label, max_bytes) -> tuple[bytes, str]:
    """The picture's bytes (at most ``max_bytes``) and the label its messages begin with."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = label or "Cannot read the picture"
        data = bytes(source)
    else:
        path = os.fspath(source)
        label = label or f"Cannot read image {path!r}"
        if os.path.isdir(path):
            raise DataFileError(f"{path!r} is a folder, not an image file")
        if not os.path.exists(path):
            raise DataFileError(f"Image file {path!r} does not exist")
        if not os.path.isfile(path):  # a FIFO would block, a device never end
            raise DataFileError(f"{label}: not a regular file")
        try:
            with open(path, "rb") as f:
                data = f.read(max_bytes + 1)
        except OSError as e:
            raise DataFileError(f"{label}: {e.strerror or e}") from None
    if not data:
        raise DataFileError(f"{label}: it is empty")
    if len(data) > max_bytes:
        raise DataFileError(f"{label}: larger than {max_bytes} bytes, the most a picture file may take")
    return data, label


def _not_allowed(data: bytes) -> str:
    """Why Pillow, asked for ``FORMATS`` only, found none: the format the bytes are, if Pillow knows its signature."""
    from PIL import Image

    Image.init()  # registers every plugin's signature test; a test only looks at the first bytes
    prefix = data[:16]
    for name in Image.ID:
        accept = Image.OPEN[name][1]
        try:
            found = accept is not None and accept(prefix)
        except (IndexError, TypeError, ValueError, struct.error):
            continue
        if found and not isinstance(found, str):
            if name.upper() in FORMATS:
                return f"it starts like a {name} picture but its header is damaged"
            return f"its format is {name}, not one convscope reads ({_NAMES})"
    return f"its format is not one convscope reads ({_NAMES}); it starts with {data[:12]!r}"


def _check_header(img, scans: int, label: str, max_pixels: int) -> None:
    """What the header allows to check before decoding: the pixel budget, the pixel mode, a single frame, and
    the memory decoding takes (``scans``: a JPEG's scan count)."""
    width, height = img.size
    if width * height > max_pixels:
        raise DataFileError(f"{label}: {width}x{height} pixels, more than {max_pixels} (the pixel budget of a "
                            f"picture, checked before decoding)")
    if img.mode not in (*_SIXTEEN_BIT, "1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", *_TRANSPARENT_MODES):
        raise DataFileError(f"{label}: pixel mode {img.mode} is not one convscope reads")
    if getattr(img, "is_animated", False):
        raise DataFileError(f"{label}: the {img.format} holds more than one frame (an animation or a multi-picture "
                            f"file); save the frame you mean as a picture of its own")
    needed = width * height * _bytes_per_pixel(img, scans)
    if needed > MAX_DECODE_BYTES:
        raise DataFileError(f"{label}: a {width}x{height} {img.format} in mode {img.mode} takes about "
                            f"{needed / 1e6:.0f} MB to decode, more than the {MAX_DECODE_BYTES / 1e6:.0f} MB a "
                            f"picture may (checked before decoding)")


def _bytes_per_pixel(img, scans: int) -> int:
    """Bytes each pixel holds at the peak of decoding, until the one grey plane everything after works on
    (measured with Pillow 13): the decoded picture and its grey copy; a WebP three times over in RGBA (libwebp's
    canvas, the frame it hands over, Pillow's copy); a JPEG of several scans all its coefficients (2 bytes a
    channel, kept until the last scan); transparency an RGBA copy and the grey, alpha and product planes."""
    if img.format == "WEBP":
        held = 16
    elif img.mode in _SIXTEEN_BIT:
        held = 6  # the 16-bit picture, its NumPy copy, the grey byte and Pillow's copy of it
    else:
        held = len(img.getbands()) + 1
    if img.format == "JPEG" and scans > 1:
        held += 2 * getattr(img, "layers", 4)
    if img.mode in _TRANSPARENT_MODES or "transparency" in img.info:
        held += 4 if img.mode == "RGBA" else 8
    return held


def _structure_counts(data: bytes, label: str) -> int:
    """Refuse a file whose structures (PNG chunks, GIF blocks, JPEG segments and scans, BMP run codes) are so
    many that Pillow's per-structure work, in Python for most, would take seconds; return a JPEG's scan count
    (0 for the other formats). The format is told by the signature, as Pillow tells it; each walk stops at its
    cap, so it is quick whatever the file."""
    if data.startswith(b"\xff\xd8\xff"):
        scans = _jpeg_scans(data, label)
        if scans > MAX_JPEG_SCANS:
            raise DataFileError(f"{label}: a JPEG of more than {MAX_JPEG_SCANS} scans (each one a decoding pass "
                                f"over every pixel)")
        return scans
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        _count(_png_chunks(data), MAX_PNG_CHUNKS, label, "PNG chunks")
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        _count(_gif_blocks(data), MAX_GIF_BLOCKS, label, "GIF blocks and sub-blocks")
    elif (data.startswith(b"BM") and len(data) > MAX_BMP_RLE_BYTES and int.from_bytes(data[14:18], "little") >= 40
          and int.from_bytes(data[30:34], "little") in (1, 2)):
        # Pillow decodes run-length BMPs (compression 1, RLE8, and 2, RLE4) in Python: a microsecond a 2-byte code.
        raise DataFileError(f"{label}: a run-length compressed BMP of more than {MAX_BMP_RLE_BYTES} bytes")
    return 0


def _count(structures, cap: int, label: str, what: str) -> None:
    for n, _ in enumerate(structures, 1):
        if n > cap:
            raise DataFileError(f"{label}: more than {cap} {what} (each costs decoding work before any pixel)")


def _png_chunks(data: bytes):
    """Yield the offset of each chunk of a PNG stream, up to IEND."""
    pos = 8
    while pos + 8 <= len(data):
        yield pos
        if data[pos + 4 : pos + 8] == b"IEND":
            return
        pos += 12 + int.from_bytes(data[pos : pos + 4], "big")


def _gif_blocks(data: bytes):
    """Yield the offset of each block (extension, image) and data sub-block of a GIF stream, up to its trailer."""
    pos = 13 + _colour_table(data, 10)
    while pos < len(data) and data[pos] != 0x3B:
        yield pos
        if data[pos] == 0x21:  # extension: introducer, label, sub-blocks
            pos += 2
        elif data[pos] == 0x2C and pos + 10 <= len(data):  # image: descriptor, local colour table, LZW code size
            pos += 11 + _colour_table(data, pos + 9)
        else:  # not GIF structure: Pillow will say so
            return
        while pos < len(data) and data[pos]:
            yield pos
            pos += 1 + data[pos]
        pos += 1  # the block terminator


def _colour_table(data: bytes, flags_at: int) -> int:
    flags = data[flags_at] if flags_at < len(data) else 0
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _jpeg_scans(data: bytes, label: str) -> int:
    """How many scans (SOS markers) a JPEG stream holds, found by walking its marker segments (stops counting
    past ``MAX_JPEG_SCANS``). Every step moves past a segment or a whole scan, and there are at most
    ``MAX_JPEG_SEGMENTS`` + ``MAX_JPEG_SCANS`` of them, so this is quick whatever the file."""
    pos, scans, segments = 2, 0, 0  # past SOI
    while pos + 4 <= len(data) and data[pos] == 0xFF and scans <= MAX_JPEG_SCANS:
        segments += 1
        if segments > MAX_JPEG_SEGMENTS + MAX_JPEG_SCANS:
            raise DataFileError(f"{label}: a JPEG of more than {MAX_JPEG_SEGMENTS} marker segments")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill bytes before a marker
            pos = _FILL.match(data, pos).end() - 1
            continue
        if marker == 0xD9:  # EOI: what follows is not decoded
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            scans += 1
            end = _SCAN_END.search(data, pos)
            if end is None:
                break
            pos = end.start()
    return scans


def _gray_and_alpha(img):
    """``(L image, alpha L image or None)`` of a decoded picture; a new image either way (``img`` may be closed)."""
    from PIL import Image

    if img.mode in _SIXTEEN_BIT:
        values = np.array(img)  # uint16 (int32 for mode "I"), a copy this function may overwrite
        transparent = img.info.get("transparency")
        alpha = None
        if isinstance(transparent, int):  # a tRNS grey value: that exact 16-bit value is see-through
            alpha = Image.fromarray(np.multiply(values != transparent, 255, dtype=np.uint8), mode="L")
        if img.mode == "I":
            np.clip(values, 0, 65535, out=values)
        np.right_shift(values, 8, out=values)  # 0-65535 onto 0-255: the high byte
        return Image.fromarray(values.astype(np.uint8), mode="L"), alpha
    if img.mode not in _TRANSPARENT_MODES and "transparency" not in img.info:
        return img.convert("L"), None
    rgba = img if img.mode == "RGBA" else img.convert("RGBA")
    return rgba.convert("L"), rgba.getchannel("A")


def _composite(gray, alpha):
    """``gray`` laid through ``alpha`` on white if the visible strokes are dark, else on black (1 byte a pixel)."""
    from PIL import Image, ImageChops, ImageStat

    if alpha is None or alpha.getextrema()[0] == 255:
        return gray
    # Mean luminance of what shows, weighted by alpha: sum(L * A) / sum(A), from histograms (no float copies).
    shown = ImageStat.Stat(ImageChops.multiply(gray, alpha)).sum[0] * 255.0
    weight = ImageStat.Stat(alpha).sum[0]
    strokes_dark = shown / max(weight, 1e-9) < 128
    laid = Image.new("L", gray.size, 255 if strokes_dark else 0)
    laid.paste(gray, (0, 0), alpha)  # L * A/255 + background * (1 - A/255), rounded
    return laid


def opaque(img):
    """``img`` (a decoded Pillow image) without transparency, as an L image: laid on white if its visible strokes
    are dark, else on black (dark strokes on a transparent background, as drawing programs save them, would
    otherwise be black on black: blank)."""
    return _composite(*_gray_and_alpha(img))


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
        # uint8 stays uint8 (every step below gives the same numbers for it): a 16-megapixel picture is 16 MB, not 128.
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
