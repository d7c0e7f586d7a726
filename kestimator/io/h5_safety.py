"""The checks every HDF5 reader in kestimator makes before it trusts a file it did not write itself.

Used by the checkpoint reader (`engine.checkpoint`) and the Keras ``.h5`` reader (`models.h5_format`):

* :func:`walk` visits every group and dataset once and refuses what would read outside the file: external
  links, soft links, a group reached twice (a hard-link cycle or alias), objects that are neither groups nor
  datasets;
* :func:`check_dataset_storage` refuses virtual datasets and datasets whose data lives in external files;
* :func:`check_stored_size` refuses a dataset whose declared size the bytes the file stores cannot back
  (truncated or crafted files), before anything that size is allocated.

Every error names the file (the caller's `prefix`) and the object. h5py is never imported here: the caller
passes the module in, so `import kestimator` stays light.
"""
import os

import numpy as np

from ..errors import DataLossError, UnsafeFileError

__all__ = ["walk", "check_dataset_storage", "check_stored_size", "MAX_COMPRESSION_RATIO"]

# A filtered (compressed) dataset may not declare more than this many times its stored bytes.
MAX_COMPRESSION_RATIO = 1024

# What h5py raises for a damaged header, link or object table.
_H5_ERRORS = (OSError, RuntimeError, KeyError)


def walk(h5py, h5file, prefix, on_dataset):
    """Visit every object of an open HDF5 file, refusing links and anything but groups and datasets.

    Args:
        h5py: the h5py module (imported lazily by the caller).
        h5file: the open ``h5py.File``.
        prefix: the start of every error message; names the file ("checkpoint /x/m.ckpt", "/x/m.h5").
        on_dataset: called as ``on_dataset(group_prefix, key, dataset)`` for each dataset, where
            ``group_prefix + key`` is its path without the leading "/" and ``group_prefix`` is "" or ends
            with "/". It makes the caller's per-dataset checks (see :func:`check_dataset_storage`).

    Raises:
        UnsafeFileError: an external or soft link.
        DataLossError: a group or link that cannot be read, a group linked twice, or an object that is
            neither a group nor a dataset.
    """
    stack = [("", h5file)]
    seen = {h5file.id}   # hard links can make a group its own descendant: walk each group once
    while stack:   # explicit stack: a deep group tree must not hit the recursion limit
        group_prefix, group = stack.pop()
        try:
            keys = list(group.keys())
        except _H5_ERRORS as e:
            raise DataLossError(f"{prefix}: cannot list group '/{group_prefix}': {e}") from None
        for key in keys:
            if not isinstance(key, str):   # h5py gives bytes for a name that is not UTF-8 (a damaged file: fuzzing)
                raise DataLossError(f"{prefix}: group '/{group_prefix}' has a member whose name is not UTF-8 "
                                    f"text: {key!r}")
            name = group_prefix + key
            try:
                link = group.get(key, getlink=True)
            except _H5_ERRORS as e:
                raise DataLossError(f"{prefix}: cannot read link '/{name}': {e}") from None
            if isinstance(link, h5py.ExternalLink):
                raise UnsafeFileError(f"{prefix}: '/{name}' is an external link to {link.filename}:{link.path}; "
                                      "refused (it would read another file)")
            if isinstance(link, h5py.SoftLink):
                raise UnsafeFileError(f"{prefix}: '/{name}' is a soft link to {link.path}; refused (links are "
                                      "not followed)")
            try:
                obj = group[key]
            except _H5_ERRORS as e:
                raise DataLossError(f"{prefix}: cannot open '/{name}': {e}") from None
            if isinstance(obj, h5py.Group):
                if obj.id in seen:
                    raise DataLossError(f"{prefix}: group '/{name}' is a second link to a group already walked "
                                        "(a hard-link cycle or alias); refused")
                seen.add(obj.id)
                stack.append((name + "/", obj))
            elif isinstance(obj, h5py.Dataset):
                on_dataset(group_prefix, key, obj)
            else:
                raise DataLossError(f"{prefix}: '/{name}' is a {type(obj).__name__}, neither a group nor a "
                                    "dataset")


def dataset_dtype(ds, prefix, what):
    """The dataset's NumPy dtype, or DataLossError when its stored HDF5 type cannot be decoded.

    A damaged type message makes h5py raise ValueError ("Insufficient precision ...") or RuntimeError
    (H5Tget_ebias) from ``ds.dtype``; the slow fuzz tier found both.
    """
    try:
        return ds.dtype
    except (ValueError, RuntimeError, TypeError, OSError) as e:
        raise DataLossError(f"{prefix}: {what} has an HDF5 type that cannot be read: {e}") from None


def check_dataset_storage(ds, prefix, what):
    """Refuse a dataset whose data lives outside the file.

    Args:
        ds: the ``h5py.Dataset``.
        prefix: names the file (see :func:`walk`).
        what: names the dataset ("tensor 'w'", "dataset '/a/b'").

    Raises:
        UnsafeFileError: a virtual dataset, or one stored in external files.
    """
    if ds.is_virtual:
        raise UnsafeFileError(f"{prefix}: {what} is a virtual dataset; refused (it maps data from other files)")
    if ds.external:
        raise UnsafeFileError(f"{prefix}: {what} keeps its data in external file(s) "
                              f"{[e[0] for e in ds.external]}; refused")


def check_stored_size(ds, shape, dtype, path, prefix, what):
    """Refuse a dataset whose declared size is not backed by the bytes the file stores for it.

    An unfiltered dataset must store exactly its declared bytes; a filtered (compressed) one at least
    1/MAX_COMPRESSION_RATIO of them; no dataset may store more than the whole file.

    Args:
        ds: the ``h5py.Dataset``.
        shape: its shape (a tuple of ints).
        dtype: the NumPy dtype it will be read as (fixed size).
        path: the file, whose size bounds the stored bytes.
        prefix: names the file in messages (see :func:`walk`).
        what: names the dataset in messages.

    Raises:
        DataLossError: the declared size is not backed, or the storage cannot be read.
    """
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if nbytes == 0:
        return
    try:
        stored = ds.id.get_storage_size()
    except (OSError, RuntimeError) as e:
        raise DataLossError(f"{prefix}: {what}: cannot read its storage: {e}") from None
    filtered = ds.compression is not None or ds.shuffle or ds.fletcher32 or ds.scaleoffset is not None
    if not filtered and stored != nbytes:
        raise DataLossError(f"{prefix}: {what} declares {nbytes} bytes (shape {tuple(shape)}, {np.dtype(dtype)}) "
                            f"but the file stores {stored}; the file is truncated or corrupt")
    if filtered and nbytes > max(stored, 1) * MAX_COMPRESSION_RATIO:
        raise DataLossError(f"{prefix}: {what} declares {nbytes} bytes from {stored} compressed bytes; refused "
                            "(truncated or corrupt)")
    file_size = os.path.getsize(path)
    if stored > file_size:
        raise DataLossError(f"{prefix}: {what} stores {stored} bytes, more than the whole file ({file_size}); "
                            "the file is truncated")
