"""Checks of raw HDF5 structures that libhdf5 would otherwise trust and loop on forever.

libhdf5 (2.0 and earlier) parses a global heap collection ("GCOL": where variable-length strings live)
by stepping from object to object by each object's declared size; a free-space object declaring 0 bytes,
or a size that wraps the pointer around, makes that loop spin forever inside C code, where no Python
timeout can stop it. Before kestimator reads variable-length data from a file it cannot trust, it walks
every global heap collection in the file the way libhdf5 will and refuses the file if a step would not
move forward. The walk is a scan of the file's bytes (memory-mapped, ~1 GB/s), done once per open file.
"""
import mmap
import os
import struct

from ..errors import DataLossError

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_GCOL = b"GCOL\x01"            # signature and the only version libhdf5 reads
_FORMATS = {2: "<H", 4: "<I", 8: "<Q"}


def _sizeof_lengths(data):
    """The superblock's "size of lengths" (bytes of every size field), or None when no superblock is found."""
    offset = 0
    while offset + 16 <= len(data):   # the superblock is at 0, 512, 1024, 2048 ... (after a user block)
        if data[offset:offset + 8] == _SIGNATURE:
            version = data[offset + 8]
            at = offset + (14 if version in (0, 1) else 10)
            return data[at] if at < len(data) else None
        offset = 512 if offset == 0 else offset * 2
    return None


def check_global_heaps(path):
    """Refuse a file holding a global heap collection that libhdf5 would loop on.

    Args:
        path: the HDF5 file.

    Raises:
        DataLossError: a collection whose objects do not step forward to its end (names the file and
            the byte offset of the collection).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            lengths = _sizeof_lengths(data)
            if lengths not in _FORMATS:
                return   # not an HDF5 file libhdf5 can open at all
            size_fmt = _FORMATS[lengths]
            header = 8 + lengths                    # signature, version, 3 reserved, collection size
            obj_header = 8 + lengths                # index (2), refcount (2), reserved (4), size
            at = data.find(_GCOL)
            while at != -1:
                _check_collection(data, at, header, obj_header, size_fmt, lengths, path)
                at = data.find(_GCOL, at + 1)


def _check_collection(data, base, header, obj_header, size_fmt, lengths, path):
    if base + header > len(data):
        return
    (size,) = struct.unpack_from(size_fmt, data, base + 8)
    end = base + size
    pos = base + header
    mask = (1 << (8 * lengths)) - 1
    while pos < end:
        if pos + obj_header > end:          # libhdf5 takes a tail too small for a header as free space
            return
        if pos + obj_header > len(data):    # the collection runs past the file: libhdf5 fails to read it
            return
        (index,) = struct.unpack_from("<H", data, pos)
        (obj_size,) = struct.unpack_from(size_fmt, data, pos + 8)
        need = obj_size if index == 0 else (obj_header + ((obj_size + 7) & ~7)) & mask
        if need == 0 or need > end - pos:
            raise DataLossError(f"{path}: the global heap collection at byte {base} is corrupt (object "
                                f"{index} at byte {pos} declares {obj_size} bytes); the file is damaged")
        pos += need


class GuardedH5File:
    """Base of kestimator's HDF5 readers (checkpoints, Keras .h5): owns the open h5py file (`self.file`,
    opened from `self.path` by the subclass), closes it by `close()` or `with`, and checks the global heaps
    once, before the first variable-length read (`guard_heaps`)."""

    _heaps_checked = False

    def close(self):
        self.file.close()

    def guard_heaps(self):
        """Before the first read of variable-length data (strings): refuse global heaps libhdf5 would loop on."""
        if not self._heaps_checked:
            check_global_heaps(self.path)
            self._heaps_checked = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
