"""TF1-style streaming metrics against NumPy over several batches, and their variables' collections."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kestimator import engine as ke
from kestimator.metrics import tf_metrics as M


def _stream(make, batches, dtypes):
    """Feed `batches` (tuples of arrays) through update_op; return (update values, final value, graph)."""
    g = ke.Graph()
    with g.as_default():
        phs = [ke.placeholder(dt, [None] + list(np.shape(b)[1:])) for dt, b in zip(dtypes, batches[0])]
        value, update = make(*phs)
        with ke.Session() as sess:
            sess.run(ke.local_variables_initializer())
            ups = [sess.run(update, dict(zip(phs, b))) for b in batches]
            return ups, sess.run(value), g


def _batches(arrays, cuts):
    return [tuple(a[i:j] for a in arrays) for i, j in zip(cuts[:-1], cuts[1:])]


def test_accuracy_weighted_over_batches():
    rng = np.random.default_rng(0)
    labels, preds = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    w = rng.random(50).astype(np.float32)
    ups, value, g = _stream(lambda l, p, ww: M.accuracy(l, p, weights=ww), _batches((labels, preds, w), [0, 17, 40, 50]),
                            [ke.int64, ke.int64, ke.float32])
    np.testing.assert_allclose(value, ((labels == preds) * w).sum() / w.sum(), rtol=1e-6)
    np.testing.assert_allclose(ups[0], ((labels[:17] == preds[:17]) * w[:17]).sum() / w[:17].sum(), rtol=1e-6)
    assert ups[-1] == value
    local = g.get_collection(ke.GraphKeys.LOCAL_VARIABLES)
    assert {v.op.name for v in local} == {"accuracy/total", "accuracy/count"}
    assert set(g.get_collection(ke.GraphKeys.METRIC_VARIABLES)) == set(local)
    assert not g.get_collection(ke.GraphKeys.GLOBAL_VARIABLES)


def test_accuracy_casts_predictions_and_squeezes():
    ups, value, _ = _stream(lambda l, p: M.accuracy(l, p), [(np.array([[1], [0], [2]]), np.array([1, 1, 2]))],
                            [ke.int32, ke.int64])
    np.testing.assert_allclose(value, 2 / 3, rtol=1e-6)


def test_precision_recall_against_numpy():
    rng = np.random.default_rng(1)
    labels, preds = rng.integers(0, 2, 40), rng.integers(0, 2, 40)
    tp = ((labels == 1) & (preds == 1)).sum()
    fp = ((labels == 0) & (preds == 1)).sum()
    fn = ((labels == 1) & (preds == 0)).sum()
    for fn_, ref in ((M.precision, tp / (tp + fp)), (M.recall, tp / (tp + fn))):
        _, value, _ = _stream(lambda l, p: fn_(l, p), _batches((labels, preds), [0, 13, 40]), [ke.int64, ke.int64])
        np.testing.assert_allclose(value, ref, rtol=1e-6)


def test_empty_metric_is_zero():
    g = ke.Graph()
    with g.as_default():
        value, _ = M.mean(ke.placeholder(ke.float32, [None]))
        with ke.Session() as sess:
            sess.run(ke.local_variables_initializer())
            assert sess.run(value) == 0.0


def test_auc_close_to_exact_roc_auc():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 500)
    scores = np.clip(labels * 0.3 + rng.random(500) * 0.7, 0, 1).astype(np.float32)
    _, value, _ = _stream(lambda l, p: M.auc(l, p, num_thresholds=1000), _batches((labels, scores), [0, 250, 500]),
                          [ke.int64, ke.float32])
    # 1000 thresholds: the trapezoids approximate the exact (rank) AUC to ~1e-3
    assert abs(value - roc_auc_score(labels, scores)) < 2e-3


def test_auc_matches_the_threshold_formula_exactly():
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.8, 0.9], np.float32)
    _, value, _ = _stream(lambda l, p: M.auc(l, p, num_thresholds=5), [(labels, scores)], [ke.int64, ke.float32])
    thr = np.array([-1e-7, 0.25, 0.5, 0.75, 1 + 1e-7])
    pos = scores[None, :] > thr[:, None]
    tp = (pos & (labels == 1)).sum(1)
    fp = (pos & (labels == 0)).sum(1)
    fn, tn = 3 - tp, 2 - fp
    rec = (tp + 1e-7) / (tp + fn + 1e-7)
    fpr = fp / (fp + tn + 1e-7)
    expected = ((fpr[:-1] - fpr[1:]) * (rec[:-1] + rec[1:]) / 2).sum()
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_mean_squared_and_root_mean_squared_error():
    y = np.array([1.0, 2.0, 3.0, 5.0], np.float32)
    p = np.array([2.0, 2.0, 1.0, 5.0], np.float32)
    _, mse, _ = _stream(lambda a, b: M.mean_squared_error(a, b), _batches((y, p), [0, 1, 4]), [ke.float32] * 2)
    _, rmse, _ = _stream(lambda a, b: M.root_mean_squared_error(a, b), [(y, p)], [ke.float32] * 2)
    np.testing.assert_allclose(mse, 5 / 4)          # (1 + 0 + 4 + 0) / 4
    np.testing.assert_allclose(rmse, np.sqrt(5 / 4), rtol=1e-6)


@pytest.mark.parametrize("bad", ["XY"])
def test_auc_argument_errors(bad):
    from kestimator.errors import InvalidArgumentError
    with pytest.raises(InvalidArgumentError, match="curve"):
        with ke.Graph().as_default():
            M.auc(ke.placeholder(ke.int64, [None]), ke.placeholder(ke.float32, [None]), curve=bad)
