"""MNIST / Fashion-MNIST from IDX files written here by the format's definition; the network is never used."""
import gzip
import hashlib
import os
import struct

import numpy as np
import pytest

from kestimator.datasets import _files, fashion_mnist, mnist
from kestimator.errors import DataLossError, NotFoundError

NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every download attempt fails, as on a machine without network; the calls are recorded."""
    calls = []

    def refuse(url, out, timeout):
        calls.append(url)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(_files, "http_get", refuse)
    return calls


def idx_bytes(array, type_code=0x08, ndim=None):
    """An IDX file: 0, 0, type, ndim, big-endian uint32 dims, then the bytes."""
    ndim = array.ndim if ndim is None else ndim
    return bytes([0, 0, type_code, ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def make_dataset(folder, n_train=5, n_test=3, rows=4, cols=6, gz=True):
    rng = np.random.default_rng(1)
    arrays = (rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8), rng.integers(0, 10, n_train, np.uint8),
              rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8), rng.integers(0, 10, n_test, np.uint8))
    os.makedirs(folder, exist_ok=True)
    for name, array in zip(NAMES, arrays):
        data = idx_bytes(array)
        if gz:
            with gzip.open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(folder, name[:-3]), "wb") as f:
                f.write(data)
    return arrays


def check(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    for got, want in zip((x_train, y_train, x_test, y_test), arrays):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


def test_load_from_an_explicit_folder(tmp_path):
    arrays = make_dataset(tmp_path / "m")
    check(mnist.load_data(path=str(tmp_path / "m")), arrays)


def test_gunzipped_files_work_too(tmp_path):
    arrays = make_dataset(tmp_path / "m", gz=False)
    check(mnist.load_data(path=str(tmp_path / "m")), arrays)


def test_cache_folder_from_the_environment_and_the_default(tmp_path, monkeypatch):
    arrays = make_dataset(tmp_path / "root" / "fashion_mnist")
    monkeypatch.setenv("KESTIMATOR_DATASETS", str(tmp_path / "root"))
    check(fashion_mnist.load_data(), arrays)
    monkeypatch.delenv("KESTIMATOR_DATASETS")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    arrays = make_dataset(tmp_path / "home" / ".kestimator" / "datasets" / "mnist", n_train=2)
    check(mnist.load_data(), arrays)


def test_missing_files_say_what_to_put_where(tmp_path, no_network):
    folder = tmp_path / "empty"
    with pytest.raises(NotFoundError) as info:
        mnist.load_data(path=str(folder))
    message = str(info.value)
    assert f"MNIST files are missing from {folder} and could not be downloaded" in message
    for name in NAMES:
        assert f"{name} (https://storage.googleapis.com/cvdf-datasets/mnist/{name}, md5 {mnist.MD5[name]})" in message
    assert "network disabled in tests" in message
    # both mirrors of the first file were tried, then no more timeouts were waited out
    assert no_network == [base + NAMES[0] for base in mnist.BASE_URLS]
    assert os.listdir(folder) == []                          # no partial download left behind


def test_download_is_checked_and_placed(tmp_path, monkeypatch):
    source = tmp_path / "source"
    arrays = make_dataset(source)
    served = {}
    for name in NAMES:
        data = (source / name).read_bytes()
        served[mnist.BASE_URLS[1] + name] = data
        monkeypatch.setitem(mnist.MD5, name, hashlib.md5(data).hexdigest())

    def serve(url, out, timeout):
        assert timeout == _files.DOWNLOAD_TIMEOUT_S
        if url not in served:
            raise OSError("first mirror down")
        out.write(served[url])

    monkeypatch.setattr(_files, "http_get", serve)
    folder = tmp_path / "cache"
    check(mnist.load_data(path=str(folder)), arrays)
    assert sorted(os.listdir(folder)) == sorted(NAMES)


def test_download_with_a_wrong_checksum_is_refused_and_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(_files, "http_get", lambda url, out, timeout: out.write(b"tampered"))
    folder = tmp_path / "cache"
    with pytest.raises(DataLossError, match=r"md5 [0-9a-f]{32} differs from the published "
                                            r"f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        mnist.load_data(path=str(folder))
    assert os.listdir(folder) == []


# ---- corrupt files -----------------------------------------------------------------------------------------

def rewrite(folder, name, data, gz=True):
    path = os.path.join(folder, name)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)
    return path


def test_wrong_magic_type_or_rank(tmp_path):
    make_dataset(tmp_path)
    images = np.zeros((5, 4, 6), np.uint8)
    path = rewrite(tmp_path, NAMES[0], idx_bytes(images, type_code=0x0D))      # 0x0D: float32 in IDX
    with pytest.raises(DataLossError, match=rf"{path}: not an IDX file of unsigned bytes with 3 dimensions "
                                            rf"\(magic 00000d03, expected 00000803\)"):
        mnist.load_data(path=str(tmp_path))
    path = rewrite(tmp_path, NAMES[0], idx_bytes(images.reshape(5, 24)))
    with pytest.raises(DataLossError, match="magic 00000802"):
        mnist.load_data(path=str(tmp_path))


def test_dimensions_are_checked_against_the_size_before_allocating(tmp_path):
    make_dataset(tmp_path)
    # claims 2**30 images of 28x28 (about 800 GB) over a few bytes: refused from the gzip trailer's size
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 1 << 30, 28, 28) + b"\0" * 100
    path = rewrite(tmp_path, NAMES[2], header)
    with pytest.raises(DataLossError, match=rf"{path}: the header declares dimensions \[1073741824, 28, 28\]"):
        mnist.load_data(path=str(tmp_path))


def test_fewer_bytes_than_declared_in_a_plain_file(tmp_path):
    make_dataset(tmp_path, gz=False)
    labels = np.arange(5, dtype=np.uint8)
    path = rewrite(tmp_path, NAMES[1][:-3], idx_bytes(labels)[:-2], gz=False)
    with pytest.raises(DataLossError, match=rf"{path}: the header declares dimensions \[5\] \(13 bytes with the "
                                            rf"header\), but the file holds 11 bytes"):
        mnist.load_data(path=str(tmp_path))


def test_truncated_or_damaged_gzip(tmp_path):
    make_dataset(tmp_path, n_train=50)
    path = os.path.join(tmp_path, NAMES[0])
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])         # the trailer's size field is gone: sizes disagree
    with pytest.raises(DataLossError, match=rf"{path}: the header declares dimensions \[50, 4, 6\]"):
        mnist.load_data(path=str(tmp_path))
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF             # trailer intact, deflate stream or CRC broken
    with open(path, "wb") as f:
        f.write(bytes(damaged))
    with pytest.raises(DataLossError, match=rf"{path}: corrupt or truncated file"):
        mnist.load_data(path=str(tmp_path))


def test_images_and_labels_must_pair_up(tmp_path):
    make_dataset(tmp_path)
    rewrite(tmp_path, NAMES[3], idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DataLossError, match="holds 3 images but .*t10k-labels-idx1-ubyte.gz holds 4 labels"):
        mnist.load_data(path=str(tmp_path))
    rewrite(tmp_path, NAMES[3], idx_bytes(np.array([1, 2, 12], np.uint8)))
    with pytest.raises(DataLossError, match="label 12 is outside 0..9"):
        mnist.load_data(path=str(tmp_path))
