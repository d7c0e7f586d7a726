"""A minimal protocol-buffers wire-format encoder and decoder.

Enough of https://protobuf.dev/programming-guides/encoding/ for tf.train.Example and TensorBoard's
Event / Summary messages: varints, 64- and 32-bit fixed fields, length-delimited fields and packed
repeated fields. Messages are described by small schema dicts instead of generated classes.

A message is a sequence of (key, value) pairs; the key is the varint ``field_number << 3 | wire_type``:

======  ==========  ==============================================
 type    name        payload
======  ==========  ==============================================
 0       VARINT      base-128 varint, little-endian groups of 7 bits
 1       I64         8 bytes little-endian (fixed64, double)
 2       LEN         varint length, then that many bytes
 5       I32         4 bytes little-endian (fixed32, float)
======  ==========  ==============================================

Decoding treats its input as untrusted: every length is checked against the bytes that remain before
anything is sliced or allocated, varints longer than 10 bytes and group wire types (3, 4) are refused,
and every failure raises :class:`~kestimator.errors.DataLossError` naming the message and byte offset.
"""
import struct

import numpy as np

from ..errors import DataLossError

VARINT, I64, LEN, I32 = 0, 1, 2, 5
_U64 = (1 << 64) - 1
_F32, _F64 = struct.Struct("<f"), struct.Struct("<d")


# ---- encoding ---------------------------------------------------------------------------------------
def encode_varint(value):
    """Varint bytes of an int; negative values are encoded as their 64-bit two's complement (10 bytes)."""
    value &= _U64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_key(field, wire_type):
    """The key bytes that start a field."""
    return encode_varint((field << 3) | wire_type)


def varint_field(field, value):
    """An int64/uint64/int32/bool/enum field."""
    return field_key(field, VARINT) + encode_varint(int(value))


_LEN_KEYS = [bytes((f << 3 | LEN,)) for f in range(16)]   # one-byte keys of fields 0-15


def bytes_field(field, data):
    """A bytes, string (str is UTF-8 encoded) or embedded-message field (`data`: bytes-like, str)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    n = len(data)
    key = _LEN_KEYS[field] if field < 16 else field_key(field, LEN)
    return key + (bytes((n,)) if n < 0x80 else encode_varint(n)) + data


def float_field(field, value):
    """A 32-bit float field."""
    return field_key(field, I32) + _F32.pack(value)


def double_field(field, value):
    """A 64-bit double field."""
    return field_key(field, I64) + _F64.pack(value)


def encode_varints(values):
    """Concatenated varints of an int64 array (the payload of a packed repeated int field)."""
    values = np.asarray(values, dtype=np.int64).ravel()
    if values.size < 64:
        return b"".join(encode_varint(v) for v in values.tolist())
    u = values.view(np.uint64)
    # number of 7-bit groups each value needs: 1 + index of its highest set group
    nbytes = np.ones(u.size, np.int64)
    for k in range(1, 10):
        nbytes += u >= (np.uint64(1) << np.uint64(7 * k))
    ends = np.cumsum(nbytes)
    out = np.zeros(int(ends[-1]), np.uint8)
    starts = ends - nbytes
    for k in range(10):
        has = nbytes > k
        if not has.any():
            break
        group = ((u[has] >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        more = (nbytes[has] > k + 1).astype(np.uint8) << 7
        out[starts[has] + k] = group | more
    return out.tobytes()


def packed_varint_field(field, values):
    """A packed repeated int64 field (omitted when empty, as protobuf does)."""
    payload = encode_varints(values)
    return bytes_field(field, payload) if payload else b""


def packed_float_field(field, values):
    """A packed repeated float field (omitted when empty)."""
    payload = np.asarray(values, dtype="<f4").tobytes()
    return bytes_field(field, payload) if payload else b""


def packed_double_field(field, values):
    """A packed repeated double field (omitted when empty)."""
    payload = np.asarray(values, dtype="<f8").tobytes()
    return bytes_field(field, payload) if payload else b""


# ---- decoding ---------------------------------------------------------------------------------------
def read_varint(buf, pos, end, what="message"):
    """Decode the varint at ``buf[pos]``; returns ``(value, next_pos)``.

    Raises:
        DataLossError: the varint runs past `end` or is longer than 10 bytes.
    """
    result = shift = 0
    start = pos
    while True:
        if pos >= end:
            raise DataLossError(f"malformed protobuf in {what}: truncated varint at byte {start}")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise DataLossError(f"malformed protobuf in {what}: varint longer than 10 bytes at byte {start}")


def signed64(value):
    """Reinterpret an unsigned 64-bit varint value as int64."""
    return value - (1 << 64) if value >= (1 << 63) else value


def iter_fields(buf, start=0, end=None, what="message"):
    """Walk the fields of one message.

    Args:
        buf: bytes-like object holding the message.
        start, end: the byte range of the message inside `buf`.
        what: the message's name, used in error messages.

    Yields:
        ``(field_number, wire_type, value, offset)``: value is an int for VARINT, I64 and I32 (the raw
        unsigned bits) and a memoryview slice for LEN; offset is where the field's key starts.

    Raises:
        DataLossError: truncated or malformed input.
    """
    view = memoryview(buf)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    end = len(view) if end is None else end
    pos = start
    while pos < end:
        offset = pos
        key, pos = read_varint(view, pos, end, what)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise DataLossError(f"malformed protobuf in {what}: field number 0 at byte {offset}")
        if wire == VARINT:
            value, pos = read_varint(view, pos, end, what)
        elif wire == LEN:
            length, pos = read_varint(view, pos, end, what)
            if length > end - pos:
                raise DataLossError(f"malformed protobuf in {what}: field {field} at byte {offset} declares "
                                    f"{length} bytes but only {end - pos} remain")
            value = view[pos:pos + length]
            pos += length
        elif wire == I64 or wire == I32:
            size = 8 if wire == I64 else 4
            if size > end - pos:
                raise DataLossError(f"malformed protobuf in {what}: truncated fixed{size * 8} field {field} "
                                    f"at byte {offset}")
            value = int.from_bytes(view[pos:pos + size], "little")
            pos += size
        else:
            raise DataLossError(f"malformed protobuf in {what}: unsupported wire type {wire} "
                                f"(field {field}) at byte {offset}")
        yield field, wire, value, offset


def decode_varints(payload, what="packed field"):
    """Decode concatenated varints (a packed repeated int field) into an int64 array.

    Raises:
        DataLossError: the last varint is truncated or one is longer than 10 bytes.
    """
    data = np.frombuffer(payload, np.uint8)
    if data.size == 0:
        return np.zeros(0, np.int64)
    if data.size < 32:
        out, pos, n = [], 0, data.size
        raw = bytes(payload)
        while pos < n:
            v, pos = read_varint(raw, pos, n, what)
            out.append(signed64(v))
        return np.array(out, np.int64)
    last = data < 0x80                  # the final byte of each varint has its high bit clear
    if not last[-1]:
        raise DataLossError(f"malformed protobuf in {what}: truncated varint at the end of {data.size} bytes")
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > 10:
        bad = int(starts[np.argmax(lengths > 10)])
        raise DataLossError(f"malformed protobuf in {what}: varint longer than 10 bytes at byte {bad}")
    # position of each byte inside its varint, then sum the 7-bit groups shifted into place
    group = np.arange(data.size) - np.repeat(starts, lengths)
    parts = (data & 0x7F).astype(np.uint64) << (7 * group).astype(np.uint64)
    return np.add.reduceat(parts, starts).view(np.int64)


def _fixed_array(payload, dtype, what):
    size = np.dtype(dtype).itemsize
    if len(payload) % size:
        raise DataLossError(f"malformed protobuf in {what}: packed field of {len(payload)} bytes is not a "
                            f"multiple of {size}")
    return np.frombuffer(payload, dtype)


# Schema kinds -> (accepted wire type, converter). Repeated numeric kinds also accept the packed form.
_SCALARS = {
    "int64": (VARINT, signed64), "uint64": (VARINT, int), "int32": (VARINT, lambda v: signed64(v)),
    "enum": (VARINT, lambda v: signed64(v)), "bool": (VARINT, bool),
    "double": (I64, lambda v: _F64.unpack(v.to_bytes(8, "little"))[0]),
    "float": (I32, lambda v: _F32.unpack(v.to_bytes(4, "little"))[0]),
    "fixed64": (I64, int), "fixed32": (I32, int),
    "bytes": (LEN, bytes), "string": (LEN, lambda v: bytes(v).decode("utf-8", "replace")),
}
_PACKED = {"int64": lambda p, w: decode_varints(p, w), "int32": lambda p, w: decode_varints(p, w),
           "enum": lambda p, w: decode_varints(p, w), "bool": lambda p, w: decode_varints(p, w) != 0,
           "uint64": lambda p, w: decode_varints(p, w).view(np.uint64),
           "double": lambda p, w: _fixed_array(p, "<f8", w), "float": lambda p, w: _fixed_array(p, "<f4", w)}


def decode_message(buf, schema, what="message"):
    """Decode a message described by a schema into a dict.

    Args:
        buf: bytes-like serialized message.
        schema: ``{field_number: (name, kind)}`` or ``(name, kind, "repeated")``; kind is one of
            int64, uint64, int32, enum, bool, double, float, fixed64, fixed32, bytes, string, or a nested
            schema dict for an embedded message. Unknown fields are skipped.
        what: the message's name, for error messages.

    Returns:
        dict name -> value for the fields present (a repeated field gives a list, or a NumPy array for
        numeric kinds); for a non-repeated field the last occurrence wins, as in protobuf.

    Raises:
        DataLossError: malformed input, or a field whose wire type does not match its schema.
    """
    out = {}
    for field, wire, value, offset in iter_fields(buf, what=what):
        spec = schema.get(field)
        if spec is None:
            continue
        name, kind = spec[0], spec[1]
        repeated = len(spec) > 2
        if isinstance(kind, dict):
            if wire != LEN:
                raise DataLossError(f"malformed protobuf in {what}: field {name} at byte {offset} has wire "
                                    f"type {wire}, expected a message")
            item = decode_message(value, kind, f"{what}.{name}")
        elif repeated and wire == LEN and kind in _PACKED:
            packed = _PACKED[kind](value, f"{what}.{name}")
            prev = out.get(name)
            out[name] = packed if prev is None else np.concatenate([np.asarray(prev, packed.dtype), packed])
            continue
        else:
            expected, convert = _SCALARS[kind]
            if wire != expected:
                raise DataLossError(f"malformed protobuf in {what}: field {name} at byte {offset} has wire "
                                    f"type {wire}, expected {expected}")
            item = convert(value)
        if repeated:
            prev = out.setdefault(name, [])
            if isinstance(prev, np.ndarray):   # packed and unpacked elements mixed: keep one array
                out[name] = np.append(prev, item)
            else:
                prev.append(item)
        else:
            out[name] = item
    for field, spec in schema.items():   # repeated numeric fields always come back as arrays
        if len(spec) > 2 and isinstance(spec[1], str) and spec[1] in _PACKED and isinstance(out.get(spec[0]), list):
            out[spec[0]] = np.array(out[spec[0]], dtype=_PACKED[spec[1]](b"", what).dtype)
    return out
