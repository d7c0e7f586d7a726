"""The file format of ``Dataset.cache(filename)``: framed, checksummed arrays and bytes; never pickle.

Layout (all integers little-endian)::

    magic     b"KSCACHE1"
    header    u32 length, JSON (format, version, kestimator_version, element structure, pipeline
              fingerprint), u32 crc32
    records   u64 length, u32 crc32 of the payload, payload   -- one per element
    end       u64 0xFFFFFFFFFFFFFFFF, u64 number of records   -- absent => the file is truncated

A payload is the element's leaves in :func:`~kestimator.data.structure.flatten` order, each a kind
byte and its data: numeric arrays and NumPy scalars as dtype string, shape and raw C-order bytes;
``bytes``; object arrays of bytes; Python int / float / bool / str. Only numeric and bool dtypes are
accepted when reading, every length is checked against the bytes that remain before anything is
allocated, and a checksum mismatch raises DataLossError naming the file and offset.

Versions: the header's ``"version"`` is the format version; a reader accepts 1..VERSION and refuses a newer
one naming the kestimator that wrote it (``"kestimator_version"``, absent in files from before it was
recorded, which load as before).
"""
import json
import math
import struct
import zlib

import numpy as np

from .. import _formats
from ..errors import DataLossError, InvalidArgumentError
from .structure import describe, flatten, pack_as

MAGIC = b"KSCACHE1"
FORMAT = "kestimator.data.cache"
VERSION = _formats.DATA_CACHE_FORMAT
END_MARK = 0xFFFFFFFFFFFFFFFF
_U8, _U32, _U64, _I64, _F64 = (struct.Struct(f) for f in ("<B", "<I", "<Q", "<q", "<d"))
_ARRAY, _SCALAR, _BYTES, _OBJECT_ARRAY, _INT, _FLOAT, _BOOL, _STR = range(8)
_NUMERIC_KINDS = "biufc"


def structure_of(element):
    """A JSON-able template of the element's nesting; dict keys must be strings."""
    if isinstance(element, tuple):
        return {"t": [structure_of(v) for v in element]}
    if isinstance(element, dict):
        for k in element:
            if not isinstance(k, str):
                raise InvalidArgumentError(f"cache(filename) needs string dict keys, got {k!r}")
        return {"d": {k: structure_of(v) for k, v in element.items()}}
    return 0


def _template(structure):
    """Rebuild a structure (with placeholder leaves) from :func:`structure_of`'s JSON."""
    if isinstance(structure, dict) and "t" in structure:
        return tuple(_template(v) for v in structure["t"])
    if isinstance(structure, dict) and "d" in structure:
        return {k: _template(v) for k, v in structure["d"].items()}
    return None


def encode_header(structure, fingerprint):
    text = json.dumps({"format": FORMAT, "version": VERSION, "kestimator_version": _formats.KESTIMATOR_VERSION,
                       "structure": structure, "fingerprint": fingerprint}, sort_keys=True).encode("utf-8")
    return MAGIC + _U32.pack(len(text)) + text + _U32.pack(zlib.crc32(text))


def _encode_leaf(out, leaf):
    if isinstance(leaf, np.ndarray):
        if leaf.dtype == object:
            out += _U8.pack(_OBJECT_ARRAY) + _encode_shape(leaf.shape)
            for item in leaf.flat:
                if not isinstance(item, bytes):
                    raise InvalidArgumentError(f"cache(filename) can store object arrays of bytes only, "
                                               f"found {type(item).__name__}")
                out += _U64.pack(len(item)) + item
            return
        if leaf.dtype.kind not in _NUMERIC_KINDS:
            raise InvalidArgumentError(f"cache(filename) cannot store arrays of dtype {leaf.dtype}")
        out += _U8.pack(_ARRAY) + _encode_dtype(leaf.dtype) + _encode_shape(leaf.shape)
        out += np.ascontiguousarray(leaf).tobytes()
    elif isinstance(leaf, np.generic):
        if leaf.dtype.kind not in _NUMERIC_KINDS:
            raise InvalidArgumentError(f"cache(filename) cannot store scalars of dtype {leaf.dtype}")
        out += _U8.pack(_SCALAR) + _encode_dtype(leaf.dtype) + leaf.tobytes()
    elif isinstance(leaf, bytes):
        out += _U8.pack(_BYTES) + _U64.pack(len(leaf)) + leaf
    elif isinstance(leaf, bool):
        out += _U8.pack(_BOOL) + _U8.pack(int(leaf))
    elif isinstance(leaf, int):
        out += _U8.pack(_INT) + _I64.pack(leaf)
    elif isinstance(leaf, float):
        out += _U8.pack(_FLOAT) + _F64.pack(leaf)
    elif isinstance(leaf, str):
        data = leaf.encode("utf-8")
        out += _U8.pack(_STR) + _U64.pack(len(data)) + data
    else:
        raise InvalidArgumentError(f"cache(filename) cannot store a {type(leaf).__name__} component")


def _encode_dtype(dtype):
    name = dtype.str.encode("ascii")
    return _U8.pack(len(name)) + name


def _encode_shape(shape):
    return _U8.pack(len(shape)) + b"".join(_U64.pack(d) for d in shape)


def encode_record(element):
    """One element as a framed record (length, crc32, payload)."""
    payload = bytearray()
    for leaf in flatten(element):
        _encode_leaf(payload, leaf)
    return _U64.pack(len(payload)) + _U32.pack(zlib.crc32(payload)) + bytes(payload)


def encode_end(count):
    return _U64.pack(END_MARK) + _U64.pack(count)


class _Cursor:
    """Reads typed values out of one record's payload, refusing to run past its end."""

    def __init__(self, data, path, offset):
        self.data, self.pos, self.path, self.offset = data, 0, path, offset

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise DataLossError(f"cache file {self.path}: record at offset {self.offset} is malformed "
                                f"(a field needs {n} bytes, {len(self.data) - self.pos} remain)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt):
        return fmt.unpack(self.take(fmt.size))[0]

    def dtype(self):
        name = bytes(self.take(self.unpack(_U8))).decode("ascii", "replace")
        try:
            dtype = np.dtype(name)
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in _NUMERIC_KINDS:
            raise DataLossError(f"cache file {self.path}: record at offset {self.offset} declares dtype "
                                f"{name!r}, which a cache file may not hold")
        return dtype

    def shape(self):
        return tuple(self.unpack(_U64) for _ in range(self.unpack(_U8)))


def _decode_leaf(cur):
    kind = cur.unpack(_U8)
    if kind == _ARRAY:
        dtype, shape = cur.dtype(), cur.shape()
        count = math.prod(shape)
        data = cur.take(count * dtype.itemsize)
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    if kind == _SCALAR:
        dtype = cur.dtype()
        return np.frombuffer(cur.take(dtype.itemsize), dtype=dtype)[0]
    if kind == _BYTES:
        return bytes(cur.take(cur.unpack(_U64)))
    if kind == _OBJECT_ARRAY:
        shape = cur.shape()
        count = math.prod(shape)
        if count > len(cur.data):   # each item needs at least its 8-byte length
            cur.take(count * 8)
        items = [bytes(cur.take(cur.unpack(_U64))) for _ in range(count)]
        out = np.empty(count, dtype=object)
        out[:] = items
        return out.reshape(shape)
    if kind == _INT:
        return cur.unpack(_I64)
    if kind == _FLOAT:
        return cur.unpack(_F64)
    if kind == _BOOL:
        return bool(cur.unpack(_U8))
    if kind == _STR:
        return bytes(cur.take(cur.unpack(_U64))).decode("utf-8")
    raise DataLossError(f"cache file {cur.path}: record at offset {cur.offset} has unknown leaf kind {kind}")


class CacheFileReader:
    """Reads elements back from a cache file.

    Args:
        path: the file.
        fingerprint: the pipeline fingerprint expected in the header.

    Raises:
        DataLossError: bad magic, header checksum, record checksum or truncation (with the offset).
        InvalidArgumentError: the file was written by a different pipeline.
    """

    def __init__(self, path, fingerprint):
        self.path = path
        self._f = open(path, "rb")
        try:
            self._size = self._f.seek(0, 2)
            self._f.seek(0)
            self._read_header(fingerprint)
        except BaseException:
            self._f.close()
            raise
        self.count = 0
        self.finished = False

    def _fail(self, offset, what):
        raise DataLossError(f"cache file {self.path}: {what} at offset {offset}")

    def _read_exact(self, n, offset, what):
        if n > self._size - self._f.tell():
            self._fail(offset, f"truncated {what}")
        data = self._f.read(n)
        if len(data) != n:
            self._fail(offset, f"truncated {what}")
        return data

    def _read_header(self, fingerprint):
        if self._read_exact(len(MAGIC), 0, "magic") != MAGIC:
            self._fail(0, "not a kestimator cache file (bad magic)")
        (length,) = _U32.unpack(self._read_exact(4, 8, "header length"))
        text = self._read_exact(length, 12, "header")
        (crc,) = _U32.unpack(self._read_exact(4, 12 + length, "header checksum"))
        if zlib.crc32(text) != crc:
            self._fail(12, "header checksum mismatch")
        header = json.loads(text.decode("utf-8"))
        tag = header.get("format") if isinstance(header, dict) else None
        if tag != FORMAT:
            self._fail(12, f"unsupported header format {tag!r:.60}")
        _formats.check_version(header.get("version"), VERSION, f"cache file {self.path}", "ks.data cache",
                               writer=header.get("kestimator_version"))
        if header.get("fingerprint") != fingerprint:
            raise InvalidArgumentError(
                f"cache file {self.path} was written by a different pipeline (fingerprint "
                f"{header.get('fingerprint')!r}, this one {fingerprint!r}); delete it to rebuild the cache")
        self._template = _template(header["structure"])

    def _next_frame(self):
        """(offset, length) of the next record, or None at the end mark."""
        offset = self._f.tell()
        (length,) = _U64.unpack(self._read_exact(8, offset, "record length"))
        if length == END_MARK:
            (count,) = _U64.unpack(self._read_exact(8, offset, "end mark"))
            if count != self.count:
                self._fail(offset, f"end mark says {count} records, {self.count} were read")
            self.finished = True
            return None
        return offset, length

    def read(self):
        """The next element, or raise StopIteration after the last."""
        if self.finished:
            raise StopIteration
        frame = self._next_frame()
        if frame is None:
            raise StopIteration
        offset, length = frame
        (crc,) = _U32.unpack(self._read_exact(4, offset, "record checksum"))
        payload = self._read_exact(length, offset, "record")
        if zlib.crc32(payload) != crc:
            self._fail(offset, "record checksum mismatch")
        cur = _Cursor(memoryview(payload), self.path, offset)
        leaves = []
        for _ in range(len(flatten(self._template))):
            leaves.append(_decode_leaf(cur))
        if cur.pos != len(payload):
            self._fail(offset, "record has trailing bytes")
        self.count += 1
        return pack_as(self._template, leaves) if isinstance(self._template, (tuple, dict)) else leaves[0]

    def skip(self, n):
        """Skip up to ``n`` records without decoding them; returns how many."""
        done = 0
        while done < n and not self.finished:
            frame = self._next_frame()
            if frame is None:
                break
            offset, length = frame
            if length + 4 > self._size - self._f.tell():
                self._fail(offset, "truncated record")
            self._f.seek(4 + length, 1)
            self.count += 1
            done += 1
        return done

    def close(self):
        self._f.close()


def same_structure(element, structure):
    """True when ``element`` nests like the JSON ``structure`` a writer recorded."""
    return describe(element) == describe(_template(structure))
