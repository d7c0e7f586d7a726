"""Plan pass for ops on the CPU: fold shape-only gradient plumbing, fuse the small ops around a dense layer.

A training step of a small dense network spends as much time in its small NumPy calls as in its matrix
products: each call costs a few microseconds of dispatch, and `np.maximum` / `x * (y > 0)` run far below
memory speed. Measured for the seed MLP at batch 256 (CPU time, one core): bias add + ReLU 14.5 us, ReLU
gradient + bias-gradient sum 12 us, the sparse cross-entropy 27 us plus 8 us of gradient plumbing; the
kernels here take 1.7, 3.6 and 9 us. `fuse` rewrites the Plan's op list (never the user's Graph):

- **Shape folding.** The Plan knows every feed's shape, so a `SumGrad` of a constant (the gradient of a
  mean loss) is a constant too; it and the constant-only ops after it (ExpandDims) are folded.
- **Bias + ReLU.** `Relu(Add(x[..., k], b[k]))`, the Add read only by the Relu, becomes one pass. Tensors
  of more than two axes (a conv layer's NHWC output) are seen as rows of k: (-1, k).
- **Bias + ReLU + max pooling.** When the Relu's output is also pooled over disjoint windows (a conv layer
  with pooling), the pooling joins the pass, image by image, reading the ReLU output back from cache. This and
  the next pattern but one (the conv-layer patterns) are in `cpu_fusion_conv.py`.
- **ReLU gradient + bias gradient.** `ReluGrad(g, y)` whose output a `Sum` over all axes but the last
  reads becomes one pass producing both; the sum goes straight into its place in the optimizer's
  gradient slab when it has one.
- **Max-pool gradient + ReLU gradient (+ bias gradient).** `ReluGrad(MaxPoolGrad(r, dy), r)` equals
  MaxPoolGrad(r, dy * (max > 0)): the element a window's gradient goes to holds the window's max, every
  other element gets 0. One pass (`_pool_kernels.max_pool_grad_relu`) drops the full-size ReluGrad and,
  when a `Sum` over all axes but channels reads it, the bias-gradient sum too (summed per window in
  float64: equal to the unfused sum to float32 rounding, not bitwise; everything else is bitwise).
  Measured for the small CNN's first conv layer (64x26x26x32, CPU ms): MaxPoolGrad 1.13 + ReluGrad 0.48
  + Sum 0.59 became one kernel of about the MaxPoolGrad's cost.
- **Cross-entropy.** `SparseSoftmaxCrossEntropyWithLogits` writes into buffers allocated once; when its
  gradient is read only by a multiplication with a constant of equal values (1 / batch of a mean loss),
  the scaling is done in the same pass.
- **Column sums.** Other sums over all axes but the last (bias gradients) accumulate rows in one pass,
  in NumPy's order (bitwise np.sum). Measured on 64x26x26x32 float32 (CPU ms, one core): np.sum 0.56,
  this loop 0.13, `ones @ g.reshape(-1, C)` 0.07. The GEMM is faster and, blocked, more accurate (max
  error vs a float64 sum 7.4e-4 against np.sum's 1.8e-3) but not bitwise; kept as the loop because the
  CNN's big bias sums are folded into the pooling gradient (above) and the rest are small.
- **Means.** A full float `Mean` (the batch loss) calls np.add.reduce and the division np.mean makes,
  without np.mean's Python layers (3 us -> 1 us).

Except the pooled bias sums, the kernels accumulate in the order NumPy does (row after row for a sum over axis 0; the cross-entropy
row sum in NumPy's pairwise order; exp and log are NumPy's own), so a fused plan computes the same bits
as the unfused one. They are numba loops, compiled on first use; without numba nothing is fused. Ops
placed on a GPU, fetched values and traced plans are left alone.
"""
import numpy as np

from ..errors import InvalidArgumentError
from . import intra_op
from .fused_op import FusedOp, FusedOpDef
from .lazy_numba import LazyKernels

_FOLD_MAX_ELEMENTS = 1 << 20
_FLOATS = ("float32", "float64")
_found = []


def _compile():
    from . import cpu_fusion_numba as k
    return {name: getattr(k, name) for name in
            ("bias_relu", "relu_grad_colsum", "colsum", "xent_shift", "xent_normalize", "bias_relu_pool")}


kernels = LazyKernels(_compile)   # {name: kernel} or None without numba


def enabled():
    """Whether the pass runs: numba is installed (found without importing it: plans that match nothing
    must not pay numba's import)."""
    if not _found:
        import importlib.util
        _found.append(not kernels.unavailable and importlib.util.find_spec("numba") is not None)
    return _found[0]


class _NoKernels(Exception):
    pass


class _Lazy:
    """Kernels by name, compiled at the first pattern that matches."""

    def __getitem__(self, name):
        ks = kernels()
        if ks is None:
            raise _NoKernels()
        return ks[name]


# -- the stand-in op --------------------------------------------------------------------------------------
class CpuFusedOp(FusedOp):
    """A FusedOp of a CPU Plan; `kernel` is the run function itself."""

    def __init__(self, kind, members, inputs, outputs, kernel, out_arg=False, elementwise=False):
        super().__init__(kind, members, inputs, outputs,
                         FusedOpDef(kind, lambda xp, attrs: kernel, len(outputs), out_arg, elementwise, gpu=False))


# -- the pass -------------------------------------------------------------------------------------------
def fuse(ops, placement, shapes, constants, fetched, slab, resolve):
    """The Plan's op list with foldable ops folded into `constants` and fusable CPU groups replaced.

    Args:
        ops: the Plan's ops in execution order (after pruning, folding and merging).
        placement: op -> logical GPU index for ops placed on a GPU (those are left alone).
        shapes: tensor -> concrete shape for this Plan's feed shapes (None when unknown).
        constants: resolved tensor -> folded value; updated in place with what this pass folds.
        fetched: resolved tensors the Plan returns (they keep their own op and buffer).
        slab: tensor -> its view in the optimizer's contiguous gradient buffer.
        resolve: maps a tensor to the one that stands in for it after folding / merging.

    Returns:
        A new list of ops (the input list when there is nothing to do).
    """
    if not enabled():
        return ops
    k = _Lazy()
    ops = _fold_shapes(ops, placement, shapes, constants, fetched, resolve)
    try:
        return _fuse_groups(ops, k, placement, shapes, constants, fetched, slab, resolve)
    except _NoKernels:   # numba found but not importable: the unfused ops compute the same values
        return ops


def _fuse_groups(ops, k, placement, shapes, constants, fetched, slab, resolve):
    readers = {}
    for op in ops:
        for t in op.inputs:
            readers.setdefault(resolve(t), []).append(op)
    skipped, at = set(), {}   # members that vanish; anchor op -> the fused op that runs in its place
    for op in ops:
        if op in skipped or op in at or placement.get(op) is not None or op.control_inputs:
            continue
        group = (cpu_fusion_conv.pool_relu_grad(op, shapes, readers, fetched, placement, slab, resolve)
                 or cpu_fusion_conv.conv_grads_together(op, shapes, readers, fetched, placement, slab, resolve)
                 or cpu_fusion_conv.bias_relu_pool(op, k, shapes, readers, fetched, placement, resolve)
                 or _bias_relu(op, k, shapes, readers, fetched, placement, resolve)
                 or _relu_grad_sum(op, k, shapes, readers, fetched, placement, slab, resolve)
                 or _xent(op, k, shapes, readers, constants, fetched, placement, resolve)
                 or _colsum(op, k, shapes, resolve)
                 or _mean(op, shapes, resolve))
        if group is not None:
            # the fused op runs where `op` ran: its outside inputs are `op`'s, or computed before it
            fused, others = group
            at[op] = fused
            skipped.update(others)
    if not at:
        return ops
    return [at.get(op, op) for op in ops if op not in skipped]


def _float_matrix(t, shapes):
    shape = shapes.get(t)
    return shape is not None and len(shape) == 2 and t.dtype.name in _FLOATS


def _float_rows(t, shapes):
    """A float tensor of two axes or more: the fused kernels see it as (-1, last axis)."""
    shape = shapes.get(t)
    return shape is not None and len(shape) >= 2 and t.dtype.name in _FLOATS


def _rows(a, k):
    """a as rows of k (a view when a is contiguous, as Plan buffers are; a copy otherwise)."""
    return a.reshape(-1, k)


def _writable_rows(out, shape, dtype):
    """A contiguous buffer of `shape` to write the rows into: `out` itself when it can be viewed as rows."""
    if out is not None and out.flags.c_contiguous and out.shape == tuple(shape) and out.dtype == dtype:
        return out
    return np.empty(shape, dtype)


def _fold_shapes(ops, placement, shapes, constants, fetched, resolve):
    kept = []
    for op in ops:
        ins = [resolve(t) for t in op.inputs]
        foldable = (placement.get(op) is None and not op.control_inputs and op.outputs
                    and not op.opdef.stateful and op.opdef.writes_input is None)
        if foldable and op.type == "SumGrad" and ins[0] in constants and shapes.get(ins[1]) is not None:
            like = np.broadcast_to(np.zeros((), ins[1].dtype.np if not ins[1].dtype.is_string else object),
                                   shapes[ins[1]])
            if like.size <= _FOLD_MAX_ELEMENTS and _try_fold(op, [constants[ins[0]], like], constants):
                continue
        elif foldable and op.type in ("ExpandDims", "Reshape", "Cast", "Mul", "RealDiv", "Neg") and ins \
                and all(t in constants for t in ins) and _try_fold(op, [constants[t] for t in ins], constants):
            continue
        kept.append(op)
    return kept


def _try_fold(op, args, constants):
    try:
        result = op.opdef.kernel(np, op.attrs)(*args)
    except Exception:   # left to run time, where the error names the op
        return False
    results = result if len(op.outputs) > 1 else (result,)
    if any(np.size(r) > _FOLD_MAX_ELEMENTS for r in results):
        return False
    for t, r in zip(op.outputs, results):
        constants[t] = np.array(r, dtype=t.dtype.np) if not t.dtype.is_string else r
    return True


def _only_reader(t, readers):
    rs = readers.get(t, [])
    return rs[0] if len(rs) == 1 else None


def _bias_add_relu(op, shapes, readers, fetched, placement, resolve):
    """(x, bias, the Relu) when `op` is Add(x[..., k], bias[k]) read only by a Relu on this device, else None."""
    if op.type != "Add":
        return None
    a, b = (resolve(t) for t in op.inputs)
    out = op.outputs[0]
    if shapes.get(b) is not None and len(shapes[b]) >= 2:
        a, b = b, a
    if not (_float_rows(a, shapes) and shapes.get(b) is not None and len(shapes[b]) == 1
            and shapes[b][0] == shapes[a][-1] and shapes[b][0] > 0 and a.dtype == b.dtype == out.dtype
            and shapes.get(out) == shapes[a] and out not in fetched):
        return None
    relu = _only_reader(out, readers)
    if relu is None or relu.type != "Relu" or placement.get(relu) is not None or relu.control_inputs:
        return None
    return a, b, relu


def _bias_relu(op, k, shapes, readers, fetched, placement, resolve):
    found = _bias_add_relu(op, shapes, readers, fetched, placement, resolve)
    if found is None:
        return None
    a, b, relu = found
    out = op.outputs[0]
    bias_relu = k["bias_relu"]
    dtype = out.dtype.np
    zero = dtype.type(0)
    m = shapes[b][0]

    def run(x, bias, out=None):
        dest = _writable_rows(out, x.shape, dtype)
        rows, dest_rows = _rows(x, m), _rows(dest, m)
        intra_op.run_chunks(lambda lo, hi: bias_relu(rows[lo:hi], bias, dest_rows[lo:hi], zero), rows.shape[0],
                            enabled=intra_op.worth_splitting(np, x.size, elementwise=True))
        if out is not None and dest is not out:
            out[...] = dest
            return out
        return dest
    # not in place: with `out` aliasing `x` LLVM keeps the loop scalar (15 us instead of 1.9 at 256 x 128)
    return CpuFusedOp("CpuFused", [op, relu], [a, b], [relu.outputs[0]], run, out_arg=True), \
        [relu]


def _is_row_sum(op, shapes, resolve):
    """A Sum over every axis but the last (a bias gradient), of a float tensor of two axes or more."""
    if op.type != "Sum" or op.attrs.get("keepdims") or not _float_rows(resolve(op.inputs[0]), shapes):
        return False
    nd = len(shapes[resolve(op.inputs[0])])
    axis = op.attrs.get("axis")
    if axis is None:
        return False
    axis = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if any(not -nd <= int(a) < nd for a in axis):
        return False
    return (tuple(sorted(int(a) % nd for a in axis)) == tuple(range(nd - 1))
            and op.outputs[0].dtype == op.inputs[0].dtype)


def _relu_grad_sum(op, k, shapes, readers, fetched, placement, slab, resolve):
    if op.type != "ReluGrad":
        return None
    g, y = (resolve(t) for t in op.inputs)
    r = op.outputs[0]
    if not (_float_rows(g, shapes) and shapes.get(y) == shapes[g] and shapes.get(r) == shapes[g]
            and g.dtype == y.dtype == r.dtype and r not in fetched):
        return None
    sums = [s for s in readers.get(r, []) if _is_row_sum(s, shapes, resolve) and placement.get(s) is None
            and not s.control_inputs and s.outputs[0] not in fetched]
    if not sums:
        return None
    total_t = sums[0].outputs[0]
    m = shapes[g][-1]
    out_buf = slab.get(r)   # a variable's gradient itself (rare): straight into the slab as well
    if out_buf is None or not out_buf.flags.c_contiguous:
        out_buf = np.empty(shapes[g], g.dtype.np)
    view = slab.get(total_t)
    total = view if view is not None and view.flags.c_contiguous else np.empty((m,), g.dtype.np)
    fused_kernel = k["relu_grad_colsum"]
    zero = g.dtype.np.type(0)
    out_rows = _rows(out_buf, m)

    def run(grad, act):
        fused_kernel(_rows(grad, m), _rows(act, m), out_rows, total, zero)
        return out_buf, total
    fused = CpuFusedOp("CpuFused", [op, sums[0]], [g, y], [r, total_t], run)
    return fused, [sums[0]]


def _uniform_scale(t, constants, shape):
    value = constants.get(t)
    if value is None:
        return None
    value = np.asarray(value)
    if value.size == 0 or value.ndim > len(shape):
        return None
    try:
        if np.broadcast_shapes(value.shape, shape) != tuple(shape):
            return None
    except ValueError:
        return None
    first = value.reshape(-1)[0]
    return first if np.all(value == first) else None


def _xent(op, k, shapes, readers, constants, fetched, placement, resolve):
    if op.type != "SparseSoftmaxCrossEntropyWithLogits":
        return None
    logits, labels = (resolve(t) for t in op.inputs)
    loss_t, grad_t = op.outputs
    if not (_float_matrix(logits, shapes) and 0 < shapes[logits][1] <= 128 and shapes.get(labels) is not None
            and len(shapes[labels]) == 1 and labels.dtype.name in ("int32", "int64")
            and loss_t not in fetched and grad_t not in fetched):
        return None
    n, m = shapes[logits]
    dtype = logits.dtype.np
    mul = _only_reader(grad_t, readers)
    scale, outputs, members = None, [loss_t, grad_t], []
    if mul is not None and mul.type == "Mul" and placement.get(mul) is None and not mul.control_inputs \
            and mul.outputs[0] not in fetched and shapes.get(mul.outputs[0]) == (n, m) \
            and mul.outputs[0].dtype == grad_t.dtype:
        other = [resolve(t) for t in mul.inputs if resolve(t) is not grad_t]
        if len(other) == 1:
            scale = _uniform_scale(other[0], constants, (n, m))
        if scale is not None:
            outputs, members = [loss_t, mul.outputs[0]], [mul]
    loss_buf, grad_buf, sums = np.empty((n,), dtype), np.empty((n, m), dtype), np.empty((n,), dtype)
    shift, normalize = k["xent_shift"], k["xent_normalize"]
    factor = dtype.type(scale if scale is not None else 1)
    scaled = scale is not None
    zero, one = dtype.type(0), dtype.type(1)
    exp, log, subtract = np.exp, np.log, np.subtract

    def run(x, lab):
        # exp and log stay NumPy's (numba's differ in the last bit); the rest is two passes
        bad = shift(x, lab, grad_buf, loss_buf)
        if bad >= 0:
            raise InvalidArgumentError(f"label {int(lab[bad])} is outside the {m} classes [0, {m})")
        exp(grad_buf, out=grad_buf)
        normalize(grad_buf, lab, sums, factor, scaled, zero, one)
        log(sums, out=sums)
        subtract(sums, loss_buf, out=loss_buf)
        return loss_buf, grad_buf
    fused = CpuFusedOp("CpuFused" if scaled else op.type, [op] + members, [logits, labels], outputs, run)
    return fused, members


def _colsum(op, k, shapes, resolve):
    if not _is_row_sum(op, shapes, resolve):
        return None
    colsum = k["colsum"]
    m = shapes[resolve(op.inputs[0])][-1]
    dtype = op.outputs[0].dtype.np
    zero = dtype.type(0)

    def run(x, out=None):
        x = _rows(x, m)
        if out is None or not out.flags.c_contiguous:
            res = np.empty((m,), dtype)
            colsum(x, res, zero)
            if out is not None:
                out[...] = res
                return out
            return res
        colsum(x, out, zero)
        return out
    return CpuFusedOp("Sum", [op], [resolve(op.inputs[0])], [op.outputs[0]], run, out_arg=True), []


def _mean(op, shapes, resolve):
    """A full float mean (the loss of a batch) as np.mean computes it, without np.mean's Python layers."""
    if op.type != "Mean" or op.attrs.get("axis") is not None or op.attrs.get("keepdims"):
        return None
    x = resolve(op.inputs[0])
    if shapes.get(x) is None or x.dtype.name not in _FLOATS or op.outputs[0].dtype != x.dtype:
        return None
    count = np.intp(int(np.prod(shapes[x], dtype=np.int64)))
    if count == 0:
        return None
    add, divide = np.add.reduce, np.true_divide

    def run(v, out=None):
        if out is None:
            return np.mean(v)
        add(v, axis=None, out=out)
        # np.mean divides by an intp count (in float64 for float32, rounded back): the same call
        divide(out, count, out=out, casting="unsafe")
        return out
    return CpuFusedOp("Mean", [op], [x], [op.outputs[0]], run, out_arg=True), []


# the conv-layer patterns use the helpers above (imported last: that module imports this one's names)
from . import cpu_fusion_conv  # noqa: E402
