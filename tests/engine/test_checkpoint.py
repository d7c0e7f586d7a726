"""engine.checkpoint: the HDF5 tensor file (round trips, atomic writes, and refusal of unsafe/corrupt files).

References: the arrays written (NumPy), hashlib for the digest, and files crafted with h5py directly.
"""
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from kestimator.engine import checkpoint as ckpt
from kestimator.errors import DataLossError, InvalidArgumentError, NotFoundError, UnsafeFileError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tensors():
    rng = np.random.default_rng(0)
    return {
        "dense/kernel": rng.standard_normal((3, 4)).astype(np.float32),
        "dense/bias": np.arange(4, dtype=np.float64),
        "global_step": np.int64(42),
        "half": np.array([1.5, -2.25], np.float16),
        "ints/i8": np.array([-128, 127], np.int8),
        "ints/u8": np.array([0, 255], np.uint8),
        "ints/i32": np.array([[1, -2]], np.int32),
        "mask": np.array([True, False, True]),
        "names": np.array([b"a", b"", "\u00e9".encode()], dtype=object),
        "empty": np.zeros((0, 5), np.float32),
    }


def test_round_trip_every_dtype_and_digest(tmp_path):
    path = tmp_path / "m.ckpt"
    tensors = _tensors()
    digest = ckpt.save_tensors(path, tensors, metadata={"step": 42, "note": "x"})
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == ckpt.file_sha256(path)
    loaded = ckpt.load_tensors(path)
    assert sorted(loaded) == sorted(tensors)
    for name, value in tensors.items():
        got = loaded[name]
        ref = np.asarray(value)
        assert got.shape == ref.shape, name
        assert got.dtype == ref.dtype, name
        assert np.array_equal(got, ref), name
    assert ckpt.read_metadata(path) == {"step": 42, "note": "x"}
    # "/" in names become HDF5 groups
    with h5py.File(path, "r") as f:
        assert isinstance(f["dense"], h5py.Group) and f["dense/kernel"].shape == (3, 4)
        assert int(f.attrs["kestimator_format"]) == ckpt.FORMAT_VERSION


def test_list_tensors_sorted_with_shapes_and_dtypes(tmp_path):
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, _tensors())
    assert ckpt.list_tensors(path) == [
        ("dense/bias", (4,), "float64"), ("dense/kernel", (3, 4), "float32"), ("empty", (0, 5), "float32"),
        ("global_step", (), "int64"), ("half", (2,), "float16"), ("ints/i32", (1, 2), "int32"),
        ("ints/i8", (2,), "int8"), ("ints/u8", (2,), "uint8"), ("mask", (3,), "bool"), ("names", (3,), "string")]


def test_load_subset_and_expected(tmp_path):
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, _tensors())
    got = ckpt.load_tensors(path, names=["dense/bias"], expected={"dense/bias": ((4,), np.float64)})
    assert list(got) == ["dense/bias"] and got["dense/bias"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_save_replaces_previous_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"a": np.ones(3)})
    ckpt.save_tensors(path, {"b": np.zeros(2)})
    assert ckpt.list_tensors(path) == [("b", (2,), "float64")]
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt"]


def test_name_that_is_also_a_group(tmp_path):
    # TF names a variable "w" and its optimizer slot "w/Adam": both must fit in one file
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"w": np.ones(2), "w/Adam": np.zeros(2), "w/Adam/x": np.full(1, 3.0)})
    assert [n for n, _, _ in ckpt.list_tensors(path)] == ["w", "w/Adam", "w/Adam/x"]
    got = ckpt.load_tensors(path)
    assert got["w"].tolist() == [1, 1] and got["w/Adam"].tolist() == [0, 0] and got["w/Adam/x"].tolist() == [3]
    with h5py.File(path, "r") as f:
        assert isinstance(f["w"], h5py.Group) and f["w/__value__"].shape == (2,)


@pytest.mark.parametrize("names", [["a/__value__"], ["x/", "y"], ["/x"], ["a//b"], ["a/../b"], [""]])
def test_bad_names_refused(tmp_path, names):
    with pytest.raises(InvalidArgumentError):
        ckpt.save_tensors(tmp_path / "m.ckpt", {n: np.zeros(1) for n in names})
    assert not os.listdir(tmp_path)


def test_bad_metadata_and_dtype_refused(tmp_path):
    with pytest.raises(InvalidArgumentError, match="JSON"):
        ckpt.save_tensors(tmp_path / "m", {"a": np.zeros(1)}, metadata={"f": object()})
    with pytest.raises(InvalidArgumentError, match="complex"):
        ckpt.save_tensors(tmp_path / "m", {"a": np.zeros(1, np.complex64)})
    assert not os.listdir(tmp_path)


def test_failure_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"w": np.full(4, 7.0)})
    before = path.read_bytes()
    calls = []
    real = ckpt._as_storable

    def fail_on_second(name, value):   # the writer dies after one tensor is in the temp file
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(name, value)
    monkeypatch.setattr(ckpt, "_as_storable", fail_on_second)
    with pytest.raises(OSError, match="simulated"):
        ckpt.save_tensors(path, {"a": np.zeros(3), "b": np.zeros(3)})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt"]


def test_failure_at_rename_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"w": np.full(4, 7.0)})
    before = path.read_bytes()

    def no_rename(src, dst):
        raise OSError("crash before rename (simulated)")
    monkeypatch.setattr(ckpt.os, "replace", no_rename)
    with pytest.raises(OSError):
        ckpt.save_tensors(path, {"w": np.zeros(4)})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt"]


def test_kill_during_writes_never_leaves_a_partial_file(tmp_path):
    """A writer process is SIGKILLed at arbitrary moments while rewriting one checkpoint over and over;
    every time the file holds one complete version (all elements equal to one version number)."""
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"w": np.full(200_000, -1.0), "b": np.full(10, -1.0)})
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {ROOT!r})
        from kestimator.engine import checkpoint as c
        print("ready", flush=True)
        i = 0
        while True:
            c.save_tensors({str(path)!r}, {{"w": np.full(200_000, float(i)), "b": np.full(10, float(i))}})
            i += 1
    """)
    rng = np.random.default_rng(1)
    for trial in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.05 + 0.25 * rng.random())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        got = ckpt.load_tensors(path)
        version = got["w"][0]
        assert np.all(got["w"] == version) and np.all(got["b"] == version), trial
        for leftover in [p for p in os.listdir(tmp_path) if p != "m.ckpt"]:
            os.unlink(tmp_path / leftover)   # a killed writer may leave its temp file; never the target


# -- errors on load ----------------------------------------------------------------------------------------
def test_missing_file_and_tensor(tmp_path):
    with pytest.raises(NotFoundError, match="nope.ckpt"):
        ckpt.load_tensors(tmp_path / "nope.ckpt")
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"a": np.zeros(2)})
    with pytest.raises(NotFoundError) as e:
        ckpt.load_tensors(path, names=["b"])
    assert "'b'" in str(e.value) and "m.ckpt" in str(e.value)


def test_expected_mismatch_is_checked_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"a": np.zeros((2, 3), np.float32)})

    def must_not_read(self, name, ds):
        raise AssertionError("values were read before the expectation was checked")
    monkeypatch.setattr(ckpt._Reader, "read", must_not_read)
    with pytest.raises(InvalidArgumentError, match=r"shape \(2, 3\).*expected \(3, 2\)"):
        ckpt.load_tensors(path, expected={"a": ((3, 2), np.float32)})
    with pytest.raises(InvalidArgumentError, match="dtype float32, expected float64"):
        ckpt.load_tensors(path, expected={"a": ((2, 3), np.float64)})
    with pytest.raises(NotFoundError, match="'zz'"):
        ckpt.load_tensors(path, expected={"zz": ((1,), np.float32)})


@pytest.mark.parametrize("keep_fraction", [0.5, 0.98])
def test_truncated_file_is_data_loss(tmp_path, keep_fraction):
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"a": np.arange(10_000, dtype=np.float64)})
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep_fraction)])
    with pytest.raises(DataLossError, match="m.ckpt"):
        ckpt.load_tensors(path)


def test_garbage_and_checksum_mismatch_are_data_loss(tmp_path):
    path = tmp_path / "m.ckpt"
    path.write_bytes(b"\x00" * 4096)
    with pytest.raises(DataLossError, match="m.ckpt"):
        ckpt.load_tensors(path)
    digest = ckpt.save_tensors(path, {"a": np.arange(100, dtype=np.float64)})
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF   # flip bits inside the tensor's data: HDF5 itself cannot notice
    path.write_bytes(bytes(data))
    with pytest.raises(DataLossError, match="SHA-256"):
        ckpt.load_tensors(path, sha256=digest)


def test_foreign_hdf5_and_newer_version(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.zeros(3)
    with pytest.raises(DataLossError, match="not a kestimator checkpoint"):
        ckpt.load_tensors(path)
    path = tmp_path / "new.ckpt"
    ckpt.save_tensors(path, {"a": np.zeros(3)})
    with h5py.File(path, "a") as f:
        f.attrs["kestimator_format"] = 99
    with pytest.raises(InvalidArgumentError, match="newer"):
        ckpt.load_tensors(path)


def _checkpoint_with(tmp_path, add):
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"ok": np.zeros(3)})
    with h5py.File(path, "a") as f:
        add(f, tmp_path)
    return path


def _external_link(f, tmp):
    with h5py.File(tmp / "other.h5", "w") as o:
        o["secret"] = np.arange(3.0)
    f["stolen"] = h5py.ExternalLink(str(tmp / "other.h5"), "/secret")


def _soft_link(f, tmp):
    f["alias"] = h5py.SoftLink("/ok")


def _external_storage(f, tmp):
    (tmp / "raw.bin").write_bytes(np.arange(4.0).tobytes())
    f.create_dataset("ext", shape=(4,), dtype="f8", external=[(str(tmp / "raw.bin"), 0, 32)])


def _virtual(f, tmp):
    with h5py.File(tmp / "src.h5", "w") as o:
        o["d"] = np.arange(4.0)
    layout = h5py.VirtualLayout(shape=(4,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(tmp / "src.h5"), "d", shape=(4,))
    f.create_virtual_dataset("virt", layout)


@pytest.mark.parametrize("add,word", [(_external_link, "external link"), (_soft_link, "soft link"),
                                      (_external_storage, "external"), (_virtual, "virtual")])
def test_unsafe_objects_refused(tmp_path, add, word):
    path = _checkpoint_with(tmp_path, add)
    for fn in (ckpt.load_tensors, ckpt.list_tensors):
        with pytest.raises(UnsafeFileError, match=word):
            fn(path)


def test_declared_size_not_backed_by_file_refused_without_allocating(tmp_path):
    # a dataset declaring 8 TB that was never written: refused from its metadata, no allocation attempted
    path = _checkpoint_with(tmp_path, lambda f, t: f.create_dataset("huge", shape=(10 ** 12,), dtype="f8"))
    with pytest.raises(DataLossError, match="declares 8000000000000 bytes"):
        ckpt.load_tensors(path, names=["huge"])


def test_compound_dtype_refused(tmp_path):
    path = _checkpoint_with(tmp_path, lambda f, t: f.create_dataset(
        "rec", data=np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])))
    with pytest.raises(DataLossError, match="'rec'"):
        ckpt.load_tensors(path)


def test_print_tensors(tmp_path, capsys):
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"v": np.array([1.0, 2.0], np.float32), "s": np.int64(3)})
    ckpt.print_tensors_in_checkpoint_file(str(path), tensor_name="", all_tensors=True)
    out = capsys.readouterr().out.splitlines()
    assert out == ["tensor_name:  s  shape: []  dtype: int64", "3",
                   "tensor_name:  v  shape: [2]  dtype: float32", "[1. 2.]"]
    ckpt.print_tensors_in_checkpoint_file(str(path), tensor_name="v", all_tensors=False)
    assert capsys.readouterr().out.splitlines() == ["tensor_name:  v  shape: [2]  dtype: float32", "[1. 2.]"]
    ckpt.print_tensors_in_checkpoint_file(str(path), tensor_name="", all_tensors=False)
    assert capsys.readouterr().out.splitlines() == ["tensor_name:  s  shape: []  dtype: int64",
                                                    "tensor_name:  v  shape: [2]  dtype: float32"]
    with pytest.raises(NotFoundError, match="'w'"):
        ckpt.print_tensors_in_checkpoint_file(str(path), tensor_name="w", all_tensors=False)
