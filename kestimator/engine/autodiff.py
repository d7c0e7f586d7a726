"""Reverse-mode differentiation over the graph: `gradients(ys, xs)` adds the backward ops.

The walk uses explicit stacks (no recursion), so a chain of 10,000 ops works. Gradients that reach a
tensor along several paths are summed with one AddN; inputs no path connects get None.
"""
import numpy as np

from ..errors import InvalidArgumentError, UnimplementedError
from .graph import Tensor, get_default_graph
from .ops.core import constant, convert_to_tensor, ones_like, zeros_like
from .ops.math_ops import add_n


def _as_tensor_list(values):
    if values is None:
        return []
    if not isinstance(values, (list, tuple)):
        values = [values]
    return [convert_to_tensor(v) for v in values]


def _reachable_ops(ys, xs_ops, stop_ops):
    """Ops on some path from an x to a y: forward-reachable from xs and backward-reachable from ys."""
    backward = set()
    stack = [y.op for y in ys]
    while stack:
        op = stack.pop()
        if op in backward:
            continue
        backward.add(op)
        if op in stop_ops:
            continue
        stack.extend(t.op for t in op.inputs)
    return backward


def gradients(ys, xs, grad_ys=None, name="gradients", stop_gradients=None, **unused):
    """Symbolic d(sum of ys)/d(x) for each x in xs.

    Args:
        ys: a tensor or list of tensors to differentiate.
        xs: a tensor, Variable, or list of them.
        grad_ys: optional upstream gradients, one per y (default ones).
        stop_gradients: tensors treated as constants.

    Returns:
        A list with one gradient tensor per x, or None where x does not affect ys.
    """
    ys = _as_tensor_list(ys)
    xs = _as_tensor_list(xs)
    if grad_ys is None:
        grad_ys = [None] * len(ys)
    elif not isinstance(grad_ys, (list, tuple)):
        grad_ys = [grad_ys]
    stop = {t.op for t in _as_tensor_list(stop_gradients)} if stop_gradients is not None else set()
    graph = ys[0].graph if ys else get_default_graph()
    with graph.as_default(), graph.name_scope(name):
        return _gradients(ys, xs, grad_ys, stop)


def _gradients(ys, xs, grad_ys, stop):
    x_set = set(xs)
    relevant = _reachable_ops(ys, {x.op for x in xs}, stop)
    # forward reachability from xs, restricted to `relevant`, via an explicit stack over consumers
    fwd = set()
    stack = [x for x in xs]
    consumers = xs[0].graph._consumers if xs else {}
    seen_t = set()
    while stack:
        t = stack.pop()
        if t in seen_t:
            continue
        seen_t.add(t)
        for op in consumers.get(t, ()):
            if op in relevant and op not in fwd and op not in stop:
                fwd.add(op)
                stack.extend(op.outputs)
    active = fwd
    # pending counts: how many active consumers of each op's outputs still have to deliver a gradient
    pending = {}
    for op in active:
        for t in op.inputs:
            if t.op in active:
                pending[t.op] = pending.get(t.op, 0) + 1
    grads = {}   # tensor -> list of gradient contributions

    for y, gy in zip(ys, grad_ys):
        if gy is None:
            if not y.dtype.is_floating:
                raise InvalidArgumentError(f"cannot differentiate {y.name} of dtype {y.dtype.name}")
            gy = (constant(np.ones(tuple(y.shape), y.dtype.np)) if y.shape.is_fully_defined()
                  else ones_like(y))
        else:
            gy = convert_to_tensor(gy, y.dtype)
        grads.setdefault(y, []).append(gy)

    ready = [y.op for y in ys if y.op in active and pending.get(y.op, 0) == 0]
    ready = list(dict.fromkeys(ready))
    done = set()
    while ready:
        op = ready.pop()
        if op in done:
            continue
        done.add(op)
        out_grads = []
        for t in op.outputs:
            contrib = grads.get(t)
            if not contrib:
                out_grads.append(None)
            else:
                out_grads.append(contrib[0] if len(contrib) == 1 else add_n(contrib))
                grads[t] = [out_grads[-1]]
        if op not in stop and any(g is not None for g in out_grads) and op.inputs:
            opdef = op.opdef
            if opdef.grad is None:
                if opdef.differentiable is False:
                    in_grads = [None] * len(op.inputs)
                else:
                    raise UnimplementedError(f"op {op.name} ({op.type}) has no gradient rule")
            else:
                if len(out_grads) > 1:
                    out_grads = [g if g is not None else zeros_like(t) for g, t in zip(out_grads, op.outputs)]
                in_grads = opdef.grad(op, *out_grads)
            for t, g in zip(op.inputs, in_grads):
                if g is None or t.op not in active and t not in x_set:
                    continue
                if not t.dtype.is_floating:
                    continue
                grads.setdefault(t, []).append(g)
        for t in op.inputs:
            if t.op in active:
                pending[t.op] -= 1
                if pending[t.op] == 0:
                    ready.append(t.op)
    result = []
    for x in xs:
        contrib = grads.get(x)
        if not contrib:
            result.append(None)
        else:
            result.append(contrib[0] if len(contrib) == 1 else add_n(contrib))
    return result
