"""BoostedTreesClassifier / Regressor: the Estimator API over the gradient-boosted-trees core."""
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score, roc_auc_score

import kestimator as ks

fc = ks.feature_column


def _split(X, y, n_train, seed=0):
    idx = np.random.default_rng(seed).permutation(len(y))
    X, y = X[idx].astype(np.float32), y[idx]
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


def _input(x, y=None):
    return ks.estimators.inputs.numpy_input_fn({"x": x}, y, batch_size=256, num_epochs=1, shuffle=False)


def _cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return _split(X, y, 450)


def test_breast_cancer_auc_and_resume_equals_one_run(tmp_path):
    (xt, yt), (xe, ye) = _cancer()
    cols = [fc.numeric_column("x", shape=[30])]
    kw = dict(n_trees=100, max_depth=4, learning_rate=0.1, l2_regularization=1.0)
    split_run = ks.estimators.BoostedTreesClassifier(cols, model_dir=str(tmp_path / "a"), **kw)
    split_run.train(_input(xt, yt), steps=60)
    assert split_run.get_variable_value("global_step") == 60
    resumed = ks.estimators.BoostedTreesClassifier(cols, model_dir=str(tmp_path / "a"), **kw)
    resumed.train(_input(xt, yt), steps=1000)        # asks for more than n_trees: stops at 100
    one_run = ks.estimators.BoostedTreesClassifier(cols, model_dir=str(tmp_path / "b"), **kw)
    one_run.train(_input(xt, yt))
    result = resumed.evaluate(_input(xe, ye))
    assert result["global_step"] == 100
    p_resumed = np.array([p["probabilities"][1] for p in resumed.predict(_input(xe))])
    p_one = np.array([p["probabilities"][1] for p in one_run.predict(_input(xe))])
    np.testing.assert_array_equal(p_resumed, p_one)   # 60 + 40 rounds grow exactly the trees of 100
    assert roc_auc_score(ye, p_one) >= 0.98
    assert result["auc"] == pytest.approx(roc_auc_score(ye, p_one), abs=1e-9)
    assert result["accuracy"] == pytest.approx(np.mean((p_one > 0.5) == ye))
    # training again once n_trees is reached does nothing
    resumed.train(_input(xt, yt), steps=10)
    assert resumed.get_variable_value("global_step") == 100


def test_checkpoint_holds_the_ensemble_and_bin_edges(tmp_path):
    (xt, yt), _ = _cancer()
    est = ks.estimators.BoostedTreesClassifier([fc.numeric_column("x", shape=[30])], model_dir=str(tmp_path),
                                               n_trees=3, max_depth=2)
    est.train(_input(xt, yt))
    names = est.get_variable_names()
    assert "global_step" in names and any(n.startswith("boosted_trees/") and "edge" in n for n in names), names


def test_explanations_sum_to_logit_minus_bias(tmp_path):
    (xt, yt), (xe, _) = _cancer()
    est = ks.estimators.BoostedTreesClassifier([fc.numeric_column("x", shape=[30])], model_dir=str(tmp_path),
                                               n_trees=10, max_depth=3, center_bias=True)
    est.train(_input(xt, yt))
    for row in list(est.experimental_predict_with_explanations(_input(xe[:5]))):
        assert len(row["dfc"]) == 30
        assert sum(row["dfc"].values()) + row["bias"] == pytest.approx(float(row["logits"][0]), abs=1e-5)
    names, imp = est.experimental_feature_importances(normalize=True)
    assert imp.sum() == pytest.approx(1.0) and np.all(np.diff(imp) <= 0) and len(names) == 30


def test_wine_three_classes(tmp_path):
    X, y = load_wine(return_X_y=True)
    (xt, yt), (xe, ye) = _split(X, y, 130)
    est = ks.estimators.BoostedTreesClassifier([fc.numeric_column("x", shape=[13])], n_classes=3,
                                               model_dir=str(tmp_path), n_trees=30, max_depth=3)
    est.train(_input(xt, yt))
    assert est.evaluate(_input(xe, ye))["accuracy"] > 0.9
    probs = np.array([p["probabilities"] for p in est.predict(_input(xe))])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_diabetes_regression_close_to_sklearn(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    (xt, yt), (xe, ye) = _split(X, y, 350)
    est = ks.estimators.BoostedTreesRegressor([fc.numeric_column("x", shape=[10])], model_dir=str(tmp_path),
                                              n_trees=100, max_depth=3, learning_rate=0.05, center_bias=True)
    est.train(_input(xt, yt.astype(np.float32)))
    ours = r2_score(ye, [p["predictions"][0] for p in est.predict(_input(xe))])
    ref = HistGradientBoostingRegressor(max_iter=100, max_depth=3, learning_rate=0.05, max_leaf_nodes=None,
                                        min_samples_leaf=1, l2_regularization=0.0, early_stopping=False)
    theirs = r2_score(ye, ref.fit(xt, yt).predict(xe))
    assert abs(ours - theirs) <= 0.03, (ours, theirs)
    result = est.evaluate(_input(xe, ye.astype(np.float32)))
    assert set(result) >= {"average_loss", "loss", "label/mean", "prediction/mean", "global_step"}


def test_bucketized_and_categorical_columns(tmp_path):
    rng = np.random.default_rng(0)
    n = 2000
    color = rng.choice(np.array(["red", "green", "blue"]), n)
    size = rng.uniform(0, 10, n).astype(np.float32)
    y = ((color == "green") ^ (size > 6.5)).astype(np.int64)     # needs both columns
    cols = [fc.indicator_column(fc.categorical_column_with_vocabulary_list("color", ["red", "green", "blue"])),
            fc.bucketized_column(fc.numeric_column("size"), boundaries=[2.0, 4.0, 6.5, 8.0])]
    fn = ks.estimators.inputs.numpy_input_fn({"color": color, "size": size}, y, batch_size=500, num_epochs=1,
                                             shuffle=False)
    est = ks.estimators.BoostedTreesClassifier(cols, model_dir=str(tmp_path), n_trees=10, max_depth=2)
    est.train(fn)
    assert est.evaluate(fn)["accuracy"] == 1.0


def test_unsupported_column_is_named():
    col = fc.embedding_column(fc.categorical_column_with_identity("k", 5), 2)
    with pytest.raises(ks.errors.InvalidArgumentError, match="k_embedding"):
        ks.estimators.BoostedTreesClassifier([col])
