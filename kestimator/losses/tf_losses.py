"""TF1-style loss functions (`tf.compat.v1.losses`) for model_fns: they build graph ops, reduce them with a
`Reduction` and add the result to the graph's LOSSES collection.

    loss = ks.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)

Weights broadcast against the per-example losses; a weights or labels tensor with one trailing dimension of
size 1 more than the losses (shape [batch, 1] against [batch]) is squeezed first, as TensorFlow does.
"""
from ..engine import dtypes as _dt
from ..engine.graph import GraphKeys, get_default_graph
from ..engine.ops.array_ops import squeeze
from ..engine.ops.core import cast, convert_to_tensor, ones_like
from ..engine.ops.math_ops import (abs as _abs, add, add_n, divide, greater, log, maximum, minimum, multiply,
                                   not_equal, square, subtract, where)
from ..engine.ops.nn_ops import (sigmoid_cross_entropy_with_logits, softmax_cross_entropy_with_logits,
                                 sparse_softmax_cross_entropy_with_logits)
from ..engine.ops.reduce_ops import reduce_sum
from ..errors import InvalidArgumentError

__all__ = ["Reduction", "compute_weighted_loss", "sparse_softmax_cross_entropy", "softmax_cross_entropy",
           "sigmoid_cross_entropy", "mean_squared_error", "absolute_difference", "huber_loss", "log_loss",
           "hinge_loss", "add_loss", "get_losses", "get_regularization_losses", "get_regularization_loss",
           "get_total_loss"]


class Reduction:
    """How a loss tensor of per-element values becomes the value returned (tf.compat.v1.losses.Reduction).

    NONE: the weighted per-element losses, unreduced. SUM: their sum. MEAN: sum / sum of the weights.
    SUM_OVER_BATCH_SIZE: sum / number of elements. SUM_BY_NONZERO_WEIGHTS (the default, as in TF1):
    sum / number of elements whose weight is not zero.
    """
    NONE = "none"
    SUM = "weighted_sum"
    MEAN = "weighted_mean"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls):
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE, cls.SUM_BY_NONZERO_WEIGHTS)

    @classmethod
    def validate(cls, key):
        if key not in cls.all():
            raise InvalidArgumentError(f"invalid loss reduction {key!r}; expected one of {cls.all()}")


def _squeeze_extra_dim(t, like):
    """Squeeze a trailing size-1 dimension of `t` when it has exactly one more dimension than `like`."""
    rt, rl = t.shape.ndims, like.shape.ndims
    if rt is not None and rl is not None and rt == rl + 1 and t.shape[-1] in (1, None):
        return squeeze(t, [-1])
    return t


def _safe_divide(num, den):
    """num / den, and 0 where den == 0 (an empty batch or all-zero weights gives a zero loss, as in TF)."""
    positive = greater(den, 0.0)
    return where(positive, divide(num, where(positive, den, ones_like(den))), subtract(num, num))


def _count(t):
    """Number of elements of `t` as a float scalar tensor (the batch size may be unknown at build time)."""
    return reduce_sum(ones_like(t))


def compute_weighted_loss(losses, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                          reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Weight per-element `losses` and reduce them.

    Args:
        losses: float tensor of per-element losses.
        weights: scalar or tensor broadcastable to `losses` (a [batch, 1] tensor against [batch] losses is
            squeezed first).
        scope: unused (kept for TF compatibility).
        loss_collection: graph collection the result is added to (None: none).
        reduction: a `Reduction` key.

    Returns:
        A float32 (or the losses' float dtype) tensor: scalar unless reduction is NONE.

    Raises:
        InvalidArgumentError: unknown reduction, or weights that do not broadcast to the losses.
    """
    Reduction.validate(reduction)
    losses = convert_to_tensor(losses)
    if not losses.dtype.is_floating:
        losses = cast(losses, _dt.float32)
    weights = convert_to_tensor(weights) if hasattr(weights, "dtype") or hasattr(weights, "_as_tensor") \
        else convert_to_tensor(weights, losses.dtype)
    if weights.dtype != losses.dtype:
        weights = cast(weights, losses.dtype)
    weights = _squeeze_extra_dim(weights, losses)
    weighted = multiply(losses, weights)
    if reduction == Reduction.NONE:
        loss = weighted
    else:
        total = reduce_sum(weighted)
        if reduction == Reduction.SUM:
            loss = total
        else:
            full_weights = multiply(weights, ones_like(losses))   # weights broadcast to the losses' shape
            if reduction == Reduction.MEAN:
                loss = _safe_divide(total, reduce_sum(full_weights))
            elif reduction == Reduction.SUM_OVER_BATCH_SIZE:
                loss = _safe_divide(total, _count(losses))
            else:
                nonzero = cast(not_equal(full_weights, 0.0), losses.dtype)
                loss = _safe_divide(total, reduce_sum(nonzero))
    if loss_collection is not None:
        get_default_graph().add_to_collection(loss_collection, loss)
    return loss


def sparse_softmax_cross_entropy(labels, logits, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                                 reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Cross-entropy of integer class `labels` ([batch] or [batch, 1]) against `logits` ([batch, classes]).

    Raises:
        InvalidArgumentError: labels are not integers or their rank does not match the logits.
    """
    logits = convert_to_tensor(logits)
    labels = convert_to_tensor(labels)
    if not labels.dtype.is_integer:
        raise InvalidArgumentError(f"sparse_softmax_cross_entropy: labels must be integer class ids, got "
                                   f"{labels.dtype.name} ({labels.name})")
    if labels.shape.ndims is not None and labels.shape.ndims == logits.shape.ndims and labels.shape[-1] in (1, None):
        labels = squeeze(labels, [-1])   # [batch, 1] class ids
    if labels.shape.ndims is not None and logits.shape.ndims is not None and \
            labels.shape.ndims != logits.shape.ndims - 1:
        raise InvalidArgumentError(f"sparse_softmax_cross_entropy: labels of shape {labels.shape} do not match "
                                   f"logits of shape {logits.shape} (expected rank {logits.shape.ndims - 1})")
    losses = sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return compute_weighted_loss(losses, weights, scope, loss_collection, reduction)


def softmax_cross_entropy(onehot_labels, logits, weights=1.0, label_smoothing=0, scope=None,
                          loss_collection=GraphKeys.LOSSES, reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Cross-entropy of one-hot (or probability) labels against logits; `label_smoothing` mixes the labels
    with the uniform distribution: labels * (1 - s) + s / num_classes."""
    logits = convert_to_tensor(logits)
    labels = cast(convert_to_tensor(onehot_labels), logits.dtype)
    if label_smoothing:
        k = logits.shape[-1]
        if k is None:
            raise InvalidArgumentError("softmax_cross_entropy: label_smoothing needs a known number of classes")
        labels = add(multiply(labels, 1.0 - label_smoothing), label_smoothing / k)
    losses = softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return compute_weighted_loss(losses, weights, scope, loss_collection, reduction)


def sigmoid_cross_entropy(multi_class_labels, logits, weights=1.0, label_smoothing=0, scope=None,
                          loss_collection=GraphKeys.LOSSES, reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Element-wise logistic loss of 0/1 labels against logits; smoothing: labels * (1 - s) + s / 2."""
    logits = convert_to_tensor(logits)
    labels = cast(convert_to_tensor(multi_class_labels), logits.dtype)
    if label_smoothing:
        labels = add(multiply(labels, 1.0 - label_smoothing), 0.5 * label_smoothing)
    losses = sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return compute_weighted_loss(losses, weights, scope, loss_collection, reduction)


def _regression_pair(labels, predictions, what):
    predictions = convert_to_tensor(predictions)
    if not predictions.dtype.is_floating:
        predictions = cast(predictions, _dt.float32)
    labels = cast(convert_to_tensor(labels), predictions.dtype)
    if labels.shape.ndims is not None and predictions.shape.ndims is not None and \
            not labels.shape.is_compatible_with(predictions.shape):
        raise InvalidArgumentError(f"{what}: labels of shape {labels.shape} and predictions of shape "
                                   f"{predictions.shape} differ")
    return labels, predictions


def mean_squared_error(labels, predictions, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                       reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """(labels - predictions)^2, weighted and reduced."""
    labels, predictions = _regression_pair(labels, predictions, "mean_squared_error")
    return compute_weighted_loss(square(subtract(predictions, labels)), weights, scope, loss_collection,
                                 reduction)


def absolute_difference(labels, predictions, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                        reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """|labels - predictions|, weighted and reduced."""
    labels, predictions = _regression_pair(labels, predictions, "absolute_difference")
    return compute_weighted_loss(_abs(subtract(predictions, labels)), weights, scope, loss_collection,
                                 reduction)


def huber_loss(labels, predictions, weights=1.0, delta=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
               reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """0.5 * e^2 where |e| <= delta, else 0.5 * delta^2 + delta * (|e| - delta); e = labels - predictions."""
    labels, predictions = _regression_pair(labels, predictions, "huber_loss")
    err = _abs(subtract(predictions, labels))
    quadratic = minimum(err, delta)
    linear = subtract(err, quadratic)
    losses = add(multiply(square(quadratic), 0.5), multiply(linear, delta))
    return compute_weighted_loss(losses, weights, scope, loss_collection, reduction)


def log_loss(labels, predictions, weights=1.0, epsilon=1e-7, scope=None, loss_collection=GraphKeys.LOSSES,
             reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """-labels * log(p + eps) - (1 - labels) * log(1 - p + eps) for probabilities p."""
    labels, predictions = _regression_pair(labels, predictions, "log_loss")
    losses = subtract(multiply(subtract(labels, 1.0), log(add(subtract(1.0, predictions), epsilon))),
                      multiply(labels, log(add(predictions, epsilon))))
    return compute_weighted_loss(losses, weights, scope, loss_collection, reduction)


def hinge_loss(labels, logits, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
               reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """max(0, 1 - (2 * labels - 1) * logits) for 0/1 labels."""
    labels, logits = _regression_pair(labels, logits, "hinge_loss")
    signed = subtract(multiply(labels, 2.0), 1.0)
    losses = maximum(subtract(1.0, multiply(signed, logits)), 0.0)
    return compute_weighted_loss(losses, weights, scope, loss_collection, reduction)


# -- collections --------------------------------------------------------------------------------------------
def add_loss(loss, loss_collection=GraphKeys.LOSSES):
    """Add `loss` to `loss_collection` (so get_total_loss includes it)."""
    if loss_collection is not None:
        get_default_graph().add_to_collection(loss_collection, loss)


def get_losses(scope=None, loss_collection=GraphKeys.LOSSES):
    """The tensors in `loss_collection` (filtered by op-name regex `scope`)."""
    return get_default_graph().get_collection(loss_collection, scope)


def get_regularization_losses(scope=None):
    """The tensors in REGULARIZATION_LOSSES (from get_variable regularizers, Keras layer penalties...)."""
    return get_default_graph().get_collection(GraphKeys.REGULARIZATION_LOSSES, scope)


def get_regularization_loss(scope=None, name="total_regularization_loss"):
    """The sum of the regularization losses, or a constant 0.0 when there are none."""
    losses = get_regularization_losses(scope)
    if not losses:
        return convert_to_tensor(0.0, _dt.float32)
    return add_n(losses, name=name) if len(losses) > 1 else losses[0]


def get_total_loss(add_regularization_losses=True, name="total_loss", scope=None):
    """Sum of the LOSSES collection plus (by default) the regularization losses.

    Raises:
        InvalidArgumentError: there are no losses at all.
    """
    losses = get_losses(scope)
    if add_regularization_losses:
        losses = losses + get_regularization_losses(scope)
    if not losses:
        raise InvalidArgumentError("get_total_loss: no losses in the LOSSES or REGULARIZATION_LOSSES collections")
    return add_n(losses, name=name) if len(losses) > 1 else losses[0]
