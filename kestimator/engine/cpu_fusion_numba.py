"""The numba loops of the CPU fusion pass (cpu_fusion imports this module on first use only).

At module level rather than inside a function so that numba's on-disk cache works: a function whose closure
holds another compiled function (xent_normalize calls row_sum) gets a cache key that differs in every
process, and was compiled again by each one.
"""
import numba

jit = numba.njit(cache=True, error_model="numpy", nogil=True)


@jit
def bias_relu(x, b, out, zero):
    n, k = x.shape
    for i in range(n):
        for j in range(k):
            v = x[i, j] + b[j]
            out[i, j] = v if (v > zero or v != v) else zero   # np.maximum keeps a NaN


@jit
def relu_grad_colsum(g, y, out, total, zero):
    n, k = g.shape
    for j in range(k):
        total[j] = zero
    for i in range(n):
        for j in range(k):
            v = g[i, j] if y[i, j] > zero else g[i, j] * zero   # as g * (y > 0): -0.0 and NaN kept
            out[i, j] = v
            total[j] += v


@jit
def colsum(x, total, zero):
    n, k = x.shape
    for j in range(k):
        total[j] = zero
    for i in range(n):
        for j in range(k):
            total[j] += x[i, j]


@jit
def row_sum(a, i, k, zero):
    # NumPy's pairwise order for a contiguous row of at most 128 elements (bitwise the same sum)
    if k < 8:
        s = zero
        for j in range(k):
            s += a[i, j]
        return s
    r0, r1, r2, r3 = a[i, 0], a[i, 1], a[i, 2], a[i, 3]
    r4, r5, r6, r7 = a[i, 4], a[i, 5], a[i, 6], a[i, 7]
    j = 8
    while j < k - (k % 8):
        r0 += a[i, j]
        r1 += a[i, j + 1]
        r2 += a[i, j + 2]
        r3 += a[i, j + 3]
        r4 += a[i, j + 4]
        r5 += a[i, j + 5]
        r6 += a[i, j + 6]
        r7 += a[i, j + 7]
        j += 8
    s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while j < k:
        s += a[i, j]
        j += 1
    return s


@jit
def xent_shift(logits, labels, shifted, picked):
    # shifted = logits - row max; picked = the label's shifted logit; a bad label's row, else -1
    n, k = logits.shape
    for i in range(n):
        lab = labels[i]
        if lab < 0 or lab >= k:
            return i
    for i in range(n):
        m = logits[i, 0]
        for j in range(1, k):
            if logits[i, j] > m or logits[i, j] != logits[i, j]:   # np.max keeps a NaN
                m = logits[i, j]
        for j in range(k):
            shifted[i, j] = logits[i, j] - m
        picked[i] = shifted[i, labels[i]]
    return -1


@jit
def xent_normalize(e, labels, sums, scale, scaled, zero, one):
    # e holds exp(shifted): divide by the row sums, subtract 1 at the label, scale
    n, k = e.shape
    for i in range(n):
        s = row_sum(e, i, k, zero)
        sums[i] = s
        for j in range(k):
            e[i, j] = e[i, j] / s
        e[i, labels[i]] -= one
        if scaled:
            for j in range(k):
                e[i, j] = e[i, j] * scale


@jit
def bias_relu_pool(x, bias, relu, pooled, kh, kw, ph0, pw0, zero):
    """relu = max(x + bias, 0) (a NaN kept, as np.maximum does) and pooled = its max over disjoint kh x kw
    windows (TF geometry: ph0 / pw0 padding rows before, padding never wins; a NaN is the maximum), one image
    at a time, so the pooling reads the image's ReLU output back from cache."""
    n, h, w, c = x.shape
    oh, ow = pooled.shape[1], pooled.shape[2]
    for b in range(n):
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    v = x[b, i, j, ch] + bias[ch]
                    relu[b, i, j, ch] = v if (v > zero or v != v) else zero
        for r in range(oh):
            for s in range(ow):
                first = True
                for i in range(kh):
                    hi = r * kh - ph0 + i
                    if hi < 0 or hi >= h:
                        continue
                    for j in range(kw):
                        wj = s * kw - pw0 + j
                        if wj < 0 or wj >= w:
                            continue
                        if first:
                            for ch in range(c):
                                pooled[b, r, s, ch] = relu[b, hi, wj, ch]
                            first = False
                        else:
                            for ch in range(c):
                                v = relu[b, hi, wj, ch]
                                cur = pooled[b, r, s, ch]
                                if v > cur or (v != v and cur == cur):
                                    pooled[b, r, s, ch] = v
