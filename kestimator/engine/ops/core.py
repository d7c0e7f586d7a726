"""Core ops: constants, placeholders, identity, casts, shapes, fills, and the shared shape rules."""
import numpy as np

from ...errors import InvalidArgumentError
from .. import dtypes as _dt
from ..graph import Tensor, TensorShape, get_default_graph
from ..registry import apply_op, register

# -- shape rules shared by many ops ---------------------------------------------------------------------


def broadcast_static(*shapes):
    """NumPy broadcasting of static shapes with None for unknown dims (None rank -> None)."""
    if any(getattr(s, "ndims", 0) is None for s in shapes):
        return None
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        dims = [s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise InvalidArgumentError(f"shapes {[tuple(s) for s in shapes]} cannot be broadcast")
        if known:
            out.append(known.pop())
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def same_as_input(i=0, dtype=None):
    def infer(inputs, attrs):
        return [(inputs[i].shape, dtype or inputs[i].dtype)]
    return infer


def normalize_axes(axis, ndim, what="axis"):
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if ndim is not None:
            if not -ndim <= a < ndim:
                raise InvalidArgumentError(f"{what} {a} is out of range for rank {ndim}")
            a %= ndim
        out.append(a)
    return tuple(out)


# -- conversion -----------------------------------------------------------------------------------------


def convert_to_tensor(value, dtype=None, name=None, graph=None):
    """Turn a Tensor, Variable, EagerTensor or array-like into a Tensor of `dtype` (if given).

    Raises:
        InvalidArgumentError: a tensor of another dtype was passed where `dtype` is required.
    """
    from .. import eager
    conv = getattr(value, "_as_tensor", None)
    if conv is not None:
        value = conv()
    if isinstance(value, Tensor) or isinstance(value, eager.EagerTensor):
        if dtype is not None and value.dtype != _dt.as_dtype(dtype):
            raise InvalidArgumentError(
                f"tensor {getattr(value, 'name', '')} has dtype {value.dtype.name}; {_dt.as_dtype(dtype).name} "
                "was required")
        return value
    if isinstance(value, (list, tuple)) and any(isinstance(v, (Tensor, eager.EagerTensor)) or
                                                hasattr(v, "_as_tensor") for v in value):
        from .array_ops import stack
        return stack([convert_to_tensor(v, dtype) for v in value])
    return constant(value, dtype=dtype, name=name, graph=graph)


def _as_array(value, dtype):
    if dtype is None:
        dtype = _dt.infer_dtype(value)
    dtype = _dt.as_dtype(dtype)
    if dtype.is_string:
        arr = np.asarray(value, dtype=object)
        return np.vectorize(lambda v: v.encode() if isinstance(v, str) else v, otypes=[object])(arr) \
            if arr.size else arr, dtype
    arr = np.asarray(value)
    if arr.dtype.kind in "OSU":
        raise InvalidArgumentError(f"cannot convert {value!r} to {dtype.name}")
    if arr.dtype.kind == "f" and dtype.is_integer and not np.all(np.mod(arr, 1) == 0):
        raise InvalidArgumentError(f"cannot convert non-integer value to {dtype.name}")
    return np.asarray(arr, dtype=dtype.np), dtype


def _const_infer(inputs, attrs):
    return [(attrs["value"].shape, attrs["dtype"])]


register("Const", infer=_const_infer, kernel=lambda xp, a: (lambda: a["value"]), differentiable=False)


def constant(value, dtype=None, shape=None, name="Const", graph=None):
    """A tensor with a fixed value; `shape` reshapes or broadcasts a scalar as in TF."""
    from .. import eager
    arr, dt = _as_array(value, dtype)
    if shape is not None:
        shape = tuple(int(d) for d in shape)
        if arr.size == int(np.prod(shape)):
            arr = arr.reshape(shape)
        elif arr.size == 1:
            arr = np.full(shape, arr.reshape(()), dtype=arr.dtype)
        else:
            raise InvalidArgumentError(f"constant of {arr.size} values cannot have shape {shape}")
    if eager.executing_eagerly():
        return eager.EagerTensor(arr, dt)
    arr.flags.writeable = False
    g = graph or get_default_graph()
    with g.as_default():
        return apply_op("Const", [], {"value": arr, "dtype": dt}, name=name)


def _placeholder_kernel(xp, attrs):
    def run():
        raise InvalidArgumentError(f"placeholder {attrs['name']} must be fed")
    return run


register("Placeholder", infer=lambda i, a: [(a["shape"], a["dtype"])], kernel=_placeholder_kernel,
         stateful=True, differentiable=False)


def placeholder(dtype, shape=None, name=None):
    """A tensor whose value is given through `feed_dict` at Session.run time."""
    dt = _dt.as_dtype(dtype)
    g = get_default_graph()
    full = g.unique_name(name or "Placeholder", mark_as_used=False)
    return apply_op("Placeholder", [], {"dtype": dt, "shape": TensorShape(shape), "name": full},
                    name=name or "Placeholder")


def placeholder_with_default(input, shape, name=None):
    x = convert_to_tensor(input)
    return apply_op("PlaceholderWithDefault", [x], {"shape": TensorShape(shape)}, name=name)


register("PlaceholderWithDefault", infer=lambda i, a: [(a["shape"], i[0].dtype)],
         kernel=lambda xp, a: (lambda x: x), grad=lambda op, g: [g])

# Identity copies: a variable read through identity must not change when the variable is assigned later.
register("Identity", infer=same_as_input(), kernel=lambda xp, a: (lambda x: x.copy()),
         grad=lambda op, g: [g])
register("StopGradient", infer=same_as_input(), kernel=lambda xp, a: (lambda x: x),
         differentiable=False)
register("NoOp", infer=lambda i, a: [], kernel=lambda xp, a: (lambda *x: None), num_outputs=0,
         differentiable=False)


def identity(x, name=None):
    return apply_op("Identity", [convert_to_tensor(x)], name=name)


def stop_gradient(x, name=None):
    return apply_op("StopGradient", [convert_to_tensor(x)], name=name)


def no_op(name=None):
    from .. import eager
    if eager.executing_eagerly():
        return None
    g = get_default_graph()
    return g._create_op("NoOp", [], {}, name or "NoOp", register_lookup("NoOp"))


def register_lookup(name):
    from ..registry import get_opdef
    return get_opdef(name)


def group(*inputs, name=None):
    """An op that runs after all of `inputs` (tensors or ops) when it is run."""
    from .. import eager
    if eager.executing_eagerly():
        return None
    flat = []
    for i in inputs:
        flat.extend(i if isinstance(i, (list, tuple)) else [i])
    g = get_default_graph()
    with g.control_dependencies([x for x in flat if x is not None]):
        return no_op(name=name or "group_deps")


def tuple_(tensors, name=None):
    with get_default_graph().control_dependencies([t for t in tensors]):
        return [identity(t) for t in tensors]


# -- casts and shapes -----------------------------------------------------------------------------------
def _cast_kernel(xp, a):
    npd = a["dtype"].np
    return lambda x: x.astype(npd, copy=False)


def _cast_grad(op, g):
    x = op.inputs[0]
    if not (x.dtype.is_floating and op.attrs["dtype"].is_floating):
        return [None]
    return [cast(g, x.dtype)]


register("Cast", infer=lambda i, a: [(i[0].shape, a["dtype"])], kernel=_cast_kernel, grad=_cast_grad)


def cast(x, dtype, name=None):
    x = convert_to_tensor(x)
    dt = _dt.as_dtype(dtype)
    if x.dtype == dt:
        return x
    return apply_op("Cast", [x], {"dtype": dt}, name=name)


def to_float(x, name=None):
    return cast(x, _dt.float32, name)


register("Shape", infer=lambda i, a: [((i[0].shape.ndims,), a["out_type"])],
         kernel=lambda xp, a: (lambda x: np.array(x.shape, dtype=a["out_type"].np)), differentiable=False)
register("Rank", infer=lambda i, a: [((), _dt.int32)],
         kernel=lambda xp, a: (lambda x: np.array(x.ndim, dtype=np.int32)), differentiable=False)
register("Size", infer=lambda i, a: [((), a["out_type"])],
         kernel=lambda xp, a: (lambda x: np.array(x.size, dtype=a["out_type"].np)), differentiable=False)


def shape(x, name=None, out_type=_dt.int32):
    return apply_op("Shape", [convert_to_tensor(x)], {"out_type": _dt.as_dtype(out_type)}, name=name)


def rank(x, name=None):
    return apply_op("Rank", [convert_to_tensor(x)], name=name)


def size(x, name=None, out_type=_dt.int32):
    return apply_op("Size", [convert_to_tensor(x)], {"out_type": _dt.as_dtype(out_type)}, name=name)


# -- fills ------------------------------------------------------------------------------------------------
def _fill_infer(inputs, attrs):
    from ..registry import static_value
    dims = static_value(inputs[0])
    if dims is not None:
        shp = tuple(int(d) for d in np.asarray(dims).reshape(-1))
    else:
        n = inputs[0].shape[0] if inputs[0].shape.ndims == 1 else None
        shp = (None,) * n if n is not None else None
    return [(shp, inputs[1].dtype)]


register("Fill", infer=_fill_infer,
         kernel=lambda xp, a: (lambda dims, v: xp.full(tuple(int(d) for d in dims), v, dtype=v.dtype)),
         differentiable=False)


def fill(dims, value, name=None):
    return apply_op("Fill", [convert_to_tensor(dims, _dt.int32) if not isinstance(dims, Tensor) else dims,
                             convert_to_tensor(value)], name=name)


def zeros(shape, dtype=_dt.float32, name=None):
    return fill(shape, np.zeros((), _dt.as_dtype(dtype).np), name=name or "zeros")


def ones(shape, dtype=_dt.float32, name=None):
    return fill(shape, np.ones((), _dt.as_dtype(dtype).np), name=name or "ones")


register("ZerosLike", infer=same_as_input(), kernel=lambda xp, a: (lambda x: xp.zeros_like(x)),
         differentiable=False)
register("OnesLike", infer=same_as_input(), kernel=lambda xp, a: (lambda x: xp.ones_like(x)),
         differentiable=False)


def zeros_like(x, dtype=None, name=None):
    x = convert_to_tensor(x)
    out = apply_op("ZerosLike", [x], name=name)
    return cast(out, dtype) if dtype is not None else out


def ones_like(x, dtype=None, name=None):
    x = convert_to_tensor(x)
    out = apply_op("OnesLike", [x], name=name)
    return cast(out, dtype) if dtype is not None else out


def _range_infer(inputs, attrs):
    from ..registry import static_value
    vals = [static_value(t) for t in inputs]
    if all(v is not None for v in vals):
        n = len(np.arange(*[v.item() for v in vals]))
        return [((n,), attrs["dtype"])]
    return [((None,), attrs["dtype"])]


register("Range", infer=_range_infer,
         kernel=lambda xp, a: (lambda s, l, d: xp.arange(s, l, d, dtype=a["dtype"].np)), differentiable=False)


def range_(start, limit=None, delta=1, dtype=None, name="range"):
    if limit is None:
        start, limit = 0, start
    vals = [start, limit, delta]
    if dtype is None:
        dtype = _dt.float32 if any(isinstance(v, float) or getattr(getattr(v, "dtype", None), "is_floating",
                                                                    False) for v in vals) else _dt.int32
    dtype = _dt.as_dtype(dtype)
    ts = [cast(convert_to_tensor(v), dtype) for v in vals]
    return apply_op("Range", ts, {"dtype": dtype}, name=name)
