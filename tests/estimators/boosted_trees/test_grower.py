import dataclasses

import numpy as np
import pytest

from kestimator.estimators.boosted_trees._backend import numba_available
from kestimator.estimators.boosted_trees.binning import BinMapper
from kestimator.estimators.boosted_trees.grower import GrowerParams, grow_tree
from kestimator.estimators.boosted_trees.predictor import TreeEnsemble
from kestimator.estimators.boosted_trees.splitting import SplitParams, leaf_weight


def _grow(X, g, h, kernels, max_depth=2, lr=1.0, pruning_mode="none", **split):
    X = np.asarray(X, np.float64)
    mapper = BinMapper(max_bins=255, kernels=kernels).fit(X)
    binned = mapper.transform(X)
    n = X.shape[0]
    idx = np.arange(n, dtype=np.int32)
    params = GrowerParams(max_depth, lr, SplitParams(**split), pruning_mode)
    grown = grow_tree(binned, np.asarray(g, np.float32), np.asarray(h, np.float32), idx,
                      np.empty(n, np.int32), mapper, params, kernels)
    return grown, idx, mapper


def test_depth_one_golden_tree(kernels):
    # Half squared error from raw 0: g = 0 - y = [2, 1, -1, -2], h = 1; l2 = 1, learning rate 1.
    # Best split x <= 1.5 (bin 1): gain = 9/3 + 9/3 - 0 = 6 (see test_splitting's golden table).
    # Leaves: left G = 3, H = 2 -> -3 / (2 + 1) = -1; right G = -3 -> +1; root G = 0 -> 0.
    grown, _, _ = _grow([[0], [1], [2], [3]], [2, 1, -1, -2], [1, 1, 1, 1], kernels, max_depth=1,
                        l2=1.0)
    t = grown.tree
    np.testing.assert_array_equal(t.feature, [0, -1, -1])
    np.testing.assert_array_equal(t.left, [1, -1, -1])
    np.testing.assert_array_equal(t.right, [2, -1, -1])
    np.testing.assert_allclose(t.threshold, [1.5, 0, 0])
    np.testing.assert_allclose(t.value, [0, -1, 1], atol=1e-7)
    np.testing.assert_allclose(t.gain, [6, 0, 0])
    np.testing.assert_array_equal(t.count, [4, 2, 2])
    np.testing.assert_allclose(grown.leaf_values, [-1, 1], atol=1e-7)


# XOR: the first split gains nothing (G = 0 on both sides), the second gains 1 + 1 = 2.
XOR_X = [[0, 0], [0, 1], [1, 0], [1, 1]]
XOR_G = [-1, 1, 1, -1]


def test_no_pruning_keeps_negative_gain_splits(kernels):
    # tree_complexity 0.5: root gain 0 - 0.5 = -0.5, children gains 2 - 0.5 = 1.5.
    grown, _, _ = _grow(XOR_X, XOR_G, [1] * 4, kernels, tree_complexity=0.5)
    assert grown.tree.n_nodes == 7
    np.testing.assert_allclose(grown.tree.gain[:3], [-0.5, 1.5, 1.5])
    np.testing.assert_allclose(np.sort(grown.leaf_values), [-1, -1, 1, 1])


def test_pre_pruning_stops_at_non_positive_gain(kernels):
    grown, _, _ = _grow(XOR_X, XOR_G, [1] * 4, kernels, pruning_mode="pre", tree_complexity=0.5)
    assert grown.tree.n_nodes == 1
    np.testing.assert_allclose(grown.tree.value, [0.0])
    # tree_complexity 0: the root's gain is exactly 0, which "pre" does not accept either.
    grown, _, _ = _grow(XOR_X, XOR_G, [1] * 4, kernels, pruning_mode="pre")
    assert grown.tree.n_nodes == 1


def test_post_pruning_keeps_a_negative_split_above_useful_ones(kernels):
    # Root gain -0.5 but its children are not leaves (their splits gain 1.5): nothing is pruned.
    grown, _, _ = _grow(XOR_X, XOR_G, [1] * 4, kernels, pruning_mode="post", tree_complexity=0.5)
    assert grown.tree.n_nodes == 7


def test_post_pruning_goes_bottom_up(kernels):
    # tree_complexity 2.5: children gains 2 - 2.5 = -0.5 -> pruned; then the root (-2.5) has leaf
    # children -> pruned too. The single leaf keeps the root's value and covers all four rows.
    grown, _, _ = _grow(XOR_X, XOR_G, [1] * 4, kernels, pruning_mode="post", tree_complexity=2.5)
    assert grown.tree.n_nodes == 1 and grown.tree.left[0] == -1
    np.testing.assert_array_equal([grown.leaf_starts, grown.leaf_stops], [[0], [4]])


def test_post_pruning_removes_only_the_bad_subtree(kernels):
    # g = [-1, -1, 1, -1], H = 1 per row, l2 = 0, tree_complexity 0.5.
    # Root: parent (G,H) = (-2,4): 4/4 = 1. Split x0: L (-2,2): 2, R (0,2): 0 -> 2 - 1 - 0.5 = 0.5
    #   (x1 ties at 0.5; the first feature wins).
    # Left child (rows g = -1, -1): L 1 + R 1 - parent 4/2 = 0 -> -0.5: pruned.
    # Right child (rows g = 1, -1): 1 + 1 - 0 - 0.5 = 1.5: kept.
    X = [[0, 0], [0, 1], [1, 0], [1, 1]]
    g = [-1, -1, 1, -1]
    grown, _, _ = _grow(X, g, [1] * 4, kernels, pruning_mode="post", tree_complexity=0.5)
    t = grown.tree
    # 5 nodes left, renumbered breadth-first.
    np.testing.assert_allclose(t.gain, [0.5, 0, 1.5, 0, 0])
    assert t.n_nodes == 5
    np.testing.assert_array_equal(t.left, [1, -1, 3, -1, -1])
    np.testing.assert_array_equal(t.right, [2, -1, 4, -1, -1])
    np.testing.assert_array_equal(t.count, [4, 2, 2, 1, 1])


def test_leaves_partition_the_rows_and_values_are_newton_steps(kernels):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    g = rng.normal(size=2000) + 2 * (X[:, 0] > 0)
    h = rng.uniform(0.5, 1.5, 2000)
    grown, idx, mapper = _grow(X, g, h, kernels, max_depth=4, lr=0.3, l2=0.7)
    t = grown.tree
    assert t.depth() == 4
    seen = np.zeros(2000, np.int64)
    ensemble = TreeEnsemble([0.0], mapper.feature_kinds_)
    ensemble.add_tree(t)
    predicted = ensemble.predict_raw(X)[:, 0]
    g32, h32 = g.astype(np.float32).astype(float), h.astype(np.float32).astype(float)
    for s, e, v in zip(grown.leaf_starts, grown.leaf_stops, grown.leaf_values):
        rows = idx[s:e]
        seen[rows] += 1
        # The value is the learning-rate-scaled Newton step of exactly these rows.
        assert v == pytest.approx(0.3 * leaf_weight(g32[rows].sum(), h32[rows].sum(), 0, 0.7), rel=1e-9)
        # Traversing the raw features with the raw thresholds lands these rows in this leaf.
        np.testing.assert_array_equal(predicted[rows], v)
    np.testing.assert_array_equal(seen, 1)
    # Every split node's count is the sum of its children's.
    split = t.left >= 0
    np.testing.assert_array_equal(t.count[split], t.count[t.left[split]] + t.count[t.right[split]])


@pytest.mark.skipif(not numba_available(), reason="numba (extra [fast]) is not installed")
def test_numba_and_numpy_grow_identical_trees():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, 6))
    X[:, 5] = rng.integers(0, 7, 5000)
    X[rng.random(X.shape) < 0.05] = np.nan
    g = np.tanh(X[:, 0] * 2 + np.nan_to_num(X[:, 1])) + rng.normal(0, 0.1, 5000)
    h = rng.uniform(0.2, 1, 5000)
    a, _, _ = _grow(X, g, h, "numpy", max_depth=5, l1=0.1, l2=0.5)
    b, _, _ = _grow(X, g, h, "numba", max_depth=5, l1=0.1, l2=0.5)
    for field in dataclasses.fields(a.tree):
        np.testing.assert_array_equal(getattr(a.tree, field.name), getattr(b.tree, field.name),
                                      err_msg=field.name)


def test_memory_budget_fallback_grows_the_same_tree(kernels, monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 5))
    g = np.sin(3 * X[:, 0]) + X[:, 1] * X[:, 2] + rng.normal(0, 0.1, 3000)
    h = rng.uniform(0.5, 1, 3000)
    reference, _, _ = _grow(X, g, h, kernels, max_depth=5, l2=0.1)
    # Room for two histograms: level 1 still subtracts, deeper levels are built in batches of two.
    monkeypatch.setattr("kestimator.estimators.boosted_trees.grower.HISTOGRAM_BUDGET_BYTES", 1)
    bounded, _, _ = _grow(X, g, h, kernels, max_depth=5, l2=0.1)
    for name in ("feature", "bin", "left", "right", "count"):
        np.testing.assert_array_equal(getattr(bounded.tree, name), getattr(reference.tree, name))
    # Sums built directly instead of by subtraction differ only by float64 rounding.
    np.testing.assert_allclose(bounded.tree.value, reference.tree.value, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bounded.tree.gain, reference.tree.gain, rtol=1e-9, atol=1e-9)
