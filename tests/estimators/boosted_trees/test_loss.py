import numpy as np
import pytest

from kestimator.errors import InvalidArgumentError
from kestimator.estimators.boosted_trees.loss import (LogisticLoss, SoftmaxLoss, SquaredErrorLoss,
                                                      make_loss)

EPS = 1e-5  # central-difference step: truncation error ~EPS^2, far below the 1e-6 tolerance


def _cases():
    rng = np.random.default_rng(0)
    n = 40
    w = rng.uniform(0.2, 3.0, n)
    return [
        (LogisticLoss(), rng.integers(0, 2, n).astype(float), rng.normal(0, 3, n), w),
        (SquaredErrorLoss(), rng.normal(size=n), rng.normal(size=n), w),
        (SoftmaxLoss(4), rng.integers(0, 4, n).astype(float), rng.normal(0, 2, (n, 4)), w),
    ]


@pytest.mark.parametrize("loss, y, raw, w", _cases(), ids=["logistic", "squared", "softmax"])
def test_gradients_and_hessians_match_central_differences(loss, y, raw, w):
    g = np.empty_like(raw)
    h = np.empty_like(raw)
    loss.gradients_hessians(y, raw, w, g, h)
    columns = [None] if raw.ndim == 1 else range(raw.shape[1])
    for k in columns:
        step = np.zeros_like(raw)
        if k is None:
            step[:] = EPS
        else:
            step[:, k] = EPS
        # d loss / d z, row by row (each row's loss depends only on its own raw scores).
        numeric_g = (loss.value(y, raw + step, w) - loss.value(y, raw - step, w)) / (2 * EPS)
        g_plus, g_minus, h_tmp = np.empty_like(raw), np.empty_like(raw), np.empty_like(raw)
        loss.gradients_hessians(y, raw + step, w, g_plus, h_tmp)
        loss.gradients_hessians(y, raw - step, w, g_minus, h_tmp)
        col = slice(None) if k is None else (slice(None), k)
        numeric_h = (g_plus[col] - g_minus[col]) / (2 * EPS)
        np.testing.assert_allclose(g[col], numeric_g, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(h[col], numeric_h, rtol=1e-6, atol=1e-8)


def test_golden_values_logistic():
    # z = 0: p = 0.5, g = 0.5 - y, h = 0.25; z = ln 3: p = 3/4, g = 3/4 - 1 = -1/4, h = 3/16.
    loss = LogisticLoss()
    g, h = np.empty(2), np.empty(2)
    loss.gradients_hessians(np.array([0.0, 1.0]), np.array([0.0, np.log(3)]), None, g, h)
    np.testing.assert_allclose(g, [0.5, -0.25], rtol=1e-15)
    np.testing.assert_allclose(h, [0.25, 3 / 16], rtol=1e-15)
    # loss(z=ln 3, y=1) = ln(1 + 3) - ln 3 = ln(4/3) = 0.2876820724517809
    np.testing.assert_allclose(loss.value(np.array([1.0]), np.array([np.log(3)])), [np.log(4 / 3)])


def test_logistic_is_finite_for_extreme_logits():
    loss = LogisticLoss()
    raw = np.array([-800.0, 800.0])
    g, h = np.empty(2), np.empty(2)
    loss.gradients_hessians(np.array([1.0, 0.0]), raw, None, g, h)
    np.testing.assert_array_equal(g, [-1.0, 1.0])
    np.testing.assert_array_equal(h, [0.0, 0.0])
    np.testing.assert_allclose(loss.value(np.array([1.0, 0.0]), raw), [800.0, 800.0])


def test_baselines_are_the_best_constants():
    # Logistic: y = [0, 1, 1, 1] -> p = 3/4 -> log-odds ln 3 = 1.0986122886681098.
    np.testing.assert_allclose(LogisticLoss().baseline(np.array([0.0, 1, 1, 1]), None), [np.log(3)])
    # Weighted: w = [3, 1, 1, 1] -> p = 3/6 = 1/2 -> log-odds 0.
    np.testing.assert_allclose(LogisticLoss().baseline(np.array([0.0, 1, 1, 1]),
                                                       np.array([3.0, 1, 1, 1])), [0.0], atol=1e-15)
    # Softmax: priors [1/6, 2/6, 3/6]; softmax of the baseline gives them back.
    b = SoftmaxLoss(3).baseline(np.array([0.0, 1, 1, 2, 2, 2]), None)
    np.testing.assert_allclose(np.exp(b) / np.exp(b).sum(), [1 / 6, 2 / 6, 3 / 6])
    assert abs(b.mean()) < 1e-15
    # Squared error: weighted mean (1*1 + 3*5) / 4 = 4.
    np.testing.assert_allclose(SquaredErrorLoss().baseline(np.array([1.0, 5.0]), np.array([1.0, 3.0])), [4.0])
    # At the baseline the weighted gradient sums to zero (first-order optimality).
    rng = np.random.default_rng(1)
    for loss, y in ((LogisticLoss(), rng.integers(0, 2, 50).astype(float)),
                    (SquaredErrorLoss(), rng.normal(size=50)),
                    (SoftmaxLoss(3), rng.integers(0, 3, 50).astype(float))):
        w = rng.uniform(0.5, 2, 50)
        raw = np.tile(loss.baseline(y, w), (50, 1))
        raw = raw[:, 0] if loss.n_outputs == 1 else raw
        g, h = np.empty_like(raw), np.empty_like(raw)
        loss.gradients_hessians(y, raw, w, g, h)
        np.testing.assert_allclose(g.sum(axis=0), 0.0, atol=1e-12)


def test_make_loss_and_label_checks():
    assert isinstance(make_loss(2), LogisticLoss)
    assert isinstance(make_loss(1), SquaredErrorLoss)
    assert isinstance(make_loss("regression"), SquaredErrorLoss)
    assert make_loss(5).n_outputs == 5
    for bad in (0, -3, "classification", 2.0, True):
        with pytest.raises(InvalidArgumentError, match="n_classes"):
            make_loss(bad)
    with pytest.raises(InvalidArgumentError, match=r"labels\[2\] = 2.0"):
        LogisticLoss().check_labels([0, 1, 2])
    with pytest.raises(InvalidArgumentError, match=r"labels\[1\] = 1.5"):
        SoftmaxLoss(3).check_labels([0, 1.5])
    with pytest.raises(InvalidArgumentError, match=r"labels\[0\] = nan"):
        SquaredErrorLoss().check_labels([np.nan])
