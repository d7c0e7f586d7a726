"""Keras confusion-matrix metrics: weighted true / false positive / negative counts at thresholds, and the
metrics built on them (AUC over ROC or PR curves, Precision, Recall, the four counts).

The counts of one batch come from one op per metric (`KerasConfusionCounts`, or `...ByLabel` for a
multi-label AUC): thresholds sorted, a searchsorted and two weighted bincounts give every threshold at once.
The Metric machinery (state, deltas, graph / eager / TF1 use) is keras_metrics'.
"""
import numpy as np

from ..engine import dtypes as _dt
from ..engine.ops import array_ops as _a
from ..engine.ops import core as _core
from ..engine.ops import math_ops as _m
from ..engine.ops import reduce_ops as _r
from ..engine.registry import apply_op, register
from ..errors import InvalidArgumentError
from ..losses import keras_losses as _losses
from .keras_metrics import Metric, _div_no_nan


# -- the count ops ------------------------------------------------------------------------------------------
def _confusion_kernel(xp, a):
    thresholds = np.asarray(a["thresholds"], dtype=np.float32)
    n_thr = thresholds.size

    def run(pred, label, weight):
        # A prediction counts as positive at threshold j when pred > thresholds[j]; with thresholds sorted,
        # searchsorted gives k = how many thresholds lie below pred, so it is positive exactly for j < k.
        # Weighted bincounts over k and a reverse cumulative sum give all thresholds in O(n log T).
        pred = np.asarray(pred, dtype=np.float32)
        w = np.broadcast_to(np.asarray(weight, dtype=np.float64), pred.shape).reshape(-1)
        pred = pred.reshape(-1)
        lab = np.asarray(label).reshape(-1) > 0
        k = np.searchsorted(thresholds, pred, side="left")
        pos = np.bincount(k, weights=w * lab, minlength=n_thr + 1)
        neg = np.bincount(k, weights=w * ~lab, minlength=n_thr + 1)
        tp = np.cumsum(pos[::-1])[::-1][1:]
        fp = np.cumsum(neg[::-1])[::-1][1:]
        fn = pos.sum() - tp
        tn = neg.sum() - fp
        return tuple(x.astype(np.float32) for x in (tp, fp, tn, fn))
    return run


def _confusion_infer(inputs, attrs):
    n = len(attrs["thresholds"])
    return [((n,), _dt.float32)] * 4


def _confusion_by_label_kernel(xp, a):
    thresholds = np.asarray(a["thresholds"], dtype=np.float32)
    n_thr = thresholds.size

    def run(pred, label, weight):
        # the counts of _confusion_kernel for each label (last axis) at once: bin k of label j is
        # k * labels + j, so one weighted bincount per outcome covers every label
        pred = np.asarray(pred, dtype=np.float32)
        labels = pred.shape[-1]
        w = np.broadcast_to(np.asarray(weight, dtype=np.float64), pred.shape).reshape(-1, labels)
        pred = pred.reshape(-1, labels)
        lab = np.asarray(label).reshape(-1, labels) > 0
        bins = (np.searchsorted(thresholds, pred, side="left") * labels + np.arange(labels)).reshape(-1)
        size = (n_thr + 1) * labels
        pos = np.bincount(bins, weights=(w * lab).reshape(-1), minlength=size).reshape(n_thr + 1, labels)
        neg = np.bincount(bins, weights=(w * ~lab).reshape(-1), minlength=size).reshape(n_thr + 1, labels)
        tp = np.cumsum(pos[::-1], axis=0)[::-1][1:]
        fp = np.cumsum(neg[::-1], axis=0)[::-1][1:]
        fn = pos.sum(0) - tp
        tn = neg.sum(0) - fp
        return tuple(x.astype(np.float32) for x in (tp, fp, tn, fn))
    return run


def _confusion_by_label_infer(inputs, attrs):
    n = len(attrs["thresholds"])
    return [((n, inputs[0].shape[-1]), _dt.float32)] * 4


register("KerasConfusionCountsByLabel", infer=_confusion_by_label_infer, kernel=_confusion_by_label_kernel,
         num_outputs=4, differentiable=False)


register("KerasConfusionCounts", infer=_confusion_infer, kernel=_confusion_kernel, num_outputs=4,
         differentiable=False)


# -- the metrics ----------------------------------------------------------------------------
class _ConfusionMetric(Metric):
    """Weighted true/false positive/negative counts at a list of thresholds (pred > threshold)."""

    _counts = ("tp", "fp", "tn", "fn")

    def __init__(self, thresholds=None, name=None, dtype=None, top_k=None, class_id=None, default=0.5):
        super().__init__(name=name, dtype=dtype)
        self._scalar = thresholds is None or np.ndim(thresholds) == 0
        if thresholds is None and top_k is not None:
            default = -np.inf   # as Keras: with top_k, every top-k prediction counts as positive
        thr = [default] if thresholds is None else list(np.atleast_1d(thresholds).astype(float))
        if thresholds is not None and any(t < 0.0 or t > 1.0 for t in thr):
            raise InvalidArgumentError(f"{self.name}: thresholds must be in [0, 1], got {thr}")
        self.init_thresholds = thresholds
        self.thresholds = thr
        self.top_k, self.class_id = top_k, class_id

    _by_label = False     # counts per label (last axis) instead of over all elements

    def _weight_labels(self, w, y_pred):
        return w

    def _sorted(self):
        order = np.argsort(self.thresholds, kind="stable")
        return order, tuple(np.asarray(self.thresholds, np.float32)[order].tolist())

    def _state_specs(self):
        n = len(self.thresholds)
        return [(c, (n,), 0.0) for c in self._counts]

    def _deltas(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _losses._prepare(y_true, y_pred)
        if self.top_k is not None:
            y_pred = apply_op("KerasTopKMask", [y_pred], {"k": int(self.top_k)})
        if self.class_id is not None:
            y_true = _a.gather(y_true, [int(self.class_id)], axis=-1)
            y_pred = _a.gather(y_pred, [int(self.class_id)], axis=-1)
        if sample_weight is None:
            w = _core.constant(np.float32(1.0))
        else:
            w = _m.multiply(_core.ones_like(y_pred), _losses._match_weight(sample_weight, y_pred))
        w = self._weight_labels(w, y_pred)
        order, thr = self._sorted()
        op_type = "KerasConfusionCountsByLabel" if self._by_label else "KerasConfusionCounts"
        counts = apply_op(op_type, [y_pred, y_true, w], {"thresholds": thr})
        inverse = np.argsort(order)
        if not np.array_equal(inverse, np.arange(len(inverse))):
            counts = [_a.gather(c, inverse.tolist()) for c in counts]
        return dict(zip(self._counts, counts))

    def _maybe_scalar(self, t):
        return _a.reshape(t, []) if self._scalar else t

    def get_config(self):
        return dict(super().get_config(), thresholds=self.init_thresholds, top_k=self.top_k,
                    class_id=self.class_id)


class Precision(_ConfusionMetric):
    """tp / (tp + fp) at `thresholds` (default 0.5); a list of thresholds gives a list of values."""

    def _compute(self, state):
        return self._maybe_scalar(_div_no_nan(state["tp"], _m.add(state["tp"], state["fp"])))


class Recall(_ConfusionMetric):
    """tp / (tp + fn) at `thresholds` (default 0.5)."""

    def _compute(self, state):
        return self._maybe_scalar(_div_no_nan(state["tp"], _m.add(state["tp"], state["fn"])))


def _count_class(count):
    class _Count(_ConfusionMetric):
        __doc__ = f"The weighted number of {count} at `thresholds` (default 0.5)."

        def __init__(self, thresholds=None, name=None, dtype=None):
            super().__init__(thresholds, name=name, dtype=dtype)

        def _compute(self, state):
            return self._maybe_scalar(_core.identity(state[count]))
    return _Count


TruePositives = type("TruePositives", (_count_class("tp"),), {})
FalsePositives = type("FalsePositives", (_count_class("fp"),), {})
TrueNegatives = type("TrueNegatives", (_count_class("tn"),), {})
FalseNegatives = type("FalseNegatives", (_count_class("fn"),), {})


class AUC(_ConfusionMetric):
    """Area under the ROC or precision-recall curve from counts at `num_thresholds` thresholds.

    As Keras: thresholds are evenly spaced in (0, 1) plus -eps and 1+eps at the ends; the ROC area is a
    trapezoid sum, the PR area uses Davis & Goadrich's interpolation ('interpolation'), or
    'minoring' / 'majoring' Riemann sums.

    Args:
        num_thresholds: number of thresholds (> 1); ignored when `thresholds` is given.
        curve: 'ROC' or 'PR'.
        summation_method: 'interpolation', 'minoring' or 'majoring'.
        thresholds: explicit inner thresholds (then num_thresholds = len(thresholds) + 2).
        multi_label: with (batch, labels) inputs, one curve per label and the result their average
            (weighted by `label_weights` when given); False flattens all labels into one curve.
        num_labels: number of labels when multi_label (else taken from the first batch's last axis).
        label_weights: one non-negative weight per label: with multi_label the weights of the average,
            without it a factor on each label's counts.
        from_logits: apply a sigmoid to the predictions first.

    Raises:
        InvalidArgumentError: bad thresholds, curve or summation method; label_weights of the wrong size.
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None,
                 dtype=None, thresholds=None, multi_label=False, num_labels=None, label_weights=None,
                 from_logits=False):
        self.multi_label = bool(multi_label)
        self._by_label = self.multi_label
        self.label_weights = None
        if label_weights is not None:
            self.label_weights = np.asarray(label_weights, np.float32).reshape(-1)
            if (self.label_weights < 0).any():
                raise InvalidArgumentError(f"AUC label_weights must be non-negative, got {label_weights}")
            if num_labels is not None and int(num_labels) != self.label_weights.size:
                raise InvalidArgumentError(f"AUC got {self.label_weights.size} label_weights for num_labels="
                                           f"{num_labels}")
            num_labels = self.label_weights.size
        self.num_labels = None if num_labels is None else int(num_labels)
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            num_thresholds = len(inner) + 2
        else:
            if num_thresholds <= 1:
                raise InvalidArgumentError("AUC needs num_thresholds > 1")
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        eps = _losses.EPSILON
        super().__init__(thresholds=[0.0] + inner + [1.0], name=name or "auc", dtype=dtype)
        # the end points lie just outside [0, 1] so that every prediction falls inside the curve
        self.thresholds = [0.0 - eps] + inner + [1.0 + eps]
        self.num_thresholds = num_thresholds
        self.curve = curve.upper()
        if self.curve not in ("ROC", "PR"):
            raise InvalidArgumentError(f"AUC curve must be 'ROC' or 'PR', got {curve!r}")
        self.summation_method = summation_method
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise InvalidArgumentError(f"unknown summation_method {summation_method!r}")
        self.from_logits = from_logits
        self._given_thresholds = thresholds

    def _state_specs(self):
        if not self.multi_label:
            return super()._state_specs()
        # (thresholds, labels); a metric read before its first batch has no labels yet
        shape = (len(self.thresholds), self.num_labels or 0)
        return [(c, shape, 0.0) for c in self._counts]

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Accumulate one batch; with multi_label the first batch fixes the number of labels."""
        if self.multi_label:
            labels = _static_last_dim(y_pred)
            if labels is None or len(getattr(y_pred, "shape", ())) < 2:
                raise InvalidArgumentError(f"AUC {self.name!r} (multi_label=True) needs predictions of shape "
                                           f"(batch, labels) with a known number of labels, got shape "
                                           f"{tuple(getattr(y_pred, 'shape', ()))}")
            if self.num_labels is None:
                self.num_labels = labels
            elif labels != self.num_labels:
                raise InvalidArgumentError(f"AUC {self.name!r} counts {self.num_labels} labels, got a batch with "
                                           f"{labels}")
        return super().update_state(y_true, y_pred, sample_weight)

    def _weight_labels(self, w, y_pred):
        if self.label_weights is None or self.multi_label:
            return w    # multi_label: the weights apply to the average of the per-label areas instead
        return _m.multiply(_m.multiply(_core.ones_like(y_pred), w), _core.constant(self.label_weights))

    def _deltas(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            y_pred = _m.sigmoid(_losses._float(y_pred))
        return super()._deltas(y_true, y_pred, sample_weight)

    def _compute(self, s):
        areas = self._areas(s)
        if not self.multi_label:
            return _r.reduce_sum(areas)
        by_label = _r.reduce_sum(areas, axis=0)
        if self.label_weights is None:
            return _r.reduce_mean(by_label)
        weights = _core.constant(self.label_weights)
        return _div_no_nan(_r.reduce_sum(_m.multiply(by_label, weights)), _r.reduce_sum(weights))

    def _areas(self, s):
        """The area of each threshold interval (per label with multi_label): shape (n - 1,) or (n - 1, L)."""
        tp, fp, tn, fn = s["tp"], s["fp"], s["tn"], s["fn"]
        n = self.num_thresholds
        head, tail = (lambda x: x[: n - 1]), (lambda x: x[1:])
        if self.curve == "PR" and self.summation_method == "interpolation":
            dtp = _m.subtract(head(tp), tail(tp))
            p = _m.add(tp, fp)
            dp = _m.subtract(head(p), tail(p))
            slope = _div_no_nan(dtp, _m.maximum(dp, 0.0))
            intercept = _m.subtract(tail(tp), _m.multiply(slope, tail(p)))
            both = _m.logical_and(_m.greater(head(p), 0.0), _m.greater(tail(p), 0.0))
            ratio = _m.where(both, _div_no_nan(head(p), _m.maximum(tail(p), 0.0)), _core.ones_like(tail(p)))
            return _div_no_nan(_m.multiply(slope, _m.add(dtp, _m.multiply(intercept, _m.log(ratio)))),
                               _m.maximum(_m.add(tail(tp), tail(fn)), 0.0))
        recall = _div_no_nan(tp, _m.add(tp, fn))
        if self.curve == "ROC":
            x, y = _div_no_nan(fp, _m.add(fp, tn)), recall
        else:
            x, y = recall, _div_no_nan(tp, _m.add(tp, fp))
        if self.summation_method == "interpolation":
            heights = _m.multiply(_m.add(head(y), tail(y)), 0.5)
        elif self.summation_method == "minoring":
            heights = _m.minimum(head(y), tail(y))
        else:
            heights = _m.maximum(head(y), tail(y))
        return _m.multiply(_m.subtract(head(x), tail(x)), heights)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "num_thresholds": self.num_thresholds,
                "curve": self.curve, "summation_method": self.summation_method,
                "thresholds": self._given_thresholds, "multi_label": self.multi_label,
                "num_labels": self.num_labels if self.multi_label else None,
                "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
                "from_logits": self.from_logits}


def _static_last_dim(x):
    """The last dimension of an array or a tensor's static shape (None when unknown)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    dims = list(shape)
    if not dims:
        return None
    last = dims[-1]
    last = getattr(last, "value", last)
    return None if last is None else int(last)
