"""HDF5Dataset: stream the rows of named HDF5 datasets, a block of rows per read.

The file is opened (read-only) at construction to check it, and again on each pass. Files that reach
outside themselves are refused with UnsafeFileError: external links on the way to a dataset, datasets
with external storage, and virtual datasets. Only numeric, bool and string datasets are read.
"""
import os

import numpy as np

from ..engine import dtypes
from ..errors import InvalidArgumentError, MissingDependencyError, NotFoundError, UnsafeFileError
from .dataset import Dataset
from .iterator import NodeIterator
from .structure import TensorSpec, flatten, pack_as
from .validation import check_positive_int

ROWS_PER_READ = 1024


def _h5py():
    try:
        import h5py
    except ImportError:
        raise MissingDependencyError("h5py", "hdf5", "HDF5Dataset") from None
    return h5py


def _resolve(h5py, f, key, path):
    """The h5py Dataset at ``key``, refusing external links, external storage and virtual datasets."""
    node = f
    walked = ""
    for part in [p for p in key.split("/") if p]:
        walked += "/" + part
        if not isinstance(node, h5py.Group) or part not in node:
            raise NotFoundError(f"{path}: no dataset {key!r} (missing {walked!r})")
        link = node.get(part, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise UnsafeFileError(f"{path}: {walked!r} is an external link to {link.filename}:{link.path}; "
                                  "HDF5Dataset reads only data inside the file")
        node = node[part]
    if not isinstance(node, h5py.Dataset):
        raise InvalidArgumentError(f"{path}: {key!r} is a {type(node).__name__}, not a dataset")
    if node.is_virtual:
        raise UnsafeFileError(f"{path}: dataset {key!r} is virtual (it maps other files); refused")
    if node.external:
        raise UnsafeFileError(f"{path}: dataset {key!r} keeps its data in external files {node.external}; "
                              "refused")
    if node.ndim == 0:
        raise InvalidArgumentError(f"{path}: dataset {key!r} is a scalar; it has no rows to stream")
    return node


def _leaf_dtype(h5py, dset, key, path):
    if h5py.check_string_dtype(dset.dtype) is not None or dset.dtype.kind == "S":
        return dtypes.string
    if dset.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{path}: dataset {key!r} has dtype {dset.dtype}, which HDF5Dataset "
                                   "does not read (numeric, bool and string only)")
    return dtypes.as_dtype(dset.dtype)


class _HDF5Iterator(NodeIterator):
    def __init__(self, node):
        h5py = _h5py()
        self._node = node
        self._f = h5py.File(node._path, "r")
        self._dsets = [_resolve(h5py, self._f, k, node._path) for k in node._flat_keys]
        self._strings = [_leaf_dtype(h5py, d, k, node._path).is_string
                         for d, k in zip(self._dsets, node._flat_keys)]
        self._n = node._n
        self._pos = 0            # next row to return
        self._block = []         # rows read and not yet returned
        self._block_pos = 0

    def _read_block(self):
        start = self._pos
        stop = min(start + self._node._rows_per_read, self._n)
        columns = []
        for dset, is_string in zip(self._dsets, self._strings):
            arr = dset[start:stop]
            if is_string:
                obj = np.empty(arr.shape, dtype=object)
                obj.flat[:] = [v if isinstance(v, bytes) else bytes(v) if isinstance(v, np.bytes_)
                               else str(v).encode("utf-8") for v in arr.flat]
                arr = obj
            columns.append(arr)
        structure = self._node._keys
        if len(columns) == 1 and not isinstance(structure, (tuple, dict)):
            self._block = list(columns[0])
        else:
            self._block = [pack_as(structure, list(row)) for row in zip(*columns)]
        self._block_pos = 0

    def __next__(self):
        if self._block_pos >= len(self._block):
            if self._pos >= self._n or self._f is None:
                raise StopIteration
            self._read_block()
        row = self._block[self._block_pos]
        self._block_pos += 1
        self._pos += 1
        return row

    def skip(self, n):
        buffered = min(n, len(self._block) - self._block_pos)
        self._block_pos += buffered
        self._pos += buffered
        rest = min(n - buffered, self._n - self._pos)
        if rest > 0:
            self._pos += rest
            self._block, self._block_pos = [], 0
        return buffered + max(rest, 0)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


class HDF5Dataset(Dataset):
    """Rows of one or more same-length datasets in an HDF5 file.

    Args:
        path: the .h5 file.
        keys: a dataset path (elements are its rows), a list/tuple of paths (elements are tuples) or a
            dict name -> path (elements are dicts).
        rows_per_read: rows read from each dataset at once.

    Raises:
        NotFoundError: the file or a dataset is missing.
        UnsafeFileError: an external link, external storage or a virtual dataset.
        InvalidArgumentError: a key is not a dataset, a dtype is not readable, or lengths differ.
        MissingDependencyError: h5py is not installed.
    """

    def __init__(self, path, keys, rows_per_read=ROWS_PER_READ, name=None):
        super().__init__()
        h5py = _h5py()
        self._path = os.fspath(path)
        if isinstance(keys, list):
            keys = tuple(keys)
        self._keys = keys
        self._flat_keys = flatten(keys)
        if not self._flat_keys or not all(isinstance(k, str) for k in self._flat_keys):
            raise InvalidArgumentError(f"HDF5Dataset keys must be dataset paths (str), got {keys!r}")
        self._rows_per_read = check_positive_int(rows_per_read, "rows_per_read")
        if not os.path.exists(self._path):
            raise NotFoundError(f"HDF5 file not found: {self._path}")
        with h5py.File(self._path, "r") as f:
            specs, lengths = [], []
            for key in self._flat_keys:
                dset = _resolve(h5py, f, key, self._path)
                specs.append(TensorSpec(dset.shape[1:], _leaf_dtype(h5py, dset, key, self._path)))
                lengths.append(dset.shape[0])
        if len(set(lengths)) != 1:
            raise InvalidArgumentError(f"{self._path}: datasets {self._flat_keys} have different lengths "
                                       f"{lengths}")
        self._n = lengths[0]
        self._spec = pack_as(keys, specs) if isinstance(keys, (tuple, dict)) else specs[0]

    def _make_iterator(self, ctx, path):
        return _HDF5Iterator(self)

    def _cardinality(self):
        return self._n

    def _compute_element_spec(self):
        return self._spec

    def _describe_args(self):
        return {"path": self._path, "keys": repr(self._keys), "rows": self._n}
