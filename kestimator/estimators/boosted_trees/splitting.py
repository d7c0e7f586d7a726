"""Best split of a node from its histogram, leaf weights, and the row partition that applies a split.

Regularised objective (TF boosted trees' convention, the same as XGBoost's without its factor 1/2):
for a set of rows with gradient sum G and hessian sum H, the best constant step w minimises
``G w + (H + l2) w^2 / 2 + l1 |w|``. With the soft-threshold ``t(G) = sign(G) max(|G| - l1, 0)``:

    weight(G, H) = -t(G) / (H + l2)          (0 when H + l2 <= 1e-15)
    score(G, H)  =  t(G)^2 / (H + l2)        (twice the loss reduction of that step)

Splitting a node P into L and R gains

    gain = score(L) + score(R) - score(P) - tree_complexity

(``tree_complexity`` is the price of the extra leaf). A split is only allowed when both children
have rows and a hessian sum of at least ``min_node_weight``.

Candidates, per feature:

* ordinal features (numeric or bucketized): "bin <= b" for every bin b holding rows. Missing values
  are tried on both sides (missing-right, then missing-left) and the better side becomes the node's
  default direction; when no missing value reached the node, missing values later follow the child
  with more training rows.
* categorical features: one-vs-rest equality "bin == c", again with missing on either side.

Ties keep the first candidate in the order feature, bin, missing-right before missing-left.
"""

from typing import NamedTuple

import numpy as np

from kestimator.estimators.boosted_trees import _backend
from kestimator.estimators.boosted_trees.binning import CATEGORICAL
from kestimator.estimators.boosted_trees.histogram import COUNT, GRADIENT, HESSIAN

# Rows per work item of the parallel partition: big enough to amortise a task, small enough that
# the root (one node) is spread over all threads.
PARTITION_CHUNK = 8192


class SplitParams(NamedTuple):
    """Regularisation of the split search (see the module docstring)."""

    l1: float = 0.0
    l2: float = 0.0
    tree_complexity: float = 0.0
    min_node_weight: float = 0.0


class SplitCandidates(NamedTuple):
    """The best split of each node (arrays with one entry per node).

    ``gain`` is ``-inf`` where the node has no allowed split; ``left`` and ``right`` hold the
    (G, H, count) sums of the two children, missing rows included on their default side.
    """

    gain: np.ndarray
    feature: np.ndarray
    bin: np.ndarray
    default_left: np.ndarray
    is_categorical: np.ndarray
    left: np.ndarray
    right: np.ndarray


def soft_threshold(g, l1):
    """``sign(g) * max(|g| - l1, 0)``, elementwise."""
    g = np.asarray(g, np.float64)
    return np.where(g > l1, g - l1, np.where(g < -l1, g + l1, 0.0))


def leaf_weight(g, h, l1, l2):
    """Regularised Newton step ``-t(G) / (H + l2)`` (0 where ``H + l2 <= 1e-15``)."""
    t = soft_threshold(g, l1)
    d = np.asarray(h, np.float64) + l2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 1e-15, -t / d, 0.0)


def node_score(g, h, l1, l2):
    """``t(G)^2 / (H + l2)`` (0 where ``H + l2 <= 1e-15``), elementwise."""
    t = soft_threshold(g, l1)
    d = np.asarray(h, np.float64) + l2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 1e-15, t * t / d, 0.0)


def find_split_candidates(hist, slots, feature_kinds, n_bins, missing_bin, params, kernels="numpy"):
    """Best split of every (node, feature) pair.

    Args:
      hist: float64 (n_slots, n_features, n_bins_total, 3) histograms.
      slots: int64 (n_nodes,), the histogram slot of each node.
      feature_kinds: uint8 (n_features,).
      n_bins: int32 (n_features,), value bins per feature (the missing bin excluded).
      missing_bin: int, id of the missing bin.
      params: SplitParams.
      kernels: "numba" or "numpy".

    Returns:
      (gain, bin, default_left, left, right): arrays of shape (n_nodes, n_features) —
      ``left`` / ``right`` with a trailing axis of 3 (G, H, count).
    """
    n_nodes, n_features = len(slots), hist.shape[1]
    gain = np.empty((n_nodes, n_features))
    best_bin = np.empty((n_nodes, n_features), np.int64)
    default_left = np.empty((n_nodes, n_features), np.bool_)
    left = np.empty((n_nodes, n_features, 3))
    right = np.empty((n_nodes, n_features, 3))
    if n_nodes == 0:
        return gain, best_bin, default_left, left, right
    if kernels == "numba":
        work = n_nodes * n_features * hist.shape[2]
        _backend.numba_kernels().find_split_candidates(
            hist, slots, feature_kinds, n_bins, missing_bin, params.l1, params.l2,
            params.tree_complexity, params.min_node_weight, gain, best_bin, default_left, left, right,
            _backend.worth_threads(work))
        return gain, best_bin, default_left, left, right
    return _find_split_candidates_numpy(hist, slots, feature_kinds, n_bins, missing_bin, params)


def _find_split_candidates_numpy(hist, slots, feature_kinds, n_bins, missing_bin, params):
    """Vectorised twin of the numba scan: all nodes, features and bins at once."""
    h = hist[slots]  # (n, F, B, 3)
    n_nodes, n_features, n_bins_total, _ = h.shape
    value_bins = np.arange(n_bins_total)[None, :] < np.asarray(n_bins)[:, None]  # (F, B)
    values = np.where(value_bins[None, :, :, None], h, 0.0)
    missing = h[:, :, missing_bin, :]  # (n, F, 3)
    cumulative = np.cumsum(values, axis=2)
    # Totals in the scan's order: the value bins left to right, then the missing bin.
    last = np.maximum(np.asarray(n_bins) - 1, 0)
    totals = cumulative[:, np.arange(n_features), last, :] + missing
    totals = np.where((np.asarray(n_bins) > 0)[None, :, None], totals, missing)
    categorical = (np.asarray(feature_kinds) == CATEGORICAL)[None, :, None, None]
    left_right_missing = np.where(categorical, values, cumulative)  # missing goes right
    left_left_missing = left_right_missing + missing[:, :, None, :]
    parent = node_score(totals[..., GRADIENT], totals[..., HESSIAN], params.l1, params.l2)
    occupied = (h[..., COUNT] > 0) & value_bins[None]
    has_missing = missing[..., COUNT] > 0
    gains = []
    for left, allowed in ((left_right_missing, occupied),
                          (left_left_missing, occupied & has_missing[:, :, None])):
        gains.append(np.where(allowed, _candidate_gain(left, totals[:, :, None, :],
                                                       parent[:, :, None], params), -np.inf))
    both = np.stack(gains, axis=3).reshape(n_nodes, n_features, -1)  # bin-major, then direction
    pick = np.argmax(both, axis=2)
    gain = np.take_along_axis(both, pick[..., None], axis=2)[..., 0]
    best_bin, missing_left = np.divmod(pick, 2)
    at_bin = lambda a: np.take_along_axis(a, best_bin[:, :, None, None], axis=2)[:, :, 0, :]  # noqa: E731
    left = np.where(missing_left[..., None] == 1, at_bin(left_left_missing), at_bin(left_right_missing))
    right = totals - left
    found = np.isfinite(gain)
    default_left = np.where(has_missing, missing_left == 1,
                            left[..., COUNT] >= right[..., COUNT])
    best_bin = np.where(found, best_bin, -1)
    default_left &= found
    left = np.where(found[..., None], left, 0.0)
    right = np.where(found[..., None], right, totals)
    return gain, best_bin, default_left, left, right


def _candidate_gain(left, totals, parent, params):
    """Gain of each candidate (``left`` / ``totals`` have a trailing (G, H, count) axis)."""
    right = totals - left
    with np.errstate(invalid="ignore"):
        score = (node_score(left[..., GRADIENT], left[..., HESSIAN], params.l1, params.l2)
                 + node_score(right[..., GRADIENT], right[..., HESSIAN], params.l1, params.l2)
                 - parent - params.tree_complexity)
    allowed = ((left[..., COUNT] > 0) & (right[..., COUNT] > 0)
               & (left[..., HESSIAN] >= params.min_node_weight)
               & (right[..., HESSIAN] >= params.min_node_weight))
    return np.where(allowed, score, -np.inf)


def best_splits(candidates, feature_kinds):
    """Reduces per-(node, feature) candidates to the best feature of each node.

    Args:
      candidates: the tuple returned by :func:`find_split_candidates`.
      feature_kinds: uint8 (n_features,).

    Returns:
      SplitCandidates with one entry per node (the first feature wins ties).
    """
    gain, bins, default_left, left, right = candidates
    n_nodes = gain.shape[0]
    feature = np.argmax(gain, axis=1) if n_nodes else np.zeros(0, np.int64)
    rows = np.arange(n_nodes)
    return SplitCandidates(
        gain=gain[rows, feature], feature=feature, bin=bins[rows, feature],
        default_left=default_left[rows, feature],
        is_categorical=np.asarray(feature_kinds)[feature] == CATEGORICAL,
        left=left[rows, feature], right=right[rows, feature])


def go_left(bins, split_bin, default_left, is_categorical, missing_bin):
    """Which rows (given their bin ids on the split feature) a split sends left."""
    bins = np.asarray(bins)
    decided = (bins == split_bin) if is_categorical else (bins <= split_bin)
    return np.where(bins == missing_bin, default_left, decided)


def partition(binned, sample_indices, scratch, starts, stops, features, bins, default_left,
              is_categorical, missing_bin, kernels="numpy"):
    """Applies splits: reorders each node's rows so its left child's rows come first (stable).

    Args:
      binned: uint8 (n_features, n_rows).
      sample_indices: int32 (n_rows,), modified in place.
      scratch: int32 (n_rows,) work buffer.
      starts, stops: int64 (n_nodes,), each node's range in ``sample_indices``.
      features, bins, default_left, is_categorical: the split of each node.
      missing_bin: int.
      kernels: "numba" or "numpy".

    Returns:
      int64 (n_nodes,): for each node the index where its right child's rows begin.
    """
    mids = np.empty(len(starts), np.int64)
    if kernels == "numba":
        _backend.numba_kernels().partition(
            binned, sample_indices, scratch, starts, stops, np.asarray(features, np.int64),
            np.asarray(bins, np.int64), np.asarray(default_left, np.bool_),
            np.asarray(is_categorical, np.bool_), missing_bin, PARTITION_CHUNK, mids,
            _backend.worth_threads(2 * int(np.sum(np.asarray(stops) - np.asarray(starts)))))
        return mids
    for j in range(len(starts)):
        rows = sample_indices[starts[j]:stops[j]]
        left = go_left(binned[features[j], rows], bins[j], default_left[j], is_categorical[j],
                       missing_bin)
        n_left = int(np.count_nonzero(left))
        sample_indices[starts[j]:stops[j]] = np.concatenate([rows[left], rows[~left]])
        mids[j] = starts[j] + n_left
    return mids
