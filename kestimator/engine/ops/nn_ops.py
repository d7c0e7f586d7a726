"""Neural-network ops: softmax family, fused cross-entropies, bias_add, moments, l2_loss."""
import numpy as np

from ...errors import InvalidArgumentError
from .. import dtypes as _dt
from ..registry import apply_op, register
from .core import cast, convert_to_tensor, normalize_axes, same_as_input
from .math_ops import (abs, add, exp, log1p, maximum, multiply, negative, subtract, unbroadcast)
from .reduce_ops import reduce_mean, reduce_sum


def _softmax_kernel(xp, a):
    ax = a["axis"]

    def run(x, out=None):
        m = x.max(axis=ax, keepdims=True)
        out = xp.subtract(x, m, out=out)
        xp.exp(out, out=out)
        out /= out.sum(axis=ax, keepdims=True)
        return out
    return run


def _log_softmax_kernel(xp, a):
    ax = a["axis"]

    def run(x, out=None):
        out = xp.subtract(x, x.max(axis=ax, keepdims=True), out=out)
        out -= xp.log(xp.exp(out).sum(axis=ax, keepdims=True))
        return out
    return run


def _softmax_grad(op, g):
    y, ax = op.outputs[0], op.attrs["axis"]
    return [multiply(y, subtract(g, reduce_sum(multiply(g, y), axis=ax, keepdims=True)))]


def _log_softmax_grad(op, g):
    y, ax = op.outputs[0], op.attrs["axis"]
    return [subtract(g, multiply(exp(y), reduce_sum(g, axis=ax, keepdims=True)))]


register("Softmax", infer=same_as_input(), kernel=_softmax_kernel, grad=_softmax_grad, out_arg=True)
register("LogSoftmax", infer=same_as_input(), kernel=_log_softmax_kernel, grad=_log_softmax_grad, out_arg=True)


def softmax(logits, axis=-1, name=None):
    x = convert_to_tensor(logits)
    return apply_op("Softmax", [x], {"axis": normalize_axes(axis, x.shape.ndims)[0]
                                     if x.shape.ndims is not None else int(axis)}, name=name)


def log_softmax(logits, axis=-1, name=None):
    x = convert_to_tensor(logits)
    return apply_op("LogSoftmax", [x], {"axis": normalize_axes(axis, x.shape.ndims)[0]
                                        if x.shape.ndims is not None else int(axis)}, name=name)


# -- fused cross-entropies ------------------------------------------------------------------------------
def _sparse_xent_kernel(xp, a):
    def run(logits, labels):
        n, k = logits.shape
        lab = labels.reshape(-1)
        if lab.size and (lab.min() < 0 or lab.max() >= k):
            bad = lab[(lab < 0) | (lab >= k)][0]
            raise InvalidArgumentError(f"label {int(bad)} is outside the {k} classes [0, {k})")
        rows = xp.arange(n)
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = xp.exp(shifted)
        s = e.sum(axis=1)
        loss = xp.log(s) - shifted[rows, lab]
        e /= s[:, None]
        e[rows, lab] -= 1.0
        return loss.astype(logits.dtype, copy=False), e
    return run


def _xent_grad(op, g, _unused=None):
    return [multiply(apply_op("ExpandDims", [g], {"axis": 1}) if g.shape.ndims == 1 else g, op.outputs[1]),
            None]


def _xent_infer(inputs, attrs):
    s = inputs[0].shape
    if s.ndims is not None and s.ndims != 2:
        raise InvalidArgumentError(f"logits must have rank 2 [batch, classes], got {s}")
    return [((s[0] if s.ndims else None,), inputs[0].dtype), (s, inputs[0].dtype)]


register("SparseSoftmaxCrossEntropyWithLogits", infer=_xent_infer, kernel=_sparse_xent_kernel, grad=_xent_grad,
         num_outputs=2)


def _dense_xent_kernel(xp, a):
    def run(logits, labels):
        shifted = logits - logits.max(axis=1, keepdims=True)
        lse = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        logp = shifted - lse
        loss = -(labels * logp).sum(axis=1)
        return loss, xp.exp(logp) * labels.sum(axis=1, keepdims=True) - labels
    return run


def _dense_xent_grad(op, g, _unused=None):
    logits, labels = op.inputs
    from .nn_ops import log_softmax as _ls
    g2 = apply_op("ExpandDims", [g], {"axis": 1})
    return [multiply(g2, op.outputs[1]), multiply(g2, negative(_ls(logits)))]


register("SoftmaxCrossEntropyWithLogits", infer=_xent_infer, kernel=_dense_xent_kernel, grad=_dense_xent_grad,
         num_outputs=2)


def _flatten_logits(logits):
    from .array_ops import reshape
    r = logits.shape.ndims
    if r == 2:
        return logits, None
    return reshape(logits, [-1, logits.shape[-1]]), r


def sparse_softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, name=None):
    """Per-example cross-entropy of integer `labels` against unnormalized `logits` (one fused op)."""
    logits = convert_to_tensor(logits)
    labels = convert_to_tensor(labels)
    if not labels.dtype.is_integer:
        raise InvalidArgumentError(f"labels must be integers, got {labels.dtype.name}")
    from .array_ops import reshape
    if logits.shape.ndims not in (None, 2):
        flat = reshape(logits, [-1, logits.shape[-1]])
        loss, _ = apply_op("SparseSoftmaxCrossEntropyWithLogits", [flat, reshape(labels, [-1])], name=name)
        from .array_ops import reshape_like
        return reshape_like(loss, labels)
    return apply_op("SparseSoftmaxCrossEntropyWithLogits", [logits, labels], name=name)[0]


def softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, axis=-1, name=None):
    logits = convert_to_tensor(logits)
    labels = convert_to_tensor(labels, logits.dtype)
    return apply_op("SoftmaxCrossEntropyWithLogits", [logits, labels], name=name)[0]


softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits


def sigmoid_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, name=None):
    """max(x, 0) - x * z + log(1 + exp(-|x|)): stable for large |x|."""
    x = convert_to_tensor(logits)
    z = convert_to_tensor(labels, x.dtype)
    return add(subtract(maximum(x, 0.0), multiply(x, z)), log1p(exp(negative(abs(x)))), name=name)


def weighted_cross_entropy_with_logits(labels, logits, pos_weight, name=None):
    x = convert_to_tensor(logits)
    z = convert_to_tensor(labels, x.dtype)
    log_weight = add(multiply(z, pos_weight - 1.0), 1.0)
    return add(multiply(subtract(1.0, z), x),
               multiply(log_weight, add(log1p(exp(negative(abs(x)))), maximum(negative(x), 0.0))), name=name)


def bias_add(value, bias, data_format=None, name=None):
    value, bias = convert_to_tensor(value), convert_to_tensor(bias)
    if data_format == "NCHW":
        from .array_ops import reshape
        bias = reshape(bias, [-1] + [1] * (value.shape.ndims - 2))
    return add(value, bias, name=name)


def l2_loss(t, name=None):
    t = convert_to_tensor(t)
    return multiply(reduce_sum(multiply(t, t)), 0.5, name=name)


def moments(x, axes, shift=None, keepdims=False, name=None):
    from .math_ops import squared_difference
    from .core import stop_gradient
    mean = reduce_mean(x, axis=axes, keepdims=True)
    var = reduce_mean(squared_difference(x, stop_gradient(mean)), axis=axes, keepdims=True)
    if not keepdims:
        from .array_ops import squeeze
        mean, var = squeeze(mean, axes), squeeze(var, axes)
    return mean, var


def batch_normalization(x, mean, variance, offset, scale, variance_epsilon, name=None):
    from .math_ops import rsqrt
    inv = rsqrt(add(variance, variance_epsilon))
    if scale is not None:
        inv = multiply(inv, scale)
    y = multiply(subtract(x, mean), inv)
    return add(y, offset, name=name) if offset is not None else y


def l2_normalize(x, axis=None, epsilon=1e-12, name=None):
    from .math_ops import rsqrt, square
    x = convert_to_tensor(x)
    sq = reduce_sum(square(x), axis=axis, keepdims=True)
    return multiply(x, rsqrt(maximum(sq, epsilon)), name=name)
