"""Keras metrics against tf_keras 2.21's values (fixture: losses_metrics.npz, updated in two batches
there and here) and against scikit-learn.

Tolerance: float32 accumulators on both sides, 1e-5 relative / 1e-6 absolute.
"""
import os

import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError
from kestimator.metrics import keras_metrics as M

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "keras", "losses_metrics.npz")


@pytest.fixture(scope="module")
def data():
    return dict(np.load(FIXTURE))


CASES = {
    "auc_roc": (lambda: M.AUC(), "yb", "pb"), "auc_pr": (lambda: M.AUC(curve="PR"), "yb", "pb"),
    "auc_roc_50": (lambda: M.AUC(num_thresholds=50), "yb", "pb"),
    "auc_pr_minoring": (lambda: M.AUC(curve="PR", summation_method="minoring"), "yb", "pb"),
    "precision": (lambda: M.Precision(), "yb", "pb"), "recall": (lambda: M.Recall(), "yb", "pb"),
    "precision_thr": (lambda: M.Precision(thresholds=[0.3, 0.7]), "yb", "pb"),
    "recall_class1": (lambda: M.Recall(class_id=1), "yc", "pc"),
    "precision_top2": (lambda: M.Precision(top_k=2), "yc", "pc"),
    "binary_accuracy": (lambda: M.BinaryAccuracy(), "yb", "pb"),
    "categorical_accuracy": (lambda: M.CategoricalAccuracy(), "yc", "pc"),
    "sparse_categorical_accuracy": (lambda: M.SparseCategoricalAccuracy(), "ys", "pc"),
    "top2": (lambda: M.TopKCategoricalAccuracy(k=2), "yc", "pc"),
    "sparse_top2": (lambda: M.SparseTopKCategoricalAccuracy(k=2), "ys", "pc"),
    "rmse": (lambda: M.RootMeanSquaredError(), "yr", "pr"), "mse_metric": (lambda: M.MeanSquaredError(), "yr", "pr"),
    "true_positives": (lambda: M.TruePositives(), "yb", "pb"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_tf_keras(data, name):
    make, t, p = CASES[name]
    m = make()
    m.update_state(data[t][:20], data[p][:20])
    m.update_state(data[t][20:], data[p][20:])
    np.testing.assert_allclose(m.result(), data[f"metric_{name}"], rtol=1e-5, atol=1e-6)
    m.reset_state()
    m.update_state(data[t], data[p], sample_weight=data["sw"])
    np.testing.assert_allclose(m.result(), data[f"metric_{name}_weighted"], rtol=1e-5, atol=1e-6)


def test_auc_close_to_sklearn_with_many_thresholds():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    p = np.clip(0.35 * y + 0.65 * rng.random(2000), 0, 1).astype(np.float32)
    m = M.AUC(num_thresholds=2000)
    m.update_state(y, p)
    # the threshold grid approximates the exact rank statistic; 2000 thresholds for 2000 samples: ~1e-3
    assert abs(float(m.result()) - roc_auc_score(y, p)) < 2e-3


def test_metric_runs_in_a_graph_and_tf1_pair():
    g = ke.Graph()
    with g.as_default():
        labels = ke.placeholder(ke.int64, [None])
        probs = ke.placeholder(ke.float32, [None, 3])
        m = M.SparseCategoricalAccuracy()
        value, update = m.as_tf1(labels, probs)
        init = ke.local_variables_initializer()
    with ke.Session(graph=g) as sess:
        sess.run(init)
        sess.run(update, {labels: [0, 1], probs: [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1]]})   # 1 of 2 right
        sess.run(update, {labels: [2], probs: [[0.1, 0.1, 0.8]]})                       # 1 of 1 right
        np.testing.assert_allclose(sess.run(value), 2.0 / 3.0, rtol=1e-6)


def test_mean_and_call_and_reset():
    m = M.Mean()
    m.update_state([1.0, 2.0, 3.0])
    m.update_state([10.0], sample_weight=[2.0])
    # (1 + 2 + 3 + 2*10) / (3 + 2) = 26 / 5
    np.testing.assert_allclose(m.result(), 5.2, rtol=1e-6)
    m.reset_state()
    assert float(m.result()) == 0.0
    acc = M.BinaryAccuracy()
    np.testing.assert_allclose(acc([[1.0], [0.0]], [[0.7], [0.6]]), 0.5)


def test_get_names_and_errors():
    assert isinstance(M.get("auc"), M.AUC)
    mse = M.get("mse")
    assert isinstance(mse, M.MeanSquaredError) and mse.name == "mse"
    cfg = M.serialize(M.AUC(num_thresholds=10, curve="PR"))
    again = M.deserialize(cfg)
    assert again.num_thresholds == 10 and again.curve == "PR"
    with pytest.raises(InvalidArgumentError, match="unknown metric"):
        M.get("bogus")
    with pytest.raises(InvalidArgumentError, match="thresholds must be in"):
        M.Precision(thresholds=1.5)


def test_tf1_function_names_left_to_tf_metrics():
    for name in ("accuracy", "auc", "precision", "recall", "mean", "mean_squared_error", "root_mean_squared_error"):
        assert name not in M.__all__
