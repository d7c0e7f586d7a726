import numpy as np
import pytest

from kestimator.estimators.boosted_trees import histogram
from kestimator.estimators.boosted_trees._backend import numba_available


def _data(n_rows=300, n_features=5, n_bins_total=9, seed=0):
    rng = np.random.default_rng(seed)
    binned = rng.integers(0, n_bins_total, size=(n_features, n_rows)).astype(np.uint8)
    g = rng.normal(size=n_rows).astype(np.float32)
    h = rng.uniform(0.1, 1.0, n_rows).astype(np.float32)
    return binned, g, h


def _naive(binned, g, h, rows, n_bins_total):
    out = np.zeros((binned.shape[0], n_bins_total, 3))
    for r in rows:
        for f in range(binned.shape[0]):
            b = binned[f, r]
            out[f, b, 0] += float(g[r])
            out[f, b, 1] += float(h[r])
            out[f, b, 2] += 1
    return out


def test_histograms_of_several_nodes_match_naive_loops(kernels):
    binned, g, h = _data()
    rng = np.random.default_rng(1)
    sample_indices = rng.permutation(300).astype(np.int32)
    # Three nodes over disjoint ranges, written to slots out of order; slot 1 is left alone.
    starts, stops = np.array([0, 120, 130]), np.array([120, 130, 300])
    slots = np.array([3, 0, 2])
    hist = np.full((4, 5, 9, 3), -7.0)  # garbage: the builder must zero what it fills
    histogram.build_histograms(binned, g, h, sample_indices, starts, stops, slots, hist, kernels)
    for j in range(3):
        expected = _naive(binned, g, h, sample_indices[starts[j]:stops[j]], 9)
        # Same summation order as the loop, so equal to float64 rounding of each add.
        np.testing.assert_allclose(hist[slots[j]], expected, rtol=1e-12, atol=1e-12)
    assert np.all(hist[1] == -7.0)


def test_odd_feature_count_and_empty_node(kernels):
    binned, g, h = _data(n_features=3)
    idx = np.arange(300, dtype=np.int32)
    hist = np.full((2, 3, 9, 3), 5.0)
    histogram.build_histograms(binned, g, h, idx, np.array([0, 10]), np.array([0, 300]),
                               np.array([0, 1]), hist, kernels)
    assert np.all(hist[0] == 0.0)
    np.testing.assert_allclose(hist[1], _naive(binned, g, h, idx[10:], 9), rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not numba_available(), reason="numba (extra [fast]) is not installed")
def test_numba_and_numpy_histograms_are_bitwise_equal():
    binned, g, h = _data(n_rows=20_000, n_features=6, n_bins_total=256, seed=3)
    idx = np.random.default_rng(4).permutation(20_000).astype(np.int32)
    args = (binned, g, h, idx, np.array([0, 7000]), np.array([7000, 20_000]), np.array([0, 1]))
    a = histogram.build_histograms(*args, np.empty((2, 6, 256, 3)), "numpy")
    b = histogram.build_histograms(*args, np.empty((2, 6, 256, 3)), "numba")
    np.testing.assert_array_equal(a, b)


def test_subtraction_trick_gives_the_sibling(kernels):
    binned, g, h = _data(n_rows=1000, seed=5)
    parent_rows = np.arange(1000, dtype=np.int32)
    go_left = binned[2] <= 3
    # Children laid out as a partition of the parent's range, smaller child built directly.
    idx = np.concatenate([parent_rows[go_left], parent_rows[~go_left]]).astype(np.int32)
    n_left = int(go_left.sum())
    parent = np.empty((1, 5, 9, 3))
    histogram.build_histograms(binned, g, h, parent_rows, np.array([0]), np.array([1000]),
                               np.array([0]), parent, kernels)
    children = np.empty((2, 5, 9, 3))
    small, large = (0, 1) if n_left <= 1000 - n_left else (1, 0)
    ranges = [(0, n_left), (n_left, 1000)]
    histogram.build_histograms(binned, g, h, idx, np.array([ranges[small][0]]),
                               np.array([ranges[small][1]]), np.array([small]), children, kernels)
    histogram.subtract_histograms(children, np.array([0]), np.array([small]), np.array([large]),
                                  parent, kernels)
    direct = np.empty((1, 5, 9, 3))
    histogram.build_histograms(binned, g, h, idx, np.array([ranges[large][0]]),
                               np.array([ranges[large][1]]), np.array([0]), direct, kernels)
    np.testing.assert_array_equal(children[large][..., 2], direct[0][..., 2])  # counts: exact
    np.testing.assert_allclose(children[large], direct[0], rtol=0, atol=1e-11)


def test_node_totals_read_feature_zero():
    binned, g, h = _data()
    hist = np.empty((1, 5, 9, 3))
    histogram.build_histograms(binned, g, h, np.arange(300, dtype=np.int32), np.array([0]),
                               np.array([300]), np.array([0]), hist)
    np.testing.assert_allclose(histogram.node_totals(hist, np.array([0]))[0],
                               [g.astype(float).sum(), h.astype(float).sum(), 300], rtol=1e-12)
