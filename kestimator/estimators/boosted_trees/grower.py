"""Grows one regression tree on binned data, level by level (as TF's boosted trees do).

Rows of every node are kept contiguous in one index array (``sample_indices``): node j owns
``sample_indices[start_j:stop_j]``, and splitting j reorders that range so the left child's rows come
first (splitting.partition). Each level then costs a few whole-level calls, whatever its width:

1. histograms of the level's nodes: the smaller child of each split is built from its rows, its
   sibling is the parent's histogram minus it (histogram.py, the subtraction trick);
2. the best split of every node (splitting.find_split_candidates / best_splits);
3. the decision to split (pruning), and the partition of the rows of all splitting nodes.

Pruning modes (TF's names):

* ``"none"``: split whenever an allowed split exists, even one with negative gain;
* ``"pre"``: split only when the best gain, after ``tree_complexity``, is > 0;
* ``"post"``: grow as ``"none"``, then from the bottom up turn every split whose gain is < 0 and whose
  children are both leaves back into a leaf (its value is kept in every node, so nothing is lost).

Gradients are those of the tree's start (standard gradient boosting): unlike TF, which refreshes them
after every layer, this keeps a parent's histogram valid for its children, which the subtraction
trick needs.
"""

from typing import NamedTuple

import numpy as np

from kestimator.errors import InternalError
from kestimator.estimators.boosted_trees import histogram, splitting
from kestimator.estimators.boosted_trees.histogram import COUNT, GRADIENT, HESSIAN
from kestimator.estimators.boosted_trees.predictor import Tree

PRUNING_MODES = ("none", "pre", "post")

# Memory the histograms of one level may take (122 KB a node for 20 features x 256 bins, so the
# default holds ~4,000 nodes: depth 12). Past it, a level's histograms are built in batches and not
# kept, so the next level builds both children instead of subtracting: twice the histogram work on
# those levels, but bounded memory.
HISTOGRAM_BUDGET_BYTES = 512 * 2**20


class GrowerParams(NamedTuple):
    """Shape and regularisation of a tree.

    Attributes:
      max_depth: levels of splits (a tree has at most ``2**max_depth`` leaves).
      learning_rate: factor applied to every node value.
      split: splitting.SplitParams.
      pruning_mode: "none", "pre" or "post".
    """

    max_depth: int
    learning_rate: float
    split: splitting.SplitParams
    pruning_mode: str = "none"


class GrownTree(NamedTuple):
    """A grown tree and where its leaves' training rows are.

    Attributes:
      tree: predictor.Tree (raw thresholds filled from the bin mapper).
      leaf_starts, leaf_stops: int64 ranges into ``sample_indices`` of each leaf's rows.
      leaf_values: float64 value of each leaf (same order).
    """

    tree: Tree
    leaf_starts: np.ndarray
    leaf_stops: np.ndarray
    leaf_values: np.ndarray


def grow_tree(binned, gradients, hessians, sample_indices, scratch, mapper, params, kernels, reduce=None):
    """Grows one tree.

    With ``reduce`` (distributed boosting, see distributed.py) the rows are this rank's shard: every
    histogram built from local rows is summed over ranks before use, once per level (the root's, then
    each level's built children in one array), so every rank sees the global histograms, picks the same
    splits and the same leaf values, and partitions its own rows.

    Args:
      binned: uint8 (n_features, n_rows) bin ids.
      gradients, hessians: float32 (n_rows,).
      sample_indices: int32 (n_rows,) holding a permutation of the rows (``arange`` is best: the
        children then read rows in increasing order); reordered in place.
      scratch: int32 (n_rows,) work buffer.
      mapper: fitted binning.BinMapper (feature kinds, bin counts, raw thresholds).
      params: GrowerParams.
      kernels: "numba" or "numpy".
      reduce: None, or ``reduce(hist, depth)`` summing a C-contiguous histogram array over ranks in
        place (distributed.TreeCollectives.sum_histograms).

    Returns:
      GrownTree (leaf row ranges are local; values, splits and sums global).

    Raises:
      InternalError: the row partition disagrees with the histogram counts (a bug).
    """
    n_features, n_rows = binned.shape
    n_bins_total = mapper.missing_bin + 1
    sp = params.split
    min_hessian_to_split = 2.0 * sp.min_node_weight
    # Most histograms a level may hold at once (the subtraction trick keeps a whole level alive).
    slot_bytes = n_features * n_bins_total * histogram.N_CHANNELS * 8
    max_slots = max(2, HISTOGRAM_BUDGET_BYTES // slot_bytes)
    data = (binned, gradients, hessians, sample_indices)

    hist = histogram.empty_histograms(1, n_features, n_bins_total)
    starts = np.array([0], np.int64)
    stops = np.array([n_rows], np.int64)
    slots = np.array([0], np.int64)
    histogram.build_histograms(*data, starts, stops, slots, hist, kernels)
    if reduce is not None:
        reduce(hist, 0)
    sums = histogram.node_totals(hist, slots)

    # Per-level lists of node attributes; node ids are assigned breadth-first.
    levels = []
    for depth in range(params.max_depth + 1):
        n_level = len(starts)
        level = {"start": starts, "stop": stops, "sums": sums,
                 "split": np.zeros(n_level, np.bool_), "feature": np.full(n_level, -1, np.int64),
                 "bin": np.full(n_level, -1, np.int64), "default_left": np.zeros(n_level, np.bool_),
                 "is_categorical": np.zeros(n_level, np.bool_), "gain": np.zeros(n_level)}
        levels.append(level)
        if depth == params.max_depth:
            break
        candidates_at = np.flatnonzero(_splittable(sums, min_hessian_to_split))
        if hist is not None:
            candidates = splitting.find_split_candidates(
                hist, slots[candidates_at], mapper.feature_kinds_, mapper.n_bins_,
                mapper.missing_bin, sp, kernels)
        else:
            candidates = _candidates_without_parents(data, starts[candidates_at],
                                                     stops[candidates_at], max_slots, mapper, sp,
                                                     kernels, reduce, depth)
        best = splitting.best_splits(candidates, mapper.feature_kinds_)
        accept = np.isfinite(best.gain)
        if params.pruning_mode == "pre":
            accept &= best.gain > 0.0
        split_at = candidates_at[accept]
        if split_at.size == 0:
            break
        level["split"][split_at] = True
        for name in ("feature", "bin", "default_left", "is_categorical", "gain"):
            level[name][split_at] = getattr(best, name)[accept]

        mids = splitting.partition(binned, sample_indices, scratch, starts[split_at], stops[split_at],
                                   best.feature[accept], best.bin[accept], best.default_left[accept],
                                   best.is_categorical[accept], mapper.missing_bin, kernels)
        left_sums, right_sums = best.left[accept], best.right[accept]
        # (the counts are global under ``reduce``: a rank's partition cannot be checked against them)
        if reduce is None and np.any(mids - starts[split_at] != left_sums[:, COUNT]):
            raise InternalError("boosted trees: partition disagrees with the histogram counts")

        # Children, interleaved left/right in the order of their parents.
        n_split = split_at.size
        child_starts = np.empty(2 * n_split, np.int64)
        child_stops = np.empty(2 * n_split, np.int64)
        child_starts[0::2], child_stops[0::2] = starts[split_at], mids
        child_starts[1::2], child_stops[1::2] = mids, stops[split_at]
        child_sums = np.empty((2 * n_split, 3))
        child_sums[0::2], child_sums[1::2] = left_sums, right_sums

        if depth + 1 < params.max_depth and hist is not None:
            hist, slots = _children_histograms(data, hist, slots[split_at], child_starts,
                                               child_stops, child_sums, min_hessian_to_split,
                                               max_slots, kernels, reduce, depth + 1)
        else:
            hist = slots = None
        starts, stops, sums = child_starts, child_stops, child_sums

    return _assemble(levels, mapper, params)


def _splittable(sums, min_hessian):
    """Nodes that could have an allowed split: two rows, and hessian for two children."""
    return (sums[:, COUNT] >= 2) & (sums[:, HESSIAN] >= min_hessian)


def _children_histograms(data, parent_hist, parent_slots, child_starts, child_stops, child_sums,
                         min_hessian, max_slots, kernels, reduce=None, depth=0):
    """Histograms of the next level: build each pair's smaller child, subtract for its sibling.

    Returns:
      (histogram array, slot of each child or -1 when it cannot be split anyway), or (None, None)
      when they would not fit in ``max_slots``.
    """
    n_pairs = len(parent_slots)
    splittable = _splittable(child_sums, min_hessian).reshape(n_pairs, 2)
    needed = np.flatnonzero(splittable.any(axis=1))
    if 2 * needed.size > max_slots:
        return None, None
    counts = child_sums[:, COUNT].reshape(n_pairs, 2)[needed]
    small_side = (counts[:, 1] < counts[:, 0]).astype(np.int64)
    built_slot = 2 * np.arange(needed.size) + small_side
    sibling_slot = 2 * np.arange(needed.size) + 1 - small_side
    n_features, n_bins_total = parent_hist.shape[1], parent_hist.shape[2]
    hist = histogram.empty_histograms(2 * needed.size, n_features, n_bins_total)
    built_child = 2 * needed + small_side
    if reduce is None:
        histogram.build_histograms(*data, child_starts[built_child], child_stops[built_child],
                                   built_slot, hist, kernels)
    else:
        # Built children back to back in one array: one allreduce for the whole level.
        built = histogram.empty_histograms(needed.size, n_features, n_bins_total)
        histogram.build_histograms(*data, child_starts[built_child], child_stops[built_child],
                                   np.arange(needed.size, dtype=np.int64), built, kernels)
        reduce(built, depth)
        hist[built_slot] = built
    histogram.subtract_histograms(hist, parent_slots[needed], built_slot, sibling_slot, parent_hist,
                                  kernels)
    slots = np.full(2 * n_pairs, -1, np.int64)
    slots[2 * needed] = 2 * np.arange(needed.size)
    slots[2 * needed + 1] = 2 * np.arange(needed.size) + 1
    return hist, slots


def _candidates_without_parents(data, starts, stops, max_slots, mapper, split_params, kernels,
                                reduce=None, depth=0):
    """Split candidates of nodes whose parents' histograms were not kept: built directly, in batches.

    (Distributed, this level then takes one allreduce per batch: only past HISTOGRAM_BUDGET_BYTES.)
    """
    binned = data[0]
    n_bins_total = mapper.missing_bin + 1
    parts = []
    for b0 in range(0, len(starts), max_slots):
        b1 = min(len(starts), b0 + max_slots)
        hist = histogram.empty_histograms(b1 - b0, binned.shape[0], n_bins_total)
        slots = np.arange(b1 - b0, dtype=np.int64)
        histogram.build_histograms(*data, starts[b0:b1], stops[b0:b1], slots, hist, kernels)
        if reduce is not None:
            reduce(hist, depth)
        parts.append(splitting.find_split_candidates(hist, slots, mapper.feature_kinds_,
                                                     mapper.n_bins_, mapper.missing_bin,
                                                     split_params, kernels))
    if not parts:
        return splitting.find_split_candidates(
            histogram.empty_histograms(0, binned.shape[0], n_bins_total), np.zeros(0, np.int64),
            mapper.feature_kinds_, mapper.n_bins_, mapper.missing_bin, split_params, kernels)
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def _assemble(levels, mapper, params):
    """Turns per-level node attributes into a Tree (post-pruning it if asked) and leaf ranges."""
    cat = lambda name: np.concatenate([lv[name] for lv in levels])  # noqa: E731
    split = cat("split")
    sums = cat("sums")
    n_nodes = split.size
    left = np.full(n_nodes, -1, np.int64)
    right = np.full(n_nodes, -1, np.int64)
    # Children of a level are numbered after all nodes of that level, in their parents' order.
    base = 0
    child_base = len(levels[0]["split"])
    for lv in levels:
        k = np.flatnonzero(lv["split"])
        left[base + k] = child_base + 2 * np.arange(k.size)
        right[base + k] = child_base + 2 * np.arange(k.size) + 1
        base += len(lv["split"])
        child_base += 2 * k.size
    value = params.learning_rate * splitting.leaf_weight(sums[:, GRADIENT], sums[:, HESSIAN],
                                                         params.split.l1, params.split.l2)
    gain = cat("gain")
    if params.pruning_mode == "post":
        keep = _post_prune(split, left, right, gain)
    else:
        keep = np.ones(n_nodes, np.bool_)
    split &= keep
    # A kept node whose children were pruned away is a leaf now.
    split &= np.where(left >= 0, keep[np.maximum(left, 0)], False)
    new_id = np.cumsum(keep) - 1
    kept = np.flatnonzero(keep)
    is_split = split[kept]
    feature = np.where(is_split, cat("feature")[kept], -1)
    bins = np.where(is_split, cat("bin")[kept], -1)
    threshold = np.zeros(kept.size)
    if is_split.any():
        threshold[is_split] = mapper.raw_thresholds(feature[is_split], bins[is_split])
    tree = Tree(
        feature=feature.astype(np.int32), bin=bins.astype(np.int32), threshold=threshold,
        default_left=cat("default_left")[kept] & is_split,
        is_categorical=cat("is_categorical")[kept] & is_split,
        left=np.where(is_split, new_id[np.maximum(left[kept], 0)], -1).astype(np.int32),
        right=np.where(is_split, new_id[np.maximum(right[kept], 0)], -1).astype(np.int32),
        value=value[kept], gain=np.where(is_split, gain[kept], 0.0),
        count=sums[kept, COUNT].astype(np.int64), hessian=sums[kept, HESSIAN])
    leaves = kept[~is_split]
    return GrownTree(tree, cat("start")[leaves], cat("stop")[leaves], value[leaves])


def _post_prune(split, left, right, gain):
    """TF's post-pruning: bottom-up, a split with gain < 0 whose children are leaves becomes a leaf.

    Returns:
      bool mask of the nodes that remain.
    """
    split = split.copy()
    keep = np.ones(split.size, np.bool_)
    for i in np.flatnonzero(split)[::-1]:  # children have larger ids: bottom-up
        if gain[i] < 0 and not split[left[i]] and not split[right[i]]:
            split[i] = False
            keep[left[i]] = keep[right[i]] = False
    return keep
