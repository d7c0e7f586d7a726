"""The numba loops of max pooling (see _pool_kernels, which imports this module on first use only).

They live at module level, not inside a function: numba's on-disk cache cannot be used for a function whose
closure holds another compiled function (the cache key pickles the closure, which differs in every process),
so each process compiled the three kernels again (~2 s on the small CNN's first step).
"""
import numba
import numpy as np

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
def _clear_uncovered(dx, oh, ow, kh, kw, ph0, pw0, disjoint, zero):
    """Zero what the scatter will not write: with disjoint windows (each covered element written once, zeros
    included) the rows / columns past the last window (VALID pooling of a size that is not a multiple); with
    overlapping windows, which accumulate, everything."""
    n, h, w, c = dx.shape
    if not disjoint:
        dx[...] = zero
        return
    for b in range(n):
        for hi in range(h):
            for wj in range(w):
                if hi >= oh * kh - ph0 or wj >= ow * kw - pw0:
                    for ch in range(c):
                        dx[b, hi, wj, ch] = zero


@jit
def _scatter_window(dx, b, r0, s0, kh, kw, idx, values, disjoint, zero):
    """Give each channel's `values` to the element idx[ch] of the window at (r0, s0); with disjoint windows
    the window's other elements get zero."""
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
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
                    dx[b, hi, wj, ch] = values[ch] if idx[ch] == k else zero
            else:
                for ch in range(c):
                    if idx[ch] == k:
                        dx[b, hi, wj, ch] += values[ch]


@jit
def max_pool_grad(x, dy, kh, kw, sh, sw, ph0, pw0, dx):
    """dx = the pooling gradient: each window's dy goes to its first maximum."""
    n, h, w, c = x.shape
    oh, ow = dy.shape[1], dy.shape[2]
    best = np.empty(c, x.dtype)
    idx = np.empty(c, np.int64)
    zero = dy.dtype.type(0)
    disjoint = sh == kh and sw == kw
    _clear_uncovered(dx, oh, ow, kh, kw, ph0, pw0, disjoint, zero)
    for b in range(n):
        for r in range(oh):
            for s in range(ow):
                r0, s0 = r * sh - ph0, s * sw - pw0
                window_argmax(x, b, r0, s0, kh, kw, best, idx)
                _scatter_window(dx, b, r0, s0, kh, kw, idx, dy[b, r, s], disjoint, zero)


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
    _clear_uncovered(dx, oh, ow, kh, kw, ph0, pw0, disjoint, zero)
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
                _scatter_window(dx, b, r0, s0, kh, kw, idx, masked, disjoint, zero)
    if do_sum:
        for ch in range(c):
            total[ch] = acc[ch]
