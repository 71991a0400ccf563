"""Pictures by allowlist (issue 16): one reader for ``predict``, ``show`` and the explorer's upload, bounded before it
decodes, and right about what it accepts.

Every hostile file is generated here (small files with honest headers). The bombs run in a fresh interpreter each,
which prints its time and its peak memory above its own level after the imports; the bound is the one
docs/reliability.md promises: refused (or read) in under 2 s and 200 MB.
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from convscope import images
from convscope.errors import DataFileError

Image = pytest.importorskip("PIL.Image")
ImageOps = pytest.importorskip("PIL.ImageOps")

MAX_SECONDS = 2.0
MAX_PEAK_MB = 200.0

MEASURE = r"""
import io, json, resource, sys, time
from PIL import Image
from convscope import images
for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP"):  # every plugin imported before the baseline
    buffer = io.BytesIO(); Image.new("RGB", (8, 8)).save(buffer, fmt); images.read_picture(buffer.getvalue())

def kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))

try:  # Linux: the peak (VmHWM) restarts from the current level, so the peak is measured above that level
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before, peak = kb("VmRSS:"), lambda: kb("VmHWM:")
except OSError:  # elsewhere: above the peak so far, which can only understate
    before, peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, lambda: resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    images.load_digit(sys.argv[1])
    outcome, message = "loaded", ""
except Exception as e:
    outcome, message = type(e).__name__, str(e)
seconds = time.perf_counter() - start
print(json.dumps({"outcome": outcome, "message": message, "seconds": seconds, "peak_mb": (peak() - before) / 1024}))
"""


def measured(path, timeout=20) -> dict:
    """``load_digit(path)`` in a fresh interpreter: outcome, message, seconds, peak MB above its level."""
    try:
        done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{path.name}: still decoding after {timeout} s")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_refused_within_bounds(path, match, timeout=20):
    result = measured(path, timeout)
    print(f"{path.name} ({path.stat().st_size} bytes): {result['outcome']} in {result['seconds']:.3f} s, "
          f"peak {result['peak_mb']:.1f} MB: {result['message']}")
    assert result["outcome"] == "DataFileError" and re.search(match, result["message"]), result
    assert result["seconds"] < MAX_SECONDS and result["peak_mb"] < MAX_PEAK_MB, result
    return result


def encoded(img, fmt, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def digit_array(h=40, w=30) -> np.ndarray:
    """An asymmetric white "7" on black, so that any flip or rotation shows."""
    a = np.zeros((h, w), np.uint8)
    a[4:9, 4 : w - 4] = 255
    a[9 : h - 4, w - 10 : w - 5] = 255
    return a


def png(chunks) -> bytes:
    out = [b"\x89PNG\r\n\x1a\n"]
    for kind, body in chunks:
        out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(out)


def ihdr(width, height, depth=8, colour=0):
    return b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)


# ----------------------------------------------------------------------------------------------- formats


def test_postscript_is_refused_by_its_format_and_never_reaches_pillows_eps_plugin(tmp_path, monkeypatch):
    """Security 1: ``predict model digit.png`` with a PostScript file. Pillow's EPS plugin would hand the file to
    Ghostscript; the reader must never even let the plugin parse it."""
    from PIL import EpsImagePlugin

    opened = []
    original = EpsImagePlugin.EpsImageFile._open

    def recording(self):
        opened.append(self)
        return original(self)

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", recording)
    path = tmp_path / "digit.png"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n0 0 moveto 28 28 lineto stroke\nshowpage\n")
    with pytest.raises(DataFileError, match=r"digit\.png'.*its format is EPS, not one convscope reads \(PNG, JPEG"):
        images.load_digit(path)
    assert opened == []


def test_predict_names_the_format_in_one_line(tmp_path):
    """The same PostScript file through ``convscope predict``: one line, exit status 2, no traceback."""
    from convscope import Input, Sequential, layers
    from convscope.saving import save_model

    save_model(Sequential([Input((28, 28, 1)), layers.Flatten(), layers.Dense(10, activation="softmax")]),
               tmp_path / "m.convscope")
    picture = tmp_path / "digit.png"
    picture.write_bytes(b"%!PS-Adobe-3.0\n0 0 moveto showpage\n")
    done = subprocess.run([sys.executable, "-m", "convscope.cli", "predict", str(tmp_path / "m.convscope"),
                           str(picture)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == "", done
    assert re.fullmatch(r"convscope: error: .*digit\.png'.*its format is EPS.*\n", done.stderr), done.stderr


@pytest.mark.parametrize("mode, dtype", [("I;16", np.uint16), ("F", np.float32)])
def test_tiff_is_refused_whatever_its_samples(tmp_path, mode, dtype):
    """16-bit and float TIFFs were read scaled wrongly (clipped at 255); TIFF is not on the list at all."""
    values = digit_array().astype(dtype) * dtype(257 if mode == "I;16" else 1 / 255)
    path = tmp_path / "digit.tif"
    img = Image.fromarray(values)
    assert img.mode == mode
    path.write_bytes(encoded(img, "TIFF"))
    with pytest.raises(DataFileError, match="its format is TIFF, not one convscope reads"):
        images.load_digit(path)


@pytest.mark.parametrize("data, match", [
    (b"", "it is empty"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", r"its format is not one convscope reads .*starts with b.<svg"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "PNG"),
])
def test_foreign_or_broken_bytes_are_one_line(data, match):
    with pytest.raises(DataFileError, match=match) as info:
        images.read_picture(data)
    assert "\n" not in str(info.value)


def test_every_listed_format_reads_the_same_digit():
    digit = digit_array()
    expected = images.to_mnist(digit)
    for fmt in images.FORMATS:
        options = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
        got = images.to_mnist(images.read_picture(encoded(Image.fromarray(digit), fmt, **options)))
        np.testing.assert_allclose(got.astype(float), expected.astype(float), atol=12, err_msg=fmt)


# ----------------------------------------------------------------------------------------------- read right


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    """A phone's picture stored sideways with an EXIF orientation reads upright, as ImageOps.exif_transpose
    (and every viewer) shows it."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encoded(Image.fromarray(digit_array()), "PNG", exif=exif)
    with Image.open(io.BytesIO(data)) as img:
        upright = np.asarray(ImageOps.exif_transpose(img).convert("L"))
    np.testing.assert_array_equal(images.read_picture(data), upright)


def test_exif_orientation_of_a_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: the viewer turns it 90 degrees clockwise
    data = encoded(Image.fromarray(digit_array()), "JPEG", quality=95, exif=exif)
    read = images.read_picture(data)
    assert read.shape == (30, 40)
    np.testing.assert_allclose(read.astype(float), np.rot90(digit_array(), -1).astype(float), atol=40)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_an_animation_is_refused_not_read_as_its_first_frame(fmt):
    """A GIF whose digit is in frame 2 was read as frame 1: blank. Which frame is meant cannot be guessed."""
    blank, digit = Image.new("L", (30, 40)), Image.fromarray(digit_array())
    data = encoded(blank, fmt, save_all=True, append_images=[digit])
    with pytest.raises(DataFileError, match=f"the {fmt} holds more than one frame"):
        images.read_picture(data)


def test_sixteen_bit_png_is_scaled_by_its_range():
    """A 16-bit greyscale PNG (0-65535) reads as its 8-bit twin, not clipped to white above 255."""
    digit = digit_array()
    digit[20, 5] = 128
    sixteen = encoded(Image.fromarray(digit.astype(np.uint16) * 257), "PNG")
    with Image.open(io.BytesIO(sixteen)) as img:
        assert img.mode.startswith("I")
    np.testing.assert_array_equal(images.read_picture(sixteen), digit)


def test_sixteen_bit_png_transparency_is_composited():
    """A tRNS grey value in a 16-bit PNG is see-through, composited exactly as the same picture in 8-bit LA."""
    values = digit_array().astype(np.uint16) * np.uint16(257)
    values[0, :3] = 1234  # three see-through pixels
    chunks = [ihdr(values.shape[1], values.shape[0], 16, 0), (b"tRNS", struct.pack(">H", 1234)),
              (b"IDAT", zlib.compress(b"".join(b"\0" + row.astype(">u2").tobytes() for row in values))),
              (b"IEND", b"")]
    la = np.stack([digit_array(), np.full(values.shape, 255, np.uint8)], axis=-1)
    la[0, :3, 0], la[0, :3, 1] = values[0, :3] >> 8, 0
    eight = encoded(Image.fromarray(la, mode="LA"), "PNG")
    np.testing.assert_array_equal(images.read_picture(png(chunks)), images.read_picture(eight))
    assert images.read_picture(png(chunks))[0, 0] != images.read_picture(png(chunks[:1] + chunks[2:]))[0, 0]


def test_dark_strokes_on_transparency_are_composited_as_before():
    """Dark strokes whose alpha is the ink (a drawing program's PNG) lie on white: the formula of issue 14, now
    computed by Pillow one byte a pixel, to within rounding."""
    ink = digit_array().astype(float)
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = ink
    rgba[..., 3][10:14, 5:9] = 100  # some half-transparent ink
    read = images.read_picture(encoded(Image.fromarray(rgba, mode="RGBA"), "PNG"))
    alpha = rgba[..., 3] / 255.0
    np.testing.assert_allclose(read, 255 * (1 - alpha), atol=1)


# ----------------------------------------------------------------------------------------------- bounded


def progressive_jpeg_with_repeated_scans(count: int) -> bytes:
    """The issue's file: a valid 2000x2000 progressive JPEG whose last (14-byte) scan is repeated."""
    data = encoded(Image.new("L", (2000, 2000), 128), "JPEG", progressive=True, quality=90)
    starts = [m.start() for m in re.finditer(rb"\xff\xda", data)]
    end = data.rindex(b"\xff\xd9")
    last = data[starts[-1] : end]
    assert len(last) == 14
    return data[:end] + last * (count - len(starts)) + data[end:]


def test_progressive_jpeg_of_100000_scans_is_refused_before_decoding(tmp_path):
    """1.4 MB, 100,000 scans: 45 s of CPU in predict before this; each scan is a pass over all 4 million pixels."""
    path = tmp_path / "scans.jpg"
    path.write_bytes(progressive_jpeg_with_repeated_scans(100_000))
    assert_refused_within_bounds(path, rf"a JPEG of more than {images.MAX_JPEG_SCANS} scans", timeout=15)


def test_a_real_progressive_jpeg_reads(tmp_path):
    data = encoded(Image.fromarray(np.repeat(digit_array()[..., None], 3, axis=2)), "JPEG", progressive=True,
                   quality=95)
    assert 1 < len(re.findall(rb"\xff\xda", data)) <= images.MAX_JPEG_SCANS
    np.testing.assert_allclose(images.read_picture(data).astype(float), digit_array().astype(float), atol=40)


def test_rgba_png_of_39_7_megapixels_with_ink_is_refused_from_its_header(tmp_path):
    """480 KB of honest RGBA PNG (7300x5440, a stroke of ink): 416 MB and 6.6 s in predict before this."""
    width, height = 7300, 5440
    blank = b"\0" + bytes(4 * width)
    inked = bytearray(blank)
    inked[1 + 4 * 3000 + 3 : 1 + 4 * 4300 : 4] = b"\xff" * 1300
    packer = zlib.compressobj(1)
    idat = b"".join([packer.compress(bytes(inked) if 1000 <= y < 4400 else blank) for y in range(height)])
    path = tmp_path / "rgba.png"
    path.write_bytes(png([ihdr(width, height, 8, 6), (b"IDAT", idat + packer.flush()), (b"IEND", b"")]))
    assert_refused_within_bounds(path, f"7300x5440 pixels, more than {images.MAX_PIXELS}")


@pytest.mark.parametrize("name, build, match", [
    # Under the pixel budget, over the decoding memory: libwebp holds RGBA three times over, a progressive
    # CMYK JPEG every coefficient beside its CMYK picture.
    ("rgba.webp", lambda: encoded(Image.new("RGBA", (3000, 3000)), "WEBP", quality=10, method=0),
     r"a 3000x3000 WEBP in mode RGBA takes about \d+ MB to decode"),
    ("cmyk.jpg", lambda: encoded(Image.new("CMYK", (3000, 3000)), "JPEG", progressive=True, quality=10),
     r"a 3000x3000 JPEG in mode CMYK takes about \d+ MB to decode"),
    # Structure floods: counts Pillow walks one by one, in Python, before any pixel.
    ("chunks.png", lambda: png([ihdr(16, 16), *[(b"abCd", b"")] * 1_700_000,
                                (b"IDAT", zlib.compress(bytes(17 * 16))), (b"IEND", b"")]),
     f"more than {images.MAX_PNG_CHUNKS} PNG chunks"),
    ("comment.gif", lambda: (lambda g: g[: g.index(b",")] + b"\x21\xfe" + b"\x01a" * 10_000_000 + b"\x00"
                             + g[g.index(b","):])(encoded(Image.new("L", (16, 16)), "GIF")),
     f"more than {images.MAX_GIF_BLOCKS} GIF blocks"),
    ("rle.bmp", lambda: b"BM" + struct.pack("<IHHI", 1078 + 2 * 10**7, 0, 0, 1078)
     + struct.pack("<IiiHHIIiiII", 40, 4000, 4000, 1, 8, 1, 2 * 10**7, 2835, 2835, 256, 0) + bytes(1024)
     + b"\x01\x07" * 10**7, "a run-length compressed BMP of more than"),
    ("segments.jpg", lambda: (lambda j: j[:2] + b"\xff\xfe\x00\x02" * 4_000_000 + j[2:])(
        encoded(Image.new("L", (16, 16)), "JPEG")), f"more than {images.MAX_JPEG_SEGMENTS} marker segments"),
])
def test_work_and_memory_are_bounded_before_decoding(tmp_path, name, build, match):
    path = tmp_path / name
    path.write_bytes(build())
    assert_refused_within_bounds(path, match)


def test_the_largest_accepted_pictures_stay_within_bounds(tmp_path):
    """The other side of the budget: a 16-megapixel progressive JPEG of MAX_JPEG_SCANS scans (the most decoding
    work accepted) reads within the bound."""
    ink = np.zeros((4000, 4000), np.uint8)
    ink[1000:3000, 1800:2200] = 255
    data = encoded(Image.fromarray(ink), "JPEG", progressive=True)
    starts = [m.start() for m in re.finditer(rb"\xff\xda", data)]
    end = data.rindex(b"\xff\xd9")
    path = tmp_path / "largest.jpg"
    path.write_bytes(data[:end] + data[starts[-1] : end] * (images.MAX_JPEG_SCANS - len(starts)) + data[end:])
    result = measured(path)
    print(f"{path.name}: {result['outcome']} in {result['seconds']:.3f} s, peak {result['peak_mb']:.1f} MB")
    assert result["outcome"] == "loaded", result
    assert result["seconds"] < MAX_SECONDS and result["peak_mb"] < MAX_PEAK_MB, result


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    import os

    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    with pytest.raises(DataFileError, match="not a regular file"):
        images.load_digit(fifo)


# ----------------------------------------------------------------------------------------------- one reader


def test_the_explorers_upload_uses_the_same_reader():
    """The upload had its own Image.open: it now refuses what predict refuses, with the same reasons."""
    pytest.importorskip("flask")
    from werkzeug.exceptions import BadRequest

    from convscope.explorer import inputs

    with pytest.raises(BadRequest, match="cannot read the upload: its format is EPS"):
        inputs.upload(b"%!PS-Adobe-3.0\n0 0 moveto showpage\n")
    animation = encoded(Image.new("L", (30, 40)), "GIF", save_all=True,
                        append_images=[Image.fromarray(digit_array())])
    with pytest.raises(BadRequest, match="more than one frame"):
        inputs.upload(animation)
    with pytest.raises(BadRequest, match=f"more than {inputs.MAX_UPLOAD_PIXELS}"):
        inputs.upload(png([ihdr(2100, 2000), (b"IDAT", zlib.compress(bytes(2001 * 2000))), (b"IEND", b"")]))
    np.testing.assert_array_equal(inputs.upload(encoded(Image.fromarray(digit_array()), "PNG")),
                                  images.to_mnist(digit_array()))
