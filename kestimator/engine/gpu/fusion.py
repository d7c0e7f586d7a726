"""Plan passes for ops placed on a GPU: fuse elementwise chains, and the moments pattern, into one kernel.

Each kernel launch costs microseconds on a GPU, and every intermediate array a round trip through device
memory, so `relu(matmul(x, w) + b)`'s Add and Relu, or the whole elementwise tail of batch_normalization,
should be one launch. `fuse` rewrites the Plan's op list (never the user's Graph):

- **Elementwise trees.** A float op from `TEMPLATES` whose output has exactly one consumer, that consumer
  being another such op on the same device with the same output shape and dtype, is absorbed into it;
  each remaining tree becomes one `ElementwiseKernel` whose body evaluates the absorbed ops in order into
  temporaries. Inputs from outside the tree may broadcast (CuPy's kernels broadcast their arguments);
  constants of one element are inlined as literals of the tree's dtype.
- **Moments.** `reduce_mean(x) -> squared_difference(x, mean) -> reduce_mean` over leading or trailing
  axes (what `ke.nn.moments` builds for BatchNormalization and LayerNormalization) becomes one kernel that
  returns both statistics.

On the CPU nothing here runs: the Plan calls `fuse` only when it placed ops on a GPU.
"""
import hashlib

import numpy as np

from ..fused_op import FusedOp as _FusedOp
from ..fused_op import FusedOpDef


def _lit(value, dtype):
    # the value rounded to the tree's dtype, printed so the C literal converts back to exactly it
    v = float(np.asarray(value, dtype=dtype).reshape(()))
    return f"(T)({v!r})"


def _binary(fmt):
    return lambda a, attrs: fmt.format(*a)


def _relu(a, attrs):
    x = a[0]
    return f"(({x} > (T)0 || {x} != {x}) ? {x} : (T)0)"


TEMPLATES = {
    "Add": _binary("{0} + {1}"), "Sub": _binary("{0} - {1}"), "Mul": _binary("{0} * {1}"),
    "RealDiv": _binary("{0} / {1}"), "Pow": _binary("pow({0}, {1})"),
    # NumPy's maximum / minimum propagate a NaN from either side
    "Maximum": _binary("(({0} > {1} || {0} != {0}) ? {0} : {1})"),
    "Minimum": _binary("(({0} < {1} || {0} != {0}) ? {0} : {1})"),
    "SquaredDifference": _binary("(({0} - {1}) * ({0} - {1}))"),
    "AddN": lambda a, attrs: "(" + " + ".join(a) + ")",
    "Neg": _binary("(-{0})"), "Exp": _binary("exp({0})"), "Expm1": _binary("expm1({0})"),
    "Log": _binary("log({0})"), "Log1p": _binary("log1p({0})"), "Sqrt": _binary("sqrt({0})"),
    "Rsqrt": _binary("((T)1 / sqrt({0}))"), "Square": _binary("({0} * {0})"), "Abs": _binary("fabs({0})"),
    "Reciprocal": _binary("((T)1 / {0})"), "Sin": _binary("sin({0})"), "Cos": _binary("cos({0})"),
    "Tanh": _binary("tanh({0})"), "Floor": _binary("floor({0})"), "Ceil": _binary("ceil({0})"),
    "Round": _binary("rint({0})"),
    "Sign": _binary("({0} > (T)0 ? (T)1 : ({0} < (T)0 ? (T)-1 : {0}))"),
    # the CPU kernel computes 0.5 * (1 + tanh(x / 2)) in this order
    "Sigmoid": _binary("((tanh({0} * (T)0.5) + (T)1) * (T)0.5)"),
    "Relu": _relu,
    "ReluGrad": _binary("({0} * (T)({1} > (T)0))"),
    "Relu6": _binary("({0} != {0} ? {0} : ({0} < (T)0 ? (T)0 : ({0} > (T)6 ? (T)6 : {0})))"),
    "Softplus": _binary("({0} > (T)0 ? {0} + log1p(exp(-{0})) : log1p(exp({0})))"),
    "Softsign": _binary("({0} / ((T)1 + fabs({0})))"),
    "Elu": _binary("({0} > (T)0 ? {0} : expm1({0}))"),
    "Selu": _binary("((T)1.0507009873554805 * ({0} > (T)0 ? {0} : (T)1.6732632423543772 * expm1({0})))"),
    "LeakyRelu": lambda a, attrs: f"({a[0]} > (T)0 ? {a[0]} : {a[0]} * (T)({float(attrs['alpha'])!r}))",
}


class FusedOp(_FusedOp):
    """A FusedOp of a GPU Plan: `kernel` is a kernel factory, `anchor` the op whose place the group takes, and
    `source` the generated CUDA body (elementwise groups), for inspection and tests."""

    def __init__(self, kind, anchor, members, inputs, outputs, kernel, out_arg, elementwise, source=""):
        super().__init__(kind, members, inputs, outputs,
                         FusedOpDef(kind, kernel, len(outputs), out_arg, elementwise, gpu=True), anchor=anchor)
        self.source = source


def fuse(ops, placement, shapes, constants, fetched, pinned, resolve, backend):
    """The Plan's op list with fusable groups of GPU ops replaced by FusedOps.

    Args:
        ops: the Plan's ops in execution order.
        placement: op -> device key (None for the CPU); only ops with a key are fused, never across keys.
        shapes: tensor -> concrete shape (None when unknown).
        constants: resolved tensor -> folded host value.
        fetched / pinned: tensors that must stay materialized (fetched, or parts of a contiguous slab).
        resolve: maps a tensor to the one that stands in for it after folding / merging.
        backend: the GPU Backend (fusion needs its ElementwiseKernel / RawKernel).

    Returns:
        A new list of ops (the input list when nothing fused).
    """
    if backend.has_raw:
        ops = _fuse_moments(ops, placement, shapes, _consumers(ops, resolve), fetched, pinned, resolve, backend)
    if backend.has_elementwise:
        ops = _fuse_elementwise(ops, placement, shapes, constants, _consumers(ops, resolve), fetched, pinned,
                                resolve, backend)
    return ops


def _consumers(ops, resolve):
    consumers = {}
    for op in ops:
        for t in op.inputs:
            consumers.setdefault(resolve(t), set()).add(op)
    return consumers


# -- elementwise trees ------------------------------------------------------------------------------------
def _fusable(op, placement, shapes, resolve):
    if op.type not in TEMPLATES or placement.get(op) is None or len(op.outputs) != 1 or op.control_inputs:
        return False
    out = op.outputs[0]
    if shapes.get(out) is None or out.dtype.name not in ("float32", "float64"):
        return False
    return all(resolve(t).dtype == out.dtype for t in op.inputs)


def _fuse_elementwise(ops, placement, shapes, constants, consumers, fetched, pinned, resolve, backend):
    producer = {}
    for op in ops:
        for t in op.outputs:
            producer[t] = op
    ok = {op for op in ops if _fusable(op, placement, shapes, resolve)}
    absorbed, groups = set(), {}
    for root in reversed(ops):
        if root not in ok or root in absorbed:
            continue
        out_shape, members, stack = shapes[root.outputs[0]], [root], [root]
        while stack:
            op = stack.pop()
            for t in op.inputs:
                r = resolve(t)
                p = producer.get(r)
                if (p is None or p not in ok or p in absorbed or p in members or consumers.get(r) != {op}
                        or r in fetched or r in pinned or shapes.get(r) != out_shape
                        or placement.get(p) != placement.get(root)):
                    continue
                members.append(p)
                absorbed.add(p)
                stack.append(p)
        if len(members) > 1:
            groups[root] = members
    if not groups:
        return ops
    out = []
    for op in ops:
        if op in absorbed:
            continue
        members = groups.get(op)
        out.append(op if members is None else _elementwise_op(op, members, ops, constants, resolve, backend))
    return out


def _elementwise_op(root, members, ops, constants, resolve, backend):
    order = [op for op in ops if op in set(members)]   # execution order
    dtype = root.outputs[0].dtype.np
    params, index, temps, lines = [], {}, {}, []

    def operand(t):
        r = resolve(t)
        if r in temps:
            return temps[r]
        value = constants.get(r)
        if value is not None and np.size(value) == 1 and np.isfinite(np.asarray(value, dtype=np.float64)).all():
            return _lit(value, dtype)
        if r not in index:
            index[r] = len(params)
            params.append(r)
        return f"in{index[r]}"
    for op in order:
        expr = TEMPLATES[op.type]([operand(t) for t in op.inputs], op.attrs)
        temps[op.outputs[0]] = f"t{len(temps)}"
        lines.append(f"T {temps[op.outputs[0]]} = {expr};")
    lines.append(f"out0 = {temps[root.outputs[0]]};")
    body = "\n".join(lines)
    in_params = ", ".join(f"T in{i}" for i in range(len(params)))
    name = "ks_fused_" + hashlib.sha1(f"{in_params}|{body}".encode()).hexdigest()[:16]

    def kernel(xp, attrs):
        ek = backend.elementwise_kernel(in_params, "T out0", body, name)

        def run(*args, out=None):
            return ek(*args) if out is None else ek(*args, out)
        return run
    return FusedOp("FusedElementwise", root, order, params, root.outputs, kernel, out_arg=True, elementwise=True,
                   source=body)


# -- moments --------------------------------------------------------------------------------------------------
def _layout(shape, axes):
    """(groups, count, gstride, estride) for statistics over `axes` of a C-contiguous `shape`, or None."""
    rank = len(shape)
    axes = tuple(sorted(axes)) if axes is not None else tuple(range(rank))
    if not axes:
        return None
    lead = axes == tuple(range(len(axes)))
    trail = axes == tuple(range(rank - len(axes), rank))
    size = int(np.prod(shape))
    if lead:   # statistics per trailing position (BatchNormalization over all but the channel axis)
        kept = int(np.prod(shape[len(axes):]))
        return kept, (size // kept if kept else 0), 1, kept
    if trail:  # statistics per leading position (LayerNormalization over the last axes)
        count = int(np.prod(shape[rank - len(axes):]))
        return (size // count if count else 0), count, count, 1
    return None


def _fuse_moments(ops, placement, shapes, consumers, fetched, pinned, resolve, backend):
    producer = {t: op for op in ops for t in op.outputs}
    replace, drop = {}, set()
    for second in ops:   # second = reduce_mean(squared_difference(x, [stop_gradient](first)))
        if second.type != "Mean" or not second.attrs.get("keepdims") or placement.get(second) is None:
            continue
        sq = producer.get(resolve(second.inputs[0]))
        if sq is None or sq.type != "SquaredDifference" or consumers.get(sq.outputs[0]) != {second}:
            continue
        x = resolve(sq.inputs[0])
        mid = producer.get(resolve(sq.inputs[1]))
        first = producer.get(resolve(mid.inputs[0])) if mid is not None and mid.type == "StopGradient" else mid
        if (first is None or first.type != "Mean" or resolve(first.inputs[0]) is not x or first in replace
                or first.attrs.get("axis") != second.attrs.get("axis") or not first.attrs.get("keepdims")):
            continue
        if len({placement.get(o) for o in (first, sq, second)}) != 1 or sq.outputs[0] in fetched | pinned:
            continue
        xshape = shapes.get(x)
        if xshape is None or x.dtype.name not in ("float32", "float64") or shapes.get(second.outputs[0]) is None:
            continue
        layout = _layout(xshape, first.attrs.get("axis"))
        if layout is None:
            continue
        replace[first] = _moments_op(first, sq, second, x, layout, shapes[second.outputs[0]], backend)
        drop.update((sq, second))
    if not replace:
        return ops
    return [replace.get(op, op) for op in ops if op not in drop]


def _moments_op(first, sq, second, x, layout, out_shape, backend):
    from .kernels import moments_launcher
    groups, count, gstride, estride = layout

    def kernel(xp, attrs):
        launch = moments_launcher(backend, x.dtype.name)
        return lambda xv: launch(xv, groups, count, gstride, estride, out_shape)
    return FusedOp("FusedMoments", first, [first, sq, second], [x], (first.outputs[0], second.outputs[0]), kernel,
                   out_arg=False, elementwise=False)
