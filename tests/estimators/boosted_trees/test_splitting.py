import itertools

import numpy as np
import pytest

from kestimator.estimators.boosted_trees import splitting
from kestimator.estimators.boosted_trees.binning import CATEGORICAL, NUMERIC
from kestimator.estimators.boosted_trees.splitting import SplitParams

MISSING = 4  # max_bins = 4 in the hand-made histograms: bins 0..3, missing bin 4


def _hist(rows, missing=(0.0, 0.0, 0.0)):
    """One node, one feature: ``rows`` are (G, H, count) of bins 0.. , then the missing bin."""
    hist = np.zeros((1, 1, MISSING + 1, 3))
    hist[0, 0, :len(rows)] = rows
    hist[0, 0, MISSING] = missing
    return hist


def _best(hist, kinds, n_bins, params, kernels):
    candidates = splitting.find_split_candidates(hist, np.arange(hist.shape[0]),
                                                 np.asarray(kinds, np.uint8),
                                                 np.asarray(n_bins, np.int32), MISSING, params, kernels)
    return splitting.best_splits(candidates, np.asarray(kinds, np.uint8))


# Four rows, one per bin, H = 1 each, G = -2, -1, 1, 2. Totals G = 0, H = 4, so score(parent) = 0.
FOUR = [(-2, 1, 1), (-1, 1, 1), (1, 1, 1), (2, 1, 1)]


def test_golden_gain_l2(kernels):
    # l2 = 1; score = G^2 / (H + 1).
    # b=0: L=(-2,1): 4/2 = 2;  R=(2,3): 4/4 = 1  -> gain 3
    # b=1: L=(-3,2): 9/3 = 3;  R=(3,2): 9/3 = 3  -> gain 6   <- best
    # b=2: L=(-2,3): 4/4 = 1;  R=(2,1): 4/2 = 2  -> gain 3
    # b=3: right child empty -> not allowed
    best = _best(_hist(FOUR), [NUMERIC], [4], SplitParams(l2=1.0), kernels)
    assert best.bin[0] == 1 and best.feature[0] == 0
    assert best.gain[0] == pytest.approx(6.0, abs=1e-12)
    np.testing.assert_allclose(best.left[0], [-3, 2, 2])
    np.testing.assert_allclose(best.right[0], [3, 2, 2])
    # No missing value seen: missing values follow the bigger child (a 2-2 tie goes left).
    assert best.default_left[0]


def test_golden_gain_l1_and_tree_complexity(kernels):
    # l1 = 1 soft-thresholds G: t(-3) = -2, t(3) = 2, t(0) = 0; l2 = 1.
    # b=1: 4/3 + 4/3 - 0 = 8/3 = 2.6667; b=0: t(-2)=-1 -> 1/2, t(2)=1 -> 1/4: 0.75 (b=2 the same).
    # tree_complexity = 0.5 is subtracted once: 8/3 - 0.5 = 2.1667.
    best = _best(_hist(FOUR), [NUMERIC], [4], SplitParams(l1=1.0, l2=1.0, tree_complexity=0.5), kernels)
    assert best.bin[0] == 1
    assert best.gain[0] == pytest.approx(8 / 3 - 0.5, abs=1e-12)


def test_min_node_weight_bounds_both_children(kernels):
    # min_node_weight = 2: only b=1 (H_L = 2, H_R = 2) is allowed; 2.5: nothing is.
    best = _best(_hist(FOUR), [NUMERIC], [4], SplitParams(l2=1.0, min_node_weight=2.0), kernels)
    assert best.bin[0] == 1 and best.gain[0] == pytest.approx(6.0)
    best = _best(_hist(FOUR), [NUMERIC], [4], SplitParams(l2=1.0, min_node_weight=2.5), kernels)
    assert best.gain[0] == -np.inf and best.bin[0] == -1


def test_missing_values_learn_their_direction(kernels):
    # bins: (G,H,C) = (-3,1,1), (3,1,1); missing bin (-3,1,1); l2 = 1.
    # Totals G = -3, H = 3: parent 9/4 = 2.25.
    # b=0 missing right: L=(-3,1): 4.5,  R=(0,2): 0     -> 2.25
    # b=0 missing left:  L=(-6,2): 12,   R=(3,1): 4.5   -> 14.25   <- best, default left
    # b=1 missing right: L=(0,2): 0,     R=(-3,1): 4.5  -> 2.25
    # b=1 missing left:  right child empty -> not allowed
    best = _best(_hist([(-3, 1, 1), (3, 1, 1)], missing=(-3, 1, 1)), [NUMERIC], [2],
                 SplitParams(l2=1.0), kernels)
    assert best.bin[0] == 0 and best.default_left[0]
    assert best.gain[0] == pytest.approx(14.25, abs=1e-12)
    np.testing.assert_allclose(best.left[0], [-6, 2, 2])
    np.testing.assert_allclose(best.right[0], [3, 1, 1])


def test_missing_versus_present_split(kernels):
    # Every present row in bin 0 (G=-2), missing rows G=+2: only "present left, missing right".
    # l2 = 0: L=(-2,1): 4, R=(2,1): 4, parent (0,2): 0 -> gain 8.
    best = _best(_hist([(-2, 1, 1)], missing=(2, 1, 1)), [NUMERIC], [1], SplitParams(), kernels)
    assert best.bin[0] == 0 and not best.default_left[0]
    assert best.gain[0] == pytest.approx(8.0)


def test_categorical_equality_split(kernels):
    # Categories (G,H,C): c0 (2,1,1), c1 (-4,1,1), c2 (2,1,1); l2 = 1; totals (0, 3): parent 0.
    # c0 vs rest: L=(2,1): 2,   R=(-2,2): 4/3  -> 3.3333
    # c1 vs rest: L=(-4,1): 8,  R=(4,2): 16/3  -> 13.3333  <- best
    # An ordinal scan of the same bins can only reach 2 + 4/3 = 3.3333.
    rows = [(2, 1, 1), (-4, 1, 1), (2, 1, 1)]
    best = _best(_hist(rows), [CATEGORICAL], [3], SplitParams(l2=1.0), kernels)
    assert best.bin[0] == 1 and best.is_categorical[0]
    assert best.gain[0] == pytest.approx(8 + 16 / 3, abs=1e-12)
    ordinal = _best(_hist(rows), [NUMERIC], [3], SplitParams(l2=1.0), kernels)
    assert ordinal.gain[0] == pytest.approx(2 + 4 / 3, abs=1e-12)


def test_ties_keep_the_first_feature(kernels):
    hist = np.concatenate([_hist(FOUR)] * 3, axis=1)  # three identical features
    best = _best(hist, [NUMERIC] * 3, [4] * 3, SplitParams(l2=1.0), kernels)
    assert best.feature[0] == 0


def _brute_force(h, kinds, n_bins, p):
    """Gains of every allowed (feature, bin, missing-left) split, by plain loops."""
    def score(g, hh):
        t = max(abs(g) - p.l1, 0.0)
        return t * t / (hh + p.l2) if hh + p.l2 > 1e-15 else 0.0

    gains = {}
    for f in range(h.shape[0]):
        total = h[f, :n_bins[f]].sum(axis=0) + h[f, MISSING]
        for b, missing_left in itertools.product(range(n_bins[f]), (False, True)):
            if h[f, b, 2] == 0 or (missing_left and h[f, MISSING, 2] == 0):
                continue
            in_left = [b] if kinds[f] == CATEGORICAL else list(range(b + 1))
            left = h[f, in_left].sum(axis=0) + (h[f, MISSING] if missing_left else 0)
            right = total - left
            if left[2] < 1 or right[2] < 1 or min(left[1], right[1]) < p.min_node_weight:
                continue
            gains[f, b, missing_left] = (score(*left[:2]) + score(*right[:2])
                                         - score(*total[:2]) - p.tree_complexity)
    return gains


@pytest.mark.parametrize("seed", range(6))
def test_random_histograms_match_brute_force_and_kernels_agree(seed):
    from kestimator.estimators.boosted_trees._backend import numba_available
    rng = np.random.default_rng(seed)
    n_nodes, n_features = 3, 4
    hist = np.zeros((n_nodes, n_features, MISSING + 1, 3))
    counts = rng.integers(0, 3, size=(n_nodes, n_features, MISSING + 1))
    hist[..., 2] = counts
    hist[..., 0] = rng.normal(size=counts.shape) * counts
    hist[..., 1] = rng.uniform(0.1, 1, size=counts.shape) * counts
    kinds = [NUMERIC, CATEGORICAL, NUMERIC, CATEGORICAL]
    n_bins = [4, 4, 3, 2]
    # Every feature of a node must describe the same rows: give them the same total count by
    # topping up the missing bin, so the node totals agree across features.
    per_feature = np.array([[hist[j, f, :n_bins[f], 2].sum() for f in range(4)] for j in range(3)])
    hist[..., MISSING, 2] = per_feature.max(axis=1, keepdims=True) + 1 - per_feature
    params = SplitParams(l1=0.3, l2=0.5, tree_complexity=0.1, min_node_weight=0.2)
    results = {k: _best(hist, kinds, n_bins, params, k)
               for k in (("numpy", "numba") if numba_available() else ("numpy",))}
    best = results["numpy"]
    for j in range(n_nodes):
        gains = _brute_force(hist[j], kinds, n_bins, params)
        top = max(gains.values(), default=-np.inf)
        assert best.gain[j] == pytest.approx(top, abs=1e-9)
        if gains:
            f, b = best.feature[j], best.bin[j]
            # The chosen split is one of the best (mirror-image categorical splits tie).
            side = bool(best.default_left[j]) if hist[j, f, MISSING, 2] > 0 else False
            assert gains[f, b, side] == pytest.approx(top, abs=1e-9)
    if "numba" in results:
        for name in splitting.SplitCandidates._fields:
            np.testing.assert_array_equal(getattr(results["numba"], name),
                                          getattr(results["numpy"], name), err_msg=name)


def test_leaf_weight_and_score_golden():
    # G = -3, H = 2, l2 = 1: w = 3 / 3 = 1, score = 9 / 3 = 3; with l1 = 1: t = -2, w = 2/3, score 4/3.
    assert splitting.leaf_weight(-3.0, 2.0, 0.0, 1.0) == pytest.approx(1.0)
    assert splitting.node_score(-3.0, 2.0, 0.0, 1.0) == pytest.approx(3.0)
    assert splitting.leaf_weight(-3.0, 2.0, 1.0, 1.0) == pytest.approx(2 / 3)
    assert splitting.node_score(-3.0, 2.0, 1.0, 1.0) == pytest.approx(4 / 3)
    # |G| <= l1: no step at all; H + l2 = 0: weight 0 instead of a division by zero (TF's rule).
    assert splitting.leaf_weight(0.5, 2.0, 1.0, 0.0) == 0.0
    assert splitting.leaf_weight(-1.0, 0.0, 0.0, 0.0) == 0.0


def test_partition_is_stable_and_matches_go_left(kernels):
    rng = np.random.default_rng(7)
    n_rows = 3 * splitting.PARTITION_CHUNK + 123  # several chunks per node
    binned = rng.integers(0, 6, size=(2, n_rows)).astype(np.uint8)
    binned[1, rng.random(n_rows) < 0.1] = MISSING
    idx = rng.permutation(n_rows).astype(np.int32)
    before = idx.copy()
    starts = np.array([0, 10_000])
    stops = np.array([10_000, n_rows])
    splits = dict(features=[1, 1], bins=[2, 3], default_left=[True, False],
                  is_categorical=[False, True])
    mids = splitting.partition(binned, idx, np.empty(n_rows, np.int32), starts, stops,
                               splits["features"], splits["bins"], splits["default_left"],
                               splits["is_categorical"], MISSING, kernels)
    for j in range(2):
        rows = before[starts[j]:stops[j]]
        left = splitting.go_left(binned[1, rows], splits["bins"][j], splits["default_left"][j],
                                 splits["is_categorical"][j], MISSING)
        expected = np.concatenate([rows[left], rows[~left]])  # stable: original order kept
        np.testing.assert_array_equal(idx[starts[j]:stops[j]], expected)
        assert mids[j] == starts[j] + left.sum()
