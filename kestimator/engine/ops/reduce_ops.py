"""Matrix products and reductions."""
import numpy as np

from ...errors import InvalidArgumentError
from .. import dtypes as _dt
from ..registry import apply_op, register
from .core import broadcast_static, cast, convert_to_tensor, normalize_axes
from .math_ops import divide, equal, multiply, unbroadcast


# -- matmul -----------------------------------------------------------------------------------------------
def _matmul_infer(inputs, attrs):
    a, b = inputs[0].shape, inputs[1].shape
    if a.ndims is None or b.ndims is None:
        return [(None, inputs[0].dtype)]
    if a.ndims < 2 or b.ndims < 2:
        raise InvalidArgumentError(f"matmul needs rank >= 2 operands, got shapes {a} and {b}")
    m, ka = (a[-1], a[-2]) if attrs["transpose_a"] else (a[-2], a[-1])
    kb, n = (b[-1], b[-2]) if attrs["transpose_b"] else (b[-2], b[-1])
    if ka is not None and kb is not None and ka != kb:
        raise InvalidArgumentError(f"matmul inner dimensions differ: {a} x {b} "
                                   f"(transpose_a={attrs['transpose_a']}, transpose_b={attrs['transpose_b']})")
    batch = broadcast_static(a[:-2], b[:-2])
    return [(tuple(batch) + (m, n), inputs[0].dtype)]


def _matmul_kernel(xp, attrs):
    ta, tb = attrs["transpose_a"], attrs["transpose_b"]
    mm = xp.matmul
    if not ta and not tb:
        return mm
    if ta and not tb:
        return lambda a, b, out=None: mm(xp.swapaxes(a, -1, -2), b, out=out)
    if tb and not ta:
        return lambda a, b, out=None: mm(a, xp.swapaxes(b, -1, -2), out=out)
    return lambda a, b, out=None: mm(xp.swapaxes(a, -1, -2), xp.swapaxes(b, -1, -2), out=out)


def _matmul_grad(op, g):
    a, b = op.inputs
    ta, tb = op.attrs["transpose_a"], op.attrs["transpose_b"]
    if not ta and not tb:
        ga, gb = matmul(g, b, transpose_b=True), matmul(a, g, transpose_a=True)
    elif not ta and tb:
        ga, gb = matmul(g, b), matmul(g, a, transpose_a=True)
    elif ta and not tb:
        ga, gb = matmul(b, g, transpose_b=True), matmul(a, g)
    else:
        ga, gb = matmul(b, g, transpose_a=True, transpose_b=True), matmul(g, a, transpose_a=True,
                                                                          transpose_b=True)
    if a.shape.ndims == 2 and b.shape.ndims == 2:
        return [ga, gb]
    return [unbroadcast(ga, a), unbroadcast(gb, b)]


register("MatMul", infer=_matmul_infer, kernel=_matmul_kernel, grad=_matmul_grad, out_arg=True)


def matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False, name=None):
    """Matrix product of the last two dimensions, batched over the leading ones (broadcast)."""
    from .math_ops import _binary_args
    a, b = _binary_args(a, b)
    return apply_op("MatMul", [a, b], {"transpose_a": bool(transpose_a or adjoint_a),
                                       "transpose_b": bool(transpose_b or adjoint_b)}, name=name)


def tensordot(a, b, axes, name=None):
    """Sum over `axes` of a and b, composed from transpose, reshape and matmul."""
    from .array_ops import reshape, transpose
    from .math_ops import _binary_args
    a, b = _binary_args(a, b)
    ra, rb = a.shape.ndims, b.shape.ndims
    if ra is None or rb is None:
        raise InvalidArgumentError("tensordot needs inputs of known rank")
    if isinstance(axes, (int, np.integer)):
        ax_a, ax_b = list(range(ra - axes, ra)), list(range(axes))
    else:
        ax_a, ax_b = [list(normalize_axes(x, r)) for x, r in zip(axes, (ra, rb))]
    free_a = [i for i in range(ra) if i not in ax_a]
    free_b = [i for i in range(rb) if i not in ax_b]
    sa, sb = a.shape, b.shape
    if any(sa[i] is None for i in ax_a) or any(sb[i] is None for i in ax_b):
        raise InvalidArgumentError("tensordot needs known sizes on the contracted axes")
    k = int(np.prod([sa[i] for i in ax_a]))
    at = reshape(transpose(a, free_a + ax_a), [-1, k])
    bt = reshape(transpose(b, ax_b + free_b), [k, -1])
    out_shape = [sa[i] if sa[i] is not None else -1 for i in free_a] + \
                [sb[i] if sb[i] is not None else -1 for i in free_b]
    return reshape(matmul(at, bt), out_shape, name=name)


# -- reductions -------------------------------------------------------------------------------------------
def _reduced_shape(shape, axes, keepdims):
    if shape.ndims is None:
        return None
    if axes is None:
        return (1,) * shape.ndims if keepdims else ()
    return tuple((1 if keepdims else None) if i in axes else d for i, d in enumerate(shape)
                 if keepdims or i not in axes)


def _reduce_infer(out_dtype=None):
    def infer(inputs, attrs):
        return [(_reduced_shape(inputs[0].shape, attrs["axis"], attrs["keepdims"]),
                 out_dtype or inputs[0].dtype)]
    return infer


def _keep_shape(x_shape, axes):
    return tuple(1 if (axes is None or i in axes) else d for i, d in enumerate(x_shape))


def _sum_grad_kernel(xp, a):
    axes, scale = a["axis"], a.get("mean", False)

    def run(g, x):
        g = g.reshape(_keep_shape(x.shape, axes))
        if scale:
            g = g / max(x.size // max(g.size, 1), 1)
        return xp.broadcast_to(g, x.shape)
    return run


def _sum_grad_grad(op, gg):
    reduce = reduce_mean if op.attrs.get("mean") else reduce_sum
    return [reduce(gg, axis=op.attrs["axis"], keepdims=op.attrs["keepdims"]), None]


register("SumGrad", infer=lambda i, a: [(i[1].shape, i[0].dtype)], kernel=_sum_grad_kernel,
         grad=_sum_grad_grad, views_input=True)


def _reduce_kernel(fn_name):
    def kernel(xp, a):
        f = getattr(xp, fn_name)
        axis, keep = a["axis"], a["keepdims"]
        return lambda x, out=None: f(x, axis=axis, keepdims=keep, out=out)
    return kernel


def _sum_grad(op, g):
    return [apply_op("SumGrad", [g, op.inputs[0]], dict(op.attrs, mean=False))]


def _mean_grad(op, g):
    return [apply_op("SumGrad", [g, op.inputs[0]], dict(op.attrs, mean=True))]


def _extreme_grad(op, g):
    x, y = op.inputs[0], op.outputs[0]
    attrs = dict(op.attrs, mean=False)
    yb = apply_op("SumGrad", [y, x], attrs)
    mask = cast(equal(x, yb), g.dtype)
    count = apply_op("SumGrad", [reduce_sum(mask, axis=op.attrs["axis"], keepdims=op.attrs["keepdims"]), x],
                     attrs)
    return [multiply(divide(mask, count), apply_op("SumGrad", [g, x], attrs))]


def _prod_grad(op, g):
    x, y = op.inputs[0], op.outputs[0]
    attrs = dict(op.attrs, mean=False)
    # d prod / d x_i = prod / x_i (inputs with zeros are not supported by this rule, as in many frameworks)
    return [multiply(apply_op("SumGrad", [multiply(g, y), x], attrs), divide(1.0, x))]


register("Sum", infer=_reduce_infer(), kernel=_reduce_kernel("sum"), grad=_sum_grad, out_arg=True)
register("Mean", infer=_reduce_infer(), kernel=_reduce_kernel("mean"), grad=_mean_grad, out_arg=True)
register("Max", infer=_reduce_infer(), kernel=_reduce_kernel("max"), grad=_extreme_grad, out_arg=True)
register("Min", infer=_reduce_infer(), kernel=_reduce_kernel("min"), grad=_extreme_grad, out_arg=True)
register("Prod", infer=_reduce_infer(), kernel=_reduce_kernel("prod"), grad=_prod_grad, out_arg=True)
register("All", infer=_reduce_infer(), kernel=_reduce_kernel("all"), differentiable=False)
register("Any", infer=_reduce_infer(), kernel=_reduce_kernel("any"), differentiable=False)


def _reduction(op_type, bool_input=False):
    def fn(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None, keep_dims=None):
        x = convert_to_tensor(input_tensor, _dt.bool_ if bool_input else None)
        if axis is None:
            axis = reduction_indices
        if keep_dims is not None:
            keepdims = keep_dims
        axes = normalize_axes(axis, x.shape.ndims)
        if axes is not None:
            from ..registry import static_value
            axes = tuple(sorted(set(axes)))
        return apply_op(op_type, [x], {"axis": axes, "keepdims": bool(keepdims)}, name=name)
    fn.__name__ = "reduce_" + op_type.lower()
    return fn


reduce_sum = _reduction("Sum")
reduce_mean = _reduction("Mean")
reduce_max = _reduction("Max")
reduce_min = _reduction("Min")
reduce_prod = _reduction("Prod")
reduce_all = _reduction("All", True)
reduce_any = _reduction("Any", True)


def reduce_logsumexp(input_tensor, axis=None, keepdims=False, name=None):
    from .core import stop_gradient
    from .math_ops import exp, log, subtract, add
    from .array_ops import reshape
    x = convert_to_tensor(input_tensor)
    m = stop_gradient(reduce_max(x, axis=axis, keepdims=True))
    s = log(reduce_sum(exp(subtract(x, m)), axis=axis, keepdims=True))
    out = add(s, m)
    if not keepdims:
        axes = normalize_axes(axis, x.shape.ndims)
        out = apply_op("Squeeze", [out], {"axis": axes if axes is not None else tuple(range(x.shape.ndims))},
                       name=name)
    return out


def _arg_infer(inputs, attrs):
    s = inputs[0].shape
    if s.ndims is None:
        return [(None, attrs["output_type"])]
    return [(tuple(d for i, d in enumerate(s) if i != attrs["axis"]), attrs["output_type"])]


register("ArgMax", infer=_arg_infer, differentiable=False,
         kernel=lambda xp, a: (lambda x: xp.argmax(x, axis=a["axis"]).astype(a["output_type"].np, copy=False)))
register("ArgMin", infer=_arg_infer, differentiable=False,
         kernel=lambda xp, a: (lambda x: xp.argmin(x, axis=a["axis"]).astype(a["output_type"].np, copy=False)))


def argmax(input, axis=None, name=None, dimension=None, output_type=_dt.int64):
    x = convert_to_tensor(input)
    axis = axis if axis is not None else (dimension if dimension is not None else 0)
    axis = normalize_axes(axis, x.shape.ndims)[0]
    return apply_op("ArgMax", [x], {"axis": axis, "output_type": _dt.as_dtype(output_type)}, name=name)


def argmin(input, axis=None, name=None, dimension=None, output_type=_dt.int64):
    x = convert_to_tensor(input)
    axis = axis if axis is not None else (dimension if dimension is not None else 0)
    axis = normalize_axes(axis, x.shape.ndims)[0]
    return apply_op("ArgMin", [x], {"axis": axis, "output_type": _dt.as_dtype(output_type)}, name=name)
