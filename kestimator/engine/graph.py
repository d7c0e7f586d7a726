"""The symbolic graph: Graph, Operation, Tensor, name scopes, collections and control dependencies.

A Graph only records what to compute. Ops are created through `registry.apply_op`, which infers each
output's static shape and dtype with the op's rule; a Session compiles the part of the graph a fetch needs
into a Plan and runs it.
"""
import contextlib
import itertools
import re
import threading

import numpy as np

from ..errors import InvalidArgumentError, NotFoundError
from . import dtypes as _dt


class GraphKeys:
    """Standard names of graph collections, as in TensorFlow."""
    GLOBAL_VARIABLES = "variables"
    LOCAL_VARIABLES = "local_variables"
    TRAINABLE_VARIABLES = "trainable_variables"
    MODEL_VARIABLES = "model_variables"
    SUMMARIES = "summaries"
    UPDATE_OPS = "update_ops"
    LOSSES = "losses"
    REGULARIZATION_LOSSES = "regularization_losses"
    GLOBAL_STEP = "global_step"
    TRAIN_OP = "train_op"
    METRIC_VARIABLES = "metric_variables"
    INIT_OP = "init_op"
    LOCAL_INIT_OP = "local_init_op"
    SAVERS = "savers"
    QUEUE_RUNNERS = "queue_runners"


class TensorShape(tuple):
    """A static shape: a tuple of ints with ``None`` for unknown dimensions (or unknown rank)."""

    def __new__(cls, dims=None):
        if dims is None:
            obj = super().__new__(cls, ())
            obj._unknown_rank = True
            return obj
        if isinstance(dims, TensorShape) and dims._unknown_rank:
            return dims
        if isinstance(dims, (int, np.integer)):
            dims = (dims,)
        obj = super().__new__(cls, tuple(None if d is None or (not isinstance(d, str) and d < 0)
                                         else int(d) for d in dims))
        obj._unknown_rank = False
        return obj

    @property
    def ndims(self):
        return None if self._unknown_rank else len(self)

    rank = ndims

    @property
    def dims(self):
        return None if self._unknown_rank else list(self)

    def as_list(self):
        if self._unknown_rank:
            raise InvalidArgumentError("as_list() is not defined on an unknown TensorShape")
        return list(self)

    def is_fully_defined(self):
        return not self._unknown_rank and all(d is not None for d in self)

    def num_elements(self):
        if not self.is_fully_defined():
            return None
        return int(np.prod(self, dtype=np.int64))

    def is_compatible_with(self, other):
        other = TensorShape(other) if not isinstance(other, TensorShape) else other
        if self._unknown_rank or other._unknown_rank:
            return True
        if len(self) != len(other):
            return False
        return all(a is None or b is None or a == b for a, b in zip(self, other))

    def merge_with(self, other):
        other = TensorShape(other) if not isinstance(other, TensorShape) else other
        if self._unknown_rank:
            return other
        if other._unknown_rank:
            return self
        if not self.is_compatible_with(other):
            raise InvalidArgumentError(f"shapes {self} and {other} are not compatible")
        return TensorShape([a if a is not None else b for a, b in zip(self, other)])

    def __getitem__(self, key):
        if isinstance(key, slice):
            return TensorShape(tuple.__getitem__(self, key))
        return tuple.__getitem__(self, key)

    def __repr__(self):
        if self._unknown_rank:
            return "TensorShape(None)"
        return "TensorShape([" + ", ".join("None" if d is None else str(d) for d in self) + "])"

    def __reduce__(self):
        return (TensorShape, (None if self._unknown_rank else tuple(self),))


def unknown_shape():
    return TensorShape(None)


class Tensor:
    """A symbolic value: output `value_index` of operation `op`. Run it with Session.run or `.eval()`."""

    __slots__ = ("op", "value_index", "dtype", "_shape", "__weakref__")
    __array_priority__ = 100   # make `ndarray * tensor` defer to Tensor.__rmul__

    def __init__(self, op, value_index, dtype, shape):
        self.op = op
        self.value_index = value_index
        self.dtype = dtype
        self._shape = shape if isinstance(shape, TensorShape) else TensorShape(shape)

    @property
    def name(self):
        return f"{self.op.name}:{self.value_index}"

    @property
    def graph(self):
        return self.op.graph

    @property
    def device(self):
        return self.op.device

    @property
    def shape(self):
        return self._shape

    def get_shape(self):
        return self._shape

    def set_shape(self, shape):
        self._shape = self._shape.merge_with(TensorShape(shape))

    @property
    def consumers(self):
        return [op for op in self.op.graph._consumers.get(self, ())]

    def eval(self, feed_dict=None, session=None):
        from .session import get_default_session_or_error
        sess = session or get_default_session_or_error("Tensor.eval()")
        return sess.run(self, feed_dict=feed_dict)

    def __repr__(self):
        return f"<ke.Tensor '{self.name}' shape={self._shape!r} dtype={self.dtype.name}>"

    def __hash__(self):
        return id(self)

    def __eq__(self, other):   # identity, as in TF1: tensors are used as dict keys
        return self is other

    def __bool__(self):
        raise TypeError("a symbolic Tensor has no truth value; use ke.cond-free NumPy logic or eager mode")

    def __len__(self):
        if self._shape.ndims and self._shape[0] is not None:
            return self._shape[0]
        raise TypeError(f"len() of {self.name} is unknown (shape {self._shape})")

    def __iter__(self):
        raise TypeError(f"a symbolic Tensor ({self.name}) is not iterable; iterate in eager mode")


class Operation:
    """A node of the graph: an op type applied to input tensors with attributes."""

    def __init__(self, graph, op_type, name, inputs, attrs, control_inputs, device, opdef):
        self.graph = graph
        self.type = op_type
        self.name = name
        self.inputs = tuple(inputs)
        self.attrs = attrs
        self.control_inputs = tuple(control_inputs)
        self.device = device
        self.opdef = opdef
        self.outputs = ()
        self._id = next(graph._op_ids)

    def _add_control_input(self, op):
        self.control_inputs = self.control_inputs + (op,)

    def get_attr(self, name):
        return self.attrs[name]

    def run(self, feed_dict=None, session=None):
        from .session import get_default_session_or_error
        sess = session or get_default_session_or_error("Operation.run()")
        sess.run(self, feed_dict=feed_dict)

    @property
    def values(self):
        return self.outputs

    def __repr__(self):
        return f"<ke.Operation '{self.name}' type={self.type}>"


class Graph:
    """A set of Operations and the Tensors between them, plus collections and scopes."""

    def __init__(self):
        self._ops = []
        self._ops_by_name = {}
        self._names_in_use = {}
        self._name_stack = ""
        self._collections = {}
        self._control_stack = []
        self._device_stack = []
        self._consumers = {}
        self._op_ids = itertools.count()
        self._lock = threading.RLock()
        self._finalized = False
        self.seed = _default_seed[0]
        self._seed_counter = itertools.count(1)
        self._variable_store = {}     # get_variable's registry: full name -> Variable
        self._version = 0

    # -- scoping -------------------------------------------------------------------------------------
    def as_default(self):
        return _default_graph_context(self)

    @contextlib.contextmanager
    def name_scope(self, name):
        old = self._name_stack
        if name is None or name == "":
            self._name_stack = "" if name == "" else old
        elif name.endswith("/"):
            self._name_stack = name[:-1]
        else:
            self._name_stack = self.unique_name(name)
        try:
            yield (self._name_stack + "/") if self._name_stack else ""
        finally:
            self._name_stack = old

    def get_name_scope(self):
        return self._name_stack

    def unique_name(self, name, mark_as_used=True):
        full = f"{self._name_stack}/{name}" if self._name_stack else name
        key = full.lower()
        count = self._names_in_use.get(key, 0)
        if mark_as_used:
            self._names_in_use[key] = count + 1
        if count > 0:
            base = full
            while True:
                full = f"{base}_{count}"
                if full.lower() not in self._names_in_use:
                    break
                count += 1
            if mark_as_used:
                self._names_in_use[full.lower()] = 1
        return full

    @contextlib.contextmanager
    def control_dependencies(self, control_inputs):
        if control_inputs is None:
            saved, self._control_stack = self._control_stack, []
            try:
                yield
            finally:
                self._control_stack = saved
            return
        ops = []
        for c in control_inputs:
            c = getattr(c, "_as_control_op", lambda: c)()
            ops.append(c.op if isinstance(c, Tensor) else c)
        self._control_stack.append(ops)
        try:
            yield
        finally:
            self._control_stack.pop()

    @contextlib.contextmanager
    def device(self, spec):
        self._device_stack.append(spec)
        try:
            yield
        finally:
            self._device_stack.pop()

    def _current_device(self):
        for spec in reversed(self._device_stack):
            if spec is not None:
                return spec
        return ""

    # -- ops -------------------------------------------------------------------------------------------
    def _create_op(self, op_type, inputs, attrs, name, opdef):
        if self._finalized:
            raise InvalidArgumentError(f"graph is finalized; cannot add op {op_type}")
        for t in inputs:
            if t.op.graph is not self:
                raise InvalidArgumentError(
                    f"input {t.name} of new op {op_type} ({name}) belongs to another graph")
        name = self.unique_name(name or op_type)
        controls = [op for group in self._control_stack for op in group]
        op = Operation(self, op_type, name, inputs, attrs, controls, self._current_device(), opdef)
        with self._lock:
            self._ops.append(op)
            self._ops_by_name[name] = op
            for t in inputs:
                self._consumers.setdefault(t, []).append(op)
            self._version += 1
        return op

    def get_operations(self):
        return list(self._ops)

    def get_operation_by_name(self, name):
        try:
            return self._ops_by_name[name]
        except KeyError:
            raise NotFoundError(f"no operation named {name!r} in the graph") from None

    def get_tensor_by_name(self, name):
        m = re.fullmatch(r"(.+):(\d+)", name)
        if not m:
            raise InvalidArgumentError(f"tensor name {name!r} must look like 'op_name:index'")
        op = self.get_operation_by_name(m.group(1))
        idx = int(m.group(2))
        if idx >= len(op.outputs):
            raise NotFoundError(f"operation {op.name} has {len(op.outputs)} outputs; no output {idx}")
        return op.outputs[idx]

    def finalize(self):
        self._finalized = True

    @property
    def finalized(self):
        return self._finalized

    # -- collections -----------------------------------------------------------------------------------
    def add_to_collection(self, name, value):
        self._collections.setdefault(name, []).append(value)

    def add_to_collections(self, names, value):
        for n in ([names] if isinstance(names, str) else names):
            self.add_to_collection(n, value)

    def get_collection(self, name, scope=None):
        items = list(self._collections.get(name, ()))
        if scope is None:
            return items
        pattern = re.compile(scope)
        return [i for i in items if pattern.match(getattr(i, "name", "") or "")]

    def get_collection_ref(self, name):
        return self._collections.setdefault(name, [])

    def clear_collection(self, name):
        self._collections.pop(name, None)

    def get_all_collection_keys(self):
        return list(self._collections)

    def next_seed(self):
        return next(self._seed_counter)


# -- the graph-level seed new graphs start with ------------------------------------------------------------
_default_seed = [None]   # graph-level seed new graphs start with (ks.config.set_seed)


def set_default_seed(seed):
    """Graphs created from now on start with graph-level seed `seed` (None: unseeded)."""
    _default_seed[0] = None if seed is None else int(seed)


# -- the default graph -----------------------------------------------------------------------------------
class _DefaultGraphStack(threading.local):
    def __init__(self):
        self.stack = []


_graph_stack = _DefaultGraphStack()
_global_default_graph = [Graph()]


@contextlib.contextmanager
def _default_graph_context(graph):
    _graph_stack.stack.append(graph)
    try:
        yield graph
    finally:
        _graph_stack.stack.pop()


def get_default_graph():
    """The graph new ops go into: the innermost `with g.as_default()`, else the global graph."""
    if _graph_stack.stack:
        return _graph_stack.stack[-1]
    return _global_default_graph[0]


def reset_default_graph():
    """Replace the global default graph with a new, empty one."""
    if _graph_stack.stack:
        raise InvalidArgumentError("reset_default_graph() called inside a `with graph.as_default()` block")
    _global_default_graph[0] = Graph()


def name_scope(name, default_name=None, values=None):
    return get_default_graph().name_scope(name if name is not None else default_name)


def control_dependencies(control_inputs):
    return get_default_graph().control_dependencies(control_inputs)


def device(spec):
    """Place ops created in this block on `spec` ("/cpu:0", "/device:GPU:0", ...)."""
    from .devices import canonical_device
    return get_default_graph().device(canonical_device(spec) if spec else spec)


def add_to_collection(name, value):
    get_default_graph().add_to_collection(name, value)


def add_to_collections(names, value):
    get_default_graph().add_to_collections(names, value)


def get_collection(name, scope=None):
    return get_default_graph().get_collection(name, scope)


def get_collection_ref(name):
    return get_default_graph().get_collection_ref(name)
