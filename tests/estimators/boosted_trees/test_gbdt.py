import dataclasses
import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

from kestimator.errors import DataLossError, InvalidArgumentError, NotFoundError
from kestimator.estimators.boosted_trees import GradientBoostedTrees
from kestimator.estimators.boosted_trees._backend import numba_available


def _assert_same_trees(a, b):
    assert a.ensemble_.n_trees == b.ensemble_.n_trees
    assert a.ensemble_.tree_output == b.ensemble_.tree_output
    for ta, tb in zip(a.ensemble_.trees, b.ensemble_.trees):
        for field in dataclasses.fields(ta):
            np.testing.assert_array_equal(getattr(ta, field.name), getattr(tb, field.name),
                                          err_msg=field.name)


def test_breast_cancer_auc(kernels):
    # The split and settings of configs-examples/boosted_trees_cancer.yaml.
    X, y = load_breast_cancer(return_X_y=True)
    model = GradientBoostedTrees(n_trees=100, max_depth=4, learning_rate=0.1, l2_regularization=1.0,
                                 kernels=kernels).fit(X[:450], y[:450])
    assert roc_auc_score(y[450:], model.predict_proba(X[450:])[:, 1]) >= 0.98


def test_diabetes_r2_close_to_sklearn_hist_gradient_boosting(kernels):
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    # Same settings: unit hessians make min_node_weight=20 the same rule as min_samples_leaf=20.
    ours = GradientBoostedTrees(n_trees=100, max_depth=3, learning_rate=0.1, min_node_weight=20,
                                n_classes="regression", kernels=kernels).fit(X_train, y_train)
    reference = HistGradientBoostingRegressor(max_iter=100, max_depth=3, learning_rate=0.1,
                                              min_samples_leaf=20, max_leaf_nodes=None,
                                              l2_regularization=0.0, max_bins=255,
                                              early_stopping=False).fit(X_train, y_train)
    ours_r2 = r2_score(y_test, ours.predict(X_test))
    reference_r2 = r2_score(y_test, reference.predict(X_test))
    assert abs(ours_r2 - reference_r2) <= 0.03, (ours_r2, reference_r2)


def test_wine_three_classes(kernels):
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    model = GradientBoostedTrees(n_trees=50, max_depth=3, n_classes=3, kernels=kernels).fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(y_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(model.predict(X_test) == y_test) > 0.9
    assert model.ensemble_.n_trees == 150  # one tree per class per round


def _resume_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 5))
    X[rng.random(X.shape) < 0.05] = np.nan
    y3 = np.digitize(np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]), [-0.5, 0.6]).astype(float)
    return X, y3


@pytest.mark.parametrize("n_classes", [2, 3, "regression"])
def test_resume_fifty_plus_fifty_equals_one_hundred(kernels, n_classes):
    X, y3 = _resume_data()
    y = {2: (y3 > 0).astype(float), 3: y3, "regression": y3 + X[:, 2]}[n_classes]
    y = np.nan_to_num(y)
    kwargs = dict(n_trees=100, max_depth=3, l2_regularization=0.5, n_classes=n_classes,
                  kernels=kernels)
    at_once = GradientBoostedTrees(**kwargs).fit(X, y)
    resumed = GradientBoostedTrees(**kwargs).fit(X, y, n_new_trees=50)
    assert resumed.n_rounds_ == 50
    resumed.fit(X, y)
    assert resumed.n_rounds_ == 100
    _assert_same_trees(at_once, resumed)
    np.testing.assert_array_equal(at_once.predict_raw(X), resumed.predict_raw(X))
    # A finished model stays finished.
    resumed.fit(X, y)
    assert resumed.ensemble_.n_trees == at_once.ensemble_.n_trees


def test_resume_through_a_checkpoint_state(kernels):
    X, y3 = _resume_data()
    y = (y3 > 0).astype(float)
    at_once = GradientBoostedTrees(n_trees=30, max_depth=4, kernels=kernels).fit(X, y)
    first = GradientBoostedTrees(n_trees=30, max_depth=4, kernels=kernels).fit(X, y, n_new_trees=12)
    # What a checkpoint stores: arrays and JSON scalars, nothing else.
    state = first.get_state()
    scalars = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    assert json.loads(json.dumps(scalars)) == scalars
    assert all(v.dtype.kind in "biuf" for v in state.values() if isinstance(v, np.ndarray))
    restored = GradientBoostedTrees.from_state(state, kernels=kernels)
    np.testing.assert_array_equal(restored.predict_raw(X), first.predict_raw(X))
    restored.fit(X, y)
    _assert_same_trees(at_once, restored)


def test_state_round_trip_keeps_everything():
    X, y = load_breast_cancer(return_X_y=True)
    X = np.column_stack([X[:, :5], (X[:, 5] * 50).astype(int) % 7])
    model = GradientBoostedTrees(n_trees=10, max_depth=3, categorical_features=[5], pruning_mode="post",
                                 tree_complexity=0.1, kernels="numpy").fit(X, y)
    restored = GradientBoostedTrees.from_state(model.get_state())
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    for key, value in model.get_state().items():
        np.testing.assert_array_equal(restored.get_state()[key], value, err_msg=key)
    assert restored.pruning_mode == "post" and restored.categorical_features == [5]


def test_corrupt_states_are_refused():
    X, y = load_breast_cancer(return_X_y=True)
    state = GradientBoostedTrees(n_trees=4, max_depth=2, kernels="numpy").fit(X, y).get_state()
    with pytest.raises(DataLossError, match="format"):
        GradientBoostedTrees.from_state(dict(state, format="something else"))
    with pytest.raises(DataLossError, match="'learning_rate'"):
        GradientBoostedTrees.from_state({k: v for k, v in state.items() if k != "learning_rate"})
    with pytest.raises(DataLossError, match="4 trees for n_rounds=5"):
        GradientBoostedTrees.from_state(dict(state, n_rounds=5))
    with pytest.raises(DataLossError, match="baseline has 1 entries"):
        GradientBoostedTrees.from_state(dict(state, n_classes=3))
    with pytest.raises(DataLossError, match="max_depth"):
        GradientBoostedTrees.from_state(dict(state, max_depth=0))


@pytest.mark.skipif(not numba_available(), reason="numba (extra [fast]) is not installed")
def test_numba_and_numpy_train_identical_models():
    X, y3 = _resume_data()
    X = np.column_stack([X, np.random.default_rng(5).integers(0, 4, len(X))])
    kwargs = dict(n_trees=8, max_depth=4, n_classes=3, l1_regularization=0.05,
                  l2_regularization=0.3, categorical_features=[5])
    _assert_same_trees(GradientBoostedTrees(kernels="numpy", **kwargs).fit(X, y3),
                       GradientBoostedTrees(kernels="numba", **kwargs).fit(X, y3))


def test_integer_sample_weight_equals_duplicated_rows():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 30, size=(400, 3)).astype(float)  # few distinct values: same bin edges
    y = (X[:, 0] + rng.normal(0, 5, 400) > 15).astype(float)
    w = rng.integers(1, 4, 400).astype(float)
    weighted = GradientBoostedTrees(n_trees=10, max_depth=3, kernels="numpy").fit(X, y, sample_weight=w)
    repeated = GradientBoostedTrees(n_trees=10, max_depth=3, kernels="numpy").fit(
        np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int)))
    np.testing.assert_allclose(weighted.predict_raw(X), repeated.predict_raw(X), rtol=1e-5, atol=1e-6)


def test_center_bias_starts_from_prior_log_odds():
    X = np.zeros((8, 1))
    y = np.array([1.0, 1, 1, 0, 0, 0, 0, 0])  # p = 3/8 -> log(3/5) = -0.5108256237659907
    centered = GradientBoostedTrees(n_trees=1, max_depth=1, kernels="numpy").fit(X, y)
    np.testing.assert_allclose(centered.ensemble_.baseline, [np.log(3 / 5)])
    # One constant feature: no split, and at the prior the gradient sum is 0 so the leaf adds 0.
    np.testing.assert_allclose(centered.predict_raw(X), np.log(3 / 5), atol=1e-7)
    plain = GradientBoostedTrees(n_trees=1, max_depth=1, center_bias=False, learning_rate=1.0,
                                 kernels="numpy").fit(X, y)
    # From 0: G = sum(0.5 - y) = 8*0.5 - 3 = 1, H = 8 * 0.25 = 2 -> leaf -1/2.
    np.testing.assert_allclose(plain.predict_raw(X), -0.5, atol=1e-7)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_trees=0), "n_trees"), (dict(max_depth=0), "max_depth"),
    (dict(learning_rate=-1.0), "learning_rate"), (dict(l2_regularization=-1), "l2_regularization"),
    (dict(pruning_mode="early"), "pruning_mode"), (dict(pruning_mode="pre"), "tree_complexity > 0"),
    (dict(max_bins=256), "max_bins"), (dict(n_classes=0), "n_classes"),
    (dict(quantile_sketch_epsilon=0), "quantile_sketch_epsilon"),
    (dict(categorical_features=[9]), "categorical_features holds 9"),
    (dict(categorical_features=[0], bucketized_features=[0]), "listed twice"),
    (dict(kernels="cuda"), "kernels"),
])
def test_bad_hyperparameters_are_named(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        GradientBoostedTrees(**kwargs).fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_bad_inputs_and_unfitted_use():
    model = GradientBoostedTrees(n_trees=2, kernels="numpy")
    with pytest.raises(NotFoundError, match="call fit"):
        model.predict_raw(np.zeros((1, 2)))
    with pytest.raises(InvalidArgumentError, match="3 rows but y has 2"):
        model.fit(np.zeros((3, 2)), [0, 1])
    with pytest.raises(InvalidArgumentError, match=r"sample_weight\[1\] = -1.0"):
        model.fit(np.zeros((2, 2)), [0, 1], sample_weight=[1, -1])
    model.fit(np.zeros((2, 2)), [0, 1])
    with pytest.raises(InvalidArgumentError, match="3 features, the model was built for 2"):
        model.predict_raw(np.zeros((1, 3)))
    with pytest.raises(InvalidArgumentError, match="needs a classifier"):
        GradientBoostedTrees(n_classes="regression", n_trees=1).fit([[0.0]], [1.0]).predict_proba([[0.0]])


@pytest.mark.skipif(not numba_available(), reason="numba (extra [fast]) is not installed")
def test_threaded_and_single_thread_kernels_train_identical_models(monkeypatch):
    X, y3 = _resume_data()
    X = np.column_stack([X, np.random.default_rng(6).integers(0, 4, len(X))])
    kwargs = dict(n_trees=3, max_depth=4, n_classes=3, categorical_features=[5], kernels="numba")
    monkeypatch.setattr("kestimator.estimators.boosted_trees._backend.PARALLEL_MIN_WORK", 0)
    threaded = GradientBoostedTrees(**kwargs).fit(X, y3)
    monkeypatch.setattr("kestimator.estimators.boosted_trees._backend.PARALLEL_MIN_WORK", 2**62)
    single = GradientBoostedTrees(**kwargs).fit(X, y3)
    _assert_same_trees(threaded, single)
