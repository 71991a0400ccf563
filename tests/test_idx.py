"""IDX reader and writer: round trips, and an explicit DataFileError for each kind of damage."""

import gzip
import struct

import numpy as np
import pytest

from convscope.datasets import idx
from convscope.errors import DataFileError


def header(magic, *dims):
    return struct.pack(f">I{len(dims)}I", magic, *dims)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5)])
def test_round_trip(tmp_path, suffix, shape):
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / f"data{suffix}"
    idx.write_idx(path, array)
    assert idx.is_gzip(path) == (suffix == ".gz")
    out = idx.read_idx(path)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable


def test_gzip_output_is_reproducible(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    idx.write_idx(tmp_path / "a.gz", array)
    idx.write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_gzip_detected_by_content_not_name(tmp_path):
    path = tmp_path / "labels-without-suffix"
    path.write_bytes(gzip.compress(header(idx.LABELS_MAGIC, 3) + b"\x01\x02\x03"))
    np.testing.assert_array_equal(idx.read_idx(path, magic=idx.LABELS_MAGIC), [1, 2, 3])


def test_magic_numbers_match_mnist():
    assert (idx.IMAGES_MAGIC, idx.LABELS_MAGIC) == (0x0803, 0x0801)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "too short for an IDX header"),
        (b"\x01\x00\x08\x01" + b"\x00" * 8, "bad magic number 0x01000801"),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00" * 4, "unsupported IDX data type 0x0d"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (header(idx.IMAGES_MAGIC, 2, 28), "truncated header, 3 dimensions need 16 bytes"),
        (header(idx.LABELS_MAGIC, 5) + b"\x00" * 3, r"truncated: dimensions \(5,\) declare 5 data bytes but the file holds 3"),
        (header(idx.LABELS_MAGIC, 2) + b"\x00" * 3, "trailing bytes: .* declare 2 data bytes but the file holds 3"),
    ],
)
def test_malformed_files(tmp_path, data, match):
    path = tmp_path / "bad"
    path.write_bytes(data)
    with pytest.raises(DataFileError, match=match):
        idx.read_idx(path)


def test_wrong_magic_for_the_expected_kind(tmp_path):
    path = tmp_path / "labels"
    idx.write_idx(path, np.zeros(4, np.uint8))
    with pytest.raises(DataFileError, match=r"labels: bad magic number 2049 \(0x00000801\), expected 2051"):
        idx.read_idx(path, magic=idx.IMAGES_MAGIC)


def test_truncated_image_data(tmp_path):
    path = tmp_path / "images.gz"
    data = header(idx.IMAGES_MAGIC, 2, 28, 28) + bytes(28 * 28 + 100)
    path.write_bytes(gzip.compress(data))
    with pytest.raises(DataFileError, match=r"images.gz: truncated: dimensions \(2, 28, 28\) declare 1568"):
        idx.read_idx(path, magic=idx.IMAGES_MAGIC)


def test_count_mismatch_between_images_and_labels(tmp_path):
    idx.write_idx(tmp_path / "x", np.zeros((3, 28, 28), np.uint8))
    idx.write_idx(tmp_path / "y", np.zeros(4, np.uint8))
    with pytest.raises(DataFileError, match="x holds 3 images but y holds 4 labels"):
        idx.read_pair(tmp_path / "x", tmp_path / "y")


def test_read_pair_checks_each_magic(tmp_path):
    idx.write_idx(tmp_path / "x", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DataFileError, match="expected 2049"):
        idx.read_pair(tmp_path / "x", tmp_path / "x")


def test_gzip_bomb_is_bounded(tmp_path):
    path = tmp_path / "bomb.gz"
    # 4 MiB of zeros compress to about 4 KiB.
    path.write_bytes(gzip.compress(header(idx.LABELS_MAGIC, 4 * 2**20) + bytes(4 * 2**20)))
    assert path.stat().st_size < 10_000
    with pytest.raises(DataFileError, match="bomb.gz: decompresses to more than the 1048576-byte limit"):
        idx.read_idx(path, max_bytes=2**20)


def test_uncompressed_file_is_bounded_too(tmp_path):
    path = tmp_path / "big"
    idx.write_idx(path, np.zeros(2000, np.uint8))
    with pytest.raises(DataFileError, match="big: holds more than the 1000-byte limit"):
        idx.read_idx(path, max_bytes=1000)


@pytest.mark.parametrize("cut", [10, -4])
def test_damaged_gzip(tmp_path, cut):
    blob = gzip.compress(header(idx.LABELS_MAGIC, 100) + bytes(range(100)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[:cut])
    with pytest.raises(DataFileError, match="cut.gz: damaged or truncated gzip data"):
        idx.read_idx(path)


def test_corrupt_gzip_payload(tmp_path):
    blob = bytearray(gzip.compress(header(idx.LABELS_MAGIC, 100) + bytes(range(100))))
    blob[12:20] = b"\xff" * 8
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(DataFileError, match="damaged or truncated gzip data"):
        idx.read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        idx.read_idx(tmp_path / "absent")


def test_write_rejects_non_uint8_and_scalars(tmp_path):
    with pytest.raises(TypeError, match="uint8"):
        idx.write_idx(tmp_path / "f", np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        idx.write_idx(tmp_path / "f", np.uint8(3))
