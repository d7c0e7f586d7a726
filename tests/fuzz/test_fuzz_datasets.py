"""Fuzzing the data set file readers: IDX files (MNIST / Fashion-MNIST; plain and gzip) and the CIFAR-10
binary archive (cifar-10-binary.tar.gz, read in place) and its extracted batch files.

Mutations: raw bytes of the file on disk; raw bytes of the uncompressed IDX / tar stream, recompressed so the
gzip checksum holds (the reader's own checks must catch it); IDX headers declaring huge dimensions; tar
members that lie about their size or are links, devices or folders.
"""
import gzip
import io
import os
import shutil
import tarfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import seeds
from .harness import Inputs, budget_spent, ci_share, contract, write
from .mutators import apply_byte_ops, byte_ops

SLOW = settings.get_profile("slow")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """The readers fetch missing files; a fuzz input must never reach the network."""
    from kestimator.datasets import _files

    def refuse(url, out, timeout):
        raise OSError(f"network access refused in tests ({url})")
    monkeypatch.setattr(_files, "http_get", refuse)


# -- IDX -------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def idx_seed(tmp_path_factory):
    from kestimator.datasets import _idx, mnist
    folder = str(tmp_path_factory.mktemp("idx_seed"))
    out = {}
    for compressed in (True, False):
        sub = os.path.join(folder, "gz" if compressed else "plain")
        os.makedirs(sub)
        paths, (images, labels) = seeds.idx_files(sub, compressed)
        np.testing.assert_array_equal(_idx.read_idx(paths["train-images-idx3-ubyte"], 3), images)
        (x, y), (xt, yt) = mnist.load_data(path=sub)
        np.testing.assert_array_equal(y, labels)
        out[compressed] = sub
    with open(os.path.join(out[False], "train-images-idx3-ubyte"), "rb") as f:
        out["raw_images"] = f.read()
    return out


@pytest.fixture(scope="module")
def idx_contract():
    return contract("IDX files (mnist.load_data)")


def _load_mnist(folder):
    from kestimator.datasets import mnist
    (x, y), (xt, yt) = mnist.load_data(path=folder)
    assert x.dtype == np.uint8 and len(x) == len(y)


def _run_idx(c, seed, base, item):
    compressed, where, ops = item
    with Inputs(base) as folder:
        shutil.copytree(seed[compressed], os.path.join(folder, "mnist"))
        target = os.path.join(folder, "mnist", "train-images-idx3-ubyte" + (".gz" if compressed else ""))
        if where == "file":
            with open(target, "rb") as f:
                data = apply_byte_ops(f.read(), ops)
        elif where == "stream":
            data = apply_byte_ops(seed["raw_images"], ops)
            data = gzip.compress(data, mtime=0) if compressed else data
        else:   # a header declaring huge dimensions over the real data
            dims = ops
            data = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in dims) + seed["raw_images"][16:]
            data = gzip.compress(data, mtime=0) if compressed else data
        write(os.path.dirname(target), os.path.basename(target), data)
        c.run(lambda: _load_mnist(os.path.join(folder, "mnist")), target, watch=[folder],
              mentions=[os.path.join(folder, "mnist")])


_idx_inputs = st.one_of(
    st.tuples(st.booleans(), st.sampled_from(["file", "stream"]), byte_ops),
    st.tuples(st.booleans(), st.just("dims"),
              st.tuples(*[st.sampled_from([0, 1, 5, 1 << 16, (1 << 32) - 1]) for _ in range(3)])))


@settings(ci_share(1))
@given(item=_idx_inputs)
def test_idx(idx_seed, idx_contract, tmp_path, item):
    _run_idx(idx_contract, idx_seed, tmp_path, item)


# -- CIFAR-10 ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cifar_seed(tmp_path_factory):
    from kestimator.datasets import cifar10
    folder = str(tmp_path_factory.mktemp("cifar_seed"))
    path, batches = seeds.cifar_archive(folder)
    (x, y), (xt, yt) = cifar10.load_data(path=folder)
    first = np.frombuffer(batches["data_batch_1.bin"], np.uint8).reshape(-1, cifar10.RECORD_BYTES)
    np.testing.assert_array_equal(y[:len(first), 0], first[:, 0])
    assert x.shape == (10, 32, 32, 3)
    with gzip.open(path, "rb") as f:
        tar_bytes = f.read()
    return {"folder": folder, "archive": path, "tar": tar_bytes, "batches": batches}


@pytest.fixture(scope="module")
def cifar_contract():
    return contract("CIFAR-10 binary archive (cifar10.load_data)")


def _tar_with(batches, member_op):
    """A tar of the batches with one member changed: its declared size, its type, or its name."""
    from kestimator.datasets import cifar10
    kind, which, value = member_op
    names = sorted(batches)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for i, name in enumerate(names):
            data = batches[name]
            info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
            info.size = len(data)
            if i == which % len(names):
                if kind == "type":
                    info.type = value
                    info.linkname = "/etc/passwd" if value in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
                    info.size = 0 if value != tarfile.REGTYPE else len(data)
                    data = b"" if value != tarfile.REGTYPE else data
                elif kind == "name":
                    info.name = value + name
            tar.addfile(info, io.BytesIO(data) if info.size else None)
    raw = bytearray(out.getvalue())
    if kind == "size":   # the size field of the chosen member's header (octal, 12 bytes at offset 124)
        offset = 0
        for i, name in enumerate(names):
            if i == which % len(names):
                raw[offset + 124:offset + 136] = value
                break
            offset += 512 + ((len(batches[name]) + 511) // 512) * 512
        # the header checksum must hold, so that tarfile reads the lie instead of rejecting the header
        header = raw[offset:offset + 512]
        header[148:156] = b" " * 8
        raw[offset + 148:offset + 156] = b"%06o\0 " % sum(header)
    return bytes(raw)


def _load_cifar(folder):
    from kestimator.datasets import cifar10
    (x, y), (xt, yt) = cifar10.load_data(path=folder)
    assert x.shape[1:] == (32, 32, 3) and len(x) == len(y) and y.max() <= 9


def _run_cifar(c, seed, base, item):
    from kestimator.datasets import cifar10
    where, ops = item
    with Inputs(base) as folder:
        path = os.path.join(folder, cifar10.ARCHIVE)
        target = path
        if where == "file":
            with open(seed["archive"], "rb") as f:
                data = apply_byte_ops(f.read(), ops)
        elif where == "stream":
            data = gzip.compress(apply_byte_ops(seed["tar"], ops), mtime=0)
        elif where == "member":
            data = gzip.compress(_tar_with(seed["batches"], ops), mtime=0)
        else:   # the extracted folder, one batch file damaged
            extracted = os.path.join(folder, cifar10.FOLDER)
            os.makedirs(extracted)
            for name, batch in seed["batches"].items():
                write(extracted, name, batch)
            target = os.path.join(extracted, "data_batch_2.bin")
            write(extracted, "data_batch_2.bin", apply_byte_ops(seed["batches"]["data_batch_2.bin"], ops))
            c.run(lambda: _load_cifar(folder), target, watch=[folder], mentions=[extracted])
            return
        write(folder, cifar10.ARCHIVE, data)
        c.run(lambda: _load_cifar(folder), target, watch=[folder])


_member_ops = st.one_of(
    st.tuples(st.just("size"), st.integers(0, 5), st.sampled_from([b"77777777777\0", b"00000000000\0", b"99\0" * 4,
                                                                  b"\x80" + b"\xff" * 11, b"00000014000\0"])),
    st.tuples(st.just("type"), st.integers(0, 5), st.sampled_from([tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE,
                                                                  tarfile.CHRTYPE, tarfile.FIFOTYPE])),
    st.tuples(st.just("name"), st.integers(0, 5), st.sampled_from(["../", "/", "./", "x/"])))
_cifar_inputs = st.one_of(st.tuples(st.sampled_from(["file", "stream", "extracted"]), byte_ops),
                          st.tuples(st.just("member"), _member_ops))


@settings(ci_share(1))
@given(item=_cifar_inputs)
def test_cifar(cifar_seed, cifar_contract, tmp_path, item):
    _run_cifar(cifar_contract, cifar_seed, tmp_path, item)


@pytest.mark.slow
@settings(SLOW)
@given(item=_idx_inputs)
def test_idx_slow(idx_seed, idx_contract, tmp_path, item):
    if budget_spent(idx_contract):
        return
    _run_idx(idx_contract, idx_seed, tmp_path, item)


@pytest.mark.slow
@settings(SLOW)
@given(item=_cifar_inputs)
def test_cifar_slow(cifar_seed, cifar_contract, tmp_path, item):
    if budget_spent(cifar_contract):
        return
    _run_cifar(cifar_contract, cifar_seed, tmp_path, item)


def test_cifar_damaged_deflate_stream_is_data_loss(cifar_seed, cifar_contract, tmp_path):
    """Regression (slow-tier fuzzing): an int32 written into the middle of the .tar.gz broke the deflate stream
    where tarfile reads a member; zlib.error escaped cifar10.load_data instead of a DataLossError."""
    _run_cifar(cifar_contract, cifar_seed, tmp_path, ("file", [("int32", 0.4375, 0, b"\x00", 127, False)]))
    assert cifar_contract.error_types.get("DataLossError", 0) >= 1
