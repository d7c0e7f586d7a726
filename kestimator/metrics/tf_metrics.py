"""TF1-style streaming metrics (`tf.compat.v1.metrics`) for model_fns' eval_metric_ops.

Each function returns ``(value, update_op)``: running `update_op` once per batch accumulates into LOCAL
metric variables (collections LOCAL_VARIABLES and METRIC_VARIABLES, never checkpointed); `value` reads the
result. `update_op` is itself a tensor holding the updated value, so it can feed a summary. Estimator
.evaluate() builds a fresh graph per call, so the accumulators start from zero each time.

    acc, acc_update = ks.metrics.accuracy(labels=labels, predictions=predicted_classes)

Sums are kept in float64 so that long evaluations do not lose precision; values come back as float32, as
TensorFlow's do.
"""
import numpy as np

from ..engine import dtypes as _dt
from ..engine.graph import GraphKeys, get_default_graph
from ..engine.ops.array_ops import reshape, squeeze, strided_slice
from ..engine.ops.core import cast, constant, convert_to_tensor, ones_like
from ..engine.ops.math_ops import (add, divide, equal, greater, logical_and, logical_not, maximum, multiply,
                                   not_equal, sqrt, square, subtract, where)
from ..engine.ops.math_ops import abs as _abs
from ..engine.ops.reduce_ops import reduce_sum
from ..engine.variables import Variable
from ..errors import InvalidArgumentError

__all__ = ["metric_variable", "mean", "accuracy", "precision", "recall", "auc", "mean_squared_error",
           "root_mean_squared_error", "mean_absolute_error", "true_positives", "false_positives",
           "false_negatives", "true_negatives"]

_ACC = _dt.float64


def metric_variable(shape, dtype, name, validate_shape=True):
    """A zero-initialized local variable in LOCAL_VARIABLES + METRIC_VARIABLES (not trainable, not saved)."""
    return Variable(np.zeros(shape, dtype=_dt.as_dtype(dtype).np), trainable=False, name=name,
                    collections=[GraphKeys.LOCAL_VARIABLES, GraphKeys.METRIC_VARIABLES], dtype=dtype)


def _scope(name, default):
    return get_default_graph().name_scope(name or default)


def _add_collections(value, update, metrics_collections, updates_collections):
    g = get_default_graph()
    for c in metrics_collections or ():
        g.add_to_collection(c, value)
    for c in updates_collections or ():
        g.add_to_collection(c, update)


def _safe_div(num, den):
    """num / den, 0 where den == 0 (no examples seen yet)."""
    positive = greater(den, 0.0)
    return where(positive, divide(num, where(positive, den, ones_like(den))), subtract(num, num))


def _squeeze_pair(labels, predictions):
    """Remove a trailing size-1 dimension from whichever of the two has one more dimension."""
    rl, rp = labels.shape.ndims, predictions.shape.ndims
    if rl is not None and rp is not None:
        if rl == rp + 1 and labels.shape[-1] in (1, None):
            labels = squeeze(labels, [-1])
        elif rp == rl + 1 and predictions.shape[-1] in (1, None):
            predictions = squeeze(predictions, [-1])
    return labels, predictions


def _weights_like(weights, values):
    """Weights as float64 with the shape of `values` (1.0 everywhere when weights is None)."""
    ones = ones_like(cast(values, _ACC))
    if weights is None:
        return ones
    w = cast(convert_to_tensor(weights), _ACC)
    if w.shape.ndims is not None and values.shape.ndims is not None and \
            w.shape.ndims == values.shape.ndims + 1 and w.shape[-1] in (1, None):
        w = squeeze(w, [-1])
    return multiply(w, ones)


def mean(values, weights=None, metrics_collections=None, updates_collections=None, name=None):
    """The (weighted) mean of `values` over everything seen: total / count.

    Returns:
        (mean_value, update_op), both float32 scalars.
    """
    with _scope(name, "mean"):
        values = convert_to_tensor(values)
        w = _weights_like(weights, values)
        total = metric_variable([], _ACC, "total")
        count = metric_variable([], _ACC, "count")
        upd_total = total.assign_add(reduce_sum(multiply(cast(values, _ACC), w)))
        upd_count = count.assign_add(reduce_sum(w))
        value = cast(_safe_div(total._as_tensor(), count._as_tensor()), _dt.float32)
        update = cast(_safe_div(upd_total, upd_count), _dt.float32)
    _add_collections(value, update, metrics_collections, updates_collections)
    return value, update


def accuracy(labels, predictions, weights=None, metrics_collections=None, updates_collections=None, name=None):
    """How often `predictions` equal `labels` (weighted mean of the matches).

    Predictions are cast to the labels' dtype first (argmax gives int64 against int32 labels).
    """
    labels = convert_to_tensor(labels)
    predictions = convert_to_tensor(predictions)
    labels, predictions = _squeeze_pair(labels, predictions)
    if predictions.dtype != labels.dtype:
        if labels.dtype.is_string or predictions.dtype.is_string:
            raise InvalidArgumentError(f"accuracy: labels ({labels.dtype.name}) and predictions "
                                       f"({predictions.dtype.name}) cannot be compared")
        predictions = cast(predictions, labels.dtype)
    is_correct = cast(equal(predictions, labels), _dt.float32)
    return mean(is_correct, weights, metrics_collections, updates_collections, name or "accuracy")


def _as_bool(x):
    x = convert_to_tensor(x)
    return x if x.dtype == _dt.bool_ else not_equal(x, np.zeros((), x.dtype.np))


def _confusion_count(kind, labels, predictions, weights, name):
    """A streaming count of true/false positives/negatives for boolean labels and predictions."""
    labels, predictions = _squeeze_pair(convert_to_tensor(labels), convert_to_tensor(predictions))
    lab, pred = _as_bool(labels), _as_bool(predictions)
    if kind == "tp":
        hit = logical_and(lab, pred)
    elif kind == "fp":
        hit = logical_and(logical_not(lab), pred)
    elif kind == "fn":
        hit = logical_and(lab, logical_not(pred))
    else:
        hit = logical_and(logical_not(lab), logical_not(pred))
    with _scope(name, {"tp": "true_positives", "fp": "false_positives", "fn": "false_negatives",
                       "tn": "true_negatives"}[kind]):
        w = _weights_like(weights, hit)
        count = metric_variable([], _ACC, "count")
        update = count.assign_add(reduce_sum(multiply(cast(hit, _ACC), w)))
    return count._as_tensor(), update


def _count_metric(kind, public_name, doc):
    """The TF1 function for one confusion count: (value, update_op), both float32."""
    def metric(labels, predictions, weights=None, metrics_collections=None, updates_collections=None, name=None):
        value, update = _confusion_count(kind, labels, predictions, weights, name)
        value, update = cast(value, _dt.float32), cast(update, _dt.float32)
        _add_collections(value, update, metrics_collections, updates_collections)
        return value, update
    metric.__name__ = metric.__qualname__ = public_name
    metric.__doc__ = doc
    return metric


true_positives = _count_metric("tp", "true_positives", "Weighted count of predictions and labels both true.")
false_positives = _count_metric("fp", "false_positives", "Weighted count of predictions true where labels are false.")
false_negatives = _count_metric("fn", "false_negatives", "Weighted count of predictions false where labels are true.")
true_negatives = _count_metric("tn", "true_negatives", "Weighted count of predictions and labels both false.")


def _ratio_metric(first, second, labels, predictions, weights, metrics_collections, updates_collections,
                  name, default):
    """first / (first + second) of two confusion counts (precision: tp, fp; recall: tp, fn)."""
    with _scope(name, default):
        a, a_upd = _confusion_count(first, labels, predictions, weights, None)
        b, b_upd = _confusion_count(second, labels, predictions, weights, None)
        value = cast(_safe_div(a, add(a, b)), _dt.float32)
        update = cast(_safe_div(a_upd, add(a_upd, b_upd)), _dt.float32)
    _add_collections(value, update, metrics_collections, updates_collections)
    return value, update


def precision(labels, predictions, weights=None, metrics_collections=None, updates_collections=None, name=None):
    """tp / (tp + fp), predictions and labels read as booleans (non-zero is true)."""
    return _ratio_metric("tp", "fp", labels, predictions, weights, metrics_collections, updates_collections,
                         name, "precision")


def recall(labels, predictions, weights=None, metrics_collections=None, updates_collections=None, name=None):
    """tp / (tp + fn), predictions and labels read as booleans (non-zero is true)."""
    return _ratio_metric("tp", "fn", labels, predictions, weights, metrics_collections, updates_collections,
                         name, "recall")


def _auc_thresholds(num_thresholds):
    """TF's grid: -eps, 1/(n-1), ..., (n-2)/(n-1), 1+eps so that 0 and 1 predictions fall inside."""
    eps = 1e-7
    inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    return np.array([0.0 - eps] + inner + [1.0 + eps], dtype=np.float32)


def auc(labels, predictions, weights=None, num_thresholds=200, metrics_collections=None,
        updates_collections=None, curve="ROC", name=None, summation_method="trapezoidal", thresholds=None):
    """Area under the ROC (or precision-recall, curve="PR") curve, from confusion counts at fixed thresholds.

    A prediction counts as positive at threshold t when it is > t. With rec = (tp + eps) / (tp + fn + eps)
    and fpr = fp / (fp + tn + eps) (eps = 1e-7) at each threshold, the trapezoidal sum is
    sum_i (fpr[i] - fpr[i+1]) * (rec[i] + rec[i+1]) / 2; for PR, precision = (tp + eps) / (tp + fp + eps)
    replaces rec on the y axis and rec replaces fpr on the x axis. "minoring" / "majoring" use the smaller /
    larger of the two heights instead of their mean.

    Args:
        labels: 0/1 (or bool) labels.
        predictions: probabilities in [0, 1].
        num_thresholds: grid size (> 1); ignored when `thresholds` is given.
        thresholds: optional explicit thresholds (sorted; -eps and 1+eps are added at the ends).

    Returns:
        (auc_value, update_op) float32 scalars.
    """
    if curve not in ("ROC", "PR"):
        raise InvalidArgumentError(f"auc: curve must be 'ROC' or 'PR', got {curve!r}")
    if summation_method not in ("trapezoidal", "minoring", "majoring", "careful_interpolation"):
        raise InvalidArgumentError(f"auc: unknown summation_method {summation_method!r}")
    if thresholds is not None:
        thr = np.array([0.0 - 1e-7] + sorted(float(t) for t in thresholds) + [1.0 + 1e-7], np.float32)
    else:
        if num_thresholds < 2:
            raise InvalidArgumentError(f"auc: num_thresholds must be > 1, got {num_thresholds}")
        thr = _auc_thresholds(num_thresholds)
    n = len(thr)
    labels, predictions = _squeeze_pair(convert_to_tensor(labels), convert_to_tensor(predictions))
    with _scope(name, "auc"):
        pred = reshape(cast(predictions, _dt.float32), [-1, 1])
        lab = reshape(cast(_as_bool(labels), _ACC), [-1, 1])
        w = reshape(_weights_like(weights, predictions), [-1, 1])
        above = cast(greater(pred, constant(thr)), _ACC)             # [batch, n]
        pos_w = multiply(lab, w)                                     # weight of positive examples
        neg_w = multiply(subtract(1.0, lab), w)
        tp_b = reduce_sum(multiply(above, pos_w), axis=0)
        fp_b = reduce_sum(multiply(above, neg_w), axis=0)
        fn_b = subtract(reduce_sum(pos_w), tp_b)
        tn_b = subtract(reduce_sum(neg_w), fp_b)
        accs = {k: metric_variable([n], _ACC, k) for k in ("true_positives", "false_positives",
                                                           "false_negatives", "true_negatives")}
        upd = [accs["true_positives"].assign_add(tp_b), accs["false_positives"].assign_add(fp_b),
               accs["false_negatives"].assign_add(fn_b), accs["true_negatives"].assign_add(tn_b)]
        cur = [accs[k]._as_tensor() for k in ("true_positives", "false_positives", "false_negatives",
                                               "true_negatives")]
        value = cast(_auc_from_counts(*cur, curve, summation_method), _dt.float32)
        update = cast(_auc_from_counts(*upd, curve, summation_method), _dt.float32)
    _add_collections(value, update, metrics_collections, updates_collections)
    return value, update


def _auc_from_counts(tp, fp, fn, tn, curve, summation_method):
    eps = 1e-7
    rec = divide(add(tp, eps), add(add(tp, fn), eps))
    if curve == "ROC":
        x = divide(fp, add(add(fp, tn), eps))
        y = rec
    else:
        x = rec
        y = divide(add(tp, eps), add(add(tp, fp), eps))
    dx = subtract(strided_slice(x, (slice(None, -1),)), strided_slice(x, (slice(1, None),)))
    y0, y1 = strided_slice(y, (slice(None, -1),)), strided_slice(y, (slice(1, None),))
    if summation_method == "minoring":
        height = where(greater(y0, y1), y1, y0)
    elif summation_method == "majoring":
        height = maximum(y0, y1)
    else:   # trapezoidal (careful_interpolation is approximated by the trapezoid rule)
        height = multiply(add(y0, y1), 0.5)
    return reduce_sum(multiply(dx, height))


def mean_squared_error(labels, predictions, weights=None, metrics_collections=None, updates_collections=None,
                       name=None):
    """Streaming weighted mean of (labels - predictions)^2."""
    labels, predictions = _regression_inputs(labels, predictions)
    return mean(square(subtract(predictions, labels)), weights, metrics_collections, updates_collections,
                name or "mean_squared_error")


def mean_absolute_error(labels, predictions, weights=None, metrics_collections=None, updates_collections=None,
                        name=None):
    """Streaming weighted mean of |labels - predictions|."""
    labels, predictions = _regression_inputs(labels, predictions)
    return mean(_abs(subtract(predictions, labels)), weights, metrics_collections, updates_collections,
                name or "mean_absolute_error")


def root_mean_squared_error(labels, predictions, weights=None, metrics_collections=None,
                            updates_collections=None, name=None):
    """sqrt of the streaming weighted mean squared error."""
    with _scope(name, "root_mean_squared_error"):
        mse, mse_update = mean_squared_error(labels, predictions, weights)
        value, update = sqrt(mse), sqrt(mse_update)
    _add_collections(value, update, metrics_collections, updates_collections)
    return value, update


def _regression_inputs(labels, predictions):
    predictions = convert_to_tensor(predictions)
    if not predictions.dtype.is_floating:
        predictions = cast(predictions, _dt.float32)
    labels = cast(convert_to_tensor(labels), predictions.dtype)
    return _squeeze_pair(labels, predictions)

