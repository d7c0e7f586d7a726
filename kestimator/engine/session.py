"""Session: owns variable values and compiled Plans, and runs fetches.

Variable values live here, not in the graph: trainable variables of one dtype are views into one slab
(see `_allocate_new_variables`), so an optimizer can update them all with a few vectorized calls. A
variable placed on a GPU lives in a slab on that device (one slab per group, dtype and device); reading
it through the Session (`_read_variable`, Saver) gives a NumPy copy, loading it copies to the device.
"""
import threading

import numpy as np

from ..errors import FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError
from . import devices as _devices
from .graph import Operation, Tensor, get_default_graph
from .ops.random_ops import make_rng
from .plan import Plan


class GPUOptions:
    """GPU memory options, with TensorFlow's names.

    Args:
        allow_growth: accepted for compatibility; CuPy's memory pool always grows on demand (TensorFlow's
            allow_growth=True behaviour) and nothing is reserved up front.
        per_process_gpu_memory_fraction: in (0, 1]: cap each GPU's memory pool at this fraction of its
            memory; an allocation beyond it raises ResourceExhaustedError naming the op. 0: no cap.
        visible_device_list: accepted for compatibility; use ks.config.set_visible_devices.
    """

    def __init__(self, allow_growth=False, per_process_gpu_memory_fraction=0.0, visible_device_list=""):
        self.allow_growth = allow_growth
        self.per_process_gpu_memory_fraction = per_process_gpu_memory_fraction
        self.visible_device_list = visible_device_list


class ConfigProto:
    """Session options, with TensorFlow's names."""

    def __init__(self, log_device_placement=False, allow_soft_placement=False, gpu_options=None,
                 inter_op_parallelism_threads=0, intra_op_parallelism_threads=0, device_count=None, **unused):
        self.log_device_placement = log_device_placement
        self.allow_soft_placement = allow_soft_placement
        self.gpu_options = gpu_options or GPUOptions()
        self.inter_op_parallelism_threads = inter_op_parallelism_threads
        self.intra_op_parallelism_threads = intra_op_parallelism_threads
        self.device_count = device_count or {}


class RunOptions:
    def __init__(self, trace_level=0, timeout_in_ms=0):
        self.trace_level, self.timeout_in_ms = trace_level, timeout_in_ms


class RunMetadata:
    def __init__(self):
        self.step_stats = None


class _SessionStack(threading.local):
    def __init__(self):
        self.stack = []


_sessions = _SessionStack()


def get_default_session():
    return _sessions.stack[-1] if _sessions.stack else None


def get_default_session_or_error(what):
    sess = get_default_session()
    if sess is None:
        raise FailedPreconditionError(f"{what} needs a default session: use `with ke.Session():` or pass session=")
    return sess


def _flatten(fetches, out):
    """Flatten nested list/tuple/dict fetches; returns a rebuild function."""
    if isinstance(fetches, (list, tuple)) and not hasattr(fetches, "_fields"):
        parts = [_flatten(f, out) for f in fetches]
        kind = type(fetches)
        return lambda vals: kind(p(vals) for p in parts)
    if isinstance(fetches, tuple):   # namedtuple
        parts = [_flatten(f, out) for f in fetches]
        kind = type(fetches)
        return lambda vals: kind(*[p(vals) for p in parts])
    if isinstance(fetches, dict):
        parts = {k: _flatten(v, out) for k, v in fetches.items()}
        kind = type(fetches)
        return lambda vals: kind((k, p(vals)) for k, p in parts.items())
    idx = len(out)
    out.append(fetches)
    return lambda vals: vals[idx]


class Session:
    """Runs fetches of a graph. Use as a context manager to make it the default session.

    Args:
        target: ignored (no remote execution); kept for TF compatibility.
        graph: the graph to run (default: the default graph).
        config: a ConfigProto.
    """

    def __init__(self, target="", graph=None, config=None):
        self.graph = graph or get_default_graph()
        self.config = config or ConfigProto()
        self._values = {}          # VariableV2 op -> array (a view into a slab for slab variables)
        self._var_devices = {}     # VariableV2 op -> logical GPU index, for variables that live on a GPU
        self._device_constants = {}   # (id(host constant), physical GPU) -> (constant, its device copy)
        self._initialized = set()
        self._plans = {}
        self._rngs = {}
        self._closed = False
        self._context = None
        if self.config.gpu_options.per_process_gpu_memory_fraction:
            from . import devices
            if devices.gpu_count():
                devices.set_memory_fraction(self.config.gpu_options.per_process_gpu_memory_fraction)

    # -- context -----------------------------------------------------------------------------------------
    def __enter__(self):
        self._context = self.graph.as_default()
        self._context.__enter__()
        _sessions.stack.append(self)
        return self

    def __exit__(self, *exc):
        if _sessions.stack and _sessions.stack[-1] is self:
            _sessions.stack.pop()
        self._context.__exit__(*exc)
        self.close()
        return False

    def as_default(self):
        sess = self

        class _Ctx:
            def __enter__(self):
                _sessions.stack.append(sess)
                return sess

            def __exit__(self, *exc):
                _sessions.stack.remove(sess)
        return _Ctx()

    def close(self):
        self._closed = True
        self._plans.clear()

    @property
    def sess_str(self):
        return ""

    # -- running -----------------------------------------------------------------------------------------
    def _split_fetches(self, fetches):
        """(rebuild, tensors, targets, slots) for a nested structure of fetches: the tensors to compute, the ops
        to run, and per flattened fetch its index in `tensors` (None for an op); `rebuild(values)` puts the
        flat values back into the structure."""
        flat = []
        rebuild = _flatten(fetches, flat)
        tensors, targets, slots = [], [], []
        for f in flat:
            t = self._as_fetch(f)
            if isinstance(t, Operation):
                targets.append(t)
                slots.append(None)
            else:
                slots.append(len(tensors))
                tensors.append(t)
        return rebuild, tensors, targets, slots

    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        """Compute `fetches` (a tensor, op, or nested list/tuple/dict of them) with `feed_dict` values."""
        if self._closed:
            raise FailedPreconditionError("attempted to use a closed Session")
        rebuild, tensors, targets, slots = self._split_fetches(fetches)
        feed_tensors, feed_values = self._prepare_feeds(feed_dict)
        plan = self._plan_for(tensors, targets, feed_tensors, feed_values)
        values = plan.run(feed_values)
        return rebuild([None if s is None else values[s] for s in slots])

    def make_callable(self, fetches, feed_list=None):
        """A fast function `f(*feed_values)` computing `fetches`; feeds are converted but not re-planned
        unless their shapes change."""
        rebuild, tensors, targets, slots = self._split_fetches(fetches)
        feed_tensors = [self._as_feed_key(k) for k in (feed_list or [])]
        plans = {}
        simple = (isinstance(fetches, list) and all(s is not None for s in slots)
                  and not any(isinstance(f, (list, tuple, dict)) for f in fetches))

        dtypes = [t.dtype.np for t in feed_tensors]
        ndarray = np.ndarray

        def call(*values):
            # fast path, once per step in training loops: arrays of the right dtypes whose shapes already
            # have a plan (so were checked when it was made) go in as they are
            if len(values) == len(dtypes) and all(type(v) is ndarray and v.dtype == d
                                                  for v, d in zip(values, dtypes)):
                plan = plans.get(tuple([v.shape for v in values]))
                if plan is not None:
                    out = plan.run(values)
                    return list(out) if simple else rebuild([None if s is None else out[s] for s in slots])
            vals = [self._convert_feed(t, v) for t, v in zip(feed_tensors, values)]
            key = tuple(v.shape for v in vals)
            plan = plans.get(key)
            if plan is None:
                plan = plans[key] = self._plan_for(tensors, targets, feed_tensors, vals)
            out = plan.run(vals)
            if simple:
                return list(out)
            return rebuild([None if s is None else out[s] for s in slots])
        return call

    def _as_fetch(self, f):
        conv = getattr(f, "_as_tensor", None)
        if conv is not None:
            f = conv()
        if isinstance(f, str):
            f = self.graph.get_tensor_by_name(f) if ":" in f else self.graph.get_operation_by_name(f)
        if isinstance(f, (Tensor, Operation)):
            if f.graph is not self.graph:
                raise InvalidArgumentError(f"fetch {f.name} is not an element of this session's graph")
            return f
        raise InvalidArgumentError(f"cannot fetch {f!r}: not a Tensor, Operation, Variable or name")

    def _as_feed_key(self, k):
        conv = getattr(k, "_as_tensor", None)
        if conv is not None:
            k = conv()
        if isinstance(k, str):
            k = self.graph.get_tensor_by_name(k)
        if not isinstance(k, Tensor):
            raise InvalidArgumentError(f"feed_dict key {k!r} is not a Tensor")
        if k.graph is not self.graph:
            raise InvalidArgumentError(f"feed_dict key {k.name} is not an element of this session's graph")
        return k

    def _prepare_feeds(self, feed_dict):
        if not feed_dict:
            return [], []
        keys, vals = [], []
        for k, v in feed_dict.items():
            if hasattr(k, "indices") and hasattr(k, "dense_shape") and not isinstance(k, Tensor):
                for kk, vv in zip((k.indices, k.values, k.dense_shape), (v[0], v[1], v[2])):
                    t = self._as_feed_key(kk)
                    keys.append(t)
                    vals.append(self._convert_feed(t, vv))
                continue
            t = self._as_feed_key(k)
            keys.append(t)
            vals.append(self._convert_feed(t, v))
        return keys, vals

    @staticmethod
    def _convert_feed(t, v):
        dt = t.dtype
        if isinstance(v, np.ndarray) and v.dtype == dt.np:
            arr = v
        else:
            if type(v) is not np.ndarray and _devices.is_device_array(v):
                v = _devices.to_numpy(v)   # feeds enter on the host; the plan copies them where they are read
            if hasattr(v, "numpy") and not isinstance(v, np.ndarray):
                v = v.numpy()
            arr = np.asarray(v)
            if dt.is_string:
                arr = arr.astype(object)
            else:
                if arr.dtype.kind in "OSU":
                    raise InvalidArgumentError(f"cannot feed a {arr.dtype} value to {t.name} of dtype {dt.name}")
                if arr.dtype.kind == "f" and (dt.is_integer or dt.is_bool) and arr.size and \
                        not np.all(np.mod(arr, 1) == 0):
                    raise InvalidArgumentError(
                        f"cannot feed non-integer {arr.dtype} values to {t.name} of dtype {dt.name}")
                arr = arr.astype(dt.np, copy=False)
        if not t.shape.is_compatible_with(arr.shape):
            raise InvalidArgumentError(
                f"cannot feed value of shape {arr.shape} for tensor {t.name}, which has shape {t.shape}")
        return arr

    def _plan_for(self, tensors, targets, feed_tensors, feed_values, trace=False):
        key = (tuple(map(id, tensors)), tuple(map(id, targets)), tuple(map(id, feed_tensors)),
               tuple(v.shape for v in feed_values), self.graph._version, trace)
        plan = self._plans.get(key)
        if plan is None:
            self._allocate_new_variables()
            plan = Plan(self, tensors, targets, feed_tensors, [v.shape for v in feed_values], trace=trace)
            if not trace:
                if len(self._plans) > 256:   # bound the cache; plans for old feed shapes go first
                    self._plans.pop(next(iter(self._plans)))
                self._plans[key] = plan
        return plan

    # -- variable storage ----------------------------------------------------------------------------------
    def _allocate_new_variables(self):
        fresh = [v for v in getattr(self.graph, "_all_variables", ()) if v.op not in self._values]
        if not fresh:
            return
        from .gpu.placement import variable_devices
        placed = variable_devices(self, fresh)
        groups = {}
        for v in fresh:
            dev = placed[v.op]
            key = (v.slab_group, v.dtype.name, dev) if v.slab_group is not None else None
            if key is None or v.dtype.is_string:
                self._values[v.op] = self._zeros(tuple(v.shape), v.dtype.np, dev)
                self._note_device(v.op, dev)
            else:
                groups.setdefault(key, []).append(v)
        for (group, dtname, dev), vs in groups.items():
            sizes = [int(np.prod(tuple(v.shape), dtype=np.int64)) for v in vs]
            slab = self._zeros((sum(sizes),), vs[0].dtype.np, dev)
            off = 0
            for v, n in zip(vs, sizes):
                self._values[v.op] = slab[off:off + n].reshape(tuple(v.shape))
                self._note_device(v.op, dev)
                off += n

    def _zeros(self, shape, dtype, dev):
        if dev is None:
            return np.zeros(shape, dtype=dtype)
        backend = _devices.gpu_backend()
        try:
            return backend.zeros(shape, dtype, _devices.physical_gpu(dev))
        except backend.OutOfMemoryError as e:
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            raise ResourceExhaustedError(f"out of memory on GPU:{dev} allocating variable storage of shape "
                                         f"{shape} {np.dtype(dtype).name} ({nbytes} bytes): {e}") from None

    def _note_device(self, op, dev):
        if dev is not None:
            self._var_devices[op] = dev

    def _variable_device(self, op):
        """Logical GPU index where variable op `op` lives, or None (the host)."""
        return self._var_devices.get(op)

    def _has_gpu_variables(self):
        return bool(self._var_devices)

    def _variable_array(self, op):
        arr = self._values.get(op)
        if arr is None:
            self._allocate_new_variables()
            arr = self._values[op]
        return arr

    def _check_initialized(self, plan):
        for op in plan.variables_read:
            if op not in self._initialized and op not in plan.variables_written:
                raise FailedPreconditionError(
                    f"attempting to use uninitialized value {op.name}: run its initializer "
                    "(ke.global_variables_initializer()) first")

    def _mark_initialized(self, ops):
        self._initialized.update(ops)

    def _is_initialized(self, var):
        return var.op in self._initialized

    def _load_variable(self, var, value):
        arr = self._variable_array(var.op)
        value = np.asarray(_devices.to_numpy(value), dtype=arr.dtype)
        if value.shape != arr.shape:
            raise InvalidArgumentError(f"cannot load a value of shape {value.shape} into {var.name} of shape "
                                       f"{arr.shape}")
        if var.op in self._var_devices:
            _devices.gpu_backend().copy_from_host(arr, value)
        else:
            arr[...] = value
        self._initialized.add(var.op)

    def _read_variable(self, var):
        """The variable's value: the live NumPy array for a host variable, a NumPy copy for a GPU one."""
        if var.op not in self._initialized:
            raise FailedPreconditionError(f"attempting to use uninitialized value {var.op.name}")
        value = self._values[var.op]
        if var.op in self._var_devices:
            return _devices.to_numpy(value)
        return value

    def _rng_for(self, op):
        rng = self._rngs.get(op)
        if rng is None:
            rng = self._rngs[op] = make_rng(op.attrs.get("seeds"))
        return rng

    def list_devices(self):
        from ..config import list_logical_devices
        return list_logical_devices()


class InteractiveSession(Session):
    """A Session that installs itself as the default session on creation."""

    def __init__(self, target="", graph=None, config=None):
        super().__init__(target, graph, config)
        _sessions.stack.append(self)

    def close(self):
        if self in _sessions.stack:
            _sessions.stack.remove(self)
        super().close()
