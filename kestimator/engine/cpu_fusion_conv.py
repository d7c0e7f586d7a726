"""CPU fusion patterns of convolution layers (see cpu_fusion for the pass and the shared helpers).

- **Bias + ReLU + max pooling** (`bias_relu_pool`): a bias Add read only by a Relu whose output is max-pooled over
  disjoint windows, as one numba pass per image. (Running the Conv2D before it a block of images at a time, so
  that pass reads the convolution's output from cache, was tried and measured slower on the small CNN: its first
  layer's per-block calls cost more than the memory traffic saved.)
- **Pooling gradient + ReLU gradient (+ bias gradient)** (`pool_relu_grad`): see cpu_fusion's docstring.
- **A convolution's two gradients** (`conv_grads_together`): with intra-op workers, the input gradient and the
  filter gradient run at once on two cores, each whole, instead of one after the other, each split.
"""
import numpy as np

from . import intra_op
from .cpu_fusion import CpuFusedOp, _bias_add_relu, _is_row_sum, _NoKernels, _only_reader, _FLOATS


def _disjoint_pool_of(relu, a, shapes, readers, fetched, placement):
    """(the MaxPool op, kh, kw, ph, pw) when the Relu's output over NHWC `a` is max-pooled over disjoint windows
    on this device and neither output is fetched; else None."""
    r = relu.outputs[0]
    pools = [p for p in readers.get(r, []) if p.type == "MaxPool" and placement.get(p) is None
             and not p.control_inputs]
    if not pools or len(shapes[a]) != 4 or r in fetched or pools[0].outputs[0] in fetched:
        return None
    pool = pools[0]
    (kh, kw), (sh, sw) = pool.attrs["ksize"], pool.attrs["strides"]
    if (kh, kw) != (sh, sw):
        return None
    from .ops.conv_ops import _pool_geometry
    try:
        oh, ow, ph, pw = _pool_geometry(tuple(shapes[a]), pool.attrs)
    except Exception:   # left to the unfused op, whose error names it
        return None
    pooled_t = pool.outputs[0]
    if tuple(shapes.get(pooled_t) or ()) != (shapes[a][0], oh, ow, shapes[a][3]) or pooled_t.dtype != a.dtype:
        return None
    return pool, kh, kw, ph, pw


def bias_relu_pool(op, k, shapes, readers, fetched, placement, resolve):
    """Add + Relu + a MaxPool of the Relu over disjoint windows (a conv layer's bias, activation and pooling) as
    one pass per image that writes both the ReLU output (the gradients read it) and the pooled one.

    Measured for the small CNN's layers (wall ms per step in fit(), batch split over 2 cores): bias+ReLU 0.17
    + pool 0.32 became 0.26, and 0.10 + 0.13 became 0.12. The max is NumPy's: a NaN wins, and is kept."""
    found = _bias_add_relu(op, shapes, readers, fetched, placement, resolve)
    if found is None:
        return None
    a, b, relu = found
    pooling = _disjoint_pool_of(relu, a, shapes, readers, fetched, placement)
    if pooling is None:
        return None
    pool, kh, kw, ph, pw = pooling
    r, pooled_t = relu.outputs[0], pool.outputs[0]
    dtype = a.dtype.np
    zero = dtype.type(0)
    relu_buf = np.empty(shapes[a], dtype)
    pooled_buf = np.empty(shapes[pooled_t], dtype)
    kernel = k["bias_relu_pool"]

    def run(x, bias):
        intra_op.run_chunks(lambda lo, hi: kernel(x[lo:hi], bias, relu_buf[lo:hi], pooled_buf[lo:hi], kh, kw,
                                                  ph[0], pw[0], zero),
                            x.shape[0], enabled=intra_op.worth_splitting(np, x.size))
        return relu_buf, pooled_buf
    return CpuFusedOp("CpuFused", [op, relu, pool], [a, b], [r, pooled_t], run), [relu, pool]


def pool_relu_grad(op, shapes, readers, fetched, placement, slab, resolve):
    """`ReluGrad(MaxPoolGrad(r, dy), r)` (and a bias-gradient Sum of it) as one masked pooling gradient."""
    if op.type != "MaxPoolGrad":
        return None
    x, dy = (resolve(t) for t in op.inputs)
    pooled_grad = op.outputs[0]
    if not (shapes.get(x) is not None and len(shapes[x]) == 4 and shapes.get(dy) is not None
            and len(shapes[dy]) == 4 and x.dtype.name in _FLOATS and x.dtype == dy.dtype == pooled_grad.dtype
            and pooled_grad not in fetched):
        return None
    relu_grad = _only_reader(pooled_grad, readers)
    if relu_grad is None or relu_grad.type != "ReluGrad" or placement.get(relu_grad) is not None \
            or relu_grad.control_inputs or resolve(relu_grad.inputs[0]) is not pooled_grad \
            or resolve(relu_grad.inputs[1]) is not x:
        return None
    r = relu_grad.outputs[0]
    if r in fetched or r.dtype != x.dtype:
        return None
    from .ops import _pool_kernels as pk
    from .ops.conv_ops import _pool_geometry
    kernels = pk.numba_kernels()
    if kernels is None:
        raise _NoKernels()
    try:
        oh, ow, ph, pw = _pool_geometry(tuple(shapes[x]), op.attrs)
    except Exception:   # left to the unfused op, whose error names it
        return None
    if (oh, ow) != tuple(shapes[dy][1:3]):
        return None
    sums = [s for s in readers.get(r, []) if _is_row_sum(s, shapes, resolve) and placement.get(s) is None
            and not s.control_inputs and s.outputs[0] not in fetched]
    dtype = x.dtype.np
    c = shapes[x][3]
    out_buf = slab.get(r)
    if out_buf is None or not out_buf.flags.c_contiguous:
        out_buf = np.empty(shapes[x], dtype)
    total = np.empty((c,), dtype)
    if sums:
        view = slab.get(sums[0].outputs[0])
        if view is not None and view.flags.c_contiguous and view.shape == (c,):
            total = view
    (kh, kw), (sh, sw) = op.attrs["ksize"], op.attrs["strides"]
    fused_kernel = kernels["max_pool_grad_relu"]
    do_sum = bool(sums)

    n = shapes[x][0]

    def chunk(act, grad, lo, hi):
        part = np.empty((c,), dtype)   # `total`'s dtype: the kernel's one compiled signature
        fused_kernel(act[lo:hi], grad[lo:hi], kh, kw, sh, sw, ph[0], pw[0], out_buf[lo:hi], part, do_sum)
        return part

    def run(act, grad):
        if intra_op.worth_splitting(np, act.size):
            parts = intra_op.run_chunks(lambda lo, hi: chunk(act, grad, lo, hi), n)
            if do_sum:
                np.copyto(total, np.sum(parts, axis=0, dtype=np.float64), casting="same_kind")
        else:
            fused_kernel(act, grad, kh, kw, sh, sw, ph[0], pw[0], out_buf, total, do_sum)
        return (out_buf, total) if do_sum else out_buf
    members = [op, relu_grad] + sums[:1]
    outputs = [r, sums[0].outputs[0]] if sums else [r]
    return CpuFusedOp("CpuFused", members, [x, dy], outputs, run), members[1:]


def conv_grads_together(op, shapes, readers, fetched, placement, slab, resolve):
    """A convolution's input gradient and filter gradient (same x, filters, dy and attributes) as one op that,
    when intra-op workers are on, runs the two at once, one per core, instead of each split over both cores
    in turn: one hand-off instead of two and no partial filter sums. Measured on the small CNN's second layer
    (wall ms per step in fit(), 2 cores): 0.98 + 0.92 split, 1.77 together."""
    kinds = ("Conv2DBackpropInput", "Conv2DBackpropFilter")
    if op.type not in kinds or len(op.inputs) != 3:
        return None
    x, w, dy = (resolve(t) for t in op.inputs)
    partners = [p for p in readers.get(dy, []) if p.type in kinds and p.type != op.type and p is not op
                and placement.get(p) is None and not p.control_inputs and p.attrs == op.attrs
                and [resolve(t) for t in p.inputs] == [x, w, dy]]
    if not partners or op.outputs[0] in fetched or partners[0].outputs[0] in fetched:
        return None
    first, second = op, partners[0]
    grad_in, grad_filter = (first, second) if first.type == kinds[0] else (second, first)
    if any(shapes.get(t) is None for t in (x, w, dy, grad_in.outputs[0], grad_filter.outputs[0])) \
            or x.dtype.name not in _FLOATS or not x.dtype == w.dtype == dy.dtype:
        return None
    dtype = x.dtype.np
    in_buf = np.empty(shapes[grad_in.outputs[0]], dtype)
    filter_buf = slab.get(grad_filter.outputs[0])   # straight into the optimizer's gradient slab
    if filter_buf is None or not filter_buf.flags.c_contiguous or filter_buf.dtype != dtype:
        filter_buf = np.empty(shapes[grad_filter.outputs[0]], dtype)
    input_kernel = grad_in.opdef.kernel(np, grad_in.attrs)
    filter_kernel = grad_filter.opdef.kernel(np, grad_filter.attrs)
    tasks = (lambda xv, wv, g: filter_kernel(xv, wv, g, out=filter_buf),
             lambda xv, wv, g: input_kernel(xv, wv, g, out=in_buf))

    def run(xv, wv, g):
        if intra_op.worth_splitting(np, g.size) and intra_op.workers() > 1:
            intra_op.run_chunks(lambda lo, hi: [tasks[i](xv, wv, g) for i in range(lo, hi)], 2)
        else:
            for task in tasks:
                task(xv, wv, g)
        return (in_buf, filter_buf) if first is grad_in else (filter_buf, in_buf)
    return (CpuFusedOp("CpuFused", [first, second], [x, w, dy], [first.outputs[0], second.outputs[0]], run),
            [second])
