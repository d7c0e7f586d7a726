import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kestimator.errors import DataLossError, InvalidArgumentError
from kestimator.estimators.boosted_trees._backend import numba_available
from kestimator.estimators.boosted_trees.binning import (BUCKETIZED, CATEGORICAL, NUMERIC, BinMapper,
                                                         prepare_features, quantile_sample_size)


def test_quantile_sample_size_follows_dkw_bound():
    # ln(2 / 1e-3) / (2 * 0.01^2) = 7.6009024595 / 0.0002 = 38004.51 -> 38005 rows.
    assert quantile_sample_size(0.01) == 38005
    # Halving epsilon quadruples the sample: ln(2000) / (2 * 0.005^2) = 152018.04 -> 152019.
    assert quantile_sample_size(0.005) == 152019


def test_few_distinct_values_get_one_bin_each_split_halfway():
    X = np.array([[3.0], [1.0], [2.0], [1.0], [np.nan]])
    mapper = BinMapper(max_bins=255).fit(X)
    np.testing.assert_array_equal(mapper.edges(0), [1.5, 2.5])
    assert mapper.n_bins_[0] == 3
    # 3 -> bin 2, 1 -> bin 0, 2 -> bin 1, NaN -> missing bin 255.
    np.testing.assert_array_equal(mapper.transform(X)[0], [2, 0, 1, 0, 255])


def test_many_values_quantile_edges_within_epsilon_of_exact_ranks():
    rng = np.random.default_rng(0)
    X = rng.lognormal(size=(120_000, 1))
    eps = 0.01
    mapper = BinMapper(max_bins=64, quantile_sketch_epsilon=eps, random_state=3).fit(X)
    edges = mapper.edges(0)
    assert mapper.n_bins_[0] == edges.size + 1 <= 64
    # The rank of each edge in the FULL data is within eps of its target quantile i / 64.
    ranks = np.searchsorted(np.sort(X[:, 0]), edges) / X.shape[0]
    targets = np.arange(1, 64)[:edges.size] / 64
    assert np.max(np.abs(ranks - targets)) <= eps
    # Bins are roughly equally filled (each ~1/64 of the rows, up to 2 eps of rank error).
    counts = np.bincount(mapper.transform(X)[0], minlength=64) / X.shape[0]
    assert np.all(np.abs(counts[:edges.size + 1] - 1 / 64) <= 2 * eps)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=12, unique=True),
       st.lists(st.one_of(st.floats(-2e6, 2e6), st.just(np.nan), st.just(np.inf),
                          st.just(-np.inf)), min_size=1, max_size=60))
def test_transform_matches_searchsorted_on_both_kernels(edges, values):
    # Reference: np.searchsorted(edges, x, side="left"), NaN -> missing bin; edges chosen by hand
    # (all sizes 0..12, so the fixed-step search is checked for every power-of-two shape).
    edges = np.sort(np.asarray(edges, np.float64))
    values = np.asarray(values + list(edges), np.float64)  # values equal to an edge included
    mapper = BinMapper(max_bins=32).fit(np.zeros((2, 1)))
    mapper.bin_edges_ = edges
    mapper.edge_offsets_ = np.array([0, edges.size], np.int64)
    mapper.n_bins_ = np.array([edges.size + 1], np.int32)
    expected = np.where(np.isnan(values), 32, np.searchsorted(edges, values, side="left"))
    for kernels in ("numpy", "numba") if numba_available() else ("numpy",):
        mapper.kernels = kernels
        np.testing.assert_array_equal(mapper.transform(values[:, None])[0], expected)


def test_numba_and_numpy_transform_agree_on_many_features(kernels):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, 7)) * rng.integers(1, 100, size=7)
    X[rng.random(X.shape) < 0.05] = np.nan
    X[:, 3] = np.round(X[:, 3])  # few distinct values
    mapper = BinMapper(max_bins=200, kernels=kernels).fit(X)
    for f in range(7):
        expected = np.where(np.isnan(X[:, f]), 200,
                            np.searchsorted(mapper.edges(f), X[:, f], side="left"))
        np.testing.assert_array_equal(mapper.transform(X)[f], expected)


def test_raw_threshold_is_equivalent_to_bin_comparison():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 2))
    mapper = BinMapper(max_bins=50).fit(X)
    binned = mapper.transform(X)
    for f in range(2):
        for b in range(mapper.n_bins_[f]):
            t = mapper.raw_thresholds([f], [b])[0]
            np.testing.assert_array_equal(binned[f] <= b, X[:, f] <= t)
    # The last bin's threshold is +inf: every non-missing value goes left.
    assert mapper.raw_thresholds([0], [mapper.n_bins_[0] - 1])[0] == np.inf


def test_categorical_and_bucketized_ids_are_bins_and_negative_is_missing():
    X = np.array([[0.0, 4.0, 1.5], [3.0, -1.0, 2.5], [np.nan, 2.0, 0.5], [1.0, 0.0, 9.0]])
    kinds = [CATEGORICAL, BUCKETIZED, NUMERIC]
    mapper = BinMapper(max_bins=16, feature_kinds=kinds).fit(X)
    binned = mapper.transform(X)
    np.testing.assert_array_equal(binned[0], [0, 3, 16, 1])   # NaN -> missing bin 16
    np.testing.assert_array_equal(binned[1], [4, 16, 2, 0])   # -1 -> missing
    np.testing.assert_array_equal(mapper.n_bins_[:2], [4, 5])  # max id + 1
    # Ids are their own thresholds.
    np.testing.assert_array_equal(mapper.raw_thresholds([0, 1], [3, 2]), [3.0, 2.0])


@pytest.mark.parametrize("bad", [2.5, 16.0, np.inf])
def test_bad_ids_are_rejected_with_their_position(bad):
    X = np.array([[1.0, 0.0], [bad, 1.0]])
    with pytest.raises(InvalidArgumentError, match=r"X\[1, 0\]"):
        BinMapper(max_bins=16, feature_kinds=[CATEGORICAL, NUMERIC]).fit(X)


def test_prepare_features_never_mutates_the_callers_array():
    X = np.array([[-1.0, 5.0], [2.0, 3.0]])
    out = prepare_features(X, np.array([CATEGORICAL, NUMERIC], np.uint8))
    assert X[0, 0] == -1.0 and np.isnan(out[0, 0])


def test_shape_and_dtype_errors():
    with pytest.raises(InvalidArgumentError, match="2-D"):
        BinMapper().fit(np.zeros(3))
    mapper = BinMapper().fit(np.zeros((3, 2)))
    with pytest.raises(InvalidArgumentError, match="3 features, the model was built for 2"):
        mapper.transform(np.zeros((3, 3)))
    with pytest.raises(InvalidArgumentError, match="numeric"):
        mapper.transform(np.array([["a", "b"]]))
    with pytest.raises(InvalidArgumentError, match="max_bins"):
        BinMapper(max_bins=256)


def test_state_round_trip_and_corruption():
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(size=500), rng.integers(0, 5, 500)])
    mapper = BinMapper(max_bins=40, feature_kinds=[NUMERIC, CATEGORICAL]).fit(X)
    state = mapper.get_state()
    again = BinMapper.from_state(state)
    np.testing.assert_array_equal(again.transform(X), mapper.transform(X))

    broken = dict(state, bin_edges=state["bin_edges"][::-1].copy())
    with pytest.raises(DataLossError, match="not strictly increasing"):
        BinMapper.from_state(broken)
    broken = dict(state, bin_edge_offsets=np.array([0, 3, 3]))
    with pytest.raises(DataLossError, match="bin_edge_offsets"):
        BinMapper.from_state(broken)
    broken = {k: v for k, v in state.items() if k != "n_bins"}
    with pytest.raises(DataLossError, match="'n_bins'"):
        BinMapper.from_state(broken)


def test_infinities_fall_in_the_end_bins():
    X = np.array([[-np.inf], [1.0], [2.0], [np.inf], [np.nan]])
    mapper = BinMapper().fit(X)
    np.testing.assert_array_equal(mapper.edges(0), [1.5])
    np.testing.assert_array_equal(mapper.transform(X)[0], [0, 0, 1, 1, 255])


def test_adjacent_and_huge_values_give_valid_edges():
    # Three adjacent float64 values: both midpoints may round onto the middle one; the edges must
    # stay strictly increasing (a checkpoint of them must load) and keep bin <= b <=> x <= edge.
    a = 1.0
    values = np.array([a, np.nextafter(a, 2), np.nextafter(np.nextafter(a, 2), 2), 1.7e308, 1.75e308,
                       -1.7e308])
    mapper = BinMapper().fit(values[:, None])
    edges = mapper.edges(0)
    assert np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)
    BinMapper.from_state(mapper.get_state())
    binned = mapper.transform(values[:, None])[0]
    for b in range(mapper.n_bins_[0]):
        t = mapper.raw_thresholds([0], [b])[0]
        np.testing.assert_array_equal(binned <= b, values <= t)
