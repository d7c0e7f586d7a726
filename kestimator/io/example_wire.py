"""The wire format of tf.train.Example (``tensorflow/core/example/{example,feature}.proto``)::

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }    // entry: { string key = 1; Feature value = 2; }
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }

Encoding writes map entries in the order TensorFlow's deterministic serializer does, so the bytes equal
``SerializeToString(deterministic=True)``; TensorFlow's default serialization differs only in the order
of map entries, which it takes from a hash table. Decoding accepts every valid encoding (entries in any
order, packed or unpacked numbers, unknown fields, entries split over several Features messages) and
checks every length against the bytes that remain before slicing: malformed input raises DataLossError.
The user-facing API is :mod:`kestimator.data.example`.
"""
import numpy as np

from ..errors import DataLossError
from .protobuf import bytes_field, decode_varints, encode_varints, read_varint, signed64

BYTES_LIST, FLOAT_LIST, INT64_LIST = 1, 2, 3     # Feature.kind field numbers
_KINDS = (BYTES_LIST, FLOAT_LIST, INT64_LIST)


# ---- encoding ----------------------------------------------------------------------------------------
def encode_feature(kind, values):
    """Serialized Feature of one kind (None: no kind set) and its values.

    Args:
        kind: BYTES_LIST, FLOAT_LIST, INT64_LIST or None.
        values: list of bytes, or an array-like of float32 / int64 values.
    """
    if kind is None:
        return b""
    if kind == BYTES_LIST:
        payload = b"".join(bytes_field(1, v) for v in values)
    elif kind == FLOAT_LIST:
        raw = np.asarray(values, "<f4").tobytes()
        payload = bytes_field(1, raw) if raw else b""
    else:
        raw = encode_varints(values)
        payload = bytes_field(1, raw) if raw else b""
    return bytes_field(kind, payload)


def _entry_order(key_bytes):
    """Sort key of TensorFlow's deterministic map order: byte-wise, but a key sorts before its prefixes.

    This is how the protobuf runtime TensorFlow's Python uses (upb) orders map entries under
    ``SerializeToString(deterministic=True)``, measured: keys e, n, neg come out as e, neg, n. (Plain
    ``SerializeToString()`` writes them in hash-table order, which changes from run to run.)
    """
    return list(key_bytes) + [256]


def encode_features(features):
    """Serialized Features from ``{str key: serialized Feature}``, entries in TensorFlow's order."""
    entries = []
    for key in sorted(features, key=lambda k: _entry_order(k.encode("utf-8"))):
        entries.append(bytes_field(1, bytes_field(1, key) + bytes_field(2, features[key])))
    return b"".join(entries)


def encode_example(serialized_features):
    """Serialized Example holding the given serialized Features."""
    return bytes_field(1, serialized_features)


# ---- decoding --------------------------------------------------------------------------------------
def _fields(buf, pos, end, what):
    """The fields of the message ``buf[pos:end]`` as (field, wire_type, a, b) tuples.

    For LEN fields ``buf[a:b]`` is the payload; for VARINT, `a` is the value; for I32/I64, ``buf[a:b]``
    are the raw bytes. Bounds are checked before anything is sliced.
    """
    out = []
    while pos < end:
        start = pos
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = read_varint(buf, pos, end, what)
        wire = key & 7
        if wire == 2:
            if pos >= end:
                raise DataLossError(f"malformed {what}: truncated length at byte {pos}")
            n = buf[pos]
            if n < 0x80:
                pos += 1
            else:
                n, pos = read_varint(buf, pos, end, what)
            if n > end - pos:
                raise DataLossError(f"malformed {what}: field at byte {start} declares {n} bytes but only "
                                    f"{end - pos} remain")
            out.append((key >> 3, 2, pos, pos + n))
            pos += n
        elif wire == 0:
            value, pos = read_varint(buf, pos, end, what)
            out.append((key >> 3, 0, value, pos))
        elif wire == 5 or wire == 1:
            size = 4 if wire == 5 else 8
            if size > end - pos:
                raise DataLossError(f"malformed {what}: truncated fixed field at byte {start}")
            out.append((key >> 3, wire, pos, pos + size))
            pos += size
        else:
            raise DataLossError(f"malformed {what}: unsupported wire type {wire} at byte {start}")
        if key >> 3 == 0:
            raise DataLossError(f"malformed {what}: field number 0 at byte {start}")
    return out


def _expect_len(wire, what, field):
    if wire != 2:
        raise DataLossError(f"malformed {what}: field {field} has wire type {wire}, expected "
                            f"length-delimited")


def index_example(buf):
    """``({key bytes: (kind, start, end)}, has_features)``: where each feature's list payload lies.

    kind is 0 for a Feature with no kind set. Later map entries replace earlier ones with the same key,
    as protobuf's map merging does.
    """
    index = {}
    present = False
    for field, wire, start, end in _fields(buf, 0, len(buf), "Example"):
        if field != 1:
            continue
        _expect_len(wire, "Example", 1)
        present = True
        for f2, w2, s2, e2 in _fields(buf, start, end, "Example.features"):
            if f2 != 1:
                continue
            _expect_len(w2, "Example.features", 1)
            key, value = b"", None
            for f3, w3, s3, e3 in _fields(buf, s2, e2, "Example.features map entry"):
                if f3 == 1:
                    _expect_len(w3, "Example.features map entry", 1)
                    key = buf[s3:e3]
                elif f3 == 2:
                    _expect_len(w3, "Example.features map entry", 2)
                    value = (s3, e3)
            kind, ps, pe = 0, 0, 0
            if value is not None:
                for f4, w4, s4, e4 in _fields(buf, value[0], value[1], "Feature"):
                    if f4 in _KINDS:
                        _expect_len(w4, "Feature", f4)
                        kind, ps, pe = f4, s4, e4
            index[key] = (kind, ps, pe)
    return index, present


def decode_feature_values(buf, kind, start, end, key):
    """The values of one feature: list of bytes, float32 array, or int64 list/array."""
    what = f"feature {key!r}"
    if kind == BYTES_LIST:
        out = []
        for f, w, a, b in _fields(buf, start, end, what):
            if f == 1:
                _expect_len(w, what, 1)
                out.append(buf[a:b])
        return out
    if kind == FLOAT_LIST:
        chunks = []
        for f, w, a, b in _fields(buf, start, end, what):
            if f != 1:
                continue
            if w == 2:              # packed
                if (b - a) % 4:
                    raise DataLossError(f"malformed {what}: packed float_list of {b - a} bytes")
                chunks.append(np.frombuffer(buf, "<f4", (b - a) // 4, a))
            elif w == 5:
                chunks.append(np.frombuffer(buf, "<f4", 1, a))
            else:
                raise DataLossError(f"malformed {what}: float_list value with wire type {w}")
        if len(chunks) == 1:
            return chunks[0].astype(np.float32)   # a writable, native-order copy
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    values, arrays = [], []
    for f, w, a, b in _fields(buf, start, end, what):
        if f != 1:
            continue
        if w == 2:                  # packed
            if b - a <= 10:
                pos = a
                while pos < b:
                    v, pos = read_varint(buf, pos, b, what)
                    values.append(signed64(v))
            else:
                if values:
                    arrays.append(np.array(values, np.int64))
                    values = []
                arrays.append(decode_varints(memoryview(buf)[a:b], what))
        elif w == 0:
            values.append(signed64(a))
        else:
            raise DataLossError(f"malformed {what}: int64_list value with wire type {w}")
    if not arrays:
        return values
    if values:
        arrays.append(np.array(values, np.int64))
    return np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
