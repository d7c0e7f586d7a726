"""TF 1.x's Saver and the folder's checkpoint state file (`ke.train.Saver`, `ke.train.latest_checkpoint` ...).

    saver = ke.train.Saver(max_to_keep=3)
    with ke.Session() as sess:
        sess.run(ke.global_variables_initializer())
        saver.save(sess, "run/model.ckpt", global_step=100)     # -> "run/model.ckpt-100"
        saver.restore(sess, ke.train.latest_checkpoint("run"))

A checkpoint is one HDF5 file (see `engine.checkpoint`) named exactly as `save` returns; the folder's
`checkpoint` file lists the newest and every kept checkpoint in TensorFlow's text format. Every name here
is also importable from `kestimator.engine.train`.
"""
import numbers
import os
import re
import time
import warnings

from ..errors import DataLossError, InvalidArgumentError, NotFoundError
from . import checkpoint as _ckpt
from . import dtypes as _dt
from .graph import GraphKeys, Tensor, get_default_graph
from .variables import Variable

__all__ = ["Saver", "CheckpointState", "get_checkpoint_state", "latest_checkpoint", "update_checkpoint_state",
           "checkpoint_exists", "list_variables", "load_variable", "NewCheckpointReader", "CheckpointReader"]

_STATE_FILE = "checkpoint"


# -- checkpoint state (the folder's "checkpoint" file) -------------------------------------------------
class CheckpointState:
    """What a folder's `checkpoint` file says: the newest checkpoint and every kept one (oldest first)."""

    def __init__(self, model_checkpoint_path, all_model_checkpoint_paths=(), all_model_checkpoint_timestamps=(),
                 last_preserved_timestamp=0.0):
        self.model_checkpoint_path = model_checkpoint_path
        self.all_model_checkpoint_paths = list(all_model_checkpoint_paths)
        self.all_model_checkpoint_timestamps = list(all_model_checkpoint_timestamps)
        self.last_preserved_timestamp = last_preserved_timestamp

    def __repr__(self):
        return (f"CheckpointState(model_checkpoint_path={self.model_checkpoint_path!r}, "
                f"all_model_checkpoint_paths={self.all_model_checkpoint_paths!r})")


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _unquote(text):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def _state_path(checkpoint_dir, latest_filename):
    return os.path.join(os.fspath(checkpoint_dir), latest_filename or _STATE_FILE)


def _relative_to(folder, path):
    """`path` relative to `folder` when it lies directly inside it (so the folder can be moved)."""
    path = os.fspath(path)
    if os.path.dirname(os.path.abspath(path)) == os.path.abspath(folder):
        return os.path.basename(path)
    return path


def update_checkpoint_state(save_dir, model_checkpoint_path, all_model_checkpoint_paths=None,
                            latest_filename=None, all_model_checkpoint_timestamps=None,
                            last_preserved_timestamp=None):
    """Write the folder's checkpoint state file atomically (temp file, fsync, rename).

    Args:
        save_dir: the folder.
        model_checkpoint_path: the newest checkpoint.
        all_model_checkpoint_paths: every kept checkpoint, oldest first (the newest is appended if missing).
        latest_filename: the state file's name (default "checkpoint").
    """
    save_dir = os.fspath(save_dir)
    paths = list(all_model_checkpoint_paths or [])
    if model_checkpoint_path not in paths:
        paths.append(model_checkpoint_path)
    lines = [f"model_checkpoint_path: {_quote(_relative_to(save_dir, model_checkpoint_path))}"]
    lines += [f"all_model_checkpoint_paths: {_quote(_relative_to(save_dir, p))}" for p in paths]
    lines += [f"all_model_checkpoint_timestamps: {float(t)!r}" for t in (all_model_checkpoint_timestamps or [])]
    if last_preserved_timestamp is not None:
        lines.append(f"last_preserved_timestamp: {float(last_preserved_timestamp)!r}")
    _atomic_write_text(_state_path(save_dir, latest_filename), "\n".join(lines) + "\n")


def _atomic_write_text(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        from ..io.write_errors import reraise_write_error   # disk full / read-only -> a ks.errors error
        reraise_write_error(err, path, "checkpoint state file")
        raise
    _ckpt._fsync_dir(folder)


_STATE_LINE = re.compile(r'^\s*(\w+)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|([-+0-9.eEinfa]+))\s*$')


def get_checkpoint_state(checkpoint_dir, latest_filename=None):
    """Parse the folder's checkpoint state file; None when there is none.

    Relative paths in the file are returned joined with `checkpoint_dir`.

    Raises:
        DataLossError: the file exists but a line is not `key: "value"` / `key: number` (names file and line).
    """
    path = _state_path(checkpoint_dir, latest_filename)
    if not os.path.isfile(path):
        return None
    fields = {"model_checkpoint_path": [], "all_model_checkpoint_paths": [], "all_model_checkpoint_timestamps": [],
              "last_preserved_timestamp": []}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = _STATE_LINE.match(line)
            if not m:
                raise DataLossError(f"checkpoint state file {path}, line {lineno}: cannot parse {line.strip()!r}")
            key, text, number = m.groups()
            if key not in fields:
                continue   # fields of later versions are skipped, as protobuf text readers do
            if text is not None:
                value = _unquote(text)
                if not os.path.isabs(value):
                    value = os.path.join(os.fspath(checkpoint_dir), value)
            else:
                try:
                    value = float(number)
                except ValueError:
                    raise DataLossError(f"checkpoint state file {path}, line {lineno}: {number!r} is not a "
                                        "number") from None
            fields[key].append(value)
    if not fields["model_checkpoint_path"]:
        raise DataLossError(f"checkpoint state file {path} names no model_checkpoint_path")
    return CheckpointState(fields["model_checkpoint_path"][-1], fields["all_model_checkpoint_paths"],
                           fields["all_model_checkpoint_timestamps"],
                           (fields["last_preserved_timestamp"] or [0.0])[-1])


def latest_checkpoint(checkpoint_dir, latest_filename=None):
    """The newest checkpoint recorded in `checkpoint_dir`, or None (no state file, or its file is gone)."""
    state = get_checkpoint_state(checkpoint_dir, latest_filename)
    if state is None:
        return None
    if not os.path.isfile(state.model_checkpoint_path):
        warnings.warn(f"checkpoint state in {checkpoint_dir} names {state.model_checkpoint_path}, which does "
                      "not exist", RuntimeWarning, stacklevel=2)
        return None
    return state.model_checkpoint_path


def checkpoint_exists(checkpoint_prefix):
    return os.path.isfile(os.fspath(checkpoint_prefix))


def _resolve_checkpoint(ckpt_dir_or_file):
    path = os.fspath(ckpt_dir_or_file)
    if os.path.isdir(path):
        found = latest_checkpoint(path)
        if found is None:
            raise NotFoundError(f"no checkpoint found in folder {path}")
        return found
    return path


def list_variables(ckpt_dir_or_file):
    """[(name, shape list), ...] of the tensors in a checkpoint file (or a folder's newest checkpoint)."""
    return [(name, list(shape)) for name, shape, _ in _ckpt.list_tensors(_resolve_checkpoint(ckpt_dir_or_file))]


def load_variable(ckpt_dir_or_file, name):
    """The value of tensor `name` in a checkpoint file (or a folder's newest checkpoint)."""
    path = _resolve_checkpoint(ckpt_dir_or_file)
    return _ckpt.load_tensors(path, names=[name])[name]


class CheckpointReader:
    """TF's NewCheckpointReader: shapes, dtypes and values of a checkpoint's tensors."""

    def __init__(self, path):
        self._path = _resolve_checkpoint(path)
        self._listing = {n: (s, d) for n, s, d in _ckpt.list_tensors(self._path)}

    def get_variable_to_shape_map(self):
        return {n: list(s) for n, (s, _) in self._listing.items()}

    def get_variable_to_dtype_map(self):
        return {n: _dt.as_dtype(d) for n, (_, d) in self._listing.items()}

    def has_tensor(self, name):
        return name in self._listing

    def get_tensor(self, name):
        return _ckpt.load_tensors(self._path, names=[name])[name]


NewCheckpointReader = CheckpointReader


# -- Saver -------------------------------------------------------------------------------------------------
def _saveable_name(var):
    op = getattr(var, "op", None)
    if op is not None:
        return op.name
    return var.name.split(":")[0]   # an eager variable


def _as_variable(item):
    if isinstance(item, Tensor) and item.op.type == "VariableV2":
        return item.op._variable
    if isinstance(item, Variable) or (hasattr(item, "numpy") and hasattr(item, "assign")):
        return item
    raise InvalidArgumentError(f"Saver can only save variables, got {item!r}")


class Saver:
    """Save and restore variables to and from checkpoint files.

    Args:
        var_list: None (every global variable), a list of variables (saved under their op names), or a
            dict name -> variable.
        max_to_keep: how many recent checkpoints to keep; older ones are deleted (None or 0: keep all).
        keep_checkpoint_every_n_hours: additionally keep one checkpoint per this many hours.
        allow_empty: allow a Saver with no variables (otherwise InvalidArgumentError).

    Raises:
        InvalidArgumentError: two variables under one name, an item that is not a variable, or no variables.
    """

    def __init__(self, var_list=None, reshape=False, sharded=False, max_to_keep=5,
                 keep_checkpoint_every_n_hours=10000.0, name=None, restore_sequentially=False, saver_def=None,
                 builder=None, defer_build=False, allow_empty=False, write_version=None, pad_step_number=False,
                 save_relative_paths=False, filename=None):
        if var_list is None:
            var_list = get_default_graph().get_collection(GraphKeys.GLOBAL_VARIABLES)
        if isinstance(var_list, dict):
            items = [(str(k), _as_variable(v)) for k, v in var_list.items()]
        else:
            items = [(_saveable_name(v), v) for v in map(_as_variable, var_list)]
        self._vars = {}
        for key, var in items:
            if key in self._vars and self._vars[key] is not var:
                raise InvalidArgumentError(f"Saver: two different variables are saved under the name {key!r}")
            self._vars[key] = var
        if not self._vars and not allow_empty:
            raise InvalidArgumentError("Saver: no variables to save")
        self._max_to_keep = max_to_keep
        self._keep_every = float(keep_checkpoint_every_n_hours) * 3600.0
        self._next_keep_time = time.time() + self._keep_every
        self._last = []   # [(path, timestamp)], oldest first
        self._filename = filename
        self._pad_step = pad_step_number

    # -- bookkeeping --------------------------------------------------------------------------------
    @property
    def last_checkpoints(self):
        """Paths of the checkpoints this Saver keeps, oldest first."""
        return [p for p, _ in self._last]

    def set_last_checkpoints_with_time(self, last_checkpoints_with_time):
        self._last = [(os.fspath(p), float(t)) for p, t in last_checkpoints_with_time]

    def recover_last_checkpoints(self, checkpoint_paths):
        """Adopt existing checkpoints (e.g. from `get_checkpoint_state`) as this Saver's kept ones."""
        now = time.time()
        self._last = [(os.fspath(p), now) for p in checkpoint_paths if os.path.isfile(p)]

    def _remember(self, path):
        self._last = [(p, t) for p, t in self._last if p != path] + [(path, time.time())]
        if not self._max_to_keep:
            return
        while len(self._last) > self._max_to_keep:
            old, stamp = self._last.pop(0)
            if stamp > self._next_keep_time:   # one checkpoint per keep_checkpoint_every_n_hours survives
                self._next_keep_time += self._keep_every
                continue
            try:
                os.remove(old)
            except FileNotFoundError:
                pass

    # -- save / restore -------------------------------------------------------------------------------
    def _read(self, sess, name, var):
        if isinstance(var, Variable):
            if sess is None:
                raise InvalidArgumentError("Saver.save needs a session for graph variables")
            if var.graph is not sess.graph:
                raise InvalidArgumentError(f"variable {var.name} is not in the session's graph")
            return sess._read_variable(var)
        return var.numpy()

    def save(self, sess, save_path, global_step=None, latest_filename=None, meta_graph_suffix="meta",
             write_meta_graph=True, write_state=True, strip_default_attrs=False, save_debug_info=False):
        """Write the variables' current values to `save_path` (with "-<step>" appended when `global_step`
        is given) and record it in the folder's checkpoint state file.

        Args:
            sess: the Session holding the values (None in eager mode).
            save_path: the checkpoint file's path prefix; its folder must exist.
            global_step: an int, or a variable / tensor evaluated in `sess`.
            latest_filename: the state file's name (default "checkpoint").
            write_state: update the state file and delete checkpoints beyond `max_to_keep`.

        Returns:
            The path of the written checkpoint file.

        Raises:
            NotFoundError: the folder does not exist.
            FailedPreconditionError: a variable is not initialized.
        """
        step = None
        if global_step is not None:
            step = int(global_step) if isinstance(global_step, numbers.Number) else \
                int(sess.run(global_step))
        save_path = os.fspath(save_path)
        path = save_path if step is None else (f"{save_path}-{step:08d}" if self._pad_step else
                                               f"{save_path}-{step}")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise NotFoundError(f"parent folder of {path} does not exist; cannot save the checkpoint")
        values = {name: self._read(sess, name, var) for name, var in self._vars.items()}
        _ckpt.save_tensors(path, values, {"writer": "kestimator.engine.train.Saver", "global_step": step})
        if write_state:
            self._remember(path)
            update_checkpoint_state(folder, path, self.last_checkpoints, latest_filename,
                                    [t for _, t in self._last], self._next_keep_time - self._keep_every)
        return path

    def restore(self, sess, save_path):
        """Load the variables' values from checkpoint `save_path`.

        Raises:
            InvalidArgumentError: `save_path` is None, or a tensor's shape or dtype differs from its variable.
            NotFoundError: the file, or one of the variables, is not in it (names the variable).
            DataLossError / UnsafeFileError: the file is corrupt or refused (see engine.checkpoint).
        """
        if save_path is None:
            raise InvalidArgumentError("Saver.restore: save_path is None (no checkpoint found?)")
        save_path = os.fspath(save_path)
        if not os.path.isfile(save_path):
            raise NotFoundError(f"checkpoint {save_path} does not exist")
        expected = {name: (tuple(var.shape), "string" if var.dtype.is_string else var.dtype.np)
                    for name, var in self._vars.items()}
        present = {n for n, _, _ in _ckpt.list_tensors(save_path)}
        for name, var in self._vars.items():
            if name not in present:
                raise NotFoundError(f"variable {var.name} (saved as {name!r}) not found in checkpoint {save_path}")
        values = _ckpt.load_tensors(save_path, names=list(self._vars), expected=expected)
        for name, var in self._vars.items():
            if isinstance(var, Variable):
                if sess is None:
                    raise InvalidArgumentError("Saver.restore needs a session for graph variables")
                sess._load_variable(var, values[name])
            else:
                var.assign(values[name])

    def as_saver_def(self):
        return {"max_to_keep": self._max_to_keep, "keep_checkpoint_every_n_hours": self._keep_every / 3600.0}

    def to_proto(self):
        return self.as_saver_def()
