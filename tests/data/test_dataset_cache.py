"""cache(): in memory and in kestimator's cache file format."""
import os
import pathlib
import struct
import zlib

import numpy as np
import pytest

from kestimator.data import Dataset
from kestimator.data import cachefile
from kestimator.errors import DataLossError, InvalidArgumentError

from .data_helpers import plain


def _counted(n, calls):
    def f(x):
        calls.append(int(x))
        return {"x": np.full((2, 3), x, np.float32), "meta": (b"id%d" % x, "naïve", int(x), float(x) / 4,
                                                             np.array([b"a", b"bc"], dtype=object), np.int16(x),
                                                             np.bool_(x % 2), True)}
    return Dataset.range(n).map(f)


def test_memory_cache_replays_the_first_complete_pass():
    calls = []
    ds = _counted(6, calls).shuffle(6, seed=1).cache()
    first = [plain(e) for e in ds]
    assert sorted(calls) == list(range(6))
    second = [plain(e) for e in ds]
    assert second == first and len(calls) == 6      # no recomputation, and the shuffled order is frozen


def test_memory_cache_ignores_an_incomplete_pass():
    calls = []
    ds = _counted(5, calls).cache()
    it = iter(ds)
    next(it)
    next(it)
    it.close()
    assert len(list(ds)) == 5 and calls == [0, 1, 0, 1, 2, 3, 4]
    list(ds)
    assert len(calls) == 7


def test_file_cache_round_trip_in_a_new_pipeline_object(tmp_path):
    path = str(tmp_path / "sub" / "train.kscache")
    calls = []
    first = [plain(e) for e in _counted(7, calls).cache(path)]
    assert os.path.exists(path) and len(calls) == 7
    assert os.listdir(tmp_path / "sub") == ["train.kscache"]       # the temporary file was renamed
    again_calls = []
    second = list(_counted(7, again_calls).cache(path))            # "a later program": reads the file
    assert again_calls == [] and [plain(e) for e in second] == first
    e = second[3]
    assert e["x"].dtype == np.float32 and isinstance(e["meta"][0], bytes) and e["meta"][1] == "naïve"
    assert type(e["meta"][2]) is int and type(e["meta"][3]) is float and e["meta"][5].dtype == np.int16
    assert e["meta"][4].dtype == object and type(e["meta"][7]) is bool


def test_file_cache_partial_pass_leaves_nothing(tmp_path):
    path = str(tmp_path / "c.kscache")
    it = iter(Dataset.range(10).cache(path))
    next(it)
    it.close()
    assert os.listdir(tmp_path) == []


def test_file_cache_skip_on_read_and_restore(tmp_path):
    path = str(tmp_path / "c.kscache")
    ds = Dataset.range(10).map(lambda x: x * 3).cache(path)
    assert [int(v) for v in ds] == [3 * i for i in range(10)]
    it = iter(ds)
    next(it), next(it)
    state = it.get_state()
    assert [int(v) for v in ds.iterator_from_state(state)] == [3 * i for i in range(2, 10)]


def test_file_cache_refuses_a_file_from_another_pipeline(tmp_path):
    path = str(tmp_path / "c.kscache")
    list(Dataset.range(4).cache(path))
    with pytest.raises(InvalidArgumentError, match="different pipeline"):
        list(Dataset.range(5).cache(path))


def _offset_rows(x):
    return np.arange(4, dtype=np.int32) + x


def _cached_rows(path):
    return Dataset.range(3).map(_offset_rows).cache(path)


def _write_cache(tmp_path):
    path = str(tmp_path / "c.kscache")
    list(_cached_rows(path))
    return path


def test_corrupt_record_is_data_loss_with_offset(tmp_path):
    path = _write_cache(tmp_path)
    data = bytearray(pathlib.Path(path).read_bytes())
    header_len = struct.unpack("<I", data[8:12])[0]
    first_record = 12 + header_len + 4
    record_len = struct.unpack("<Q", data[first_record:first_record + 8])[0]
    second_record = first_record + 12 + record_len
    data[second_record + 12 + 5] ^= 0xFF                 # a payload byte of the second record
    pathlib.Path(path).write_bytes(bytes(data))
    it = iter(_cached_rows(path))
    np.testing.assert_array_equal(next(it), np.arange(4))
    with pytest.raises(DataLossError, match=f"record checksum mismatch at offset {second_record}"):
        next(it)


def test_truncated_cache_is_data_loss(tmp_path):
    path = _write_cache(tmp_path)
    data = pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(data[:-10])                    # the end mark is cut
    with pytest.raises(DataLossError, match="truncated"):
        list(_cached_rows(path))
    pathlib.Path(path).write_bytes(b"NOTACACHE" + data[9:])
    with pytest.raises(DataLossError, match="bad magic"):
        list(_cached_rows(path))


def test_cache_file_never_accepts_object_dtypes(tmp_path):
    # a well-framed record (valid checksum) that declares dtype 'O' must still be refused
    payload = bytes([0]) + bytes([3]) + b"|O8" + bytes([1]) + struct.pack("<Q", 1) + b"\x00" * 8
    path = str(tmp_path / "evil.kscache")
    fingerprint = "x"
    with open(path, "wb") as f:
        f.write(cachefile.encode_header(0, fingerprint))
        f.write(struct.pack("<QI", len(payload), zlib.crc32(payload)) + payload)
        f.write(cachefile.encode_end(1))
    reader = cachefile.CacheFileReader(path, fingerprint)
    with pytest.raises(DataLossError, match="may not hold"):
        reader.read()
    reader.close()


def test_cache_file_bounds_checks_declared_sizes(tmp_path):
    # a record whose array declares 2**40 elements: refused before any allocation
    payload = bytes([0]) + bytes([3]) + b"<f4" + bytes([1]) + struct.pack("<Q", 2 ** 40)
    path = str(tmp_path / "big.kscache")
    with open(path, "wb") as f:
        f.write(cachefile.encode_header(0, "x"))
        f.write(struct.pack("<QI", len(payload), zlib.crc32(payload)) + payload)
        f.write(cachefile.encode_end(1))
    reader = cachefile.CacheFileReader(path, "x")
    with pytest.raises(DataLossError, match="malformed"):
        reader.read()
    reader.close()
