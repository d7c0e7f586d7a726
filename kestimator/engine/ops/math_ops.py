"""Elementwise arithmetic, comparisons, logic and activations, with their gradient rules."""
import numpy as np

from ...errors import InvalidArgumentError
from .. import dtypes as _dt
from ..graph import Tensor
from ..registry import apply_op, register
from .core import broadcast_static, cast, convert_to_tensor, same_as_input


def _binary_args(x, y):
    """Convert operands; a Python scalar or list adopts the dtype of the tensor it meets (as in TF)."""
    xt = hasattr(x, "dtype") and not isinstance(x, np.ndarray) and not isinstance(x, np.generic)
    yt = hasattr(y, "dtype") and not isinstance(y, np.ndarray) and not isinstance(y, np.generic)
    if xt and not yt:
        x = convert_to_tensor(x)
        y = convert_to_tensor(y, dtype=x.dtype)
    elif yt and not xt:
        y = convert_to_tensor(y)
        x = convert_to_tensor(x, dtype=y.dtype)
    else:
        x, y = convert_to_tensor(x), convert_to_tensor(y)
    if x.dtype != y.dtype:
        raise InvalidArgumentError(
            f"operands have different dtypes: {x.dtype.name} ({getattr(x, 'name', 'value')}) and "
            f"{y.dtype.name} ({getattr(y, 'name', 'value')}); cast one with ke.cast")
    return x, y


def _binary_infer(out_dtype=None):
    def infer(inputs, attrs):
        return [(broadcast_static(inputs[0].shape, inputs[1].shape), out_dtype or inputs[0].dtype)]
    return infer


def unbroadcast(g, x, other=None):
    """Sum gradient `g` down to the shape of input `x` (undoing NumPy broadcasting).

    `other` is the static shape of the operand(s) `x` was broadcast against; with it, the axes to sum
    are usually known when the graph is built even with unknown batch sizes, so no runtime op is needed.
    """
    if g is None:
        return None
    gs, xs = g.shape, x.shape
    if gs.ndims is None or xs.ndims is None:
        return apply_op("SumToShapeOf", [g, x])
    if gs.is_fully_defined() and tuple(gs) == tuple(xs):
        return g
    others = [o for o in (other or []) if o is not None]
    if any(o.ndims is None for o in others):
        return apply_op("SumToShapeOf", [g, x])
    lead = gs.ndims - xs.ndims
    axes = list(range(lead))
    for i, d in enumerate(xs):
        pos = gs.ndims - xs.ndims + i
        odims = [o[pos - (gs.ndims - o.ndims)] for o in others if pos - (gs.ndims - o.ndims) >= 0]
        if d == 1:
            if gs[pos] != 1:
                axes.append(pos)
        elif d is None:
            if any(od != 1 for od in odims) or not others:
                return apply_op("SumToShapeOf", [g, x])   # x's dim may be 1 at run time: decide then
    if not axes:
        return g
    from .reduce_ops import reduce_sum
    inner = [a for a in axes if a >= lead]
    r = reduce_sum(g, axis=axes, keepdims=False) if not inner else reduce_sum(g, axis=axes, keepdims=True)
    if inner:
        if xs.is_fully_defined():
            return reshape_to(r, tuple(xs))
        return apply_op("ReshapeLike", [r, x])
    return r


def reshape_to(t, shape):
    from .array_ops import reshape
    return reshape(t, list(shape))


def _sum_to_shape(g, x):
    if g.shape == x.shape:
        return g
    lead = g.ndim - x.ndim
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(x.shape) if d == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes).reshape(x.shape) if axes else g.reshape(x.shape)


register("SumToShapeOf", infer=lambda i, a: [(i[1].shape, i[0].dtype)],
         kernel=lambda xp, a: _sum_to_shape,
         grad=lambda op, g: [apply_op("BroadcastToShapeOf", [g, op.inputs[0]]), None])
register("BroadcastToShapeOf", infer=lambda i, a: [(i[1].shape, i[0].dtype)],
         kernel=lambda xp, a: (lambda x, like: xp.broadcast_to(x, like.shape)), views_input=True,
         grad=lambda op, g: [apply_op("SumToShapeOf", [g, op.inputs[0]]), None])


# -- binary arithmetic ---------------------------------------------------------------------------------
def _grad_add(op, g):
    x, y = op.inputs
    return [unbroadcast(g, x, [y.shape]), unbroadcast(g, y, [x.shape])]


def _grad_sub(op, g):
    x, y = op.inputs
    return [unbroadcast(g, x, [y.shape]), unbroadcast(negative(g), y, [x.shape])]


def _grad_mul(op, g):
    x, y = op.inputs
    return [unbroadcast(multiply(g, y), x, [y.shape]), unbroadcast(multiply(g, x), y, [x.shape])]


def _grad_div(op, g):
    x, y = op.inputs
    return [unbroadcast(divide(g, y), x, [y.shape]),
            unbroadcast(negative(multiply(g, divide(op.outputs[0], y))), y, [x.shape])]


def _grad_pow(op, g):
    x, y = op.inputs
    z = op.outputs[0]
    gx = multiply(g, multiply(y, pow(x, subtract(y, 1))))
    safe_log = where(greater(x, 0), log(where(greater(x, 0), x, ones_like_(x))), zeros_like_(x))
    gy = multiply(g, multiply(z, safe_log))
    return [unbroadcast(gx, x), unbroadcast(gy, y)]


def _grad_maxmin(cmp):
    def grad(op, g):
        x, y = op.inputs
        mask = cmp(x, y)
        zeros = zeros_like_(g)
        return [unbroadcast(where(mask, g, zeros), x), unbroadcast(where(mask, zeros, g), y)]
    return grad


def _grad_sqdiff(op, g):
    x, y = op.inputs
    d = multiply(multiply(g, 2.0), subtract(x, y))
    return [unbroadcast(d, x), unbroadcast(negative(d), y)]


def ones_like_(x):
    from .core import ones_like
    return ones_like(x)


def zeros_like_(x):
    from .core import zeros_like
    return zeros_like(x)


_BINARY = [
    ("Add", lambda xp: xp.add, _grad_add),
    ("Sub", lambda xp: xp.subtract, _grad_sub),
    ("Mul", lambda xp: xp.multiply, _grad_mul),
    ("RealDiv", lambda xp: xp.true_divide, _grad_div),
    ("Pow", lambda xp: xp.power, _grad_pow),
    ("Maximum", lambda xp: xp.maximum, _grad_maxmin(lambda x, y: greater_equal(x, y))),
    ("Minimum", lambda xp: xp.minimum, _grad_maxmin(lambda x, y: less_equal(x, y))),
    ("SquaredDifference", lambda xp: (lambda x, y, out=None: xp.square(xp.subtract(x, y, out=out), out=out)),
     _grad_sqdiff),
    ("FloorDiv", lambda xp: xp.floor_divide, None),
    ("FloorMod", lambda xp: xp.mod, None),
]
for _name, _k, _g in _BINARY:
    register(_name, infer=_binary_infer(), kernel=(lambda k: lambda xp, a: k(xp))(_k), grad=_g,
             out_arg=True, elementwise=True, differentiable=_g is not None)

_COMPARE = [("Equal", "equal"), ("NotEqual", "not_equal"), ("Less", "less"), ("LessEqual", "less_equal"),
            ("Greater", "greater"), ("GreaterEqual", "greater_equal"), ("LogicalAnd", "logical_and"),
            ("LogicalOr", "logical_or"), ("LogicalXor", "logical_xor")]
for _name, _fn in _COMPARE:
    register(_name, infer=_binary_infer(_dt.bool_), kernel=(lambda f: lambda xp, a: getattr(xp, f))(_fn),
             out_arg=True, differentiable=False)


def _binary(op_type):
    def fn(x, y, name=None):
        x, y = _binary_args(x, y)
        return apply_op(op_type, [x, y], name=name)
    fn.__name__ = op_type
    return fn


add = _binary("Add")
subtract = _binary("Sub")
multiply = _binary("Mul")
maximum = _binary("Maximum")
minimum = _binary("Minimum")
squared_difference = _binary("SquaredDifference")
floordiv = _binary("FloorDiv")
floormod = mod = _binary("FloorMod")
equal = _binary("Equal")
not_equal = _binary("NotEqual")
less = _binary("Less")
less_equal = _binary("LessEqual")
greater = _binary("Greater")
greater_equal = _binary("GreaterEqual")
_pow = _binary("Pow")


def divide(x, y, name=None):
    x, y = _binary_args(x, y)
    if not x.dtype.is_floating:
        x, y = cast(x, _dt.float64), cast(y, _dt.float64)
    return apply_op("RealDiv", [x, y], name=name)


truediv = realdiv = div = divide


def pow(x, y, name=None):
    return _pow(x, y, name=name)


def _logical(op_type):
    def fn(x, y, name=None):
        x, y = convert_to_tensor(x, _dt.bool_), convert_to_tensor(y, _dt.bool_)
        return apply_op(op_type, [x, y], name=name)
    return fn


logical_and = _logical("LogicalAnd")
logical_or = _logical("LogicalOr")
logical_xor = _logical("LogicalXor")
register("LogicalNot", infer=same_as_input(), kernel=lambda xp, a: xp.logical_not, out_arg=True,
         differentiable=False)


def logical_not(x, name=None):
    return apply_op("LogicalNot", [convert_to_tensor(x, _dt.bool_)], name=name)


def _add_n_kernel(xp, a):
    def run(*xs, out=None):
        if out is None:
            out = xs[0] + xs[1]
            rest = xs[2:]
        else:
            # The plan may reuse one input's buffer as `out`: accumulate onto that input first.
            first = next((i for i, x in enumerate(xs) if x is out), None)
            if first is None:
                xp.add(xs[0], xs[1], out=out)
                rest = xs[2:]
            else:
                rest = xs[:first] + xs[first + 1:]
        for x in rest:
            xp.add(out, x, out=out)
        return out
    return run


register("AddN", infer=lambda i, a: [(broadcast_static(*[t.shape for t in i]), i[0].dtype)],
         kernel=_add_n_kernel, grad=lambda op, g: [g] * len(op.inputs), out_arg=True, elementwise=True)


def add_n(inputs, name=None):
    inputs = [convert_to_tensor(i) for i in inputs]
    if len(inputs) == 1:
        return inputs[0]
    return apply_op("AddN", inputs, name=name)


# -- where --------------------------------------------------------------------------------------------
def _select_infer(inputs, attrs):
    return [(broadcast_static(*[t.shape for t in inputs]), inputs[1].dtype)]


def _grad_select(op, g):
    c, x, y = op.inputs
    z = zeros_like_(g)
    return [None, unbroadcast(where(c, g, z), x), unbroadcast(where(c, z, g), y)]


register("Select", infer=_select_infer, kernel=lambda xp, a: xp.where, grad=_grad_select)


def where(condition, x=None, y=None, name=None):
    """Elementwise choice between `x` and `y`; with only `condition`, the indices of true elements."""
    if x is None and y is None:
        from .array_ops import where_indices
        return where_indices(condition, name=name)
    c = convert_to_tensor(condition, _dt.bool_)
    x, y = _binary_args(x, y)
    return apply_op("Select", [c, x, y], name=name)


where_v2 = where


# -- unary ops ------------------------------------------------------------------------------------------
def _sigmoid_kernel(xp, a):
    def run(x, out=None):   # 0.5 * (1 + tanh(x / 2)): no overflow for large |x|
        out = xp.multiply(x, 0.5, out=out)
        xp.tanh(out, out=out)
        out += 1.0
        out *= 0.5
        return out
    return run


def _relu_kernel(xp, a):
    return lambda x, out=None: xp.maximum(x, 0, out=out)


def _relu_grad_kernel(xp, a):
    return lambda g, y, out=None: xp.multiply(g, y > 0, out=out)


register("ReluGrad", infer=lambda i, a: [(i[0].shape, i[0].dtype)], kernel=_relu_grad_kernel, out_arg=True,
         elementwise=True, grad=lambda op, gg: [apply_op("ReluGrad", [gg, op.inputs[1]]), None])


def _relu6_kernel(xp, a):
    return lambda x, out=None: xp.clip(x, 0, 6, out=out)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _selu_kernel(xp, a):
    def run(x):
        return _SELU_SCALE * xp.where(x > 0, x, _SELU_ALPHA * xp.expm1(xp.minimum(x, 0)))
    return run


def erf(xp, x):
    """erf to float64 precision, vectorized (NumPy has no erf).

    |x| < 2.5: the Maclaurin series (40 terms; the alternating terms peak near 20 at the edge, so about
    1e-15 absolute error); beyond: erfc from its continued fraction
    erfc(z) = exp(-z^2) / sqrt(pi) / (z + (1/2) / (z + 1 / (z + (3/2) / (z + ...)))), 60 levels deep.
    """
    x64 = x.astype(np.float64, copy=False)
    a = xp.abs(x64)
    small = a < 2.5
    xs = xp.where(small, x64, 0.0)
    x2 = xs * xs
    term = xs.copy()
    total = xs.copy()
    for n in range(1, 40):
        term = term * (-x2) / n
        total += term / (2 * n + 1)
    series = total * (2.0 / np.sqrt(np.pi))
    z = xp.where(small, 2.5, a)
    tail = xp.zeros_like(z)
    for k in range(60, 0, -1):
        tail = (k / 2.0) / (z + tail)
    erfc = xp.exp(-z * z) / np.sqrt(np.pi) / (z + tail)
    return xp.where(small, series, xp.sign(x64) * (1.0 - erfc))


def _gelu_kernel(xp, a):
    if a.get("approximate"):
        c = np.sqrt(2.0 / np.pi)
        return lambda x: 0.5 * x * (1.0 + xp.tanh(c * (x + 0.044715 * x ** 3)))
    return lambda x: (0.5 * x * (1.0 + erf(xp, x / np.sqrt(2.0)))).astype(x.dtype, copy=False)


def _grad_gelu(op, g):
    x = op.inputs[0]
    if op.attrs.get("approximate"):
        c = float(np.sqrt(2.0 / np.pi))
        inner = multiply(add(x, multiply(pow(x, 3.0), 0.044715)), c)
        th = tanh(inner)
        d_inner = multiply(add(multiply(square(x), 3 * 0.044715), 1.0), c)
        d = add(multiply(add(th, 1.0), 0.5), multiply(multiply(multiply(x, 0.5), subtract(1.0, square(th))),
                                                      d_inner))
        return [multiply(g, d)]
    cdf = multiply(add(apply_op("Erf", [multiply(x, float(1 / np.sqrt(2.0)))]), 1.0), 0.5)
    pdf = multiply(exp(multiply(square(x), -0.5)), float(1 / np.sqrt(2 * np.pi)))
    return [multiply(g, add(cdf, multiply(x, pdf)))]


register("Erf", infer=same_as_input(), kernel=lambda xp, a: (lambda x: erf(xp, x).astype(x.dtype, copy=False)),
         grad=lambda op, g: [multiply(g, multiply(exp(negative(square(op.inputs[0]))),
                                                  float(2 / np.sqrt(np.pi))))], elementwise=True)


def _softplus_kernel(xp, a):
    return lambda x, out=None: xp.logaddexp(x, 0, out=out)


def _leaky_kernel(xp, a):
    alpha = a["alpha"]
    return lambda x: xp.where(x > 0, x, x * alpha).astype(x.dtype, copy=False)


def _unary_grads():
    one = 1.0
    return {
        "Neg": lambda op, g: [negative(g)],
        "Exp": lambda op, g: [multiply(g, op.outputs[0])],
        "Expm1": lambda op, g: [multiply(g, add(op.outputs[0], one))],
        "Log": lambda op, g: [divide(g, op.inputs[0])],
        "Log1p": lambda op, g: [divide(g, add(op.inputs[0], one))],
        "Sqrt": lambda op, g: [divide(multiply(g, 0.5), op.outputs[0])],
        "Rsqrt": lambda op, g: [multiply(multiply(g, -0.5), pow(op.outputs[0], 3.0))],
        "Square": lambda op, g: [multiply(g, multiply(op.inputs[0], 2.0))],
        "Abs": lambda op, g: [multiply(g, sign(op.inputs[0]))],
        "Reciprocal": lambda op, g: [negative(multiply(g, square(op.outputs[0])))],
        "Sin": lambda op, g: [multiply(g, cos(op.inputs[0]))],
        "Cos": lambda op, g: [negative(multiply(g, sin(op.inputs[0])))],
        "Tanh": lambda op, g: [multiply(g, subtract(one, square(op.outputs[0])))],
        "Sigmoid": lambda op, g: [multiply(g, multiply(op.outputs[0], subtract(one, op.outputs[0])))],
        "Relu": lambda op, g: [apply_op("ReluGrad", [g, op.outputs[0]])],
        "Relu6": lambda op, g: [where(logical_and(greater(op.inputs[0], 0.0), less(op.inputs[0], 6.0)), g,
                                      zeros_like_(g))],
        "Elu": lambda op, g: [where(greater(op.inputs[0], 0.0), g, multiply(g, add(op.outputs[0], one)))],
        "Selu": lambda op, g: [where(greater(op.inputs[0], 0.0), multiply(g, _SELU_SCALE),
                                     multiply(g, add(op.outputs[0], _SELU_SCALE * _SELU_ALPHA)))],
        "Softplus": lambda op, g: [multiply(g, sigmoid(op.inputs[0]))],
        "Softsign": lambda op, g: [divide(g, square(add(abs(op.inputs[0]), one)))],
        "Gelu": _grad_gelu,
        "LeakyRelu": lambda op, g: [where(greater(op.inputs[0], 0.0), g, multiply(g, op.attrs["alpha"]))],
    }


_UNARY = {
    "Neg": lambda xp, a: xp.negative, "Exp": lambda xp, a: xp.exp, "Expm1": lambda xp, a: xp.expm1,
    "Log": lambda xp, a: xp.log, "Log1p": lambda xp, a: xp.log1p, "Sqrt": lambda xp, a: xp.sqrt,
    "Rsqrt": lambda xp, a: (lambda x, out=None: xp.divide(1.0, xp.sqrt(x, out=out), out=out)),
    "Square": lambda xp, a: xp.square, "Abs": lambda xp, a: xp.abs, "Sign": lambda xp, a: xp.sign,
    "Reciprocal": lambda xp, a: xp.reciprocal, "Sin": lambda xp, a: xp.sin, "Cos": lambda xp, a: xp.cos,
    "Floor": lambda xp, a: xp.floor, "Ceil": lambda xp, a: xp.ceil, "Round": lambda xp, a: xp.rint,
    "Tanh": lambda xp, a: xp.tanh, "Sigmoid": _sigmoid_kernel, "Relu": _relu_kernel, "Relu6": _relu6_kernel,
    "Softplus": _softplus_kernel,
    "Softsign": lambda xp, a: (lambda x: x / (1.0 + xp.abs(x))),
    "IsNan": lambda xp, a: xp.isnan, "IsInf": lambda xp, a: xp.isinf, "IsFinite": lambda xp, a: xp.isfinite,
}
_NO_OUT = {"Softsign"}
_grads = _unary_grads()
for _name, _k in _UNARY.items():
    _bool = _name in ("IsNan", "IsInf", "IsFinite")
    register(_name, infer=same_as_input(dtype=_dt.bool_ if _bool else None), kernel=_k, grad=_grads.get(_name),
             out_arg=_name not in _NO_OUT, elementwise=True,
             differentiable=False if _name in ("Sign", "Floor", "Ceil", "Round") or _bool else None)
register("Elu", infer=same_as_input(), kernel=lambda xp, a: (lambda x: xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)))),
         grad=_grads["Elu"], elementwise=True)
register("Selu", infer=same_as_input(), kernel=_selu_kernel, grad=_grads["Selu"], elementwise=True)
register("Gelu", infer=same_as_input(), kernel=_gelu_kernel, grad=_grads["Gelu"], elementwise=True)
register("LeakyRelu", infer=same_as_input(), kernel=_leaky_kernel, grad=_grads["LeakyRelu"], elementwise=True)


def _unary(op_type, float_only=False):
    def fn(x, name=None):
        x = convert_to_tensor(x)
        if float_only and not x.dtype.is_floating:
            raise InvalidArgumentError(f"{op_type} needs a floating-point input; got {x.dtype.name} "
                                       f"({getattr(x, 'name', 'value')})")
        return apply_op(op_type, [x], name=name)
    fn.__name__ = op_type.lower()
    return fn


negative = neg = _unary("Neg")
exp = _unary("Exp", True)
expm1 = _unary("Expm1", True)
log = _unary("Log", True)
log1p = _unary("Log1p", True)
sqrt = _unary("Sqrt", True)
rsqrt = _unary("Rsqrt", True)
square = _unary("Square")
abs = _unary("Abs")
sign = _unary("Sign")
reciprocal = _unary("Reciprocal", True)
sin = _unary("Sin", True)
cos = _unary("Cos", True)
floor = _unary("Floor")
ceil = _unary("Ceil")
round = _unary("Round")
tanh = _unary("Tanh", True)
sigmoid = _unary("Sigmoid", True)
relu = _unary("Relu")
relu6 = _unary("Relu6")
elu = _unary("Elu", True)
selu = _unary("Selu", True)
softplus = _unary("Softplus", True)
softsign = _unary("Softsign", True)
is_nan = _unary("IsNan")
is_inf = _unary("IsInf")
is_finite = _unary("IsFinite")
erf_op = _unary("Erf", True)


def gelu(x, approximate=False, name=None):
    return apply_op("Gelu", [convert_to_tensor(x)], {"approximate": bool(approximate)}, name=name)


def leaky_relu(x, alpha=0.2, name=None):
    return apply_op("LeakyRelu", [convert_to_tensor(x)], {"alpha": float(alpha)}, name=name)


def swish(x, name=None):
    x = convert_to_tensor(x)
    return multiply(x, sigmoid(x), name=name)


silu = swish
