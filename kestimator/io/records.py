"""Record files in TFRecord framing: a sequence of checksummed byte strings.

Each record is laid out as::

    uint64  length            little-endian
    uint32  masked_crc32c(length bytes)
    byte    data[length]
    uint32  masked_crc32c(data)

and a file is the records concatenated, optionally compressed as one GZIP or ZLIB stream (the framing
is inside the compression, so offsets of compressed files count uncompressed bytes). There is no file
header and no index, so files can be appended to and read as a stream; files written here are read by
``tf.data.TFRecordDataset`` and the other way round.
"""
import os
import struct
import zlib

from ..errors import DataLossError, InvalidArgumentError, NotFoundError
from .crc32c import masked_crc

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_HEADER = struct.Struct("<QI")
_HEADER_BYTES, _FOOTER_BYTES = 12, 4
_READ_CHUNK = 1 << 24          # a record longer than this is read from a compressed stream in pieces
_RAW_CHUNK = 1 << 16           # compressed bytes fed to the decompressor at a time
_WBITS = {"GZIP": 16 + zlib.MAX_WBITS, "ZLIB": zlib.MAX_WBITS}
_IO_BUFFER = 1 << 18           # file buffer: small records are served from memory, few system calls


def _compression(compression_type):
    if compression_type in (None, ""):
        return None
    name = str(compression_type).upper()
    if name in ("NONE",):
        return None
    if name not in _WBITS:
        raise InvalidArgumentError(f"compression_type must be None, 'GZIP' or 'ZLIB', got {compression_type!r}")
    return name


_length_crcs = {}


def _header(length):
    """Length field and its masked CRC; record lengths repeat a lot, so their CRCs are memoized."""
    crc = _length_crcs.get(length)
    if crc is None:
        crc = masked_crc(_LENGTH.pack(length))
        if len(_length_crcs) < 65536:
            _length_crcs[length] = crc
    return _HEADER.pack(length, crc)


_header_crcs = {}


def _length_crc(length_bytes):
    """Masked CRC of a record's 8 length bytes, memoized (files repeat a few lengths many times)."""
    crc = _header_crcs.get(length_bytes)
    if crc is None:
        crc = masked_crc(length_bytes)
        if len(_header_crcs) < 65536:
            _header_crcs[length_bytes] = crc
    return crc


def encode_record(data):
    """One framed record (header, data, footer) as bytes."""
    return _header(len(data)) + bytes(data) + _CRC.pack(masked_crc(data))


class RecordWriter:
    """Write records to a file in TFRecord framing.

    Args:
        path: file to create (an existing file is replaced).
        compression_type: None (or ""), "GZIP" or "ZLIB": compress the whole file as one stream.
        compression_level: zlib level 0-9 for compressed files.

    Raises:
        InvalidArgumentError: unknown compression type.
        OSError: the file cannot be created.

    Example::

        with RecordWriter("train.tfrecord") as w:
            w.write(Example({"label": 1}).serialize())
    """

    def __init__(self, path, compression_type=None, compression_level=6):
        self.path = os.fspath(path)
        self.compression_type = _compression(compression_type)
        self._compressor = None
        if self.compression_type is not None:
            self._compressor = zlib.compressobj(compression_level, zlib.DEFLATED,
                                                _WBITS[self.compression_type])
        self._file = open(self.path, "wb", buffering=_IO_BUFFER)

    def write(self, record):
        """Append one record.

        Args:
            record: bytes-like object (str is UTF-8 encoded).

        Raises:
            InvalidArgumentError: the writer is closed, or the record is not bytes-like.
        """
        if self._file is None:
            raise InvalidArgumentError(f"RecordWriter for {self.path} is closed")
        if isinstance(record, str):
            record = record.encode("utf-8")
        try:
            view = memoryview(record)
        except TypeError:
            raise InvalidArgumentError(f"RecordWriter.write needs bytes, got {type(record).__name__} "
                                       f"(file {self.path})") from None
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        header, footer = _header(view.nbytes), _CRC.pack(masked_crc(view))
        if self._compressor is None:
            self._file.write(header)
            self._file.write(view)
            self._file.write(footer)
        else:
            compress = self._compressor.compress
            self._file.write(compress(header) + compress(view) + compress(footer))

    def flush(self):
        """Push everything written so far to the operating system (a sync flush for compressed files)."""
        if self._file is None:
            return
        if self._compressor is not None:
            self._file.write(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        self._file.flush()

    def close(self):
        """Finish the compressed stream, if any, and close the file. Closing twice is harmless."""
        if self._file is None:
            return
        try:
            if self._compressor is not None:
                self._file.write(self._compressor.flush(zlib.Z_FINISH))
        finally:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._file is None else "open"
        return f"RecordWriter({self.path!r}, compression_type={self.compression_type!r}, {state})"


class _PlainSource:
    """Uncompressed file: reads, and knows how many bytes remain (file may grow while read)."""

    def __init__(self, f):
        self._f = f
        self.read = f.read
        self._size = -1

    def remaining(self, offset, needed=0):
        if offset + needed > self._size:     # only ask the OS again when the last answer falls short
            self._size = os.fstat(self._f.fileno()).st_size
        return self._size - offset

    def skip(self, offset):
        self._f.seek(offset)


class _InflateSource:
    """Decompressing reader over a GZIP or ZLIB stream that never inflates more than it is asked for."""

    def __init__(self, f, compression_type, path):
        self._f, self._type, self._path = f, compression_type, path
        self._wbits = _WBITS[compression_type]
        self._inflater = zlib.decompressobj(self._wbits)
        self._input = b""            # compressed bytes read from the file, not yet inflated
        self._started = False
        self.stream_complete = True  # False when the file ended inside the compressed stream
        self.position = 0            # uncompressed bytes delivered so far
        self._bound = None           # most uncompressed bytes the file can hold (see remaining)

    def _inflate(self, want):
        """Up to `want` decompressed bytes; b"" at the end of the data."""
        while True:
            inflater = self._inflater
            if inflater.eof:
                rest = inflater.unused_data or self._f.read(_RAW_CHUNK)
                if not rest:
                    self.stream_complete = True
                    return b""
                if self._type != "GZIP":
                    raise DataLossError(f"corrupt ZLIB record file {self._path}: bytes after the end of "
                                        f"the compressed stream")
                self._inflater = zlib.decompressobj(self._wbits)    # a further gzip member follows
                self._input = rest
                continue
            raw_eof = False
            if not self._input:
                self._input = self._f.read(_RAW_CHUNK)
                raw_eof = not self._input
                self._started = self._started or not raw_eof
            # with no new input this still drains output zlib holds back (the rest of a long match)
            out = inflater.decompress(self._input, want)
            self._input = inflater.unconsumed_tail
            if out:
                self.position += len(out)
                return out
            if raw_eof and not inflater.eof:
                self.stream_complete = not self._started   # an empty file holds no records
                return b""

    def read(self, n):
        parts, got = [], 0
        try:
            while got < n:
                piece = self._inflate(min(n - got, _READ_CHUNK))
                if not piece:
                    break
                parts.append(piece)
                got += len(piece)
        except zlib.error as e:
            raise DataLossError(f"corrupt {self._type} data in record file {self._path} after uncompressed "
                                f"byte offset {self.position}: {e}") from None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def remaining(self, offset, needed=0):
        """An upper bound on the uncompressed bytes left: deflate expands at most MAX_INFLATE_RATIO-fold."""
        from .._formats import MAX_INFLATE_RATIO
        if self._bound is None or offset + needed > self._bound:   # ask the OS again: the file may grow
            self._bound = os.fstat(self._f.fileno()).st_size * MAX_INFLATE_RATIO + (1 << 16)
        return self._bound - offset

    def skip(self, offset):
        while offset > 0:
            piece = self.read(min(offset, _READ_CHUNK))
            if not piece:
                raise DataLossError(f"start_offset is past the end of the uncompressed data of {self._path}")
            offset -= len(piece)


def iter_records(path, compression_type=None, start_offset=0):
    """Read the records of a file in TFRecord framing, checking both checksums of each.

    Args:
        path: the file.
        compression_type: None (or ""), "GZIP" or "ZLIB"; must match how the file was written.
        start_offset: byte offset of the first record to read (an offset this function yielded before);
            for compressed files it counts uncompressed bytes.

    Yields:
        ``(offset, data)``: the byte offset where the record starts and its payload as bytes.

    Raises:
        NotFoundError: the file does not exist.
        DataLossError: a truncated or corrupt record, with the file name and byte offset.
        InvalidArgumentError: bad compression type or negative start_offset.
    """
    ctype = _compression(compression_type)
    path = os.fspath(path)
    if start_offset < 0:
        raise InvalidArgumentError(f"start_offset must be >= 0, got {start_offset} (file {path})")
    try:
        f = open(path, "rb", buffering=_IO_BUFFER)
    except FileNotFoundError:
        raise NotFoundError(f"record file not found: {path}") from None
    with f:
        source = _PlainSource(f) if ctype is None else _InflateSource(f, ctype, path)
        where = "" if ctype is None else " (uncompressed)"
        offset = start_offset
        if offset:
            if ctype is None and source.remaining(0) < offset:
                raise DataLossError(f"start_offset {offset} is past the end of record file {path}")
            source.skip(offset)
        read = source.read
        while True:
            header = read(_HEADER_BYTES)
            if len(header) < _HEADER_BYTES:
                if not header:
                    if getattr(source, "stream_complete", True):
                        return
                    raise DataLossError(f"truncated {ctype} record file {path}: the compressed stream ends "
                                        f"without its trailer after byte offset {offset}{where}")
                raise DataLossError(f"truncated record at byte offset {offset}{where} of {path}: header has "
                                    f"{len(header)} of {_HEADER_BYTES} bytes")
            length, length_crc = _HEADER.unpack(header)
            if _length_crc(header[:8]) != length_crc:
                raise DataLossError(f"corrupted record at byte offset {offset}{where} of {path}: "
                                    f"length checksum mismatch")
            remaining = source.remaining(offset + _HEADER_BYTES, length + _FOOTER_BYTES)
            if length + _FOOTER_BYTES > remaining:   # refused before anything is read or allocated
                more = "more" if ctype is None else "more uncompressed bytes at most"
                raise DataLossError(f"truncated record at byte offset {offset}{where} of {path}: it declares "
                                    f"{length} bytes of data but the file has {max(remaining - 4, 0)} {more}")
            data = read(length)
            footer = read(_FOOTER_BYTES)
            if len(data) < length or len(footer) < _FOOTER_BYTES:
                raise DataLossError(f"truncated record at byte offset {offset}{where} of {path}: "
                                    f"{length} bytes of data declared, file ends first")
            if masked_crc(data) != _CRC.unpack(footer)[0]:
                raise DataLossError(f"corrupted record at byte offset {offset}{where} of {path}: "
                                    f"data checksum mismatch")
            yield offset, data
            offset += _HEADER_BYTES + length + _FOOTER_BYTES
