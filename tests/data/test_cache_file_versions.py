"""Format versions of Dataset.cache(filename) files: the header records its format version and the writer's
kestimator version; a newer version is refused naming both, a header without the writer's version loads."""
import json
import struct
import zlib

import numpy as np
import pytest

import kestimator
from kestimator.data import Dataset
from kestimator.data.cachefile import MAGIC
from kestimator.errors import DataLossError, InvalidArgumentError


def _pipeline(path):
    return Dataset.from_tensor_slices(np.arange(6, dtype=np.int64) * 2).cache(str(path))


def _header(path):
    data = path.read_bytes()
    (length,) = struct.unpack("<I", data[8:12])
    return json.loads(data[12:12 + length]), data[16 + length:]


def _rewrite_header(path, **fields):
    """Replace header fields (None removes one), with a correct header checksum."""
    header, rest = _header(path)
    for k, v in fields.items():
        if v is None:
            header.pop(k, None)
        else:
            header[k] = v
    text = json.dumps(header, sort_keys=True).encode()
    path.write_bytes(MAGIC + struct.pack("<I", len(text)) + text + struct.pack("<I", zlib.crc32(text)) + rest)


@pytest.fixture
def cache_file(tmp_path):
    path = tmp_path / "c.kscache"
    assert list(_pipeline(path).as_numpy_iterator()) == [0, 2, 4, 6, 8, 10]
    return path


def test_the_header_records_format_and_writer(cache_file):
    header, _ = _header(cache_file)
    assert header["format"] == "kestimator.data.cache" and header["version"] == 1
    assert header["kestimator_version"] == kestimator.__version__


def test_a_newer_version_is_refused(cache_file):
    _rewrite_header(cache_file, version=2, kestimator_version="5.0")
    with pytest.raises(InvalidArgumentError) as info:
        list(_pipeline(cache_file).as_numpy_iterator())
    assert str(info.value) == (f"cache file {cache_file} was written by kestimator 5.0 in ks.data cache format 2; "
                               f"this kestimator ({kestimator.__version__}) reads up to format 1: upgrade "
                               "kestimator to load this newer format")


def test_a_file_without_the_writer_version_replays(cache_file):
    _rewrite_header(cache_file, kestimator_version=None)
    before = cache_file.read_bytes()
    assert list(_pipeline(cache_file).as_numpy_iterator()) == [0, 2, 4, 6, 8, 10]
    assert cache_file.read_bytes() == before   # replayed, not rewritten


@pytest.mark.parametrize("fields", [{"version": 0}, {"version": "1"}, {"version": None}, {"format": "other"}])
def test_a_malformed_version_or_format_is_data_loss(cache_file, fields):
    _rewrite_header(cache_file, **fields)
    with pytest.raises(DataLossError, match="c.kscache"):
        list(_pipeline(cache_file).as_numpy_iterator())
