"""load_data for MNIST, Fashion-MNIST and the shipped sample: formats, lookup order, full data when present."""

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from convscope import datasets
from convscope.datasets import _loader, download, fashion_mnist, idx, mnist, mnist_sample
from convscope.errors import DataFileError, DownloadError

# Read before any test changes the environment.
FULL_DATA = Path(os.environ.get("CONVSCOPE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
FULL_MNIST = FULL_DATA / "mnist"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
SAMPLE = Path(mnist_sample.__file__).with_name("data") / mnist_sample.FILE_NAME


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the user's data, cache or system folders."""
    monkeypatch.delenv("CONVSCOPE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(_loader, "SYSTEM_DIRS", {"fashion-mnist": (tmp_path / "system",)})


def make_split(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_folder(folder, n_train=20, n_test=10, seed=0, gz=(True, False, True, False)):
    """The four IDX files of a small synthetic dataset; returns what load_data should give."""
    folder.mkdir(parents=True, exist_ok=True)
    train, test = make_split(n_train, seed), make_split(n_test, seed + 1)
    for name, array, compressed in zip(download.FILE_NAMES, (*train, *test), gz):
        idx.write_idx(folder / (f"{name}.gz" if compressed else name), array)
    return train, test


def assert_same(loaded, expected):
    for got, want in zip((*loaded[0], *loaded[1]), (*expected[0], *expected[1])):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("module", [mnist, fashion_mnist])
def test_load_from_idx_folder(tmp_path, module):
    expected = write_folder(tmp_path / "d")
    assert_same(module.load_data(tmp_path / "d"), expected)
    assert_same(module.load_data(str(tmp_path / "d")), expected)


def test_load_from_keras_npz(tmp_path):
    (x, y), (xt, yt) = make_split(20, 0), make_split(10, 1)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    assert_same(mnist.load_data(tmp_path / "mnist.npz"), ((x, y), (xt, yt)))


def npz_with(tmp_path, **changes):
    (x, y), (xt, yt) = make_split(20, 0), make_split(10, 1)
    arrays = dict(x_train=x, y_train=y, x_test=xt, y_test=yt)
    arrays.update(changes)
    path = tmp_path / "bad.npz"
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(y_test=None), "missing arrays y_test"),
        (dict(x_train=np.zeros((20, 28, 28), np.float32)), "x_train has dtype float32, expected uint8"),
        (dict(y_train=np.array([{"a": 1}] * 20, dtype=object)), "y_train has dtype object"),
        (dict(x_test=np.zeros((10, 28, 27), np.uint8)), r"expected images shaped \(n, 28, 28\), found \(10, 28, 27\)"),
        (dict(y_test=np.zeros(9, np.uint8)), r"expected labels shaped \(10,\)"),
        (dict(y_train=np.full(20, 10, np.uint8)), r"labels must lie in \[0, 10\), found 10"),
    ],
)
def test_npz_errors(tmp_path, changes, match):
    with pytest.raises(DataFileError, match=match):
        mnist.load_data(npz_with(tmp_path, **changes))


def test_npz_header_claiming_a_huge_array_is_refused_before_allocation(tmp_path):
    path = npz_with(tmp_path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**12,)})
    members["x_train.npy"] = header.getvalue() + bytes(100)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(DataFileError, match=r"x_train declares shape \(1000000000000,\)"):
        mnist.load_data(path)


def test_not_an_npz(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(DataFileError, match="mnist.npz: not a readable .npz file"):
        mnist.load_data(path)


def test_missing_files_are_named(tmp_path):
    write_folder(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataFileError, match="missing t10k-labels-idx1-ubyte"):
        mnist.load_data(tmp_path / "d")
    with pytest.raises(DataFileError, match="no such file or folder"):
        mnist.load_data(tmp_path / "absent")


def test_idx_errors_reach_the_caller(tmp_path):
    write_folder(tmp_path / "d")
    idx.write_idx(tmp_path / "d" / "train-labels-idx1-ubyte", np.zeros(19, np.uint8))
    with pytest.raises(DataFileError, match="holds 20 images but train-labels-idx1-ubyte holds 19 labels"):
        mnist.load_data(tmp_path / "d")


def test_lookup_order(tmp_path, monkeypatch):
    name = "fashion-mnist"
    env, cache, system = tmp_path / "env", tmp_path / "xdg" / "convscope" / name, tmp_path / "system"
    monkeypatch.setenv("CONVSCOPE_DATA", str(env))
    assert datasets.candidate_dirs(name) == [env / name, cache, system]
    assert datasets.find_local(name) is None

    expected = write_folder(system, seed=3)
    assert datasets.find_local(name) == system
    assert_same(fashion_mnist.load_data(), expected)

    expected = write_folder(cache, seed=5)
    assert datasets.find_local(name) == cache
    assert_same(fashion_mnist.load_data(), expected)

    # An incomplete folder is passed over.
    write_folder(env / name, seed=7)
    (env / name / "train-images-idx3-ubyte.gz").unlink()
    assert datasets.find_local(name) == cache

    expected = write_folder(env / name, seed=7)
    assert datasets.find_local(name) == env / name
    assert_same(fashion_mnist.load_data(), expected)


def test_mnist_has_no_system_folder_and_ignores_empty_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_DATA", "")
    assert datasets.candidate_dirs("mnist") == [tmp_path / "xdg" / "convscope" / "mnist"]


def test_cache_falls_back_to_home(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = write_folder(tmp_path / "home" / ".cache" / "convscope" / "mnist")
    assert datasets.find_local("mnist") == tmp_path / "home" / ".cache" / "convscope" / "mnist"
    assert_same(mnist.load_data(), expected)


def specs_for(folder):
    specs = []
    for name in download.FILE_NAMES:
        content = b"".join(idx.iter_bytes(download.local_file(folder, name)))
        specs.append(download.FileSpec(name, len(content), hashlib.sha256(content).hexdigest()))
    return tuple(specs)


def test_downloads_into_the_cache_when_nothing_is_local(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    expected = write_folder(mirror, gz=(True,) * 4)
    # A file:// mirror keeps this test off the network; test_download.py covers HTTP.
    remote = download.Remote(mirrors=(mirror.as_uri() + "/",), files=specs_for(mirror))
    monkeypatch.setitem(download.DATASETS, "mnist", remote)
    monkeypatch.setattr(download, "_progress_bar", lambda *args: download._NoBar())
    assert_same(mnist.load_data(), expected)
    cache = tmp_path / "xdg" / "convscope" / "mnist"
    assert datasets.find_local("mnist") == cache
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in download.FILE_NAMES)


def test_no_data_and_no_network_raises_download_error(tmp_path, monkeypatch):
    remote = download.Remote(mirrors=((tmp_path / "empty").as_uri() + "/",), files=download.DATASETS["mnist"].files)
    monkeypatch.setitem(download.DATASETS, "mnist", remote)
    monkeypatch.setattr(download.time, "sleep", lambda seconds: None)  # skip the back-off between retries
    with pytest.raises(DownloadError, match="CONVSCOPE_DATA") as info:
        mnist.load_data()
    assert str(tmp_path / "xdg" / "convscope" / "mnist") in str(info.value)


def test_sample():
    (x, y), (xt, yt) = mnist_sample.load_data()
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)
    assert xt.shape == (1000, 28, 28) and yt.shape == (1000,)
    assert {a.dtype for a in (x, y, xt, yt)} == {np.dtype(np.uint8)}
    assert np.bincount(y).tolist() == [1000] * 10
    assert np.bincount(yt).tolist() == [100] * 10
    assert x.max() == 255 and x.mean() > 20  # real digits, not blank images
    assert SAMPLE.stat().st_size <= 2 * 2**20
    credit = (SAMPLE.parent / "LICENSE-MNIST.txt").read_text()
    for words in ("Yann LeCun", "Corinna Cortes", "Christopher J.C. Burges", "CC BY-SA 3.0"):
        assert words in credit


full_mnist = pytest.mark.skipif(not FULL_MNIST.is_dir(), reason=f"full MNIST not found at {FULL_MNIST}")


@full_mnist
def test_full_mnist():
    (x, y), (xt, yt) = mnist.load_data(FULL_MNIST)
    assert (x.shape, y.shape, xt.shape, yt.shape) == ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,))
    assert {a.dtype for a in (x, y, xt, yt)} == {np.dtype(np.uint8)}
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@full_mnist
def test_full_mnist_matches_the_known_hashes():
    for spec in download.DATASETS["mnist"].files:
        assert download.verify(download.local_file(FULL_MNIST, spec.name), spec) is None, spec.name


@full_mnist
def test_sample_images_come_from_mnist():
    (x, y), (xt, yt) = mnist.load_data(FULL_MNIST)
    (sx, sy), (sxt, syt) = mnist_sample.load_data()
    for full_x, full_y, sample_x, sample_y in ((x, y, sx, sy), (xt, yt, sxt, syt)):
        where = {image.tobytes(): label for image, label in zip(full_x, full_y)}
        assert [where.get(image.tobytes()) for image in sample_x] == sample_y.tolist()


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason=f"Debian's Fashion-MNIST not found at {DEBIAN_FASHION}")
def test_debian_fashion_mnist():
    (x, y), (xt, yt) = fashion_mnist.load_data(DEBIAN_FASHION)
    assert (x.shape, y.shape, xt.shape, yt.shape) == ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,))
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    for spec in download.DATASETS["fashion-mnist"].files:
        assert download.verify(download.local_file(DEBIAN_FASHION, spec.name), spec) is None, spec.name
