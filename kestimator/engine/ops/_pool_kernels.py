"""Max-pooling kernels (NHWC): numba loops on the CPU, reshape-based NumPy for non-overlapping windows.

Which element gets the gradient: the first maximum of its window in row-major (row, then column) order, as
TensorFlow's MaxPoolGrad does; a NaN counts as the maximum (the first NaN wins), as `np.argmax` decides.

Measured for the small-CNN benchmark's first pool (64x26x26x32 float32 -> 64x13x13x32, thread CPU time,
2 busy cores): the stride-tricks argmax + per-position `where` + col2im kernel this replaces took 12.5 ms
for the gradient and 2.0 ms forward; the numba loops take 1.0 ms and 0.35 ms, the NumPy block path 6 ms
and 0.3 ms. So non-overlapping windows pool forward with NumPy and take the gradient with numba; overlapping
windows use numba for both (the stride-tricks max / argmax otherwise).

numba is imported on first use only; without it `numba_kernels()` is None and callers use NumPy.
"""
import numpy as np

from ..lazy_numba import LazyKernels

NUMBA_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _compile():
    from . import _pool_numba as k
    return {"max_pool": k.max_pool, "max_pool_grad": k.max_pool_grad, "max_pool_grad_relu": k.max_pool_grad_relu}


numba_kernels = LazyKernels(_compile)   # {name: kernel} or None without numba


def use_numba(xp, *arrays):
    """True when the numba loops can run: NumPy arrays of float32/float64 (one dtype) and numba installed."""
    if xp is not np or any(a.dtype != arrays[0].dtype or a.dtype not in NUMBA_DTYPES for a in arrays):
        return False
    return numba_kernels() is not None


# -- NumPy: non-overlapping windows (stride == window) -----------------------------------------------------------
def _blocks(xp, x, oh, ow, kh, kw, ph, pw, fill):
    """View (N, OH, KH, OW, KW, C) of the windows over x padded with `fill` (a copy only when padding)."""
    if ph != (0, 0) or pw != (0, 0):
        x = xp.pad(x, ((0, 0), ph, pw, (0, 0)), mode="constant", constant_values=fill)
    n, c = x.shape[0], x.shape[3]
    # splitting the (cropped) H and W axes is a view: no copy
    return x[:, :oh * kh, :ow * kw, :].reshape(n, oh, kh, ow, kw, c)


def max_pool_blocks(xp, x, kh, kw, oh, ow, ph, pw, out=None):
    """Max over non-overlapping windows: one `maximum` per window position, written into `out`."""
    blk = _blocks(xp, x, oh, ow, kh, kw, ph, pw, -np.inf)
    if out is None:
        out = xp.empty((x.shape[0], oh, ow, x.shape[3]), dtype=x.dtype)
    xp.copyto(out, blk[:, :, 0, :, 0, :])
    for i in range(kh):
        for j in range(kw):
            if i or j:
                xp.maximum(out, blk[:, :, i, :, j, :], out=out)
    return out


def max_pool_grad_blocks(xp, x, dy, kh, kw, oh, ow, ph, pw, out=None):
    """Gradient of non-overlapping max pooling: each window's dy goes to its first maximum."""
    n, h, w, c = x.shape
    y = max_pool_blocks(xp, x, kh, kw, oh, ow, ph, pw)
    nan_max = xp.isnan(y)
    nan_max = nan_max if bool(nan_max.any()) else None   # the NaN rule costs 3 passes per position
    blk = _blocks(xp, x, oh, ow, kh, kw, ph, pw, -np.inf)
    padded = ph != (0, 0) or pw != (0, 0)
    hp, wp = h + ph[0] + ph[1], w + pw[0] + pw[1]
    if padded or out is None or not out.flags.c_contiguous:   # the block view below must not be a copy
        dx = xp.zeros((n, hp, wp, c), dtype=dy.dtype)
    else:
        dx = out
        if oh * kh < h or ow * kw < w:   # positions no window covers
            dx[:, oh * kh:] = 0
            dx[:, :, ow * kw:] = 0
    dblk = dx[:, :oh * kh, :ow * kw, :].reshape(n, oh, kh, ow, kw, c)
    taken = None
    for i in range(kh):
        for j in range(kw):
            v = blk[:, :, i, :, j, :]
            hit = v == y
            if nan_max is not None:
                hit |= nan_max & xp.isnan(v)
            if taken is None:
                taken = hit
            else:
                hit &= ~taken    # a later equal position (a tie) gets nothing
                taken |= hit
            dblk[:, :, i, :, j, :] = xp.where(hit, dy, 0)
    if padded:
        dx = dx[:, ph[0]:ph[0] + h, pw[0]:pw[0] + w, :]
    if out is not None and dx is not out:
        xp.copyto(out, dx)
        return out
    return dx
