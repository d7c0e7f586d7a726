"""The HDF5 tensor file: the on-disk format of Saver checkpoints and of the estimators' checkpoints.

Layout of one file::

    /                       attrs: kestimator_format = 1, kestimator_version = '0.1.0' (the writer's),
                                   kestimator_metadata = '<JSON object>'
    /<name>                 one dataset per tensor; a name "a/b/c" is dataset "c" in group "a/b"
    /<name>/__value__       the tensor <name> when <name> is also a group (TF's "w" and its slot "w/Adam")

Writing is crash safe: the tensors go to a temporary file in the destination folder, which is flushed,
fsynced and renamed over the destination (then the folder is fsynced), so a reader sees either the
previous file or the new one, never a partial one. `save_tensors` returns the SHA-256 of what it wrote so
an index can record it and `load_tensors(..., sha256=...)` can verify it.

Reading never trusts the file: external links, soft links, external storage and virtual datasets are
refused (they would read outside the file; `kestimator.io.h5_safety`), only plain numeric / bool /
byte-string datasets are accepted, and every declared shape and size is checked against the caller's
expectation and the bytes actually stored before anything is allocated.

Versions: a reader accepts formats 1..`FORMAT_VERSION` and refuses a newer one naming the kestimator that
wrote it (`_formats.check_version`). Files from before ``kestimator_version`` existed lack it and load.
"""
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

from .. import _formats
from ..errors import DataLossError, InvalidArgumentError, NotFoundError
from .h5_guard import GuardedH5File

FORMAT_VERSION = _formats.CHECKPOINT_FORMAT
_FORMAT_ATTR = _formats.FORMAT_ATTR
_VERSION_ATTR = _formats.VERSION_ATTR
_METADATA_ATTR = "kestimator_metadata"
_VALUE_LEAF = "__value__"              # dataset holding tensor "a" when "a" is also a group ("a/b" exists)
_STRING_ATTR = "kestimator_dtype"      # set to "string" on datasets holding byte strings

__all__ = ["save_tensors", "load_tensors", "read_metadata", "list_tensors", "print_tensors_in_checkpoint_file",
           "file_sha256", "FORMAT_VERSION"]


def _h5py():
    import h5py   # lazy: `import kestimator` must not pay for h5py
    return h5py


# -- writing -------------------------------------------------------------------------------------------
def _check_names(names):
    """Tensor names become HDF5 paths: refuse names HDF5 would read differently.

    Returns:
        dict name -> HDF5 path. A name that is also a group (TF's "w" beside its slot "w/Adam") is stored
        as "<name>/__value__" inside that group.
    """
    groups = set()
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"tensor names must be non-empty strings, got {name!r}")
        parts = name.split("/")
        if any(p in ("", ".", "..", _VALUE_LEAF) for p in parts):
            raise InvalidArgumentError(
                f"tensor name {name!r} has an empty, '.', '..' or '{_VALUE_LEAF}' path component (or a "
                "leading/trailing '/')")
        groups.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return {name: f"{name}/{_VALUE_LEAF}" if name in groups else name for name in names}


def _as_storable(name, value):
    """(array to write, is_string) for one tensor value."""
    arr = np.asarray(value)
    if arr.dtype.kind in "OSU":
        flat = [v.encode("utf-8") if isinstance(v, str) else v for v in arr.ravel().tolist()]
        if not all(isinstance(v, (bytes, bytearray)) for v in flat):
            raise InvalidArgumentError(f"tensor {name!r}: object arrays must hold only str or bytes values")
        out = np.empty(len(flat), dtype=object)
        out[:] = [bytes(v) for v in flat]
        return out.reshape(arr.shape), True
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"tensor {name!r} has dtype {arr.dtype}, which a checkpoint cannot hold "
                                   "(numeric, bool and string tensors only)")
    return (arr if arr.flags.c_contiguous else arr.copy(order="C")), False


_file_mode = []


def _new_file_mode():
    """0o666 less the process umask: what `open(path, "w")` would give (mkstemp makes files 0o600)."""
    if not _file_mode:
        mask = os.umask(0o022)   # reading the umask means setting it; put it straight back
        os.umask(mask)
        _file_mode.append(0o666 & ~mask)
    return _file_mode[0]


def _fsync_dir(folder):
    if sys.platform.startswith("win"):   # directories cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path):
    """The SHA-256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_tensors(path, tensors, metadata=None):
    """Write `tensors` to the HDF5 file `path` atomically.

    Args:
        path: destination file; its folder must exist.
        tensors: dict name -> array-like. A "/" in a name makes HDF5 groups ("dense/kernel").
        metadata: optional JSON-serializable dict stored with the file (read it with `read_metadata`).

    Returns:
        The SHA-256 hex digest of the file as written.

    Raises:
        InvalidArgumentError: a bad name (empty component, dataset/group clash), an unsupported dtype, or
            metadata that is not a JSON-serializable dict.
        ResourceExhaustedError: no space left on the device (ENOSPC, quota); FailedPreconditionError: a
            read-only or unwritable folder. Either way the previous file, if any, is left untouched and no
            temporary file remains.
        OSError: any other failure to write (e.g. the folder is missing).
    """
    h5py = _h5py()
    path = os.fspath(path)
    names = list(tensors)
    paths = _check_names(names)
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidArgumentError(f"checkpoint metadata must be a dict, got {type(metadata).__name__}")
    try:
        meta_json = json.dumps(metadata or {}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"checkpoint metadata for {path} is not JSON-serializable: {e}") from None
    folder = os.path.dirname(os.path.abspath(path))
    from ..io.write_errors import reraise_write_error   # disk full / read-only -> a ks.errors error
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    except OSError as err:
        reraise_write_error(err, path, "checkpoint")
        raise
    os.close(fd)
    try:
        os.chmod(tmp, _new_file_mode())
        with h5py.File(tmp, "w", libver="earliest") as f:
            f.attrs[_FORMAT_ATTR] = np.int64(FORMAT_VERSION)
            # fixed-length bytes: reading it needs no global heap (see guard_heaps)
            f.attrs[_VERSION_ATTR] = np.bytes_(_formats.KESTIMATOR_VERSION.encode())
            f.attrs[_METADATA_ATTR] = meta_json
            for name in sorted(names, key=paths.get):
                arr, is_string = _as_storable(name, tensors[name])
                if is_string:
                    ds = f.create_dataset(paths[name], shape=arr.shape, dtype=h5py.vlen_dtype(bytes))
                    if arr.size:
                        ds[...] = arr
                    ds.attrs[_STRING_ATTR] = "string"
                else:
                    f.create_dataset(paths[name], data=arr)
        with open(tmp, "rb+") as f:   # h5py closed the file; make its bytes durable before the rename
            f.flush()
            os.fsync(f.fileno())
        digest = file_sha256(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        reraise_write_error(err, path, "checkpoint")
        raise
    _fsync_dir(folder)
    return digest


# -- reading -------------------------------------------------------------------------------------------
class _Reader(GuardedH5File):
    """An open, checked checkpoint file: the format attribute, and a safe walk over its datasets."""

    def __init__(self, path, sha256=None):
        h5py = _h5py()
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise NotFoundError(f"checkpoint file not found: {self.path}")
        if os.path.isdir(self.path):
            raise NotFoundError(f"checkpoint path {self.path} is a folder, not a checkpoint file")
        if sha256 is not None:
            actual = file_sha256(self.path)
            if actual != sha256:
                raise DataLossError(f"checkpoint {self.path} is corrupt: its SHA-256 is {actual}, the index "
                                    f"recorded {sha256}")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as e:
            raise DataLossError(f"checkpoint {self.path} is truncated or not an HDF5 file: {e}") from None
        try:
            self._check_format()
            self.datasets = self._walk()
        except BaseException:
            self.file.close()
            raise

    def _check_format(self):
        try:
            version = self.file.attrs.get(_FORMAT_ATTR)
        except (OSError, KeyError, RuntimeError, TypeError, ValueError) as e:   # h5py: KeyError for a bad header
            raise DataLossError(f"checkpoint {self.path}: cannot read the root attributes: {e}") from None
        if version is None:
            raise DataLossError(f"{self.path} is an HDF5 file but not a kestimator checkpoint "
                                f"(no '{_FORMAT_ATTR}' attribute)")
        where = f"checkpoint {self.path}"
        try:
            self.format_version = _formats.check_version(version, FORMAT_VERSION, where, "checkpoint")
        except InvalidArgumentError as err:
            if not _formats.is_newer_format(err):
                raise
            # Refused: name the kestimator that wrote it (absent in files from before it was recorded).
            _formats.check_version(version, FORMAT_VERSION, where, "checkpoint", writer=self._writer_version())
            raise

    def _writer_version(self):
        """The kestimator version recorded by the writer, or None (missing or unreadable)."""
        try:
            if _VERSION_ATTR not in self.file.attrs:
                return None
            if self.file.attrs.get_id(_VERSION_ATTR).dtype.kind == "O":   # variable-length: heap first
                self.guard_heaps()
            return self.file.attrs.get(_VERSION_ATTR)
        except (OSError, KeyError, RuntimeError, TypeError, ValueError, DataLossError):
            return None

    def _walk(self):
        """name -> h5py.Dataset for every dataset, refusing links and storage outside the file."""
        from ..io import h5_safety
        found = {}

        def on_dataset(group_prefix, key, ds):
            name = group_prefix + key
            if key == _VALUE_LEAF:   # the value of tensor "<group>" beside tensors "<group>/..."
                name = group_prefix[:-1]
                if not name:
                    raise DataLossError(f"checkpoint {self.path}: '/{_VALUE_LEAF}' at the root")
            self._check_dataset(name, ds)
            found[name] = ds

        h5_safety.walk(_h5py(), self.file, f"checkpoint {self.path}", on_dataset)
        return found

    def _check_dataset(self, name, ds):
        from ..io import h5_safety
        h5_safety.check_dataset_storage(ds, f"checkpoint {self.path}", f"tensor {name!r}")
        if ds.shape is None:
            raise DataLossError(f"checkpoint {self.path}: tensor {name!r} has no dataspace (HDF5 null)")
        self.dtype_of(name, ds)   # refuses compound, reference, opaque ... dtypes

    def dtype_of(self, name, ds):
        """The NumPy dtype of a dataset's values (object for byte strings)."""
        from ..io import h5_safety
        h5py = _h5py()
        dt = h5_safety.dataset_dtype(ds, f"checkpoint {self.path}", f"tensor {name!r}")
        if dt.kind in "biuf" and dt.fields is None and dt.subdtype is None:
            return dt
        if h5py.check_vlen_dtype(dt) in (bytes, str) or h5py.check_string_dtype(dt) is not None:
            return np.dtype(object)
        raise DataLossError(f"checkpoint {self.path}: tensor {name!r} has HDF5 type {dt}, which kestimator "
                            "checkpoints never hold")

    def dataset(self, name):
        ds = self.datasets.get(name)
        if ds is None:
            raise NotFoundError(f"tensor {name!r} not found in checkpoint {self.path} (it holds "
                                f"{len(self.datasets)} tensors, e.g. {sorted(self.datasets)[:5]})")
        return ds

    def read(self, name, ds):
        dt = self.dtype_of(name, ds)
        shape = tuple(ds.shape) if ds.shape is not None else None
        if shape is None:
            raise DataLossError(f"checkpoint {self.path}: tensor {name!r} has no dataspace (HDF5 null)")
        if dt != object:
            self._check_stored_size(name, ds, shape, dt)
        if dt == object:
            self.guard_heaps()
        try:
            if dt == object:
                raw = ds[()]
                out = np.empty(shape, dtype=object)
                if out.size:
                    out[...] = raw
                else:
                    out = out.reshape(shape)
                return out
            out = np.empty(shape, dtype=dt)
            if out.size:
                ds.read_direct(out)
            return out
        except (OSError, RuntimeError, ValueError) as e:
            raise DataLossError(f"checkpoint {self.path}: cannot read tensor {name!r} (file truncated or "
                                f"corrupt): {e}") from None

    def _check_stored_size(self, name, ds, shape, dt):
        """Refuse a dataset whose declared size the file does not back (truncated or crafted files)."""
        from ..io import h5_safety
        h5_safety.check_stored_size(ds, shape, dt, self.path, f"checkpoint {self.path}", f"tensor {name!r}")


def _dtype_name(dt):
    return "string" if dt == object else np.dtype(dt).name


def _same_dtype(expected, actual):
    if expected is None:
        return True
    if (isinstance(expected, str) and expected == "string") or getattr(expected, "is_string", False):
        return actual == object
    exp_np = getattr(expected, "as_numpy_dtype", None) or getattr(expected, "np", None)
    try:
        exp = np.dtype(exp_np if exp_np is not None else expected)
    except TypeError:
        raise InvalidArgumentError(f"expected dtype {expected!r} is not a dtype") from None
    if exp.kind in "OSU":
        return actual == object
    return exp == actual


def _expected_name(dtype):
    if isinstance(dtype, str) or hasattr(dtype, "is_string"):
        return getattr(dtype, "name", dtype)
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def load_tensors(path, names=None, expected=None, sha256=None):
    """Read tensors from a checkpoint file written by `save_tensors`.

    Args:
        path: the checkpoint file.
        names: tensor names to read (default: every tensor in the file).
        expected: optional dict name -> (shape, dtype); checked against the file's declarations before
            any value is read. A dtype of None (or a shape of None) skips that check.
        sha256: optional hex digest; the file is refused unless its bytes hash to it.

    Returns:
        dict name -> np.ndarray (byte strings come back as object arrays of bytes).

    Raises:
        NotFoundError: the file, or a requested tensor, does not exist (names the file and tensor).
        DataLossError: the file is truncated, corrupt, not a checkpoint, or fails the sha256 check.
        UnsafeFileError: the file holds external links, soft links, external storage or virtual datasets.
        InvalidArgumentError: a tensor's shape or dtype differs from `expected`, or the file was written
            in a newer format version.
    """
    with _Reader(path, sha256=sha256) as reader:
        wanted = sorted(reader.datasets) if names is None else list(names)
        if expected:
            for name, spec in expected.items():
                shape, dtype = spec
                ds = reader.dataset(name)
                actual_dt = reader.dtype_of(name, ds)
                if shape is not None and tuple(ds.shape) != tuple(int(d) for d in shape):
                    raise InvalidArgumentError(
                        f"checkpoint {reader.path}: tensor {name!r} has shape {tuple(ds.shape)}, expected "
                        f"{tuple(shape)}")
                if not _same_dtype(dtype, actual_dt):
                    raise InvalidArgumentError(
                        f"checkpoint {reader.path}: tensor {name!r} has dtype {_dtype_name(actual_dt)}, "
                        f"expected {_expected_name(dtype)}")
        return {name: reader.read(name, reader.dataset(name)) for name in wanted}


def read_metadata(path):
    """The metadata dict stored by `save_tensors` ({} when none was given).

    Raises:
        NotFoundError / DataLossError / UnsafeFileError / InvalidArgumentError: as `load_tensors`.
    """
    with _Reader(path) as reader:
        reader.guard_heaps()   # the metadata is a variable-length string
        try:
            raw = reader.file.attrs.get(_METADATA_ATTR)
        except (OSError, RuntimeError, TypeError, ValueError) as e:
            raise DataLossError(f"checkpoint {reader.path}: cannot read the metadata attribute: {e}") from None
        if raw is None:
            return {}
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        meta = _formats.loads_json(str(raw), reader.path, "the checkpoint metadata")
        if not isinstance(meta, dict):
            raise DataLossError(f"checkpoint {reader.path}: metadata is a {type(meta).__name__}, not an object")
        return meta


def list_tensors(path):
    """[(name, shape tuple, dtype name), ...] of every tensor in a checkpoint, sorted by name.

    Raises:
        NotFoundError / DataLossError / UnsafeFileError / InvalidArgumentError: as `load_tensors`.
    """
    with _Reader(path) as reader:
        return [(name, tuple(int(d) for d in ds.shape), _dtype_name(reader.dtype_of(name, ds)))
                for name, ds in sorted(reader.datasets.items())]


def print_tensors_in_checkpoint_file(file_name, tensor_name="", all_tensors=False, all_tensor_names=False):
    """Print a checkpoint's contents, as TensorFlow's inspect_checkpoint tool does.

    Args:
        file_name: the checkpoint file.
        tensor_name: print this tensor's name, shape, dtype and value ("" for none).
        all_tensors: print every tensor's name, shape, dtype and value.
        all_tensor_names: print every tensor's name, shape and dtype (no values).
        With none of them set, the name, shape and dtype of every tensor are printed.

    Raises:
        NotFoundError: the file or `tensor_name` does not exist.
    """
    with np.printoptions(threshold=1000):
        if all_tensors or (not tensor_name and not all_tensor_names):
            values = load_tensors(file_name) if all_tensors else None
            for name, shape, dtype in list_tensors(file_name):
                print(f"tensor_name:  {name}  shape: {list(shape)}  dtype: {dtype}")
                if values is not None:
                    print(values[name])
        elif all_tensor_names:
            for name, shape, dtype in list_tensors(file_name):
                print(f"tensor_name:  {name}  shape: {list(shape)}  dtype: {dtype}")
        if tensor_name and not all_tensors:
            value = load_tensors(file_name, names=[tensor_name])[tensor_name]
            print(f"tensor_name:  {tensor_name}  shape: {list(value.shape)}  dtype: "
                  f"{_dtype_name(value.dtype)}")
            print(value)
