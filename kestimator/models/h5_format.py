"""Keras's HDF5 layout, read safely and written atomically.

Layout (tf.keras 2 `model.save("m.h5")`; Keras 3 writes the same "legacy h5" with other weight names)::

    /                           attrs: model_config (JSON), training_config (JSON), keras_version, backend
    /model_weights              attrs: layer_names, backend, keras_version
    /model_weights/<layer>      attrs: weight_names ["dense/kernel:0", ...]
    /model_weights/<layer>/<weight name>     one dataset per weight ("dense/kernel:0" -> nested groups)
    /optimizer_weights          attrs: weight_names ["iteration:0", "Adam/m/dense/kernel:0", ...]

A weights-only file (`save_weights("w.h5")`) has the model_weights layout at its root.

Reading never trusts the file: links to other files, soft links, virtual datasets and external storage
are refused (UnsafeFileError; the checks are `kestimator.io.h5_safety`, shared with checkpoints), only
numeric datasets are read, each stored shape is checked against the weight it is loaded into before any
data is read, and the declared size is checked against the bytes the file stores; a truncated or corrupt
file raises DataLossError naming it.
"""
import os
import tempfile

import numpy as np

from ..engine.h5_guard import GuardedH5File
from ..errors import DataLossError, InvalidArgumentError, NotFoundError

_MAX_ATTR_BYTES = 64 << 20


def _h5py():
    import h5py   # lazy: `import kestimator` must stay fast
    return h5py


# -- reading -------------------------------------------------------------------------------------------------
class SafeH5(GuardedH5File):
    """An HDF5 file opened read-only after a check of every object in it.

    Raises:
        NotFoundError: no such file.
        DataLossError: not an HDF5 file, truncated, or corrupt.
        UnsafeFileError: external/soft links, virtual datasets or external storage.
    """

    def __init__(self, path):
        h5py = _h5py()
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise NotFoundError(f"no such file: {self.path}")
        if os.path.isdir(self.path):
            raise NotFoundError(f"{self.path} is a folder, not an HDF5 file")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as e:
            raise DataLossError(f"{self.path} is truncated, corrupt or not an HDF5 file: {e}") from None
        try:
            self._walk()
        except BaseException:
            self.file.close()
            raise

    def _walk(self):
        from ..io import h5_safety

        def on_dataset(group_prefix, key, ds):
            h5_safety.check_dataset_storage(ds, self.path, f"dataset '/{group_prefix}{key}'")

        h5_safety.walk(_h5py(), self.file, self.path, on_dataset)

    # -- attributes ------------------------------------------------------------------------------------------
    def attr(self, node, name, default=None):
        """A string / list attribute decoded from bytes (None -> default)."""
        try:
            if name in node.attrs and node.attrs.get_id(name).dtype.kind == "O":   # variable-length
                self.guard_heaps()
            value = node.attrs.get(name)
        except (OSError, RuntimeError) as e:
            raise DataLossError(f"{self.path}: cannot read attribute {name!r} of '{node.name}': {e}") from None
        if value is None:
            return default
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, np.ndarray):
            if value.size == 0:
                return []
            return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in value.tolist()]
        return value

    def json_attr(self, name, node=None):
        raw = self.attr(self.file if node is None else node, name)
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise DataLossError(f"{self.path}: attribute {name!r} is not a JSON string")
        if len(raw) > _MAX_ATTR_BYTES:
            raise DataLossError(f"{self.path}: attribute {name!r} is implausibly large ({len(raw)} bytes)")
        from .. import _formats
        return _formats.loads_json(raw, self.path, f"attribute {name!r}")

    def group(self, path):
        try:
            obj = self.file[path] if path else self.file
        except (KeyError, OSError, RuntimeError):
            return None
        return obj

    # -- datasets --------------------------------------------------------------------------------------------
    def dataset(self, group, name):
        h5py = _h5py()
        try:
            obj = group[name]
        except (KeyError, OSError, RuntimeError) as e:
            raise DataLossError(f"{self.path}: weight '{group.name}/{name}' is listed but missing: {e}") from None
        if not isinstance(obj, h5py.Dataset):
            raise DataLossError(f"{self.path}: '{group.name}/{name}' is not a dataset")
        return obj

    def read(self, ds, expected_shape=None, what=None):
        """The dataset's values, after checking its shape against `expected_shape` and its stored size."""
        from ..io import h5_safety
        where = what or ds.name
        dt = h5_safety.dataset_dtype(ds, str(self.path), where)
        if dt.kind not in "biuf" or dt.fields is not None or dt.subdtype is not None:
            raise DataLossError(f"{self.path}: {where} has HDF5 type {dt}; weights are numeric")
        shape = tuple(ds.shape) if ds.shape is not None else None
        if shape is None:
            raise DataLossError(f"{self.path}: {where} has no dataspace")
        if expected_shape is not None and shape != tuple(expected_shape):
            raise InvalidArgumentError(f"{self.path}: {where} has shape {shape} in the file, but the model's weight "
                                       f"has shape {tuple(expected_shape)}")
        from ..io import h5_safety
        h5_safety.check_stored_size(ds, shape, dt, self.path, self.path, where)
        out = np.empty(shape, dtype=dt.newbyteorder("=") if dt.byteorder not in "=|" else dt)
        try:
            if out.size:
                ds.read_direct(out)
        except (OSError, RuntimeError, ValueError, TypeError) as e:
            raise DataLossError(f"{self.path}: cannot read {where} (truncated or corrupt): {e}") from None
        return out


def layer_weight_groups(h5, root):
    """[(layer name, [(weight name, dataset)])] in the file's layer order, from a model_weights group."""
    names = h5.attr(root, "layer_names")
    if names is None:
        raise DataLossError(f"{h5.path}: group '{root.name}' has no layer_names attribute; not a Keras weights "
                            "file")
    out = []
    for lname in names:
        g = h5.group(f"{root.name.rstrip('/')}/{lname}" if root.name != "/" else lname)
        if g is None:
            raise DataLossError(f"{h5.path}: layer group {lname!r} is listed but missing")
        wnames = h5.attr(g, "weight_names", []) or []
        out.append((lname, [(w, h5.dataset(g, w)) for w in wnames]))
    return out


def check_format_version(h5):
    """Refuse a file a newer kestimator wrote in a newer Keras .h5 format (files tf.keras wrote have no
    kestimator_format attribute and are read as format 1)."""
    from .. import _formats
    found = h5.attr(h5.file, _formats.FORMAT_ATTR)
    if found is not None:
        _formats.check_version(found, _formats.KERAS_H5_FORMAT, h5.path, "Keras .h5",
                               writer=h5.attr(h5.file, _formats.VERSION_ATTR))


def weight_budget(path):
    """Bytes of weights a model file's config may declare: what the file stores can back, with room for
    stored dtypes narrower than the layers' (float16 in the file, float64 in the model)."""
    return 4 * os.path.getsize(path) + (1 << 20)


# -- writing -------------------------------------------------------------------------------------------------
def write_format_attrs(f):
    """kestimator's format version and version beside Keras's own root attributes (tf.keras ignores them)."""
    from .. import _formats
    f.attrs[_formats.FORMAT_ATTR] = np.int64(_formats.KERAS_H5_FORMAT)
    f.attrs[_formats.VERSION_ATTR] = _formats.KESTIMATOR_VERSION.encode()


def atomic_h5(path, write):
    """Call `write(h5py_file)` on a temporary file next to `path`, fsync it, then rename it over `path`.

    Raises:
        ResourceExhaustedError: no space left on the device; FailedPreconditionError: a read-only or
            unwritable folder (either way an existing file is left as it was and no temporary file remains).
        OSError: any other failure to write.
    """
    h5py = _h5py()
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise NotFoundError(f"cannot write {path}: folder {folder} does not exist")
    from ..io.write_errors import reraise_write_error   # disk full / read-only -> a ks.errors error
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    except OSError as err:
        reraise_write_error(err, path, "Keras .h5 file")
        raise
    os.close(fd)
    try:
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        with h5py.File(tmp, "w") as f:
            write(f)
        with open(tmp, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        reraise_write_error(err, path, "Keras .h5 file")
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _string_list(values):
    return np.array([v.encode("utf-8") for v in values], dtype="S") if values else np.array([], dtype="S1")


def write_layer_weights(group, layers, keras_version, backend="tensorflow"):
    """Keras's model_weights layout for `layers` under `group`."""
    group.attrs["layer_names"] = _string_list([l.name for l in layers])
    group.attrs["backend"] = backend.encode()
    group.attrs["keras_version"] = keras_version.encode()
    for layer in layers:
        g = group.create_group(layer.name)
        weights = layer.weights
        names, used = [], set()
        for w in weights:
            name = w.name if w.name.endswith(":0") or ":" in w.name else w.name + ":0"
            base, k = name, 1
            while name in used:   # two weights with one name (rare): keep both
                name = base.replace(":0", f"_{k}:0")
                k += 1
            used.add(name)
            names.append(name)
            g.create_dataset(name, data=np.ascontiguousarray(w.numpy()))
        g.attrs["weight_names"] = _string_list(names)


# tf.keras 2 optimizer slot names (in h5 optimizer_weights) <-> ours
_KERAS3_SLOTS = {"Adam": {"momentum": "m", "velocity": "v", "velocity_hat": "vhat"},
                 "AdamW": {"momentum": "m", "velocity": "v", "velocity_hat": "vhat"},
                 "SGD": {"momentum": "momentum"}, "Adagrad": {"accumulator": "accumulator"},
                 "RMSprop": {"velocity": "rms", "momentum": "momentum", "average_gradient": "mg"},
                 "Ftrl": {"accumulator": "accumulator", "linear": "linear"}}
_TF2_SLOTS = {"RMSprop": {"velocity": "rms", "momentum": "momentum", "average_gradient": "mg", "rms": "rms"},
              "Adam": {"vhat": "vhat", "m": "m", "v": "v"}}


def write_optimizer_weights(f, model, state, optimizer):
    """optimizer_weights in tf.keras 2's naming: iteration:0, then per weight its slots."""
    g = f.create_group("optimizer_weights")
    names = ["iteration:0"]
    g.create_dataset("iteration:0", data=np.int64(state.get("iterations", 0)))
    opt_name = type(optimizer).__name__
    slot_names = list(optimizer.get_slot_names())
    for w in model.trainable_weights:
        path = w.name[:-2] if w.name.endswith(":0") else w.name
        for slot in slot_names:
            value = state.get("slots", {}).get((w.name, slot))
            if value is None:
                continue
            name = f"{opt_name}/{slot}/{path}:0"
            g.create_dataset(name, data=np.ascontiguousarray(value))
            names.append(name)
    g.attrs["weight_names"] = _string_list(names)
    g.attrs["kestimator_learning_rate"] = float(state.get("learning_rate", np.nan))


def read_optimizer_weights(h5, model, optimizer, name_map=None):
    """The saved optimizer state as {"iterations", "learning_rate", "slots": {(weight name, slot): array}},
    matching tf.keras 2 ("Adam/m/dense/kernel:0") and Keras 3 ("adam/dense_kernel_momentum") names.

    Args:
        name_map: {weight name in the file (no ":0"): model Weight} when weights were matched by position
            (the model's layers may have other names); default: the model's own weight names.
    """
    g = h5.group("optimizer_weights")
    if g is None:
        return None
    names = h5.attr(g, "weight_names", []) or []
    opt_name = type(optimizer).__name__
    ours = set(optimizer.get_slot_names())
    trainable = {id(w) for w in model.trainable_weights}
    if name_map is not None:
        weights = {k: w for k, w in name_map.items() if id(w) in trainable}
    else:
        weights = {w.name[:-2] if w.name.endswith(":0") else w.name: w for w in model.trainable_weights}
    flat = {k.replace("/", "_"): k for k in weights}
    state = {"slots": {}}
    for name in names:
        ds = h5.dataset(g, name)
        base = name[:-2] if name.endswith(":0") else name
        last = base.rsplit("/", 1)[-1]
        if last in ("iteration", "iterations"):
            state["iterations"] = int(np.asarray(h5.read(ds, what=f"optimizer weight {name}")).reshape(()))
            continue
        if last in ("learning_rate", "lr"):
            state["learning_rate"] = float(np.asarray(h5.read(ds, what=f"optimizer weight {name}")).reshape(()))
            continue
        parts = base.split("/")
        found = None
        if len(parts) >= 3:   # tf.keras 2: Opt/slot/weight/path
            slot = _TF2_SLOTS.get(opt_name, {}).get(parts[1], parts[1])
            wpath = "/".join(parts[2:])
            if slot in ours and wpath in weights:
                found = (weights[wpath], slot)
        if found is None and len(parts) == 2:   # Keras 3: opt/weightpath_slotname
            for k3, slot in _KERAS3_SLOTS.get(opt_name, {}).items():
                if parts[1].endswith("_" + k3):
                    wflat = parts[1][: -len(k3) - 1]
                    if wflat in flat and slot in ours:
                        found = (weights[flat[wflat]], slot)
                        break
        if found is None:
            continue
        w, slot = found
        state["slots"][(w.name, slot)] = h5.read(ds, expected_shape=tuple(w.shape), what=f"optimizer weight {name}")
    lr = h5.attr(g, "kestimator_learning_rate")
    if lr is not None and "learning_rate" not in state and np.isfinite(float(lr)):
        state["learning_rate"] = float(lr)
    return state
