"""Conv2D forward / input gradient / filter gradient (NHWC) as im2col + GEMM.

On the CPU the patch matrix is copied from a stride-tricks view a block of images at a time (`_BLOCK_BYTES`)
into a buffer each thread keeps between calls (a Plan calls each kernel once per step with the same shapes, so
no step allocates or page-faults it again), and the GEMM reads the block back from cache and writes straight
into the Plan's output buffer (`out=`). The input gradient's scatter-add (col2im) is one numba pass per block
instead of KH*KW strided NumPy adds over the whole input. With intra-op workers (engine/intra_op.py) each kernel
splits its batch into chunks run at once, one BLAS thread each. Other array modules (CuPy) take the batch whole.

Measured on the small-CNN benchmark (thread CPU time, one BLAS thread, 2 busy cores): the second
convolution's input gradient (dy 64x11x11x64, 3x3x32x64 filters) 4.6 -> 2.8 ms (the numba scatter-add); its
forward and filter gradient stay ~3.5 ms each, the GEMM's own time; the first convolution (one input
channel) 0.75 -> 0.49 ms forward and 1.10 -> 0.74 ms filter gradient (im2col by kernel position). (A gathering
col2im that writes each input element once, in kernel-position order, measured slower: 2.1 ms against 1.7.)
"""
import threading

import numpy as np

from .. import intra_op
from ..lazy_numba import LazyKernels
from ._pool_kernels import NUMBA_DTYPES

_FEW_CHANNELS = 2   # below this many input channels im2col copies kernel position by kernel position
_SMALL_FILTER = 4096   # filters with at most this many elements: per-image GEMMs (see conv_backprop_filter)
# The patch matrix is copied and multiplied a block of images at a time, each block's copy at most this big,
# so the GEMM reads it back from the core's cache instead of memory. The small CNN's second convolution inside
# fit(), where each step's arrays push the last step's out of cache (ms per step, one BLAS thread): forward
# 2.03 -> 1.61, filter gradient 2.28 -> 1.69, input gradient 1.75 -> 1.69; 1 MiB blocks measured the same.
_BLOCK_BYTES = 1 << 19


def _compile():
    import numba

    jit = numba.njit(cache=True, error_model="numpy", nogil=True)

    @jit
    def col2im(dcols, kh, kw, sh, sw, dh, dw, ph0, pw0, dx):
        """dx = the scatter-add of patch gradients dcols (N, OH, OW, KH, KW, C) into the unpadded input."""
        n, oh, ow, c = dcols.shape[0], dcols.shape[1], dcols.shape[2], dcols.shape[5]
        h, w = dx.shape[1], dx.shape[2]
        dx[...] = 0
        for b in range(n):
            for r in range(oh):
                for s in range(ow):
                    for i in range(kh):
                        hi = r * sh - ph0 + i * dh
                        if hi < 0 or hi >= h:
                            continue
                        for j in range(kw):
                            wj = s * sw - pw0 + j * dw
                            if wj < 0 or wj >= w:
                                continue
                            for ch in range(c):
                                dx[b, hi, wj, ch] += dcols[b, r, s, i, j, ch]

    return {"col2im": col2im}


numba_kernels = LazyKernels(_compile)   # {name: kernel} or None without numba


class Scratch:
    """Work buffers one kernel keeps between calls, one per (shape, dtype) and thread (a Plan uses one shape;
    intra-op workers each fill their own block of patches).

    Buffers over `KEEP_BYTES` are allocated per call instead: they would hold that much memory for as long
    as the Plan lives, and against their copy and GEMM a fresh allocation's page faults cost little.
    """
    KEEP_BYTES = 64 << 20

    def __init__(self):
        self._local = threading.local()

    @property
    def _buffers(self):
        buffers = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        return buffers

    def get(self, shape, dtype):
        key = (tuple(shape), np.dtype(dtype))
        buffers = self._buffers
        buf = buffers.get(key)
        if buf is None:
            buf = np.empty(shape, dtype=dtype)
            if buf.nbytes <= self.KEEP_BYTES:
                if len(buffers) >= 4:   # eager code with changing shapes: do not hoard
                    buffers.clear()
                buffers[key] = buf
        return buf


def patches(xp, x, kh, kw, oh, ow, strides, dilations):
    """View of shape (N, OH, OW, KH, KW, C) over a padded NHWC input."""
    n, _, _, c = x.shape
    s0, s1, s2, s3 = x.strides
    shape = (n, oh, ow, kh, kw, c)
    st = (s0, s1 * strides[0], s2 * strides[1], s1 * dilations[0], s2 * dilations[1], s3)
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=st, writeable=False)


def pad(xp, x, ph, pw, value=0.0):
    if ph == (0, 0) and pw == (0, 0):
        return x
    return xp.pad(x, ((0, 0), ph, pw, (0, 0)), mode="constant", constant_values=value)


def col2im(xp, cols, x_shape, kh, kw, oh, ow, ph, pw, strides, dilations, out=None):
    """Scatter-add (N, OH, OW, KH, KW, C) patch gradients back into an NHWC array of x_shape."""
    n, h, w, c = x_shape
    if xp is np and cols.dtype in NUMBA_DTYPES and cols.flags.c_contiguous and numba_kernels() is not None:
        dx = out if out is not None else np.empty(x_shape, dtype=cols.dtype)
        numba_kernels()["col2im"](cols, kh, kw, strides[0], strides[1], dilations[0], dilations[1],
                                  ph[0], pw[0], dx)
        return dx
    acc = xp.zeros((n, h + ph[0] + ph[1], w + pw[0] + pw[1], c), dtype=cols.dtype)
    sh, sw = strides
    for i in range(kh):
        hi = i * dilations[0]
        for j in range(kw):
            wj = j * dilations[1]
            acc[:, hi:hi + sh * (oh - 1) + 1:sh, wj:wj + sw * (ow - 1) + 1:sw, :] += cols[:, :, :, i, j, :]
    return write_into(xp, acc[:, ph[0]:ph[0] + h, pw[0]:pw[0] + w, :], out)


def write_into(xp, value, out):
    """`value`, copied into `out` when the caller (a Plan) gave one."""
    if out is None:
        return value
    out[...] = value
    return out


def _images_per_block(xp, n, per_image_elements, itemsize):
    """How many images one GEMM takes on the CPU: as many as keep its patch matrix within _BLOCK_BYTES, so the
    GEMM reads the copy back from the core's cache instead of memory. Other array modules take the batch whole."""
    if xp is not np:
        return max(n, 1)
    return max(1, min(n, _BLOCK_BYTES // max(1, per_image_elements * itemsize)))


def _patch_rows(xp, x, kh, kw, oh, ow, ph, pw, strides, dilations, scratch, block):
    """fn(lo, hi) -> the (images lo:hi, at most `block` of them) rows of the (N*OH*OW, KH*KW*C) patch matrix.

    On the CPU each call copies its images' patches into the calling thread's block buffer (kept in `scratch`
    between calls); elsewhere a copy is made.
    """
    cin = x.shape[3]
    k = kh * kw * cin
    xpad = pad(xp, x, ph, pw)
    if kh == 1 and kw == 1 and strides == (1, 1):
        return lambda lo, hi: xpad[lo:hi].reshape(-1, cin)
    view = patches(xp, xpad, kh, kw, oh, ow, strides, dilations)
    if xp is not np or scratch is None:
        return lambda lo, hi: view[lo:hi].reshape(-1, k)

    def rows(lo, hi):
        buf = scratch.get((block,) + view.shape[1:], x.dtype)[:hi - lo]
        if cin < _FEW_CHANNELS:
            # one strided copy per kernel position: NumPy's 6-D copy walks 1-element inner runs far slower
            # (64x28x28x1 input, 3x3: 0.42 -> 0.15 ms; from 2 channels on the one 6-D copy is faster)
            for i in range(kh):
                for j in range(kw):
                    np.copyto(buf[:, :, :, i, j, :], view[lo:hi, :, :, i, j, :])
        else:
            np.copyto(buf, view[lo:hi])
        return buf.reshape(-1, k)
    return rows


def _blocks(lo, hi, block):
    """(b0, b1) ranges of at most `block` images covering lo:hi."""
    return [(b0, min(b0 + block, hi)) for b0 in range(lo, hi, block)]


def _plan_buffer(xp, out, shape, dtype):
    """`out` when a GEMM can write into it directly, else a fresh array (copied into `out` by the caller)."""
    if out is not None and xp is np and out.flags.c_contiguous and out.dtype == dtype and out.shape == shape:
        return out
    return xp.empty(shape, dtype=dtype)


def _per_image(xp, n, k, cout, rows_per_image):
    """Whether a GEMM over all N*OH*OW rows with a small (k x cout) filter matrix runs as N per-image GEMMs."""
    return xp is np and n > 1 and k * cout <= _SMALL_FILTER and rows_per_image >= k


def conv_forward(xp, x, w, strides, dilations, geometry, out=None, scratch=None):
    """y[n, oh, ow, co] = sum over kh, kw, ci of x_padded[n, oh*s + i*d, ow*s + j*d, ci] * w[i, j, ci, co]."""
    kh, kw, cin, cout = w.shape
    oh, ow, ph, pw = geometry
    n, k, pos = x.shape[0], kh * kw * cin, oh * ow
    block = _images_per_block(xp, n, pos * k, x.dtype.itemsize)
    rows_of = _patch_rows(xp, x, kh, kw, oh, ow, ph, pw, strides, dilations, scratch, block)
    w2 = w.reshape(k, cout)
    y = _plan_buffer(xp, out, (n, oh, ow, cout), xp.result_type(x, w))
    per_image = _per_image(xp, n, k, cout, pos)

    def chunk(lo, hi):
        for b0, b1 in _blocks(lo, hi, block):
            cols = rows_of(b0, b1)
            if per_image:
                # as in conv_backprop_filter: one GEMM per image keeps OpenBLAS on one thread (the benchmark's
                # first layer in fit() with 2 BLAS threads on 2 busy cores: 15 ms CPU as one GEMM, 0.5 ms per image)
                xp.matmul(cols.reshape(b1 - b0, pos, k), w2, out=y[b0:b1].reshape(b1 - b0, pos, cout))
            else:
                xp.matmul(cols, w2, out=y[b0:b1].reshape(-1, cout))
    intra_op.run_chunks(chunk, n, enabled=intra_op.worth_splitting(xp, n * pos * k))
    return write_into(xp, y, out) if y is not out else out


def conv_backprop_input(xp, x_shape, w, dy, strides, dilations, geometry, out=None, scratch=None):
    """dx = col2im(dy @ w^T): the GEMM writes a block of patch gradients, one scatter-add pass sums them."""
    kh, kw, cin, cout = w.shape
    oh, ow, ph, pw = geometry
    n, k, pos = x_shape[0], kh * kw * cin, oh * ow
    w2t = w.reshape(-1, cout).T
    dtype = xp.result_type(dy, w)
    block = _images_per_block(xp, n, pos * k, np.dtype(dtype).itemsize)
    dy2 = dy.reshape(n * pos, cout)
    dx = _plan_buffer(xp, out, tuple(x_shape), dtype)

    def chunk(lo, hi):
        if xp is np and scratch is not None:
            dcols = scratch.get((block * pos, k), dtype)
        else:
            dcols = xp.empty((min(block, hi - lo) * pos, k), dtype=dtype)
        for b0, b1 in _blocks(lo, hi, block):
            part = dcols[:(b1 - b0) * pos]
            xp.matmul(dy2[b0 * pos:b1 * pos], w2t, out=part)
            col2im(xp, part.reshape(b1 - b0, oh, ow, kh, kw, cin), (b1 - b0,) + tuple(x_shape[1:]), kh, kw, oh, ow,
                   ph, pw, strides, dilations, out=dx[b0:b1])
    intra_op.run_chunks(chunk, n, enabled=intra_op.worth_splitting(xp, n * pos * k))
    return write_into(xp, dx, out) if dx is not out else out


def conv_backprop_filter(xp, x, w_shape, dy, strides, dilations, geometry, out=None, scratch=None):
    """dw = patches(x)^T @ dy, summed over all N*OH*OW output positions (per block of images, then added)."""
    kh, kw, cin, cout = w_shape
    oh, ow, ph, pw = geometry
    n, k, pos = x.shape[0], kh * kw * cin, oh * ow
    block = _images_per_block(xp, n, pos * k, x.dtype.itemsize)
    rows_of = _patch_rows(xp, x, kh, kw, oh, ow, ph, pw, strides, dilations, scratch, block)
    dy2 = dy.reshape(n * pos, cout)
    per_image = _per_image(xp, n, k, cout, pos)
    dtype = xp.result_type(x, dy)
    dw = _plan_buffer(xp, out, tuple(w_shape), dtype)

    def block_sum(b0, b1, dest):
        cols = rows_of(b0, b1)
        if per_image:
            # A tiny result over a very long sum (first layers: 9 x 32 over 43,264 rows). As one GEMM, OpenBLAS
            # splits it across its threads and then waits on them: with 2 threads on 2 busy cores that call was
            # measured at 460 ms (mean of 30) instead of 0.5. Per-image GEMMs are small enough that OpenBLAS
            # runs each on one thread; their sum costs the same 0.5 ms whatever the thread count.
            parts = xp.matmul(cols.reshape(b1 - b0, pos, k).transpose(0, 2, 1),
                              dy2[b0 * pos:b1 * pos].reshape(b1 - b0, pos, cout))
            return xp.sum(parts, axis=0, out=dest)
        return xp.matmul(cols.T, dy2[b0 * pos:b1 * pos], out=dest)

    def chunk(lo, hi, dest=None):
        total = None
        for b0, b1 in _blocks(lo, hi, block):
            if total is None:
                total = block_sum(b0, b1, dest)
            else:
                total += block_sum(b0, b1, None)
        return total if total is not None else xp.zeros((k, cout), dtype=dtype)
    dw2 = dw.reshape(k, cout)
    if intra_op.worth_splitting(xp, n * pos * k):
        partials = intra_op.run_chunks(chunk, n)
        np.copyto(dw2, partials[0])
        for part in partials[1:]:
            np.add(dw2, part, out=dw2)
    else:
        result = chunk(0, n, dest=dw2)
        if result is not dw2:
            dw2[...] = result
    return write_into(xp, dw, out) if dw is not out else out
