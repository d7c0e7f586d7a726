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
    import numba

    jit = numba.njit(cache=True, error_model="numpy", nogil=True)

    @jit
    def window_argmax(x, b, r0, s0, kh, kw, best, idx):
        """First maximum of the window whose top-left input position is (r0, s0), per channel.

        Positions outside the input (padding) are skipped; idx[ch] is the row-major window index i * kw + j
        (-1 when the window holds no input element, which TF's geometry never produces).
        """
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        first = True
        for i in range(kh):
            hi = r0 + i
            if hi < 0 or hi >= h:
                continue
            for j in range(kw):
                wj = s0 + j
                if wj < 0 or wj >= w:
                    continue
                k = i * kw + j
                if first:
                    for ch in range(c):
                        best[ch] = x[b, hi, wj, ch]
                        idx[ch] = k
                    first = False
                else:
                    for ch in range(c):
                        v = x[b, hi, wj, ch]
                        cur = best[ch]
                        # a larger value, or the first NaN (cur == cur: no NaN seen yet)
                        if v > cur or (v != v and cur == cur):
                            best[ch] = v
                            idx[ch] = k
        if first:
            for ch in range(c):
                idx[ch] = -1

    @jit
    def max_pool(x, kh, kw, sh, sw, ph0, pw0, out):
        n, c = x.shape[0], x.shape[3]
        oh, ow = out.shape[1], out.shape[2]
        best = np.empty(c, x.dtype)
        idx = np.empty(c, np.int64)
        for b in range(n):
            for r in range(oh):
                for s in range(ow):
                    window_argmax(x, b, r * sh - ph0, s * sw - pw0, kh, kw, best, idx)
                    for ch in range(c):
                        out[b, r, s, ch] = best[ch]

    @jit
    def max_pool_grad(x, dy, kh, kw, sh, sw, ph0, pw0, dx):
        """dx = the pooling gradient. Non-overlapping windows (stride >= window) write every covered element
        once, zeros included, so only the rows/columns no window covers are cleared; overlapping windows
        clear dx and accumulate."""
        n, h, w, c = x.shape
        oh, ow = dy.shape[1], dy.shape[2]
        best = np.empty(c, x.dtype)
        idx = np.empty(c, np.int64)
        zero = dy.dtype.type(0)
        disjoint = sh == kh and sw == kw
        if disjoint:
            # rows / columns past the last window (VALID pooling of a size that is not a multiple)
            for b in range(n):
                for hi in range(h):
                    for wj in range(w):
                        if hi >= oh * kh - ph0 or wj >= ow * kw - pw0:
                            for ch in range(c):
                                dx[b, hi, wj, ch] = zero
        else:
            dx[...] = zero
        for b in range(n):
            for r in range(oh):
                for s in range(ow):
                    r0, s0 = r * sh - ph0, s * sw - pw0
                    window_argmax(x, b, r0, s0, kh, kw, best, idx)
                    for i in range(kh):
                        hi = r0 + i
                        if hi < 0 or hi >= h:
                            continue
                        for j in range(kw):
                            wj = s0 + j
                            if wj < 0 or wj >= w:
                                continue
                            k = i * kw + j
                            if disjoint:
                                for ch in range(c):
                                    dx[b, hi, wj, ch] = dy[b, r, s, ch] if idx[ch] == k else zero
                            else:
                                for ch in range(c):
                                    if idx[ch] == k:
                                        dx[b, hi, wj, ch] += dy[b, r, s, ch]

    @jit
    def max_pool_grad_relu(x, dy, kh, kw, sh, sw, ph0, pw0, dx, total, do_sum):
        """ReluGrad(MaxPoolGrad(x, dy), x) in one pass, and (do_sum) its sum over all axes but channels.

        The element that takes a window's gradient holds the window's maximum m, so the ReLU gradient there
        is dy * (m > 0): the mask is applied per window, before scattering (dy * 0 where m <= 0, as
        g * (y > 0) computes, so -0.0 and NaN come out the same). Every other element gets 0, and 0 * mask
        is 0. The channel sums accumulate per window in float64 (one nonzero per window and channel: the
        sum of dx is the sum of the masked dy), then round to dx's dtype.
        """
        n, h, w, c = x.shape
        oh, ow = dy.shape[1], dy.shape[2]
        best = np.empty(c, x.dtype)
        idx = np.empty(c, np.int64)
        masked = np.empty(c, dy.dtype)
        acc = np.zeros(c, np.float64)
        zero = dy.dtype.type(0)
        xzero = x.dtype.type(0)
        disjoint = sh == kh and sw == kw
        if disjoint:
            for b in range(n):
                for hi in range(h):
                    for wj in range(w):
                        if hi >= oh * kh - ph0 or wj >= ow * kw - pw0:
                            for ch in range(c):
                                dx[b, hi, wj, ch] = zero
        else:
            dx[...] = zero
        for b in range(n):
            for r in range(oh):
                for s in range(ow):
                    r0, s0 = r * sh - ph0, s * sw - pw0
                    window_argmax(x, b, r0, s0, kh, kw, best, idx)
                    for ch in range(c):
                        g = dy[b, r, s, ch]
                        v = g if best[ch] > xzero else g * zero
                        masked[ch] = v
                        if do_sum and idx[ch] >= 0:
                            acc[ch] += v
                    for i in range(kh):
                        hi = r0 + i
                        if hi < 0 or hi >= h:
                            continue
                        for j in range(kw):
                            wj = s0 + j
                            if wj < 0 or wj >= w:
                                continue
                            k = i * kw + j
                            if disjoint:
                                for ch in range(c):
                                    dx[b, hi, wj, ch] = masked[ch] if idx[ch] == k else zero
                            else:
                                for ch in range(c):
                                    if idx[ch] == k:
                                        dx[b, hi, wj, ch] += masked[ch]
        if do_sum:
            for ch in range(c):
                total[ch] = acc[ch]

    return {"max_pool": max_pool, "max_pool_grad": max_pool_grad, "max_pool_grad_relu": max_pool_grad_relu}


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
