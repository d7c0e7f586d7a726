"""Eager execution: ops run at once on NumPy values; GradientTape records them for differentiation.

The same op definitions serve both modes: `registry.apply_op` calls `execute` here when eager mode is
on, and gradient rules, written with the public op functions, run eagerly during `tape.gradient`.
"""
import numpy as np

from ..errors import InvalidArgumentError
from . import dtypes as _dt
from .graph import TensorShape

_state = {"eager": False, "tapes": [], "rng": None, "seed": None}


def enable_eager_execution(config=None, device_policy=None, execution_mode=None):
    """Run ops immediately from now on (as TF 1.x's tf.enable_eager_execution)."""
    _state["eager"] = True


def disable_eager_execution():
    _state["eager"] = False


def executing_eagerly():
    return _state["eager"]


def set_eager_seed(seed):
    _state["seed"] = seed
    _state["rng"] = np.random.default_rng(seed)


def next_rng():
    if _state["rng"] is None:
        _state["rng"] = np.random.default_rng(_state["seed"])
    return _state["rng"]


class EagerTensor:
    """A concrete tensor: wraps a NumPy array; `.numpy()` returns it."""

    __array_priority__ = 100

    def __init__(self, value, dtype=None):
        dt = _dt.as_dtype(dtype) if dtype is not None else _dt.as_dtype(np.asarray(value).dtype)
        self._value = value if isinstance(value, np.ndarray) and value.dtype == dt.np else \
            np.asarray(value, dtype=dt.np if not dt.is_string else object)
        self.dtype = dt

    @property
    def shape(self):
        return TensorShape(self._value.shape)

    def get_shape(self):
        return self.shape

    @property
    def ndim(self):
        return self._value.ndim

    @property
    def name(self):
        return "EagerTensor"

    @property
    def device(self):
        return "/job:localhost/replica:0/task:0/device:CPU:0"

    def numpy(self):
        return self._value

    def __array__(self, dtype=None, copy=None):
        return self._value if dtype is None else self._value.astype(dtype)

    def __float__(self):
        return float(self._value)

    def __int__(self):
        return int(self._value)

    def __index__(self):
        return int(self._value)

    def __bool__(self):
        return bool(self._value)

    def __len__(self):
        return len(self._value)

    def __iter__(self):
        for i in range(len(self._value)):
            yield self[i]

    def __repr__(self):
        return f"<ke.EagerTensor shape={tuple(self._value.shape)} dtype={self.dtype.name} numpy={self._value!r}>"

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        from .ops.math_ops import equal
        return equal(self, other)


class EagerVariable:
    """A variable in eager mode: a NumPy array updated in place; watched by tapes when trainable."""

    def __init__(self, initial_value=None, trainable=True, name=None, dtype=None, shape=None, **unused):
        if callable(initial_value):
            initial_value = initial_value()
        if isinstance(initial_value, EagerTensor):
            initial_value = initial_value.numpy()
        if dtype is None:
            dtype = _dt.float32 if not isinstance(initial_value, np.ndarray) and \
                np.asarray(initial_value).dtype.kind == "f" else _dt.as_dtype(np.asarray(initial_value).dtype)
        self._handle = EagerTensor(np.array(initial_value, dtype=_dt.as_dtype(dtype).np), dtype)
        self.trainable = trainable
        self._name = (name or "Variable") + ":0"

    name = property(lambda self: self._name)
    dtype = property(lambda self: self._handle.dtype)
    shape = property(lambda self: self._handle.shape)

    def _as_tensor(self):
        if self.trainable:
            for tape in _state["tapes"]:
                if tape._watch_accessed:
                    tape._watched.add(id(self._handle))
        return self._handle

    def numpy(self):
        return self._handle._value

    def value(self):
        return self._handle

    read_value = value

    def assign(self, value):
        self._handle._value[...] = np.asarray(getattr(value, "_value", value))
        return self

    def assign_add(self, delta):
        self._handle._value += np.asarray(getattr(delta, "_value", delta))
        return self

    def assign_sub(self, delta):
        self._handle._value -= np.asarray(getattr(delta, "_value", delta))
        return self

    def __array__(self, dtype=None, copy=None):
        return self._handle.__array__(dtype)

    def __repr__(self):
        return f"<ke.Variable '{self._name}' shape={tuple(self.shape)} numpy={self.numpy()!r}>"


class _Record:
    """What a tape remembers of one op: enough to call the op's gradient rule."""
    __slots__ = ("opdef", "type", "name", "inputs", "outputs", "attrs")

    def __init__(self, opdef, inputs, outputs, attrs):
        self.opdef, self.type, self.name = opdef, opdef.name, opdef.name
        self.inputs, self.outputs, self.attrs = inputs, outputs, attrs


def execute(opdef, inputs, attrs, name=None):
    if "seeds" in attrs:
        from .ops.random_ops import make_rng
        seeds = attrs["seeds"]
        attrs = dict(attrs, _rng=next_rng() if seeds is None or seeds[0] is None else make_rng(seeds))
    if opdef.name == "VariableV2":
        raise InvalidArgumentError("graph variables cannot be created in eager mode")
    vals = [t._value for t in inputs]
    try:
        result = opdef.kernel(np, attrs)(*vals)
    except InvalidArgumentError:
        raise
    except Exception as e:
        raise InvalidArgumentError(f"op {name or opdef.name} ({opdef.name}) failed: {type(e).__name__}: {e}") from e
    results = result if opdef.num_outputs > 1 else (result,)
    outs = []
    for r in results:
        if r is None:
            continue
        arr = np.asarray(r)
        outs.append(EagerTensor(arr, _dt.as_dtype(arr.dtype) if arr.dtype.kind not in "OSU" else _dt.string))
    for tape in _state["tapes"]:
        if tape._recording:
            tape._records.append(_Record(opdef, list(inputs), outs, attrs))
    if opdef.num_outputs == 0:
        return None
    return outs[0] if opdef.num_outputs == 1 else tuple(outs)


class GradientTape:
    """Record eager ops to differentiate them: ``with GradientTape() as tape: ...; tape.gradient(y, xs)``."""

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self._persistent = persistent
        self._watch_accessed = watch_accessed_variables
        self._records = []
        self._watched = set()
        self._recording = False
        self._used = False

    def __enter__(self):
        _state["tapes"].append(self)
        self._recording = True
        return self

    def __exit__(self, *exc):
        self._recording = False
        if self in _state["tapes"]:
            _state["tapes"].remove(self)
        return False

    def watch(self, tensor):
        for t in (tensor if isinstance(tensor, (list, tuple)) else [tensor]):
            t = t._handle if isinstance(t, EagerVariable) else t
            self._watched.add(id(t))

    def stop_recording(self):
        tape = self

        class _Pause:
            def __enter__(self):
                tape._recording = False

            def __exit__(self, *exc):
                tape._recording = True
        return _Pause()

    def gradient(self, target, sources, output_gradients=None):
        """Gradients of `target` with respect to `sources` (tensors or variables), None if unconnected."""
        if self._used and not self._persistent:
            raise InvalidArgumentError("a non-persistent GradientTape can compute gradients only once")
        self._used = True
        single = not isinstance(sources, (list, tuple))
        srcs = [sources] if single else list(sources)
        handles = [s._handle if isinstance(s, EagerVariable) else s for s in srcs]
        targets = target if isinstance(target, (list, tuple)) else [target]
        grads = {}
        if output_gradients is None:
            output_gradients = [None] * len(targets)
        for t, g in zip(targets, output_gradients):
            grads[id(t)] = EagerTensor(np.ones_like(t._value)) if g is None else g
        was = self._recording
        self._recording = False
        try:
            for rec in reversed(self._records):
                outs = [grads.get(id(o)) for o in rec.outputs]
                if all(g is None for g in outs) or rec.opdef.grad is None:
                    continue
                if len(outs) > 1:
                    outs = [g if g is not None else EagerTensor(np.zeros_like(o._value))
                            for g, o in zip(outs, rec.outputs)]
                in_grads = rec.opdef.grad(rec, *outs)
                for x, g in zip(rec.inputs, in_grads):
                    if g is None or not x.dtype.is_floating:
                        continue
                    prev = grads.get(id(x))
                    grads[id(x)] = g if prev is None else EagerTensor(prev._value + g._value)
        finally:
            self._recording = was
        # as TF: a source gets a gradient only when it was watched (explicitly, or as a trainable variable
        # read inside the tape) or computed on the tape from a watched value
        connected = set(self._watched)
        for rec in self._records:
            if any(id(x) in connected for x in rec.inputs):
                connected.update(id(o) for o in rec.outputs)
        result = [grads.get(id(h)) if id(h) in connected else None for h in handles]
        return result[0] if single else result
