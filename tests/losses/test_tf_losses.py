"""TF1-style losses against NumPy, for every reduction."""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError
from kestimator.losses import tf_losses as L


def _run(fn):
    g = ke.Graph()
    with g.as_default():
        out = fn()
        with ke.Session() as sess:
            return sess.run(out), g


def _reduce(per, w, reduction):
    w = np.broadcast_to(w, per.shape)
    if reduction == L.Reduction.NONE:
        return per * w
    total = (per * w).sum()
    if reduction == L.Reduction.SUM:
        return total
    if reduction == L.Reduction.MEAN:
        return total / w.sum()
    if reduction == L.Reduction.SUM_OVER_BATCH_SIZE:
        return total / per.size
    return total / np.count_nonzero(w)


LOGITS = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [0.0, 0.0, 3.0], [1.0, -1.0, 0.0]], np.float32)
LABELS = np.array([0, 1, 2, 1])
WEIGHTS = np.array([1.0, 0.0, 2.0, 0.5], np.float32)


def _sparse_ce(logits, labels):
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(labels)), labels]


@pytest.mark.parametrize("reduction", L.Reduction.all())
def test_sparse_softmax_cross_entropy_reductions(reduction):
    got, g = _run(lambda: L.sparse_softmax_cross_entropy(LABELS, LOGITS, weights=WEIGHTS, reduction=reduction))
    np.testing.assert_allclose(got, _reduce(_sparse_ce(LOGITS, LABELS), WEIGHTS, reduction), rtol=1e-5)
    assert len(g.get_collection(ke.GraphKeys.LOSSES)) == 1


def test_sparse_ce_squeezes_labels_and_weights_with_a_trailing_one():
    got, _ = _run(lambda: L.sparse_softmax_cross_entropy(LABELS[:, None], LOGITS, weights=WEIGHTS[:, None]))
    # default reduction: sum / number of non-zero weights (3 of 4)
    np.testing.assert_allclose(got, (_sparse_ce(LOGITS, LABELS) * WEIGHTS).sum() / 3, rtol=1e-5)


def test_sparse_ce_rejects_float_labels():
    with pytest.raises(InvalidArgumentError, match="integer class ids"):
        _run(lambda: L.sparse_softmax_cross_entropy(LABELS.astype(np.float32), LOGITS))


def test_softmax_cross_entropy_with_label_smoothing():
    onehot = np.eye(3, dtype=np.float32)[LABELS]
    got, _ = _run(lambda: L.softmax_cross_entropy(onehot, LOGITS, label_smoothing=0.3,
                                                  reduction=L.Reduction.NONE))
    smooth = onehot * 0.7 + 0.1                                  # 0.3 / 3 classes
    z = LOGITS - LOGITS.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    np.testing.assert_allclose(got, -(smooth * logp).sum(1), rtol=1e-5)


def test_sigmoid_cross_entropy_is_stable_for_large_logits():
    logits = np.array([[100.0, -100.0], [0.0, 3.0]], np.float32)
    labels = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    got, _ = _run(lambda: L.sigmoid_cross_entropy(labels, logits, reduction=L.Reduction.NONE))
    ref = np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))   # = 100, 100, log 2, ...
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert np.isclose(got[0, 0], 100.0)


def test_regression_losses():
    y = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    p = np.array([1.5, 0.0, 3.0, 7.0], np.float32)
    e = np.abs(p - y)                                            # 0.5, 2, 0, 3
    mse, _ = _run(lambda: L.mean_squared_error(y, p))
    mae, _ = _run(lambda: L.absolute_difference(y, p))
    hub, _ = _run(lambda: L.huber_loss(y, p, delta=1.0))
    np.testing.assert_allclose(mse, (e ** 2).mean())
    np.testing.assert_allclose(mae, e.mean())
    huber = np.where(e <= 1.0, 0.5 * e ** 2, 1.0 * (e - 0.5))    # 0.125, 1.5, 0, 2.5
    np.testing.assert_allclose(hub, huber.mean())


def test_zero_weights_give_zero_not_nan():
    got, _ = _run(lambda: L.mean_squared_error([1.0, 2.0], [0.0, 0.0], weights=0.0))
    assert got == 0.0


def test_total_and_regularization_loss():
    def build():
        a = L.mean_squared_error([1.0], [3.0])                   # 4
        reg = ke.get_variable("w", [2], initializer=ke.constant_initializer(3.0),
                              regularizer=lambda w: ke.reduce_sum(w * w) * 0.1)   # 0.1 * 18 = 1.8
        return [a, L.get_regularization_loss(), L.get_total_loss()], reg

    g = ke.Graph()
    with g.as_default():
        (fetch, reg) = build()
        with ke.Session() as sess:
            sess.run(ke.global_variables_initializer())
            a, r, total = sess.run(fetch)
    np.testing.assert_allclose([a, r, total], [4.0, 1.8, 5.8], rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match="no losses"):
        with ke.Graph().as_default():
            L.get_total_loss()
