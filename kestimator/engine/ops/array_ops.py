"""Shape manipulation, slicing, gathering and scattering."""
import numpy as np

from ...errors import InvalidArgumentError
from .. import dtypes as _dt
from ..graph import Tensor, TensorShape
from ..registry import apply_op, register, static_value
from .core import convert_to_tensor, normalize_axes, same_as_input
from .math_ops import add_n, unbroadcast

newaxis = None


# -- reshape family -------------------------------------------------------------------------------------
def _resolve_shape(in_shape, shape):
    shape = list(shape)
    if shape.count(-1) > 1:
        raise InvalidArgumentError(f"reshape target {shape} has more than one -1")
    if -1 in shape and in_shape is not None and in_shape.is_fully_defined():
        known = int(np.prod([d for d in shape if d != -1]))
        total = in_shape.num_elements()
        if known == 0 or total % known:
            raise InvalidArgumentError(f"cannot reshape {in_shape} ({total} values) to {shape}")
        shape[shape.index(-1)] = total // known
    elif in_shape is not None and in_shape.is_fully_defined() and -1 not in shape:
        if int(np.prod(shape)) != in_shape.num_elements():
            raise InvalidArgumentError(f"cannot reshape {in_shape} ({in_shape.num_elements()} values) to {shape}")
    return tuple(None if d == -1 else d for d in shape)


register("Reshape", infer=lambda i, a: [(_resolve_shape(i[0].shape, a["shape"]), i[0].dtype)],
         kernel=lambda xp, a: (lambda x: x.reshape(a["shape"])), views_input=True,
         grad=lambda op, g: [reshape_like(g, op.inputs[0])])
register("ReshapeLike", infer=lambda i, a: [(i[1].shape, i[0].dtype)],
         kernel=lambda xp, a: (lambda x, like: x.reshape(like.shape)), views_input=True,
         grad=lambda op, g: [reshape_like(g, op.inputs[0]), None])


def _dyn_reshape_infer(inputs, attrs):
    n = inputs[1].shape[0] if inputs[1].shape.ndims == 1 else None
    return [((None,) * n if n is not None else None, inputs[0].dtype)]


register("DynamicReshape", infer=_dyn_reshape_infer, views_input=True,
         kernel=lambda xp, a: (lambda x, s: x.reshape(tuple(int(d) for d in s))),
         grad=lambda op, g: [reshape_like(g, op.inputs[0]), None])


def reshape(tensor, shape, name=None):
    """Reshape to `shape` (a list with at most one -1, or an int tensor)."""
    x = convert_to_tensor(tensor)
    if isinstance(shape, Tensor) or (hasattr(shape, "numpy") and not isinstance(shape, np.ndarray)):
        sv = static_value(shape)
        if sv is None:
            return apply_op("DynamicReshape", [x, convert_to_tensor(shape)], name=name)
        shape = sv
    if isinstance(shape, (list, tuple)) and any(isinstance(d, Tensor) for d in shape):
        from .core import convert_to_tensor as ct
        return apply_op("DynamicReshape", [x, ct(shape)], name=name)
    shape = tuple(int(d) for d in np.asarray(shape).reshape(-1))
    return apply_op("Reshape", [x], {"shape": shape}, name=name)


def reshape_like(x, like):
    if like.shape.is_fully_defined():
        return reshape(x, list(like.shape))
    return apply_op("ReshapeLike", [x, like])


def _transpose_infer(inputs, attrs):
    s = inputs[0].shape
    return [(None if s.ndims is None else tuple(s[p] for p in attrs["perm"]), inputs[0].dtype)]


register("Transpose", infer=_transpose_infer, views_input=True,
         kernel=lambda xp, a: (lambda x: xp.transpose(x, a["perm"])),
         grad=lambda op, g: [transpose(g, list(np.argsort(op.attrs["perm"])))])


def transpose(a, perm=None, name=None):
    x = convert_to_tensor(a)
    r = x.shape.ndims
    if perm is None:
        if r is None:
            raise InvalidArgumentError("transpose without perm needs a tensor of known rank")
        perm = list(range(r))[::-1]
    perm = tuple(int(p) for p in perm)
    if r is not None and sorted(perm) != list(range(r)):
        raise InvalidArgumentError(f"perm {perm} is not a permutation of rank {r}")
    return apply_op("Transpose", [x], {"perm": perm}, name=name)


def expand_dims(input, axis, name=None):
    x = convert_to_tensor(input)
    s = x.shape
    if s.ndims is None:
        raise InvalidArgumentError("expand_dims needs a tensor of known rank")
    axis = int(axis)
    if axis < 0:
        axis += s.ndims + 1
    new = list(s)
    new.insert(axis, 1)
    if s.is_fully_defined():
        return reshape(x, new, name=name)
    return apply_op("ExpandDims", [x], {"axis": axis}, name=name)


register("ExpandDims", infer=lambda i, a: [(tuple(list(i[0].shape)[:a["axis"]] + [1] + list(i[0].shape)[a["axis"]:]),
                                            i[0].dtype)],
         kernel=lambda xp, a: (lambda x: xp.expand_dims(x, a["axis"])), views_input=True,
         grad=lambda op, g: [reshape_like(g, op.inputs[0])])


def _squeeze_infer(inputs, attrs):
    s = inputs[0].shape
    if s.ndims is None:
        return [(None, inputs[0].dtype)]
    axes = attrs["axis"]
    if axes is None:
        if any(d is None for d in s):
            raise InvalidArgumentError(f"squeeze of shape {s} with unknown dims needs an explicit axis")
        return [(tuple(d for d in s if d != 1), inputs[0].dtype)]
    for a in axes:
        if s[a] not in (1, None):
            raise InvalidArgumentError(f"cannot squeeze dimension {a} of shape {s}: size is not 1")
    return [(tuple(d for i, d in enumerate(s) if i not in axes), inputs[0].dtype)]


register("Squeeze", infer=_squeeze_infer, views_input=True,
         kernel=lambda xp, a: (lambda x: xp.squeeze(x, axis=a["axis"])),
         grad=lambda op, g: [reshape_like(g, op.inputs[0])])


def squeeze(input, axis=None, name=None, squeeze_dims=None):
    x = convert_to_tensor(input)
    axis = axis if axis is not None else squeeze_dims
    axes = normalize_axes(axis, x.shape.ndims)
    return apply_op("Squeeze", [x], {"axis": axes}, name=name)


def _broadcast_to_infer(inputs, attrs):
    return [(attrs["shape"], inputs[0].dtype)]


register("BroadcastTo", infer=_broadcast_to_infer, views_input=True,
         kernel=lambda xp, a: (lambda x: xp.broadcast_to(x, a["shape"])),
         grad=lambda op, g: [unbroadcast(g, op.inputs[0])])


def broadcast_to(input, shape, name=None):
    return apply_op("BroadcastTo", [convert_to_tensor(input)], {"shape": tuple(int(d) for d in shape)}, name=name)


# -- concat / stack / split ---------------------------------------------------------------------------
def _concat_infer(inputs, attrs):
    shapes = [t.shape for t in inputs]
    if any(s.ndims is None for s in shapes):
        return [(None, inputs[0].dtype)]
    ax = attrs["axis"]
    out = list(shapes[0])
    for s in shapes[1:]:
        if len(s) != len(out):
            raise InvalidArgumentError(f"concat of tensors with ranks {[len(s) for s in shapes]}")
        for i, d in enumerate(s):
            if i != ax and out[i] is None:
                out[i] = d
            elif i != ax and d is not None and d != out[i]:
                raise InvalidArgumentError(f"concat along {ax}: shapes {[tuple(s) for s in shapes]} differ "
                                           f"in dimension {i}")
    sizes = [s[ax] for s in shapes]
    out[ax] = None if any(d is None for d in sizes) else sum(sizes)
    return [(tuple(out), inputs[0].dtype)]


def _concat_part_kernel(xp, a):
    i, ax = a["index"], a["axis"]

    def run(g, *xs):
        off = sum(x.shape[ax] for x in xs[:i])
        idx = [slice(None)] * g.ndim
        idx[ax] = slice(off, off + xs[i].shape[ax])
        return g[tuple(idx)]
    return run


def _concat_part_grad_kernel(xp, a):
    i, ax = a["index"], a["axis"]

    def run(gg, g, *xs):
        out = xp.zeros_like(g)
        off = sum(x.shape[ax] for x in xs[:i])
        idx = [slice(None)] * g.ndim
        idx[ax] = slice(off, off + xs[i].shape[ax])
        out[tuple(idx)] = gg
        return out
    return run


register("ConcatGradPart", infer=lambda i, a: [(i[1 + a["index"]].shape, i[0].dtype)], kernel=_concat_part_kernel,
         views_input=True,
         grad=lambda op, gg: [apply_op("ConcatGradPartGrad", [gg] + list(op.inputs), op.attrs)]
         + [None] * (len(op.inputs) - 1))
register("ConcatGradPartGrad", infer=lambda i, a: [(i[1].shape, i[0].dtype)], kernel=_concat_part_grad_kernel,
         grad=lambda op, g: [apply_op("ConcatGradPart", [g] + list(op.inputs[2:]), op.attrs)]
         + [None] * (len(op.inputs) - 1))


def _concat_grad(op, g):
    return [apply_op("ConcatGradPart", [g] + list(op.inputs), {"index": i, "axis": op.attrs["axis"]})
            for i in range(len(op.inputs))]


register("ConcatV2", infer=_concat_infer, kernel=lambda xp, a: (lambda *xs: xp.concatenate(xs, axis=a["axis"])),
         grad=_concat_grad)


def concat(values, axis, name="concat"):
    values = [convert_to_tensor(v) for v in values]
    if len(values) == 1:
        return values[0]
    r = values[0].shape.ndims
    axis = normalize_axes(axis, r)[0] if r is not None else int(axis)
    return apply_op("ConcatV2", values, {"axis": axis}, name=name)


def _stack_infer(inputs, attrs):
    s = inputs[0].shape
    if s.ndims is None:
        return [(None, inputs[0].dtype)]
    out = list(s)
    out.insert(attrs["axis"], len(inputs))
    return [(tuple(out), inputs[0].dtype)]


register("Pack", infer=_stack_infer, kernel=lambda xp, a: (lambda *xs: xp.stack(xs, axis=a["axis"])),
         grad=lambda op, g: unstack(g, num=len(op.inputs), axis=op.attrs["axis"]))


def stack(values, axis=0, name="stack"):
    values = [convert_to_tensor(v) for v in values]
    r = values[0].shape.ndims
    axis = int(axis)
    if axis < 0 and r is not None:
        axis += r + 1
    return apply_op("Pack", values, {"axis": axis}, name=name)


def _take_infer(inputs, attrs):
    s = inputs[0].shape
    return [(None if s.ndims is None else tuple(d for i, d in enumerate(s) if i != attrs["axis"]),
             inputs[0].dtype)]


register("TakeIndex", infer=_take_infer, views_input=True,
         kernel=lambda xp, a: (lambda x: xp.take(x, a["index"], axis=a["axis"])),
         grad=lambda op, g: [apply_op("TakeIndexGrad", [g, op.inputs[0]], op.attrs)])


def _take_grad_kernel(xp, a):
    def run(g, x):
        out = xp.zeros_like(x)
        idx = [slice(None)] * x.ndim
        idx[a["axis"]] = a["index"]
        out[tuple(idx)] = g
        return out
    return run


register("TakeIndexGrad", infer=lambda i, a: [(i[1].shape, i[0].dtype)], kernel=_take_grad_kernel,
         grad=lambda op, g: [take_along(g, op.attrs["index"], op.attrs["axis"]), None])


def take_along(x, index, axis):
    return apply_op("TakeIndex", [x], {"index": int(index), "axis": int(axis)})


def _unpack_infer(inputs, attrs):
    s, ax, n = inputs[0].shape, attrs["axis"], attrs["num"]
    shape = None if s.ndims is None else tuple(d for i, d in enumerate(s) if i != ax)
    return [(shape, inputs[0].dtype)] * n


def _unpack_kernel(xp, attrs):
    ax, n = attrs["axis"], attrs["num"]
    lead = (slice(None),) * ax
    return lambda x: tuple(x[lead + (i,)] for i in range(n))


def _split_infer(inputs, attrs):
    s, ax = inputs[0].shape, attrs["axis"]
    return [(None if s.ndims is None else tuple(size if i == ax else d for i, d in enumerate(s)), inputs[0].dtype)
            for size in attrs["sizes"]]


def _split_kernel(xp, attrs):
    ax = attrs["axis"]
    lead = (slice(None),) * ax
    bounds, start = [], 0
    for size in attrs["sizes"]:
        bounds.append(slice(start, start + size))
        start += size
    return lambda x: tuple(x[lead + (b,)] for b in bounds)


# All pieces come out of one op as views, and the gradient is one stack / concat of the pieces' gradients:
# slicing piece by piece would give each piece a zero-filled full-size gradient (quadratic in the count,
# e.g. the time steps of an RNN).
register("Unpack", infer=_unpack_infer, kernel=_unpack_kernel, views_input=True, num_outputs=2,
         grad=lambda op, *gs: [stack(list(gs), axis=op.attrs["axis"])])
register("SplitV", infer=_split_infer, kernel=_split_kernel, views_input=True, num_outputs=2,
         grad=lambda op, *gs: [concat(list(gs), axis=op.attrs["axis"])])


def unstack(value, num=None, axis=0, name="unstack"):
    """The slices of `value` along `axis` (its size must be known or given as `num`)."""
    x = convert_to_tensor(value)
    r = x.shape.ndims
    axis = normalize_axes(axis, r)[0]
    n = num if num is not None else x.shape[axis]
    if n is None:
        raise InvalidArgumentError(f"unstack of {getattr(x, 'name', 'a tensor')}: dimension {axis} is unknown; "
                                   "pass num")
    if n == 1:
        return [take_along(x, 0, axis)]
    return list(apply_op("Unpack", [x], {"axis": axis, "num": int(n)}, name=name))


def split(value, num_or_size_splits, axis=0, num=None, name="split"):
    """Split along `axis` into equal parts (an int) or parts of the given sizes (one -1 allowed)."""
    x = convert_to_tensor(value)
    axis = normalize_axes(axis, x.shape.ndims)[0]
    dim = x.shape[axis]
    if isinstance(num_or_size_splits, (int, np.integer)):
        n = int(num_or_size_splits)
        if dim is None:
            raise InvalidArgumentError(f"split into {n}: dimension {axis} is unknown")
        if dim % n:
            raise InvalidArgumentError(f"dimension {axis} of size {dim} does not split into {n} equal parts")
        sizes = [dim // n] * n
    else:
        sizes = [int(s) for s in num_or_size_splits]
        if -1 in sizes:
            if dim is None:
                raise InvalidArgumentError(f"split sizes {sizes} with -1 need dimension {axis} to be known")
            sizes[sizes.index(-1)] = dim - (sum(sizes) + 1)
    if dim is not None and sum(sizes) != dim:
        raise InvalidArgumentError(f"split sizes {sizes} do not add up to dimension {axis} of size {dim}")
    if len(sizes) == 1:
        return [x]
    return list(apply_op("SplitV", [x], {"axis": axis, "sizes": tuple(sizes)}, name=name))


# -- slicing ------------------------------------------------------------------------------------------------
def _normalize_key(key):
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if k is None or k is Ellipsis:
            out.append(k)
        elif isinstance(k, slice):
            vals = []
            for v in (k.start, k.stop, k.step):
                sv = static_value(v) if isinstance(v, Tensor) else v
                if isinstance(v, Tensor) and sv is None:
                    raise InvalidArgumentError("slice bounds must be Python ints or constant tensors")
                vals.append(None if sv is None else int(np.asarray(sv)))
            out.append(slice(*vals))
        else:
            sv = static_value(k) if isinstance(k, Tensor) else k
            if isinstance(k, Tensor) and sv is None:
                raise InvalidArgumentError("index tensors must be constant; use ke.gather for dynamic indices")
            if isinstance(sv, (list, np.ndarray)) and np.asarray(sv).ndim > 0:
                raise InvalidArgumentError("fancy indexing with lists is not supported; use ke.gather")
            out.append(int(np.asarray(sv)))
    return tuple(out)


def _slice_infer(inputs, attrs):
    s = inputs[0].shape
    if s.ndims is None:
        return [(None, inputs[0].dtype)]
    key = attrs["key"]
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_real > s.ndims:
        raise InvalidArgumentError(f"too many indices ({n_real}) for a tensor of rank {s.ndims}")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (s.ndims - n_real) + key[i + 1:]
    else:
        key = key + (slice(None),) * (s.ndims - n_real)
    out, dim = [], 0
    for k in key:
        if k is None:
            out.append(1)
            continue
        d = s[dim]
        if isinstance(k, slice):
            out.append(None if d is None else len(range(*k.indices(d))))
        elif d is not None and not -d <= k < d:
            raise InvalidArgumentError(f"index {k} is out of bounds for dimension {dim} of size {d}")
        dim += 1
    return [(tuple(out), inputs[0].dtype)]


def _slice_grad_kernel(xp, a):
    key = a["key"]

    def run(g, x):
        out = xp.zeros_like(x)
        out[key] = g
        return out
    return run


register("StridedSlice", infer=_slice_infer, views_input=True,
         kernel=lambda xp, a: (lambda x: x[a["key"]]),
         grad=lambda op, g: [apply_op("StridedSliceGrad", [g, op.inputs[0]], op.attrs)])
register("StridedSliceGrad", infer=lambda i, a: [(i[1].shape, i[0].dtype)], kernel=_slice_grad_kernel,
         grad=lambda op, g: [strided_slice(g, op.attrs["key"]), None])


def strided_slice(x, key, name=None):
    x = convert_to_tensor(x)
    return apply_op("StridedSlice", [x], {"key": _normalize_key(key)}, name=name)


def slice_(input_, begin, size, name=None):
    import builtins
    key = tuple(builtins.slice(int(b), None if int(s) == -1 else int(b) + int(s)) for b, s in zip(begin, size))
    return strided_slice(input_, key, name=name)


# -- gather / scatter ---------------------------------------------------------------------------------------
def _gather_infer(inputs, attrs):
    p, i = inputs[0].shape, inputs[1].shape
    if p.ndims is None or i.ndims is None:
        return [(None, inputs[0].dtype)]
    ax = attrs["axis"]
    return [(tuple(p[:ax]) + tuple(i) + tuple(p[ax + 1:]), inputs[0].dtype)]


def _gather_kernel(xp, a):
    ax = a["axis"]

    def run(params, indices):
        n = params.shape[ax]
        if indices.size and (indices.min() < -n or indices.max() >= n):
            bad = indices[(indices < -n) | (indices >= n)].reshape(-1)[0]
            raise InvalidArgumentError(f"gather index {bad} is out of range [0, {n}) along axis {ax}")
        return xp.take(params, indices, axis=ax)
    return run


def _gather_grad_kernel(xp, a):
    ax = a["axis"]

    def run(g, indices, params):
        out = xp.zeros(params.shape, dtype=g.dtype)
        moved = xp.moveaxis(out, ax, 0)
        gm = g.reshape(params.shape[:ax] + (indices.size,) + params.shape[ax + 1:])
        xp.add.at(moved, indices.reshape(-1), xp.moveaxis(gm, ax, 0))
        return out
    return run


register("GatherV2", infer=_gather_infer, kernel=_gather_kernel,
         grad=lambda op, g: [apply_op("GatherGrad", [g, op.inputs[1], op.inputs[0]], op.attrs), None])
register("GatherGrad", infer=lambda i, a: [(i[2].shape, i[0].dtype)], kernel=_gather_grad_kernel,
         grad=lambda op, g: [gather(g, op.inputs[1], axis=op.attrs["axis"]), None, None])


def gather(params, indices, axis=0, name=None, validate_indices=None):
    p = convert_to_tensor(params)
    i = convert_to_tensor(indices)
    if not i.dtype.is_integer:
        raise InvalidArgumentError(f"gather indices must be integers, got {i.dtype.name}")
    axis = normalize_axes(axis, p.shape.ndims)[0]
    return apply_op("GatherV2", [p, i], {"axis": axis}, name=name)


def _gather_nd_infer(inputs, attrs):
    p, i = inputs[0].shape, inputs[1].shape
    if p.ndims is None or i.ndims is None or i[-1] is None:
        return [(None, inputs[0].dtype)]
    return [(tuple(i[:-1]) + tuple(p[i[-1]:]), inputs[0].dtype)]


def _gather_nd_kernel(xp, a):
    def run(params, indices):
        return params[tuple(xp.moveaxis(indices, -1, 0))]
    return run


def _scatter_nd_kernel(xp, a):
    def run(indices, updates, shape):
        out = xp.zeros(tuple(int(d) for d in shape), dtype=updates.dtype)
        xp.add.at(out, tuple(xp.moveaxis(indices, -1, 0)), updates)
        return out
    return run


def _gather_nd_grad_kernel(xp, a):
    def run(g, indices, params):
        out = xp.zeros(params.shape, dtype=g.dtype)
        xp.add.at(out, tuple(xp.moveaxis(indices, -1, 0)), g)
        return out
    return run


register("GatherNd", infer=_gather_nd_infer, kernel=_gather_nd_kernel,
         grad=lambda op, g: [apply_op("GatherNdGrad", [g, op.inputs[1], op.inputs[0]]), None])
register("GatherNdGrad", infer=lambda i, a: [(i[2].shape, i[0].dtype)], kernel=_gather_nd_grad_kernel,
         grad=lambda op, g: [gather_nd(g, op.inputs[1]), None, None])


def gather_nd(params, indices, name=None):
    return apply_op("GatherNd", [convert_to_tensor(params), convert_to_tensor(indices)], name=name)


def _scatter_infer(inputs, attrs):
    sv = static_value(inputs[2])
    shp = tuple(int(d) for d in sv) if sv is not None else None
    return [(shp, inputs[1].dtype)]


register("ScatterNd", infer=_scatter_infer, kernel=_scatter_nd_kernel,
         grad=lambda op, g: [None, gather_nd(g, op.inputs[0]), None])


def scatter_nd(indices, updates, shape, name=None):
    """A zero tensor of `shape` with `updates` added at `indices` (duplicates add up)."""
    return apply_op("ScatterNd", [convert_to_tensor(indices), convert_to_tensor(updates),
                                  convert_to_tensor(shape, _dt.int64) if not isinstance(shape, Tensor) else shape],
                    name=name)


def _one_hot_infer(inputs, attrs):
    s = inputs[0].shape
    if s.ndims is None:
        return [(None, attrs["dtype"])]
    out = list(s)
    ax = attrs["axis"] if attrs["axis"] != -1 else len(out)
    out.insert(ax, attrs["depth"])
    return [(tuple(out), attrs["dtype"])]


def _one_hot_kernel(xp, a):
    depth, on, off, dt, ax = a["depth"], a["on_value"], a["off_value"], a["dtype"].np, a["axis"]

    def run(indices):
        eye = indices[..., None] == xp.arange(depth)
        out = xp.where(eye, dt.type(on), dt.type(off))
        return out if ax == -1 else xp.moveaxis(out, -1, ax)
    return run


register("OneHot", infer=_one_hot_infer, kernel=_one_hot_kernel, differentiable=False)


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype=None, name=None):
    i = convert_to_tensor(indices)
    dt = _dt.as_dtype(dtype) if dtype is not None else _dt.float32
    return apply_op("OneHot", [i], {"depth": int(depth), "on_value": 1 if on_value is None else on_value,
                                    "off_value": 0 if off_value is None else off_value,
                                    "axis": -1 if axis is None else int(axis), "dtype": dt}, name=name)


register("Where", infer=lambda i, a: [((None, i[0].shape.ndims), _dt.int64)],
         kernel=lambda xp, a: (lambda c: xp.argwhere(c).astype(np.int64)), differentiable=False)


def where_indices(condition, name=None):
    return apply_op("Where", [convert_to_tensor(condition, _dt.bool_)], name=name)


# -- tile / pad -----------------------------------------------------------------------------------------------
def _tile_infer(inputs, attrs):
    s = inputs[0].shape
    if s.ndims is None:
        return [(None, inputs[0].dtype)]
    return [(tuple(None if d is None else d * m for d, m in zip(s, attrs["multiples"])), inputs[0].dtype)]


def _tile_grad_kernel(xp, a):
    mult = a["multiples"]

    def run(g, x):
        shp = []
        for m, d in zip(mult, x.shape):
            shp += [m, d]
        return g.reshape(shp).sum(axis=tuple(range(0, 2 * len(mult), 2)))
    return run


register("Tile", infer=_tile_infer, kernel=lambda xp, a: (lambda x: xp.tile(x, a["multiples"])),
         grad=lambda op, g: [apply_op("TileGrad", [g, op.inputs[0]], op.attrs)])
register("TileGrad", infer=lambda i, a: [(i[1].shape, i[0].dtype)], kernel=_tile_grad_kernel,
         grad=lambda op, g: [tile(g, op.attrs["multiples"]), None])


def tile(input, multiples, name=None):
    x = convert_to_tensor(input)
    mult = tuple(int(m) for m in (static_value(multiples) if isinstance(multiples, Tensor) else multiples))
    if x.shape.ndims is not None and len(mult) != x.shape.ndims:
        raise InvalidArgumentError(f"tile multiples {mult} do not match rank {x.shape.ndims}")
    return apply_op("Tile", [x], {"multiples": mult}, name=name)


def _pad_infer(inputs, attrs):
    s = inputs[0].shape
    if s.ndims is None:
        return [(None, inputs[0].dtype)]
    return [(tuple(None if d is None else d + a + b for d, (a, b) in zip(s, attrs["paddings"])), inputs[0].dtype)]


def _pad_kernel(xp, a):
    mode = {"CONSTANT": "constant", "REFLECT": "reflect", "SYMMETRIC": "symmetric"}[a["mode"]]
    pads, cv = a["paddings"], a["constant_values"]
    if mode == "constant":
        return lambda x: xp.pad(x, pads, mode="constant", constant_values=cv)
    return lambda x: xp.pad(x, pads, mode=mode)


def _pad_grad(op, g):
    if op.attrs["mode"] != "CONSTANT":
        raise InvalidArgumentError("gradient of REFLECT/SYMMETRIC pad is not implemented")
    import builtins
    key = tuple(builtins.slice(a, -b if b else None) for a, b in op.attrs["paddings"])
    return [strided_slice(g, key)]


register("Pad", infer=_pad_infer, kernel=_pad_kernel, grad=_pad_grad)


def pad(tensor, paddings, mode="CONSTANT", constant_values=0, name=None):
    x = convert_to_tensor(tensor)
    pv = static_value(paddings) if isinstance(paddings, Tensor) else paddings
    pads = tuple((int(a), int(b)) for a, b in np.asarray(pv).reshape(-1, 2))
    mode = mode.upper()
    if mode not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
        raise InvalidArgumentError(f"pad mode {mode!r} is not one of CONSTANT, REFLECT, SYMMETRIC")
    return apply_op("Pad", [x], {"paddings": pads, "mode": mode, "constant_values": constant_values}, name=name)


def reverse(tensor, axis, name=None):
    import builtins
    x = convert_to_tensor(tensor)
    axes = normalize_axes(axis, x.shape.ndims)
    key = tuple(builtins.slice(None, None, -1) if i in axes else builtins.slice(None)
                for i in range(x.shape.ndims))
    return strided_slice(x, key, name=name)
