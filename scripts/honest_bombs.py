"""Consistent-size bombs for the fuzz harness (issue 16): files whose headers honestly declare huge shapes and whose
compressed data really inflates to that size, one generator per reader of ``scripts/fuzz.py``.

A reader that trusts declared sizes is refused by nothing: the only defence is to compute what it will
allocate from the shapes before it inflates anything (``convscope.budget``). The fuzz run sets the budget low
(``FUZZ_BUDGET``) so bombs a few times over it stay cheap to generate; each generator returns
``(bytes, suffix, hostile class)``.

    python scripts/fuzz.py --minutes 12      # mixes these in with the other mutations
"""

from __future__ import annotations

import gzip
import io
import json
import random
import struct
import zipfile
import zlib

FUZZ_BUDGET = "64M"
"""``$CONVSCOPE_MAX_BYTES`` during a fuzz run: the bombs below declare 1.5-6x this."""
BUDGET_BYTES = 64 * 2**20


def _declared_bytes(r: random.Random) -> int:
    return int(BUDGET_BYTES * r.uniform(1.5, 6.0))


def _zip(members, method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            zf.writestr(info, data)
    return buf.getvalue()


def _npy(shape, dtype: str = "<f4") -> bytes:
    """A complete .npy of zeros: header and every byte the shape declares."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    itemsize = int(dtype[-1])
    count = 1
    for n in shape:
        count *= n
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(count * itemsize)


def model_bomb(r: random.Random, seed_file: bytes) -> tuple[bytes, str, str]:
    """A convscope model file whose Dense layer declares (and holds, deflated) a kernel over the budget: the
    seed's config with the last Dense widened, every declared weight shape consistent with it."""
    with zipfile.ZipFile(io.BytesIO(seed_file)) as zf:
        config = json.loads(zf.read("config.json"))
    layers = config["model"]["config"]["layers"]
    dense = [k for k, layer in enumerate(layers) if layer["class_name"] == "Dense"][-1]
    kernel_entry = next(k for k, w in enumerate(config["weights"]) if w["name"].endswith("/kernel")
                        and w["name"].startswith(layers[dense]["config"]["name"]))
    inputs = config["weights"][kernel_entry]["shape"][0]
    units = max(1, _declared_bytes(r) // (4 * inputs))
    layers[dense]["config"]["units"] = units
    config["weights"][kernel_entry]["shape"] = [inputs, units]
    config["weights"][kernel_entry + 1]["shape"] = [units]
    config["compile"] = None
    config["optimizer_state"] = []
    config["training_state"] = None
    members = [("config.json", json.dumps(config).encode())]
    for k, w in enumerate(config["weights"]):
        members.append((f"weights/{k:04d}.npy", _npy(w["shape"])))
    return _zip(members), ".convscope", "honest bomb: a Dense kernel over the budget, deflated"


def optimizer_bomb(r: random.Random, seed_file: bytes) -> tuple[bytes, str, str]:
    """The seed model, untouched, with one optimizer slot declared (and held) far larger than any weight."""
    with zipfile.ZipFile(io.BytesIO(seed_file)) as zf:
        config = json.loads(zf.read("config.json"))
        members = [(info.filename, zf.read(info)) for info in zf.infolist() if info.filename != "config.json"]
    slots = [k for k, slot in enumerate(config.get("optimizer_state") or []) if slot["dtype"] == "float32"]
    if not slots:
        return model_bomb(r, seed_file)
    k = r.choice(slots)
    size = _declared_bytes(r) // 4
    config["optimizer_state"][k]["shape"] = [size]
    name = f"optimizer/{k:04d}.npy"
    members = [(n, d) for n, d in members if n != name] + [(name, _npy([size]))]
    return (_zip([("config.json", json.dumps(config).encode()), *members]), ".convscope",
            "honest bomb: an optimizer slot over the budget")


def keras_bomb(r: random.Random) -> tuple[bytes, str, str]:
    """A .keras whose Dense kernel dataset declares a shape over the budget (HDF5 chunks never written: the
    file is tiny, and reading it would still allocate the whole declared array)."""
    import h5py

    from convscope import Input, Sequential, layers
    from convscope.interop.keras_export import keras_model_config

    inputs = r.choice([16, 64, 784])
    units = max(1, _declared_bytes(r) // (4 * inputs))
    model = Sequential([Input((inputs,)), layers.Dense(3, name="dense")])
    config = keras_model_config(model)
    config["config"]["layers"][-1]["config"]["units"] = units
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        group = f.create_group("layers/dense/vars")
        group.create_dataset("0", shape=(inputs, units), dtype="float32", chunks=(1, min(units, 1024)),
                             compression="gzip")
        group.create_dataset("1", shape=(units,), dtype="float32")
    metadata = {"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"}
    return (_zip([("metadata.json", json.dumps(metadata).encode()), ("config.json", json.dumps(config).encode()),
                  ("model.weights.h5", buf.getvalue())]), ".keras",
            "honest bomb: a Keras kernel declared over the budget")


def idx_bomb(r: random.Random) -> tuple[bytes, str, str]:
    """An IDX image file (gzip) whose dimensions and data both say N x 28 x 28 bytes, N over the budget."""
    count = _declared_bytes(r) // 784
    raw = struct.pack(">HBB3I", 0, 8, 3, count, 28, 28) + bytes(count * 784)
    return gzip.compress(raw, compresslevel=1, mtime=0), ".gz", "honest bomb: IDX images over the budget, gzip"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def image_bomb(r: random.Random) -> tuple[bytes, str, str]:
    """A PNG whose declared size and real (deflated) pixels are far beyond a digit's: greyscale or RGBA, with a
    band of ink so that a reader cannot stop early at an all-black picture."""
    channels, colour = r.choice([(1, 0), (4, 6)])
    side = int((_declared_bytes(r) / channels) ** 0.5)
    row = bytes(side * channels)
    ink = bytes([255] * (side * channels))
    compressor = zlib.compressobj(1)
    parts = []
    for y in range(side):
        parts.append(compressor.compress(b"\x00" + (ink if side // 3 < y < side // 3 + 8 else row)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, colour, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", b"".join(parts))
            + _png_chunk(b"IEND", b""))
    return data, ".png", f"honest bomb: a {side}x{side} {'RGBA' if channels == 4 else 'grey'} PNG with ink"


def bomb(reader: str, r: random.Random, seeds: dict) -> tuple[bytes, str, str]:
    """One consistent-size bomb for ``reader`` (``seeds``: fuzz.seeds(), for the model reader's config)."""
    if reader == "model":
        seed = r.choice([data for suffix, data in seeds["model"]])
        return (optimizer_bomb if r.random() < 0.4 else model_bomb)(r, seed)
    if reader == "keras":
        return keras_bomb(r)
    if reader == "idx":
        return idx_bomb(r)
    if reader == "image":
        return image_bomb(r)
    raise ValueError(f"no consistent-size bomb for reader {reader!r}")
