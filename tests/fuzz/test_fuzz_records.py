"""Fuzzing the record-file reader (kestimator.io.records.iter_records, plain / GZIP / ZLIB) and tf.train.Example
parsing (ks.data.parse_single_example, parse_example, Example.parse).

Record mutations: raw bytes of the file (plain, and of the compressed stream); records whose length field is
huge but correctly checksummed (the CRC check cannot catch it); compressed streams that inflate far beyond
their size. Example mutations: raw bytes, and protobuf wire streams built field by field (any field number,
wire type, varint, length prefix and nesting).
"""
import gzip
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import seeds
from .harness import Inputs, Seed, budget_spent, ci_share, contract, write
from .mutators import apply_byte_ops, byte_ops

SLOW = settings.get_profile("slow")


def _read_all(path, compression):
    from kestimator.io.records import iter_records
    offset = 0
    for at, data in iter_records(path, compression):
        assert at >= offset and isinstance(data, bytes)
        offset = at
    return offset


def _framed(length, payload=b""):
    """A record header declaring `length` bytes with a correct length checksum (and `payload` after it)."""
    from kestimator.io.crc32c import masked_crc
    raw = struct.pack("<Q", length)
    return raw + struct.pack("<I", masked_crc(raw)) + payload


@pytest.fixture(scope="module")
def record_seeds(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("records_seed"))
    out = {}
    for compression in (None, "GZIP", "ZLIB"):
        path = seeds.records(folder, compression)
        _read_all(path, compression)
        out[compression] = Seed(path)
    with open(out[None].path, "rb") as f:
        out["plain_bytes"] = f.read()
    return out


@pytest.fixture(scope="module")
def records_contract():
    return contract("record files (iter_records)")


def _compress(data, compression):
    if compression == "GZIP":
        return gzip.compress(data, mtime=0)
    if compression == "ZLIB":
        return zlib.compress(data)
    return data


def _run_records(c, seeds_, base, item):
    kind, compression, ops = item
    if kind == "file":              # the bytes on disk
        data = apply_byte_ops(seeds_[compression].data, ops)
    elif kind == "stream":          # the uncompressed stream, recompressed: damage the checksums cannot hide
        data = _compress(apply_byte_ops(seeds_["plain_bytes"], ops), compression)
    else:                           # a correctly checksummed header declaring `ops` bytes, then a bomb of zeros
        length, bomb = ops
        data = _compress(seeds_["plain_bytes"] + _framed(length, bytes(bomb)), compression)
    with Inputs(base) as folder:
        path = write(folder, "data.tfrecord", data)
        c.run(lambda: _read_all(path, compression), path, watch=[folder])


_compressions = st.sampled_from([None, "GZIP", "ZLIB"])
_record_inputs = st.one_of(
    st.tuples(st.just("file"), _compressions, byte_ops),
    st.tuples(st.just("stream"), _compressions, byte_ops),
    st.tuples(st.just("huge"), _compressions,
              st.tuples(st.sampled_from([1 << 20, 1 << 31, 1 << 40, (1 << 64) - 1, 50 << 20]),
                        st.sampled_from([0, 1 << 10, 4 << 20]))))


@settings(ci_share(1))
@given(item=_record_inputs)
def test_records(record_seeds, records_contract, tmp_path, item):
    _run_records(records_contract, record_seeds, tmp_path, item)


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_record_length_beyond_what_a_compressed_file_can_hold_is_refused_before_reading(tmp_path, compression):
    """Regression: a compressed file of ~64 KB (64 MiB of zeros) whose record declares 2**40 bytes with a
    correct length checksum. The reader used to inflate the whole stream into memory (64 MiB) before it
    found the record truncated; deflate expands at most 1032-fold, so now the header alone is refused."""
    import tracemalloc
    from kestimator.errors import DataLossError
    path = write(str(tmp_path), "bomb.tfrecord", _compress(_framed(1 << 40, bytes(64 << 20)), compression))
    tracemalloc.start()
    try:
        with pytest.raises(DataLossError, match="bomb.tfrecord.*declares 1099511627776 bytes"):
            _read_all(path, compression)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak


# -- tf.train.Example ----------------------------------------------------------------------------------------------
def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


@st.composite
def wire(draw, depth=0):
    """A protobuf wire stream: fields of any number and wire type, lengths that may lie, nested messages."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        field = draw(st.sampled_from([0, 1, 2, 3, 4, 15, 16, 1 << 28]))
        wtype = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7]))
        parts.append(_varint(field << 3 | wtype))
        if wtype == 0:
            parts.append(_varint(draw(st.sampled_from([0, 1, 127, 128, 1 << 63, (1 << 64) - 1]))))
        elif wtype in (1, 5):
            parts.append(draw(st.binary(min_size=0, max_size=8)))
        elif wtype == 2:
            body = draw(wire(depth + 1)) if depth < 4 and draw(st.booleans()) else draw(st.binary(max_size=24))
            lie = draw(st.sampled_from([0, 0, 0, 1, -1, 1 << 40]))
            parts.append(_varint(max(len(body) + lie, 0)) + body)
        else:
            parts.append(draw(st.binary(max_size=4)))
    return b"".join(parts)



def _specs():
    from kestimator.data.example import FixedLenFeature, VarLenFeature
    return {"image": FixedLenFeature((), "string", default_value=b""),
            "label": FixedLenFeature((), "int64", default_value=-1),
            "weights": VarLenFeature("float32"), "ids": VarLenFeature("int64"), "name": VarLenFeature("string"),
            "fixed": FixedLenFeature((3,), "float32", default_value=[0.0, 0.0, 0.0])}


def _parse(data):
    from kestimator.data.example import Example, parse_example, parse_single_example
    specs = _specs()
    one = parse_single_example(data, specs)
    batch = parse_example([data, data], specs)
    assert set(one) == set(batch) == set(specs)
    example = Example.parse(data)
    example.to_dict()
    return one


@pytest.fixture(scope="module")
def example_seed():
    data = seeds.example_bytes()
    parsed = _parse(data)
    assert parsed["label"] == 3 and parsed["image"] == bytes(range(16))
    np.testing.assert_array_equal(parsed["weights"].values, np.float32([0.5, 1.5, -2.0]))
    return Seed("<Example>", data)


@pytest.fixture(scope="module")
def example_contract():
    return contract("tf.train.Example parsing", names_file=False)


@settings(ci_share(1))
@given(item=st.one_of(byte_ops.map(lambda o: ("bytes", o)), wire().map(lambda w: ("wire", w))))
def test_example_parsing(example_seed, example_contract, item):
    kind, value = item
    data = apply_byte_ops(example_seed.data, value) if kind == "bytes" else value
    example_contract.run(lambda: _parse(data), size=len(data))


# -- slow tier -------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@settings(SLOW)
@given(item=_record_inputs)
def test_records_slow(record_seeds, records_contract, tmp_path, item):
    if budget_spent(records_contract):
        return
    _run_records(records_contract, record_seeds, tmp_path, item)


@pytest.mark.slow
@settings(SLOW)
@given(item=st.one_of(byte_ops.map(lambda o: ("bytes", o)), wire().map(lambda w: ("wire", w))))
def test_example_parsing_slow(example_seed, example_contract, item):
    if budget_spent(example_contract):
        return
    kind, value = item
    data = apply_byte_ops(example_seed.data, value) if kind == "bytes" else value
    example_contract.run(lambda: _parse(data), size=len(data))
