"""Gradient / hessian / count histograms of tree nodes.

A node's histogram holds, for every feature f and bin b, the sums over the node's rows whose value of
f falls in bin b: ``hist[f, b] = (sum of gradients, sum of hessians, number of rows)``. Every split
of the node on f is a prefix (or, for a categorical f, a single bin) of that row, so the split search
(splitting.py) never looks at rows again.

Layout: ``hist[slot, feature, bin, channel]`` float64 with channels GRADIENT, HESSIAN, COUNT and
``n_bins_total = max_bins + 1`` bins (the last is the missing bin). Gradients arrive as float32 and
are summed in float64, so the sums are exact to float64 rounding whatever the node size.

The subtraction trick: a parent's rows are exactly its two children's rows, so
``hist(parent) = hist(left) + hist(right)`` and only the child with fewer rows needs building; the
other is ``hist(parent) - hist(smaller)``. Building then costs at most half the parent's rows per
level. The counts stay exact (integers below 2^53 in float64).
"""

import numpy as np

from kestimator.estimators.boosted_trees import _backend

GRADIENT, HESSIAN, COUNT = 0, 1, 2
N_CHANNELS = 3


def empty_histograms(n_slots, n_features, n_bins_total):
    """An uninitialised histogram array; the builders zero the slots they fill."""
    return np.empty((n_slots, n_features, n_bins_total, N_CHANNELS), np.float64)


def build_histograms(binned, gradients, hessians, sample_indices, starts, stops, slots, hist,
                     kernels="numpy"):
    """Builds the histograms of several nodes into ``hist[slots]``.

    Args:
      binned: uint8 (n_features, n_rows) bin ids, feature-major (see binning.BinMapper.transform).
      gradients, hessians: float32 (n_rows,) per-row gradient and hessian.
      sample_indices: int32 (n_rows,); node j's rows are ``sample_indices[starts[j]:stops[j]]``.
      starts, stops: int64 (n_nodes,) ranges into ``sample_indices``.
      slots: int64 (n_nodes,), where in ``hist`` each node's histogram goes.
      hist: float64 (n_slots, n_features, n_bins_total, 3), written in place.
      kernels: "numba" or "numpy" (already resolved).

    Returns:
      ``hist``.
    """
    if kernels == "numba":
        work = int(np.sum(np.asarray(stops) - np.asarray(starts))) * binned.shape[0]
        _backend.numba_kernels().build_histograms(binned, gradients, hessians, sample_indices,
                                                  starts, stops, slots, hist,
                                                  _backend.worth_threads(work))
        return hist
    n_bins_total = hist.shape[2]
    for j in range(len(starts)):
        rows = sample_indices[starts[j]:stops[j]]
        g = gradients[rows].astype(np.float64)
        h = hessians[rows].astype(np.float64)
        node_bins = binned[:, rows]
        out = hist[slots[j]]
        for f in range(binned.shape[0]):
            b = node_bins[f]
            out[f, :, GRADIENT] = np.bincount(b, weights=g, minlength=n_bins_total)
            out[f, :, HESSIAN] = np.bincount(b, weights=h, minlength=n_bins_total)
            out[f, :, COUNT] = np.bincount(b, minlength=n_bins_total)
    return hist


def subtract_histograms(hist, parent_slots, built_slots, target_slots, parent_hist=None,
                        kernels="numpy"):
    """The subtraction trick: ``hist[target] = parent_hist[parent] - hist[built]`` for each triple.

    Args:
      hist: histogram array holding the built children and receiving their siblings.
      parent_slots, built_slots, target_slots: int64 arrays of equal length.
      parent_hist: array holding the parents (defaults to ``hist``).
      kernels: "numba" or "numpy".

    Returns:
      ``hist``.
    """
    parent_hist = hist if parent_hist is None else parent_hist
    if len(target_slots) == 0:
        return hist
    if kernels == "numba":
        work = len(target_slots) * hist[0].size
        _backend.numba_kernels().subtract_histograms(hist, parent_hist, parent_slots, built_slots,
                                                     target_slots, _backend.worth_threads(work))
    else:
        hist[target_slots] = parent_hist[parent_slots] - hist[built_slots]
    return hist


def node_totals(hist, slots):
    """(G, H, C) of each node, read from its histogram of feature 0 (every row has one bin there).

    Returns:
      float64 (len(slots), 3).
    """
    return hist[slots, 0].sum(axis=1)
