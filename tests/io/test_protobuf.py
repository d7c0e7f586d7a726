"""Protobuf wire format: golden encodings from the spec, round trips, and hostile input."""
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kestimator.errors import DataLossError
from kestimator.io import protobuf as pb

INT64 = st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1)


@pytest.mark.parametrize("value,encoded", [
    (0, "00"), (1, "01"), (127, "7f"),
    (128, "8001"),          # 128 = 0b1_0000000: low group 0 with continuation bit, then 1
    (150, "9601"),          # the example of the protobuf encoding guide
    (300, "ac02"),          # 300 = 0b10_0101100: 0x2c | 0x80, then 0b10
    (2 ** 63 - 1, "ffffffffffffffff7f"),
    (-1, "ffffffffffffffffff01"),   # int64 -1 is 2**64 - 1: nine 0xff groups and a final 1
])
def test_varint_golden(value, encoded):
    assert pb.encode_varint(value).hex() == encoded
    raw = bytes.fromhex(encoded)
    decoded, pos = pb.read_varint(raw, 0, len(raw))
    assert pb.signed64(decoded) == value and pos == len(raw)


def test_field_golden_bytes():
    assert pb.varint_field(1, 150).hex() == "089601"                # key 1<<3|0 = 0x08
    assert pb.bytes_field(2, "testing").hex() == "120774657374696e67"   # key 2<<3|2 = 0x12, length 7
    assert pb.float_field(2, 1.0).hex() == "150000803f"             # key 2<<3|5 = 0x15, float32 1.0 LE
    assert pb.double_field(1, 1.0).hex() == "09000000000000f03f"    # key 1<<3|1 = 0x09
    assert pb.packed_varint_field(4, [3, 270, 86942]).hex() == "2206038e029ea705"   # guide's packed example
    assert pb.packed_float_field(1, []) == b""                      # empty packed fields are omitted
    assert pb.bytes_field(17, b"").hex() == "8a0100"                # key 17<<3|2 = 138 needs two bytes


@settings(max_examples=50, deadline=None)
@given(st.lists(INT64, max_size=200))
def test_varint_arrays_round_trip_and_match_scalar_encoding(values):
    encoded = pb.encode_varints(values)          # vectorized above 64 values
    assert encoded == b"".join(pb.encode_varint(v) for v in values)
    decoded = pb.decode_varints(encoded)          # vectorized above 32 bytes
    assert decoded.dtype == np.int64 and decoded.tolist() == values


def test_iter_fields_reports_each_wire_type():
    msg = (pb.varint_field(1, 5) + pb.double_field(2, 2.5) + pb.bytes_field(3, b"xy")
           + pb.float_field(4, -1.0))
    fields = [(f, w, bytes(v) if isinstance(v, memoryview) else v) for f, w, v, _ in pb.iter_fields(msg)]
    assert fields == [(1, pb.VARINT, 5), (2, pb.I64, struct.unpack("<Q", struct.pack("<d", 2.5))[0]),
                      (3, pb.LEN, b"xy"), (4, pb.I32, struct.unpack("<I", struct.pack("<f", -1.0))[0])]


SCHEMA = {1: ("name", "string"), 2: ("n", "int64"), 3: ("xs", "double", "repeated"),
          4: ("ids", "int64", "repeated"), 5: ("child", {1: ("flag", "bool")}), 6: ("tags", "bytes", "repeated")}


def test_decode_message_packed_unpacked_and_unknown_fields():
    msg = (pb.bytes_field(1, "héllo") + pb.varint_field(2, -7) + pb.packed_double_field(3, [1.0, 2.0])
           + pb.double_field(3, 3.0)                        # an unpacked element after a packed run
           + pb.varint_field(4, 1) + pb.varint_field(4, 2)  # unpacked repeated ints
           + pb.bytes_field(5, pb.varint_field(1, 1)) + pb.bytes_field(6, b"a") + pb.bytes_field(6, b"")
           + pb.varint_field(99, 12345) + pb.bytes_field(98, b"skip me"))
    out = pb.decode_message(msg, SCHEMA)
    assert out["name"] == "héllo" and out["n"] == -7
    assert out["xs"].tolist() == [1.0, 2.0, 3.0] and out["ids"].tolist() == [1, 2]
    assert out["child"] == {"flag": True} and out["tags"] == [b"a", b""]


@pytest.mark.parametrize("raw,pattern", [
    (b"\x08", "truncated varint"),
    (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
    (b"\x12\x05abc", "declares 5 bytes but only 3 remain"),
    (b"\x0b", "wire type 3"),            # start-group: not supported
    (b"\x0c", "wire type 4"),
    (b"\x00\x01", "field number 0"),
    (b"\x09\x00\x00", "truncated fixed64"),
    (b"\x0d\x00", "truncated fixed32"),
    (b"\x10\x01\x10", "truncated varint"),
])
def test_malformed_input_raises_data_loss(raw, pattern):
    with pytest.raises(DataLossError, match=pattern):
        list(pb.iter_fields(raw, what="Thing"))


def test_schema_wire_type_mismatch_is_data_loss():
    with pytest.raises(DataLossError, match="child"):
        pb.decode_message(pb.varint_field(5, 1), SCHEMA)
    with pytest.raises(DataLossError, match="not a multiple of 8"):
        pb.decode_message(pb.bytes_field(3, b"\x00" * 5), SCHEMA)
    with pytest.raises(DataLossError, match="truncated varint"):
        pb.decode_varints(b"\x80" * 40)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_crash(raw):
    try:
        out = pb.decode_message(raw, SCHEMA)
    except DataLossError:
        return
    assert isinstance(out, dict)


def test_declared_huge_length_is_not_allocated():
    # a LEN field claiming 2**60 bytes in a 12-byte message is refused by its bounds check
    raw = b"\x1a" + pb.encode_varint(1 << 60) + b"abc"
    with pytest.raises(DataLossError, match="declares 1152921504606846976 bytes"):
        pb.decode_message(raw, SCHEMA)
