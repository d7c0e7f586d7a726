"""Losses of gradient boosting: value, gradient and hessian with respect to the raw score (logit).

Each boosting round fits a tree to the second-order Taylor expansion of the loss around the current
raw scores: a leaf holding rows with gradient sum G and hessian sum H gets the Newton step
``-G / H`` (regularised in splitting.py). So a loss here is three functions of (label, raw score):

============  ==========================  ==================  ======================
loss          value per row               gradient            hessian (diagonal)
============  ==========================  ==================  ======================
logistic      log(1 + e^z) - y z          sigmoid(z) - y      p (1 - p)
softmax       log sum_k e^z_k - z_y       p_k - [y == k]      p_k (1 - p_k)
squared       (z - y)^2 / 2               z - y               1
============  ==========================  ==================  ======================

Every term is multiplied by the row's sample weight. The softmax hessian is the diagonal of the true
one, as in TF, XGBoost and scikit-learn: each class gets its own tree per round.

``baseline`` is the constant raw score the ensemble starts from: with ``center_bias`` it is the
minimiser of the weighted loss over constants (prior log-odds, log class priors, weighted mean of y),
which TF reaches with its bias-centering Newton steps; without it, zero.
"""

import numpy as np

from kestimator.errors import InvalidArgumentError

_PROBA_CLIP = 1e-15


def _sigmoid(z):
    """Logistic function; ``exp`` overflowing to inf for z < -709 correctly gives 0."""
    with np.errstate(over="ignore"):
        p = np.exp(-np.asarray(z, np.float64))
    p += 1.0
    return np.reciprocal(p, out=p)


def _softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


class Loss:
    """Interface of a boosting loss.

    Attributes:
      n_outputs: raw scores per row (1, or the number of classes for softmax).
      is_classification: whether labels are class ids.
    """

    n_outputs = 1
    is_classification = False

    def check_labels(self, y):
        """Returns ``y`` as float64 (n,) after checking it suits the loss.

        Raises:
          InvalidArgumentError: labels out of range, or NaN.
        """
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise InvalidArgumentError(f"labels must have shape (n,) or (n, 1), got {y.shape}")
        if not np.all(np.isfinite(y)):
            row = int(np.flatnonzero(~np.isfinite(y))[0])
            raise InvalidArgumentError(f"labels[{row}] = {float(y[row])!r} is not a finite number")
        return y

    def baseline(self, y, sample_weight):
        """The optimal constant raw score (n_outputs,) for labels ``y`` and weights."""
        raise NotImplementedError

    def value(self, y, raw, sample_weight=None):
        """Per-row weighted loss, shape (n,)."""
        raise NotImplementedError

    def gradients_hessians(self, y, raw, sample_weight, gradients, hessians):
        """Writes gradients and hessians w.r.t. ``raw`` into the given arrays.

        Args:
          y: float64 labels (n,).
          raw: float64 raw scores, (n,) or (n, n_outputs).
          sample_weight: float64 (n,) or None.
          gradients, hessians: output arrays with ``raw``'s shape (any float dtype).
        """
        raise NotImplementedError

    def raw_to_prediction(self, raw):
        """Maps raw scores to predictions (probabilities, or the regression value)."""
        raise NotImplementedError


class LogisticLoss(Loss):
    """Binary cross-entropy on a single logit; labels are 0 or 1."""

    is_classification = True

    def check_labels(self, y):
        y = super().check_labels(y)
        bad = (y != 0) & (y != 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InvalidArgumentError(f"labels[{row}] = {float(y[row])!r}: binary labels must be 0 or 1")
        return y

    def baseline(self, y, sample_weight):
        p = np.clip(np.average(y, weights=sample_weight), _PROBA_CLIP, 1 - _PROBA_CLIP)
        return np.array([np.log(p / (1 - p))])

    def value(self, y, raw, sample_weight=None):
        # log(1 + e^z) - y z, with log1p(e^-|z|) + max(z, 0) to stay finite.
        loss = np.logaddexp(0.0, raw) - y * raw
        return loss if sample_weight is None else loss * sample_weight

    def gradients_hessians(self, y, raw, sample_weight, gradients, hessians):
        p = _sigmoid(raw)
        np.subtract(p, y, out=gradients, casting="unsafe")
        np.multiply(p, 1.0 - p, out=hessians, casting="unsafe")
        if sample_weight is not None:
            np.multiply(gradients, sample_weight, out=gradients, casting="unsafe")
            np.multiply(hessians, sample_weight, out=hessians, casting="unsafe")

    def raw_to_prediction(self, raw):
        p1 = _sigmoid(np.asarray(raw, np.float64))
        return np.stack([1.0 - p1, p1], axis=1)


class SoftmaxLoss(Loss):
    """Multi-class cross-entropy on ``n_classes`` logits; labels are ids 0 .. n_classes-1."""

    is_classification = True

    def __init__(self, n_classes):
        self.n_outputs = int(n_classes)

    def check_labels(self, y):
        y = super().check_labels(y)
        bad = (y != np.floor(y)) | (y < 0) | (y >= self.n_outputs)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InvalidArgumentError(
                f"labels[{row}] = {float(y[row])!r}: class ids must be integers in [0, {self.n_outputs})")
        return y

    def baseline(self, y, sample_weight):
        w = np.ones_like(y) if sample_weight is None else sample_weight
        prior = np.bincount(y.astype(np.int64), weights=w, minlength=self.n_outputs) / w.sum()
        log_prior = np.log(np.clip(prior, _PROBA_CLIP, 1.0))
        # Softmax ignores a common shift; centring keeps the raw scores small.
        return log_prior - log_prior.mean()

    def value(self, y, raw, sample_weight=None):
        m = raw.max(axis=1)
        log_norm = m + np.log(np.exp(raw - m[:, None]).sum(axis=1))
        loss = log_norm - raw[np.arange(raw.shape[0]), y.astype(np.int64)]
        return loss if sample_weight is None else loss * sample_weight

    def gradients_hessians(self, y, raw, sample_weight, gradients, hessians):
        p = _softmax(raw)
        np.multiply(p, 1.0 - p, out=hessians, casting="unsafe")
        p[np.arange(raw.shape[0]), y.astype(np.int64)] -= 1.0
        np.copyto(gradients, p, casting="unsafe")
        if sample_weight is not None:
            np.multiply(gradients, sample_weight[:, None], out=gradients, casting="unsafe")
            np.multiply(hessians, sample_weight[:, None], out=hessians, casting="unsafe")

    def raw_to_prediction(self, raw):
        return _softmax(np.asarray(raw, np.float64))


class SquaredErrorLoss(Loss):
    """Half squared error ``(z - y)^2 / 2`` (gradient ``z - y``, hessian 1), for regression."""

    def baseline(self, y, sample_weight):
        return np.array([np.average(y, weights=sample_weight)])

    def value(self, y, raw, sample_weight=None):
        loss = 0.5 * (raw - y) ** 2
        return loss if sample_weight is None else loss * sample_weight

    def gradients_hessians(self, y, raw, sample_weight, gradients, hessians):
        np.subtract(raw, y, out=gradients, casting="unsafe")
        if sample_weight is None:
            hessians[...] = 1.0
        else:
            np.multiply(gradients, sample_weight, out=gradients, casting="unsafe")
            np.copyto(hessians, sample_weight, casting="unsafe")

    def raw_to_prediction(self, raw):
        return np.asarray(raw, np.float64)


def make_loss(n_classes):
    """The loss for ``n_classes``: 2 → logistic, >= 3 → softmax, 1 or "regression" → squared error.

    Raises:
      InvalidArgumentError: any other value.
    """
    is_int = isinstance(n_classes, (int, np.integer)) and not isinstance(n_classes, bool)
    if n_classes == "regression" or (is_int and n_classes == 1):
        return SquaredErrorLoss()
    if is_int and n_classes == 2:
        return LogisticLoss()
    if is_int and n_classes >= 3:
        return SoftmaxLoss(n_classes)
    raise InvalidArgumentError(
        f"n_classes must be 'regression', 1 (regression), 2 (binary) or an int >= 3, got {n_classes!r}")
