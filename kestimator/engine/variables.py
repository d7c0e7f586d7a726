"""Variables, get_variable and variable_scope.

A Variable is a "VariableV2" op whose value lives in the Session (graph mode): trainable variables of one
dtype share one contiguous slab so optimizers update all of them with a few vectorized calls.
"""
import contextlib
import threading

import numpy as np

from ..errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from . import dtypes as _dt
from . import initializers as _init
from .graph import GraphKeys, Tensor, TensorShape, get_default_graph
from .registry import apply_op, register


def _var_kernel(xp, a):
    def run():
        raise InvalidArgumentError(f"variable {a['name']} is read through the session's storage")
    return run


register("VariableV2", infer=lambda i, a: [(a["shape"], a["dtype"])], kernel=_var_kernel, stateful=True,
         differentiable=False)


def _assign_kernel(xp, a):
    def run(ref, value):
        ref[...] = value
        return ref
    return run


def _assign_add_kernel(xp, a):
    def run(ref, value):
        ref += value
        return ref
    return run


def _assign_sub_kernel(xp, a):
    def run(ref, value):
        ref -= value
        return ref
    return run


def _assign_infer(inputs, attrs):
    ref, val = inputs
    if not ref.shape.is_compatible_with(val.shape) and val.shape.ndims != 0:
        raise InvalidArgumentError(f"cannot assign a value of shape {val.shape} to {ref.op.name} of shape {ref.shape}")
    return [(ref.shape, ref.dtype)]


for _n, _k in (("Assign", _assign_kernel), ("AssignAdd", _assign_add_kernel), ("AssignSub", _assign_sub_kernel)):
    register(_n, infer=_assign_infer, kernel=_k, stateful=True, differentiable=False, writes_input=0)


class Variable:
    """A mutable tensor whose value persists across Session.run calls.

    Args:
        initial_value: a value, a Tensor, or a callable returning one; fixes the shape and dtype.
        trainable: add the variable to TRAINABLE_VARIABLES (optimizers' default var_list).
        collections: graph collections (default GLOBAL_VARIABLES, plus TRAINABLE_VARIABLES when trainable).
        name: op name (uniquified); dtype: cast the initial value to this dtype.
    """

    def __new__(cls, *args, **kwargs):
        from . import eager
        if cls is Variable and eager.executing_eagerly():
            return eager.EagerVariable(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, initial_value=None, trainable=True, collections=None, validate_shape=True,
                 name=None, dtype=None, shape=None, constraint=None, slab_group=None, **unused):
        from .ops.core import cast, convert_to_tensor
        if initial_value is None:
            raise InvalidArgumentError("Variable needs an initial_value")
        g = get_default_graph()
        with g.name_scope(None), contextlib.ExitStack() as stack:
            stack.enter_context(g.control_dependencies(None))
            if callable(initial_value) and not isinstance(initial_value, Tensor):
                initial_value = initial_value()
            dt = _dt.as_dtype(dtype) if dtype is not None else None
            if isinstance(initial_value, Tensor):
                init = initial_value if dt is None or initial_value.dtype == dt else cast(initial_value, dt)
            else:
                arr = np.asarray(initial_value)
                if dt is None:
                    dt = _dt.infer_dtype(initial_value) if not isinstance(initial_value, np.ndarray) else \
                        _dt.as_dtype(arr.dtype)
                    if dt == _dt.float64 and not isinstance(initial_value, np.ndarray):
                        dt = _dt.float32
                init = convert_to_tensor(arr.astype(dt.np) if not dt.is_string else arr, dtype=dt)
        vshape = TensorShape(shape) if shape is not None else init.shape
        if not vshape.is_fully_defined():
            raise InvalidArgumentError(f"variable {name or 'Variable'} needs a fully defined shape, got {vshape}")
        self._op = None
        with g.control_dependencies(None):
            full = g.unique_name(name or "Variable", mark_as_used=False)
            self._ref = apply_op("VariableV2", [], {"shape": tuple(vshape), "dtype": init.dtype, "name": full},
                                 name=name or "Variable")
            self._ref.op._variable = self
            self.initial_value = init
            with g.name_scope(self._ref.op.name + "/"):
                self._initializer_op = apply_op("Assign", [self._ref, init], name="Assign").op
        self._trainable = bool(trainable)
        self.constraint = constraint
        self.slab_group = slab_group if slab_group is not None else ("trainable" if trainable else None)
        if collections is None:
            collections = [GraphKeys.GLOBAL_VARIABLES]
        collections = list(collections)
        if trainable and GraphKeys.TRAINABLE_VARIABLES not in collections:
            collections.append(GraphKeys.TRAINABLE_VARIABLES)
        g.add_to_collections(collections, self)
        g._all_variables = getattr(g, "_all_variables", [])
        g._all_variables.append(self)

    # -- identity --------------------------------------------------------------------------------------
    @property
    def name(self):
        return self._ref.name

    @property
    def op(self):
        return self._ref.op

    @property
    def dtype(self):
        return self._ref.dtype

    @property
    def shape(self):
        return self._ref.shape

    def get_shape(self):
        return self._ref.shape

    @property
    def graph(self):
        return self._ref.graph

    @property
    def device(self):
        return self._ref.device

    @property
    def trainable(self):
        return self._trainable

    @property
    def initializer(self):
        return self._initializer_op

    def _as_tensor(self):
        return self._ref

    def value(self):
        return self._ref

    def read_value(self):
        from .ops.core import identity
        return identity(self._ref)

    def initialized_value(self):
        return self.initial_value

    # -- running ----------------------------------------------------------------------------------------
    def eval(self, session=None):
        return self._ref.eval(session=session)

    def assign(self, value, use_locking=False, name=None, read_value=True):
        from .ops.core import convert_to_tensor
        return apply_op("Assign", [self._ref, convert_to_tensor(value, self.dtype)], name=name)

    def assign_add(self, delta, use_locking=False, name=None, read_value=True):
        from .ops.core import convert_to_tensor
        return apply_op("AssignAdd", [self._ref, convert_to_tensor(delta, self.dtype)], name=name)

    def assign_sub(self, delta, use_locking=False, name=None, read_value=True):
        from .ops.core import convert_to_tensor
        return apply_op("AssignSub", [self._ref, convert_to_tensor(delta, self.dtype)], name=name)

    def load(self, value, session=None):
        from .session import get_default_session_or_error
        sess = session or get_default_session_or_error("Variable.load()")
        sess._load_variable(self, value)

    def __repr__(self):
        return f"<ke.Variable '{self.name}' shape={self.shape!r} dtype={self.dtype.name}>"

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


def variables_of(graph, key=GraphKeys.GLOBAL_VARIABLES):
    return [v for v in graph.get_collection(key) if isinstance(v, Variable)]


def global_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.GLOBAL_VARIABLES, scope)


def local_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.LOCAL_VARIABLES, scope)


def trainable_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.TRAINABLE_VARIABLES, scope)


def model_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.MODEL_VARIABLES, scope)


def variables_initializer(var_list, name="init"):
    from .ops.core import group
    return group(*[v.initializer for v in var_list], name=name)


def global_variables_initializer():
    """An op that runs every global variable's initializer."""
    return variables_initializer(global_variables(), name="init")


def local_variables_initializer():
    return variables_initializer(local_variables(), name="init_local")


initialize_all_variables = global_variables_initializer


def report_uninitialized_variables(var_list=None, session=None):
    from .session import get_default_session_or_error
    sess = session or get_default_session_or_error("report_uninitialized_variables")
    var_list = var_list if var_list is not None else global_variables() + local_variables()
    return [v.op.name for v in var_list if not sess._is_initialized(v)]


# -- variable scopes ---------------------------------------------------------------------------------------
AUTO_REUSE = "AUTO_REUSE"


class VariableScope:
    """Names and defaults (initializer, regularizer, reuse) for variables made with get_variable."""

    def __init__(self, name, reuse=None, initializer=None, regularizer=None, dtype=None):
        self.name = name
        self.reuse = reuse
        self.initializer = initializer
        self.regularizer = regularizer
        self.dtype = dtype
        self.original_name_scope = name + "/" if name else ""

    def reuse_variables(self):
        self.reuse = True

    def set_initializer(self, initializer):
        self.initializer = initializer

    def set_regularizer(self, regularizer):
        self.regularizer = regularizer


class _ScopeStack(threading.local):
    def __init__(self):
        self.by_graph = {}


_scopes = _ScopeStack()


def _scope_stack():
    return _scopes.by_graph.setdefault(id(get_default_graph()), [VariableScope("")])


def get_variable_scope():
    return _scope_stack()[-1]


@contextlib.contextmanager
def variable_scope(name_or_scope, default_name=None, values=None, initializer=None, regularizer=None,
                   reuse=None, dtype=None, custom_getter=None, auxiliary_name_scope=True):
    """Open a scope for get_variable names; `reuse=True` (or AUTO_REUSE) shares existing variables."""
    stack = _scope_stack()
    parent = stack[-1]
    g = get_default_graph()
    if isinstance(name_or_scope, VariableScope):
        scope = VariableScope(name_or_scope.name, name_or_scope.reuse, name_or_scope.initializer,
                              name_or_scope.regularizer, name_or_scope.dtype)
        name_scope_name = name_or_scope.original_name_scope
    else:
        name = name_or_scope if name_or_scope is not None else default_name
        if name is None:
            raise InvalidArgumentError("variable_scope needs a name or a default_name")
        if name_or_scope is None:   # default_name is made unique, as in TF
            name = g.unique_name(name, mark_as_used=False).rsplit("/", 1)[-1]
        full = f"{parent.name}/{name}" if parent.name else name
        scope = VariableScope(full, parent.reuse, parent.initializer, parent.regularizer, parent.dtype)
        name_scope_name = name
    if reuse is not None:
        scope.reuse = True if reuse is True else reuse
    elif parent.reuse is True:
        scope.reuse = True
    if initializer is not None:
        scope.initializer = initializer
    if regularizer is not None:
        scope.regularizer = regularizer
    if dtype is not None:
        scope.dtype = dtype
    stack.append(scope)
    try:
        with g.name_scope(name_scope_name) as ns:
            if not isinstance(name_or_scope, VariableScope) and auxiliary_name_scope:
                scope.original_name_scope = ns
            if isinstance(name_or_scope, VariableScope):
                name_or_scope_obj = name_or_scope
            yield scope
    finally:
        stack.pop()
        if isinstance(name_or_scope, VariableScope) and scope.reuse is True and name_or_scope.reuse is not True:
            pass


def get_variable(name, shape=None, dtype=None, initializer=None, regularizer=None, trainable=None,
                 collections=None, caching_device=None, partitioner=None, validate_shape=True,
                 use_resource=None, custom_getter=None, constraint=None, synchronization=None,
                 aggregation=None):
    """Create a variable `scope/name`, or return the existing one when the scope reuses variables.

    Raises:
        InvalidArgumentError: the variable exists and reuse is off, or it is missing and reuse is True,
            or the requested shape disagrees with the existing variable.
    """
    from . import eager
    scope = get_variable_scope()
    full = f"{scope.name}/{name}" if scope.name else name
    g = get_default_graph()
    store = g._variable_store
    if full in store and not eager.executing_eagerly():
        if scope.reuse is not True and scope.reuse != AUTO_REUSE:
            raise InvalidArgumentError(f"variable {full} already exists; set reuse=True or AUTO_REUSE in "
                                       "variable_scope to share it")
        var = store[full]
        if shape is not None and not var.shape.is_compatible_with(TensorShape(shape)):
            raise InvalidArgumentError(f"variable {full} has shape {var.shape}; requested {tuple(shape)}")
        return var
    if scope.reuse is True:
        raise InvalidArgumentError(f"variable {full} does not exist and the scope has reuse=True "
                                   "(use AUTO_REUSE to create it)")
    dt = _dt.as_dtype(dtype or scope.dtype or _dt.float32)
    initializer = initializer if initializer is not None else scope.initializer
    if isinstance(initializer, Tensor) or (initializer is not None and hasattr(initializer, "numpy")
                                           and not isinstance(initializer, _init.Initializer)):
        init_value = initializer
        if dtype is None:
            dt = initializer.dtype
    else:
        if shape is None:
            raise InvalidArgumentError(f"get_variable({full!r}) needs a shape or a tensor initializer")
        init = _init.get(initializer) if initializer is not None else (
            _init.GlorotUniform() if dt.is_floating else _init.Zeros())
        if isinstance(initializer, (int, float, np.ndarray, list)):
            init = _init.Constant(initializer)
        shp = [int(d) for d in shape]
        init_value = lambda: init(shp, dt)   # noqa: E731 - evaluated under the variable's own scope
    if trainable is None:
        trainable = not (collections and GraphKeys.LOCAL_VARIABLES in collections)
    with g.name_scope(full.rsplit("/", 1)[0] + "/" if "/" in full else ""):
        var = Variable(init_value, trainable=trainable, collections=collections, name=full.rsplit("/", 1)[-1],
                       dtype=dt, constraint=constraint)
    store[full] = var
    reg = regularizer if regularizer is not None else scope.regularizer
    if reg is not None and trainable:
        with g.name_scope(var.op.name + "/Regularizer/"):
            loss = reg(var._ref)
        if loss is not None:
            g.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, loss)
    return var


def no_regularizer(_):
    return None
