"""numba kernels for the boosted-trees hot loops.

Imported only through :func:`_backend.numba_kernels`, never at package import (numba is heavy and
optional). Each kernel has a NumPy twin in the module that owns the algorithm (binning, histogram,
splitting, grower); the tests check that both give the same numbers. The kernels are written so that
every float sum is accumulated in the same order as the twin (one thread owns one histogram row, one
split scan, one partition chunk), which keeps training deterministic whatever the thread count.

Every kernel is a loop over independent work items whose body is a separate function, run either
in a ``prange`` (threads) or in a plain loop, chosen by the caller's ``parallel`` flag. Opening a
parallel region costs ~10 us on a quiet machine and a scheduler slice (several ms) when another
process holds a core, so small calls (small data sets, deep small nodes) stay on one thread
(_backend.worth_threads decides).

``cache=True`` stores the compiled machine code next to this file (``__pycache__``), so the JIT cost
is paid once per machine and Python version, not once per process.
"""

import numpy as np
from numba import njit, prange

# Feature kinds; the same values as binning.NUMERIC / BUCKETIZED / CATEGORICAL.
_CATEGORICAL = 2
_BIN_BLOCK = 2048   # rows per binning work item
_BIN_GROUP = 16     # searches interleaved by one thread


# ------------------------------------------------------------------------------------------ binning

@njit(cache=True, nogil=True)
def _bin_block(X, features, edges, edge_offsets, missing_bin, out, r0, r1):
    """Bin ids of rows r0..r1 of the numeric ``features`` (see bin_numeric)."""
    lo = np.zeros(_BIN_GROUP, np.int64)
    xs = np.zeros(_BIN_GROUP)
    for q in range(features.shape[0]):
        f = features[q]
        e0 = edge_offsets[f]
        m = edge_offsets[f + 1] - e0
        ef = edges[e0:e0 + m]
        first_step = 1
        while first_step * 2 <= m:
            first_step *= 2
        for g0 in range(r0, r1, _BIN_GROUP):
            ng = min(_BIN_GROUP, r1 - g0)
            for i in range(ng):
                xs[i] = X[g0 + i, f]
                lo[i] = 0
            if m > 0:
                # Either the first ``first_step`` edges are all < x (answer in [m-step, m]) or
                # not (answer in [0, step)); then halve: the answer stays in [lo, lo + 2 step].
                for i in range(ng):
                    lo[i] = m - first_step if ef[first_step - 1] < xs[i] else 0
                step = first_step >> 1
                while step > 0:
                    for i in range(ng):
                        lo[i] = lo[i] + step if ef[lo[i] + step - 1] < xs[i] else lo[i]
                    step >>= 1
                for i in range(ng):
                    lo[i] = lo[i] + 1 if lo[i] < m and ef[lo[i]] < xs[i] else lo[i]
            for i in range(ng):
                x = xs[i]
                out[f, g0 + i] = missing_bin if x != x else lo[i]


@njit(parallel=True, cache=True, nogil=True)
def bin_numeric(X, features, edges, edge_offsets, missing_bin, out, parallel):
    """Writes bin ids of the numeric columns of ``X`` into ``out`` (feature-major).

    ``bin = number of edges < x`` (``np.searchsorted(edges, x, side="left")``), so that
    ``bin <= b`` exactly when ``x <= edges[b]``; NaN goes to ``missing_bin``.

    A plain binary search is bound by the latency of its chain of dependent loads (~20 ns a value).
    Here the search has a fixed number of halving steps for a given feature (Shar's variant), and
    each step is applied to a group of rows at once, so the searches of the group overlap (7x faster
    measured). Rows are processed in blocks so that each thread reads contiguous rows of ``X``.
    """
    n_rows = X.shape[0]
    n_blocks = (n_rows + _BIN_BLOCK - 1) // _BIN_BLOCK
    if parallel:
        for blk in prange(n_blocks):
            _bin_block(X, features, edges, edge_offsets, missing_bin, out, blk * _BIN_BLOCK,
                       min(n_rows, (blk + 1) * _BIN_BLOCK))
    else:
        for blk in range(n_blocks):
            _bin_block(X, features, edges, edge_offsets, missing_bin, out, blk * _BIN_BLOCK,
                       min(n_rows, (blk + 1) * _BIN_BLOCK))


# --------------------------------------------------------------------------------------- histograms

@njit(cache=True, nogil=True)
def _histogram_pair(binned, gradients, hessians, sample_indices, starts, stops, slots, hist, pair):
    """Histograms of features 2*pair and 2*pair+1 of every node (see build_histograms)."""
    n_features = binned.shape[0]
    f0 = 2 * pair
    f1 = min(f0 + 1, n_features - 1)
    col0 = binned[f0]
    col1 = binned[f1]
    for j in range(starts.shape[0]):
        h0 = hist[slots[j], f0]
        h1 = hist[slots[j], f1]
        h0[:, :] = 0.0
        if f1 == f0:
            for k in range(starts[j], stops[j]):
                r = np.uint32(sample_indices[k])
                b = col0[r]
                h0[b, 0] += gradients[r]
                h0[b, 1] += hessians[r]
                h0[b, 2] += 1.0
        else:
            h1[:, :] = 0.0
            for k in range(starts[j], stops[j]):
                r = np.uint32(sample_indices[k])
                g = gradients[r]
                h = hessians[r]
                b = col0[r]
                h0[b, 0] += g
                h0[b, 1] += h
                h0[b, 2] += 1.0
                b = col1[r]
                h1[b, 0] += g
                h1[b, 1] += h
                h1[b, 2] += 1.0


@njit(parallel=True, cache=True, nogil=True)
def build_histograms(binned, gradients, hessians, sample_indices, starts, stops, slots, hist,
                     parallel):
    """Fills ``hist[slots[j]]`` with the (gradient, hessian, count) sums of node j, per feature/bin.

    Work items are pairs of features: one thread owns whole (node, feature) rows, so the sums are
    accumulated sequentially in row order (the same order as ``np.bincount``) and need no reduction.
    Two features per pass share the loads of the row index, gradient and hessian (~10% faster than
    one), and the row index is read as unsigned so numba drops its negative-index wraparound
    (~25% faster).
    """
    n_pairs = (binned.shape[0] + 1) // 2
    if parallel:
        for pair in prange(n_pairs):
            _histogram_pair(binned, gradients, hessians, sample_indices, starts, stops, slots, hist,
                            pair)
    else:
        for pair in range(n_pairs):
            _histogram_pair(binned, gradients, hessians, sample_indices, starts, stops, slots, hist,
                            pair)


@njit(cache=True, nogil=True)
def _subtract_one(hist, parent_hist, parent_slots, built_slots, target_slots, item):
    n_features = hist.shape[1]
    j = item // n_features
    f = item - j * n_features
    out = hist[target_slots[j], f]
    p = parent_hist[parent_slots[j], f]
    c = hist[built_slots[j], f]
    for b in range(out.shape[0]):
        for ch in range(out.shape[1]):
            out[b, ch] = p[b, ch] - c[b, ch]


@njit(parallel=True, cache=True, nogil=True)
def subtract_histograms(hist, parent_hist, parent_slots, built_slots, target_slots, parallel):
    """``hist[target] = parent_hist[parent] - hist[built]`` for each triple (the subtraction trick)."""
    n_items = target_slots.shape[0] * hist.shape[1]
    if parallel:
        for item in prange(n_items):
            _subtract_one(hist, parent_hist, parent_slots, built_slots, target_slots, item)
    else:
        for item in range(n_items):
            _subtract_one(hist, parent_hist, parent_slots, built_slots, target_slots, item)


# ---------------------------------------------------------------------------------------- splitting

@njit(cache=True, nogil=True)
def _score(g, h, l1, l2):
    """TF's leaf gain ``t(G)^2 / (H + l2)`` with ``t`` the L1 soft-threshold (see splitting.py)."""
    if g > l1:
        gg = g - l1
    elif g < -l1:
        gg = g + l1
    else:
        return 0.0
    d = h + l2
    if d <= 1e-15:
        return 0.0
    return gg * gg / d


@njit(cache=True, nogil=True)
def _candidate_gain(gl, hl, cl, g, h, c, parent_score, l1, l2, tree_complexity, min_node_weight):
    """Gain of sending (gl, hl, cl) left and the rest right, or -inf when the split is not allowed."""
    cr = c - cl
    if cl <= 0.0 or cr <= 0.0:
        return -np.inf
    hr = h - hl
    if hl < min_node_weight or hr < min_node_weight:
        return -np.inf
    return _score(gl, hl, l1, l2) + _score(g - gl, hr, l1, l2) - parent_score - tree_complexity


@njit(cache=True, nogil=True)
def _best_split_of(hist, slots, kinds, n_bins, missing_bin, l1, l2, tree_complexity, min_node_weight,
                   out_gain, out_bin, out_default_left, out_left, out_right, item):
    """Scan of one (node, feature) pair (see find_split_candidates)."""
    n_features = hist.shape[1]
    j = item // n_features
    f = item - j * n_features
    hf = hist[slots[j], f]
    nb = n_bins[f]
    gm = hf[missing_bin, 0]
    hm = hf[missing_bin, 1]
    cm = hf[missing_bin, 2]
    g = 0.0
    h = 0.0
    c = 0.0
    for b in range(nb):
        g += hf[b, 0]
        h += hf[b, 1]
        c += hf[b, 2]
    g += gm
    h += hm
    c += cm
    parent = _score(g, h, l1, l2)
    best = -np.inf
    best_bin = -1
    best_dl = False
    bgl = 0.0
    bhl = 0.0
    bcl = 0.0
    categorical = kinds[f] == _CATEGORICAL
    gl = 0.0
    hl = 0.0
    cl = 0.0
    for b in range(nb):
        if categorical:
            gl = hf[b, 0]
            hl = hf[b, 1]
            cl = hf[b, 2]
        else:
            gl += hf[b, 0]
            hl += hf[b, 1]
            cl += hf[b, 2]
        if hf[b, 2] == 0.0:
            continue  # an empty bin gives the same partition as the previous one (or none)
        gain = _candidate_gain(gl, hl, cl, g, h, c, parent, l1, l2, tree_complexity, min_node_weight)
        if gain > best:
            best, best_bin, best_dl, bgl, bhl, bcl = gain, b, False, gl, hl, cl
        if cm > 0.0:
            gain = _candidate_gain(gl + gm, hl + hm, cl + cm, g, h, c, parent, l1, l2,
                                   tree_complexity, min_node_weight)
            if gain > best:
                best, best_bin, best_dl, bgl, bhl, bcl = gain, b, True, gl + gm, hl + hm, cl + cm
    if best_bin >= 0 and cm == 0.0:
        # No missing value reached this node in training: send future ones to the bigger child.
        best_dl = bcl >= c - bcl
    out_gain[j, f] = best
    out_bin[j, f] = best_bin
    out_default_left[j, f] = best_dl
    out_left[j, f, 0] = bgl
    out_left[j, f, 1] = bhl
    out_left[j, f, 2] = bcl
    out_right[j, f, 0] = g - bgl
    out_right[j, f, 1] = h - bhl
    out_right[j, f, 2] = c - bcl


@njit(parallel=True, cache=True, nogil=True)
def find_split_candidates(hist, slots, kinds, n_bins, missing_bin, l1, l2, tree_complexity,
                          min_node_weight, out_gain, out_bin, out_default_left, out_left, out_right,
                          parallel):
    """Best split of every (node, feature) pair; see splitting.find_split_candidates.

    The scan order (bins ascending, missing-right before missing-left, strict ``>``) is the tie-break
    rule, and the NumPy twin reproduces it with a first-maximum argmax.
    """
    n_items = slots.shape[0] * hist.shape[1]
    if parallel:
        for item in prange(n_items):
            _best_split_of(hist, slots, kinds, n_bins, missing_bin, l1, l2, tree_complexity,
                           min_node_weight, out_gain, out_bin, out_default_left, out_left, out_right,
                           item)
    else:
        for item in range(n_items):
            _best_split_of(hist, slots, kinds, n_bins, missing_bin, l1, l2, tree_complexity,
                           min_node_weight, out_gain, out_bin, out_default_left, out_left, out_right,
                           item)


# ---------------------------------------------------------------------------------------- partition

@njit(cache=True, nogil=True)
def _partition_chunk(binned, sample_indices, scratch, feature, split_bin, default_left,
                     is_categorical, missing_bin, s, e):
    """Partitions rows s..e into ``scratch``: lefts from s upwards, rights from e downwards.

    Returns the number of left rows.
    """
    col = binned[feature]
    nl = 0
    nr = 0
    for k in range(s, e):
        r = sample_indices[k]
        b = col[np.uint32(r)]
        if b == missing_bin:
            left = default_left
        elif is_categorical:
            left = b == split_bin
        else:
            left = b <= split_bin
        # Branch-free: write the row to both candidate slots and advance one cursor. A slot written
        # in vain is overwritten later or lies past its side's final end (the two cursors meet
        # exactly when the chunk is done), so the result is the stable partition. Sides look
        # random to the CPU, so a branch here mispredicts often (2.7x slower measured).
        scratch[s + nl] = r
        scratch[e - 1 - nr] = r
        nl += left
        nr += 1 - left
    return nl


@njit(cache=True, nogil=True)
def _place_chunk(sample_indices, scratch, s, e, n_left, dest_left, dest_right):
    """Copies a partitioned chunk's lefts and (reversed back) rights to their final places."""
    for i in range(n_left):
        sample_indices[dest_left + i] = scratch[s + i]
    for i in range(e - s - n_left):
        sample_indices[dest_right + i] = scratch[e - 1 - i]


@njit(parallel=True, cache=True, nogil=True)
def partition(binned, sample_indices, scratch, starts, stops, features, bins, default_left,
              is_categorical, missing_bin, chunk_size, mids, parallel):
    """Stable partition of each node's range of ``sample_indices`` into left rows then right rows.

    Work is cut into chunks of ``chunk_size`` rows (so one big node still uses every thread): pass 1
    partitions each chunk into ``scratch`` (lefts from the front, rights from the back), pass 2 copies
    every chunk's lefts and rights to their final places. ``mids[j]`` gets the first right position.
    """
    n_nodes = starts.shape[0]
    n_chunks = 0
    for j in range(n_nodes):
        n_chunks += (stops[j] - starts[j] + chunk_size - 1) // chunk_size
    c_node = np.empty(n_chunks, np.int64)
    c_start = np.empty(n_chunks, np.int64)
    c_stop = np.empty(n_chunks, np.int64)
    c_left = np.empty(n_chunks, np.int64)
    c = 0
    for j in range(n_nodes):
        s = starts[j]
        while s < stops[j]:
            c_node[c] = j
            c_start[c] = s
            s = min(stops[j], s + chunk_size)
            c_stop[c] = s
            c += 1
    if parallel:
        for c in prange(n_chunks):
            j = c_node[c]
            c_left[c] = _partition_chunk(binned, sample_indices, scratch, features[j], bins[j],
                                         default_left[j], is_categorical[j], missing_bin,
                                         c_start[c], c_stop[c])
    else:
        for c in range(n_chunks):
            j = c_node[c]
            c_left[c] = _partition_chunk(binned, sample_indices, scratch, features[j], bins[j],
                                         default_left[j], is_categorical[j], missing_bin,
                                         c_start[c], c_stop[c])
    dest_left = np.empty(n_chunks, np.int64)
    dest_right = np.empty(n_chunks, np.int64)
    c = 0
    for j in range(n_nodes):
        total_left = 0
        c0 = c
        while c < n_chunks and c_node[c] == j:
            total_left += c_left[c]
            c += 1
        mids[j] = starts[j] + total_left
        pl = starts[j]
        pr = mids[j]
        for q in range(c0, c):
            dest_left[q] = pl
            pl += c_left[q]
            dest_right[q] = pr
            pr += c_stop[q] - c_start[q] - c_left[q]
    if parallel:
        for c in prange(n_chunks):
            _place_chunk(sample_indices, scratch, c_start[c], c_stop[c], c_left[c], dest_left[c],
                         dest_right[c])
    else:
        for c in range(n_chunks):
            _place_chunk(sample_indices, scratch, c_start[c], c_stop[c], c_left[c], dest_left[c],
                         dest_right[c])


# ------------------------------------------------------------------------------------- leaf update

@njit(cache=True, nogil=True)
def _add_leaf(raw, column, sample_indices, s, e, value):
    for k in range(s, e):
        raw[sample_indices[k], column] += value


@njit(parallel=True, cache=True, nogil=True)
def add_leaf_values(raw, column, sample_indices, starts, stops, values, parallel):
    """``raw[row, column] += values[j]`` for every row of leaf j (rows given by index ranges)."""
    if parallel:
        for j in prange(starts.shape[0]):
            _add_leaf(raw, column, sample_indices, starts[j], stops[j], values[j])
    else:
        for j in range(starts.shape[0]):
            _add_leaf(raw, column, sample_indices, starts[j], stops[j], values[j])
