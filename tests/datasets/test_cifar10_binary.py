"""CIFAR-10 from its binary version, in archives and folders written here by the format's definition."""
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from kestimator.datasets import _files, cifar10
from kestimator.errors import DataLossError, NotFoundError

BATCHES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(url, out, timeout):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(_files, "http_get", refuse)


def pixel(k, c, r, q):
    """The byte written for image k, channel c (0 red, 1 green, 2 blue), row r, column q."""
    return (k * 7 + c * 50 + r * 3 + q) % 256


def batch_bytes(first, count, label_of=lambda k: k % 10):
    """``count`` records: label byte, then red, green, blue planes of 32 rows of 32 bytes."""
    out = bytearray()
    for k in range(first, first + count):
        out.append(label_of(k))
        out.extend(pixel(k, c, r, q) for c in range(3) for r in range(32) for q in range(32))
    return bytes(out)


def expected(first, count):
    x = np.array([[[[pixel(k, c, r, q) for c in range(3)] for q in range(32)] for r in range(32)]
                  for k in range(first, first + count)], np.uint8)
    y = np.array([[k % 10] for k in range(first, first + count)], np.uint8)
    return x, y


def batches(per_batch=2):
    """name -> bytes: five training batches of ``per_batch`` images, then a test batch of 3."""
    files = {name: batch_bytes(i * per_batch, per_batch) for i, name in enumerate(BATCHES[:5])}
    files["test_batch.bin"] = batch_bytes(100, 3)
    return files


def make_archive(path, files, extra=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in list(files.items()) + [("batches.meta.txt", b"airplane\n")]:
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)


def check(result):
    (x_train, y_train), (x_test, y_test) = result
    want_x, want_y = expected(0, 10)
    assert x_train.shape == (10, 32, 32, 3) and y_train.shape == (10, 1) and x_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train, want_x)        # channels last: x[k, row, col, channel]
    np.testing.assert_array_equal(y_train, want_y)
    want_x, want_y = expected(100, 3)
    np.testing.assert_array_equal(x_test, want_x)
    np.testing.assert_array_equal(y_test, want_y)


def test_read_from_the_archive_without_unpickling(tmp_path, monkeypatch):
    make_archive(tmp_path / cifar10.ARCHIVE, batches())

    def no_pickle(*args, **kwargs):
        raise AssertionError("CIFAR-10 must not be unpickled")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    check(cifar10.load_data(path=str(tmp_path)))
    assert sorted(os.listdir(tmp_path)) == [cifar10.ARCHIVE]      # nothing extracted


def test_read_from_the_extracted_folder_and_the_cache(tmp_path, monkeypatch):
    folder = tmp_path / "root" / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name, data in batches().items():
        (folder / name).write_bytes(data)
    monkeypatch.setenv("KESTIMATOR_DATASETS", str(tmp_path / "root"))
    check(cifar10.load_data())


def test_missing_archive_says_what_to_put_where(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()         # the pickle version is not a substitute
    with pytest.raises(NotFoundError) as info:
        cifar10.load_data(path=str(tmp_path))
    message = str(info.value)
    assert f"CIFAR-10 (binary version) files are missing from {tmp_path}" in message
    assert ("cifar-10-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, "
            "md5 c32a1d4ab5d03f1284b67883e8d87530)") in message
    assert "the extracted folder cifar-10-batches-bin/" in message and "pickle batches are not read" in message


def test_batch_that_is_not_whole_records(tmp_path):
    files = batches()
    files["data_batch_3.bin"] = files["data_batch_3.bin"][:-1]
    path = tmp_path / cifar10.ARCHIVE
    make_archive(path, files)
    with pytest.raises(DataLossError, match=rf"{path}:cifar-10-batches-bin/data_batch_3\.bin: 6145 bytes is not "
                                            rf"a whole number of 3073-byte records"):
        cifar10.load_data(path=str(tmp_path))


def test_archive_lacking_a_batch(tmp_path):
    files = batches()
    del files["test_batch.bin"]
    make_archive(tmp_path / cifar10.ARCHIVE, files)
    with pytest.raises(DataLossError, match=r"lacks cifar-10-batches-bin/test_batch\.bin"):
        cifar10.load_data(path=str(tmp_path))


def test_member_that_is_a_link_is_refused(tmp_path):
    files = batches()
    del files["data_batch_1.bin"]
    link = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    make_archive(tmp_path / cifar10.ARCHIVE, files, extra=[link])
    with pytest.raises(DataLossError, match=r"data_batch_1\.bin is not a regular file in the archive"):
        cifar10.load_data(path=str(tmp_path))


def test_truncated_archive_and_bad_label(tmp_path):
    path = tmp_path / cifar10.ARCHIVE
    make_archive(path, batches())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataLossError, match=rf"{path}: corrupt or truncated archive"):
        cifar10.load_data(path=str(tmp_path))
    files = batches()
    files["test_batch.bin"] = batch_bytes(0, 2, label_of=lambda k: 10 + k)
    make_archive(path, files)
    with pytest.raises(DataLossError, match="test_batch.bin: label 11 is outside 0..9"):
        cifar10.load_data(path=str(tmp_path))
