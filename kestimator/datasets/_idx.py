"""Reading IDX files, the format of MNIST and Fashion-MNIST (plain or gzip-compressed).

An IDX file is a big-endian header followed by the array's bytes::

    uint8  0, 0          magic: two zero bytes,
    uint8  type          0x08 for unsigned bytes (the only type these data sets use),
    uint8  ndim          number of dimensions,
    uint32 dims[ndim]    the size of each dimension,
    uint8  data[prod(dims)]

The header is checked against the file's size before the array is allocated: for a gzip file the
uncompressed size is the ISIZE field of the gzip trailer (the size modulo 2**32), for a plain file its
length. Anything that does not add up is a DataLossError naming the file.
"""
import gzip
import os
import struct
import zlib

import numpy as np

from .._formats import MAX_INFLATE_RATIO
from ..errors import DataLossError, NotFoundError

_UBYTE = 0x08
MAX_IDX_BYTES = 1 << 31      # the largest of these files holds 47 MB; a bigger header is corrupt


def _uncompressed_size(path, raw):
    """Uncompressed size of the file (mod 2**32 for gzip, from the trailer), without decompressing."""
    size = os.path.getsize(path)
    if not raw:
        return size
    if size < 18:
        raise DataLossError(f"{path}: {size} bytes is too short for a gzip file")
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def read_idx(path, ndim):
    """Read an IDX file of unsigned bytes.

    Args:
        path: the file; a name ending in ``.gz`` is read as gzip.
        ndim: the number of dimensions the caller expects (3 for images, 1 for labels).

    Returns:
        A ``uint8`` array of the declared shape.

    Raises:
        NotFoundError: no such file.
        DataLossError: wrong magic, type or rank; dimensions that disagree with the file size; a
            truncated or corrupt gzip stream; trailing bytes.
    """
    if not os.path.isfile(path):
        raise NotFoundError(f"IDX file {path} does not exist")
    compressed = path.endswith(".gz")
    stored = _uncompressed_size(path, compressed)
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] != _UBYTE or magic[3] != ndim:
                raise DataLossError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimensions "
                                    f"(magic {magic.hex() or 'missing'}, expected 000008{ndim:02x})")
            header = f.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise DataLossError(f"{path}: the IDX header is truncated")
            dims = struct.unpack(f">{ndim}I", header)
            count = int(np.prod(dims, dtype=np.int64))
            total = 4 + 4 * ndim + count
            # the gzip trailer's size is only checked at the end of the stream, so it can lie; deflate cannot
            # expand more than MAX_INFLATE_RATIO-fold, which bounds what a small file may declare
            backed = os.path.getsize(path) * MAX_INFLATE_RATIO if compressed else stored
            if compressed and total > backed + (1 << 16):
                raise DataLossError(f"{path}: the header declares dimensions {list(dims)} ({total} bytes), more "
                                    f"than a gzip file of {os.path.getsize(path)} bytes can hold")
            if count > MAX_IDX_BYTES or total % (1 << 32) != stored:
                raise DataLossError(f"{path}: the header declares dimensions {list(dims)} ({total} bytes "
                                    f"with the header), but the file holds "
                                    f"{stored}{' (mod 2**32)' if compressed else ''} bytes")
            data = bytearray(count)
            if f.readinto(data) != count or f.read(1):
                raise DataLossError(f"{path}: the data does not match the dimensions {list(dims)}")
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, DataLossError):
            raise
        raise DataLossError(f"{path}: corrupt or truncated file: {exc}") from None
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)
