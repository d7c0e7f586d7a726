"""Heads: the part of a canned estimator after the logits (loss, predictions, metrics, train op).

A canned estimator is a head plus a logits function plus Estimator (tf.estimator's design). The heads
follow TF 2's: the training loss is the weighted sum of per-example losses over the number of elements
(SUM_OVER_BATCH_SIZE), plus regularization losses; eval metrics carry TF's names.

* BinaryClassHead: sigmoid cross-entropy on one logit. Predictions logits, logistic, probabilities,
  class_ids, classes, all_class_ids, all_classes. Metrics accuracy, accuracy_baseline, auc,
  auc_precision_recall, average_loss, label/mean, precision, prediction/mean, recall.
* MultiClassHead: softmax cross-entropy. Predictions logits, probabilities, class_ids, classes,
  all_class_ids, all_classes. Metrics accuracy, average_loss.
* RegressionHead: squared error. Predictions "predictions". Metrics average_loss, label/mean,
  prediction/mean.
(The Estimator adds "loss", the mean of the per-batch training losses, and "global_step".)
"""
import numpy as np

from ..engine import dtypes as _dt
from ..engine.graph import GraphKeys, get_default_graph
from ..engine.ops.array_ops import concat, gather, reshape
from ..engine.ops.core import cast, constant, convert_to_tensor, group, identity, ones_like, zeros_like
from ..engine.ops.math_ops import add_n, maximum, multiply, sigmoid, squared_difference, subtract
from ..engine.ops.nn_ops import sigmoid_cross_entropy_with_logits, softmax, sparse_softmax_cross_entropy_with_logits
from ..engine.ops.reduce_ops import argmax, reduce_sum
from ..errors import InvalidArgumentError
from ..metrics import tf_metrics
from . import _ops
from ._global_step import get_global_step
from .export_output import ClassificationOutput, PredictOutput, RegressionOutput
from .model_fn import EstimatorSpec, ModeKeys

__all__ = ["BinaryClassHead", "MultiClassHead", "RegressionHead"]


def _weights(features, weight_column):
    """float32 [batch, 1] example weights from features (None without a weight column)."""
    if weight_column is None:
        return None
    key = weight_column if isinstance(weight_column, str) else getattr(weight_column, "key", None)
    if key is None:
        raise InvalidArgumentError(f"weight_column must be a feature key or a numeric_column, got {weight_column!r}")
    if not isinstance(features, dict) or key not in features:
        have = sorted(features) if isinstance(features, dict) else type(features).__name__
        raise InvalidArgumentError(f"weight_column {key!r} is not in the features ({have})")
    w = convert_to_tensor(features[key])
    if not (w.dtype.is_floating or w.dtype.is_integer):
        raise InvalidArgumentError(f"weight_column {key!r} must be numeric, got {w.dtype.name}")
    return reshape(cast(w, _dt.float32), [-1, 1])


class _Head:
    """Shared machinery: loss reduction, metrics scaffolding, the train op."""

    name = None
    logits_dimension = None

    def __init__(self, weight_column=None, loss_reduction="sum_over_batch_size"):
        if loss_reduction not in ("sum_over_batch_size", "sum"):
            raise InvalidArgumentError(f"loss_reduction must be 'sum_over_batch_size' or 'sum', got {loss_reduction!r}")
        self.weight_column = weight_column
        self.loss_reduction = loss_reduction

    def _check_logits(self, logits):
        logits = convert_to_tensor(logits)
        if logits.shape.ndims is not None and logits.shape.ndims == 1 and self.logits_dimension == 1:
            logits = reshape(logits, [-1, 1])
        if logits.shape.ndims != 2 or logits.shape[1] not in (None, self.logits_dimension):
            raise InvalidArgumentError(f"{type(self).__name__}: logits must have shape [batch, "
                                       f"{self.logits_dimension}], got {logits.shape}")
        return cast(logits, _dt.float32)

    def _reduce(self, unreduced, weights):
        weighted = unreduced if weights is None else multiply(unreduced, weights)
        total = reduce_sum(weighted)
        if self.loss_reduction == "sum":
            return total
        return total / reduce_sum(ones_like(unreduced))

    def loss(self, labels, logits, features=None, mode=None, regularization_losses=None):
        """The regularized scalar training loss."""
        logits = self._check_logits(logits)
        unreduced = self._unreduced_loss(self._labels(labels), logits)
        loss = self._reduce(unreduced, _weights(features, self.weight_column))
        if regularization_losses:
            loss = add_n([loss] + list(regularization_losses))
        return loss

    def create_estimator_spec(self, features, mode, logits, labels=None, optimizer=None, trainable_variables=None,
                              train_op_fn=None, update_ops=None, regularization_losses=None):
        """An EstimatorSpec for `mode`.

        Args:
            optimizer: minimizes the loss in TRAIN (or give train_op_fn(loss) -> op, which must not
                increment the global step; the head does).
            update_ops: ops to run with each training step (batch-norm statistics).
            regularization_losses: added to the training loss (default: the graph's
                REGULARIZATION_LOSSES collection).
        """
        logits = self._check_logits(logits)
        predictions = self._predictions(logits)
        if mode == ModeKeys.PREDICT:
            return EstimatorSpec(mode, predictions=predictions, export_outputs=self._export_outputs(predictions))
        if labels is None:
            raise InvalidArgumentError(f"{type(self).__name__}: labels are required in mode {mode!r}")
        labels = self._labels(labels)
        weights = _weights(features, self.weight_column)
        unreduced = self._unreduced_loss(labels, logits)
        if regularization_losses is None:
            regularization_losses = get_default_graph().get_collection(GraphKeys.REGULARIZATION_LOSSES)
        loss = self._reduce(unreduced, weights)
        if regularization_losses:
            loss = add_n([loss] + list(regularization_losses))
        if mode == ModeKeys.EVAL:
            metrics = self._metrics(labels, logits, predictions, unreduced, weights)
            return EstimatorSpec(mode, predictions=predictions, loss=loss, eval_metric_ops=metrics)
        train_op = self._train_op(loss, optimizer, trainable_variables, train_op_fn, update_ops)
        return EstimatorSpec(mode, predictions=predictions, loss=loss, train_op=train_op)

    def _train_op(self, loss, optimizer, trainable_variables, train_op_fn, update_ops):
        gs = get_global_step()
        if (optimizer is None) == (train_op_fn is None):
            raise InvalidArgumentError("create_estimator_spec needs exactly one of optimizer and train_op_fn in TRAIN")
        if update_ops is None:
            update_ops = get_default_graph().get_collection(GraphKeys.UPDATE_OPS)
        if optimizer is not None:
            step = optimizer.minimize(loss, var_list=trainable_variables, global_step=gs)
            return group(step, *update_ops) if update_ops else step
        op = train_op_fn(loss)
        g = get_default_graph()
        with g.control_dependencies([op] + list(update_ops)):
            inc = gs.assign_add(np.int64(1))
        return group(op, inc, *update_ops)

    def _mean(self, values, weights, name):
        return tf_metrics.mean(values, weights, name=name)


class BinaryClassHead(_Head):
    """Logistic regression on one logit per example.

    Args:
        weight_column: feature key (or numeric_column) of per-example weights.
        thresholds: extra probability thresholds for accuracy/precision/recall metrics.
        label_vocabulary: the two label strings (labels are then strings; id = position).
        loss_reduction: "sum_over_batch_size" (default) or "sum".
    """

    logits_dimension = 1

    def __init__(self, weight_column=None, thresholds=None, label_vocabulary=None,
                 loss_reduction="sum_over_batch_size", name=None):
        super().__init__(weight_column, loss_reduction)
        self.thresholds = tuple(float(t) for t in (thresholds or ()))
        for t in self.thresholds:
            if not 0.0 < t < 1.0:
                raise InvalidArgumentError(f"BinaryClassHead: thresholds must be in (0, 1), got {t}")
        if label_vocabulary is not None:
            label_vocabulary = [str(v) if not isinstance(v, bytes) else v.decode() for v in label_vocabulary]
            if len(label_vocabulary) != 2 or len(set(label_vocabulary)) != 2:
                raise InvalidArgumentError(f"BinaryClassHead: label_vocabulary needs 2 distinct values, got "
                                           f"{label_vocabulary}")
        self.label_vocabulary = label_vocabulary
        self.name = name

    def _labels(self, labels):
        labels = reshape(convert_to_tensor(labels), [-1, 1])
        if self.label_vocabulary is not None:
            if not labels.dtype.is_string:
                raise InvalidArgumentError("BinaryClassHead: with a label_vocabulary the labels must be strings, "
                                           f"got {labels.dtype.name}")
            from ..feature_column import _ops as fc_ops
            ids = fc_ops.vocabulary_lookup(labels, self.label_vocabulary, True, 0, -1, "labels")
            ids = _ops.check_label_range(ids, 0, 1, f"labels must be one of label_vocabulary {self.label_vocabulary}")
            return cast(ids, _dt.float32)
        if labels.dtype.is_string:
            raise InvalidArgumentError("BinaryClassHead: string labels need a label_vocabulary")
        labels = cast(labels, _dt.float32)
        return _ops.check_label_range(labels, 0.0, 1.0, "BinaryClassHead labels (must be 0 or 1)")

    def _unreduced_loss(self, labels, logits):
        return sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)

    def _class_names(self):
        return self.label_vocabulary or ["0", "1"]

    def _predictions(self, logits):
        logistic = sigmoid(logits)
        probabilities = concat([subtract(1.0, logistic), logistic], axis=1)
        class_ids = reshape(argmax(probabilities, axis=1), [-1, 1])
        names = constant(np.array([n.encode() for n in self._class_names()], dtype=object), dtype=_dt.string)
        all_ids = cast(zeros_like(probabilities), _dt.int32) + constant(np.arange(2, dtype=np.int32))
        return {"logits": logits, "logistic": logistic, "probabilities": probabilities, "class_ids": class_ids,
                "classes": gather(names, class_ids), "all_class_ids": all_ids, "all_classes": gather(names, all_ids)}

    def _export_outputs(self, p):
        cls = ClassificationOutput(scores=p["probabilities"], classes=p["all_classes"])
        return {"serving_default": cls, "classification": cls, "regression": RegressionOutput(p["logistic"]),
                "predict": PredictOutput(p)}

    def _metrics(self, labels, logits, p, unreduced, weights):
        class_ids = cast(p["class_ids"], _dt.float32)
        m = {"accuracy": tf_metrics.accuracy(labels, class_ids, weights, name="accuracy"),
             "precision": tf_metrics.precision(labels, class_ids, weights, name="precision"),
             "recall": tf_metrics.recall(labels, class_ids, weights, name="recall"),
             "prediction/mean": self._mean(p["logistic"], weights, "prediction_mean"),
             "auc": tf_metrics.auc(labels, p["logistic"], weights, name="auc"),
             "auc_precision_recall": tf_metrics.auc(labels, p["logistic"], weights, curve="PR",
                                                    name="auc_precision_recall"),
             "average_loss": self._mean(unreduced, weights, "average_loss")}
        label_mean, label_mean_update = self._mean(labels, weights, "label_mean")
        m["label/mean"] = (label_mean, label_mean_update)
        # accuracy of always predicting the majority label: max(mean, 1 - mean)
        m["accuracy_baseline"] = (maximum(label_mean, subtract(1.0, label_mean)),
                                  maximum(label_mean_update, subtract(1.0, label_mean_update)))
        for t in self.thresholds:
            pred_t = cast(p["logistic"] >= t, _dt.float32)
            m[f"accuracy/positive_threshold_{t:g}"] = tf_metrics.accuracy(labels, pred_t, weights)
            m[f"precision/positive_threshold_{t:g}"] = tf_metrics.precision(labels, pred_t, weights)
            m[f"recall/positive_threshold_{t:g}"] = tf_metrics.recall(labels, pred_t, weights)
        return m


class MultiClassHead(_Head):
    """Softmax classification over `n_classes` logits.

    Args:
        n_classes: number of classes (> 2).
        weight_column, label_vocabulary (n_classes strings), loss_reduction: as BinaryClassHead.
    """

    def __init__(self, n_classes, weight_column=None, label_vocabulary=None, loss_reduction="sum_over_batch_size",
                 name=None):
        super().__init__(weight_column, loss_reduction)
        if n_classes is None or n_classes < 2:
            raise InvalidArgumentError(f"MultiClassHead: n_classes must be >= 2, got {n_classes}")
        if label_vocabulary is not None:
            label_vocabulary = [str(v) if not isinstance(v, bytes) else v.decode() for v in label_vocabulary]
            if len(label_vocabulary) != n_classes or len(set(label_vocabulary)) != n_classes:
                raise InvalidArgumentError(f"MultiClassHead: label_vocabulary needs {n_classes} distinct values, got "
                                           f"{label_vocabulary}")
        self.n_classes = int(n_classes)
        self.logits_dimension = self.n_classes
        self.label_vocabulary = label_vocabulary
        self.name = name

    def _labels(self, labels):
        labels = reshape(convert_to_tensor(labels), [-1, 1])
        if self.label_vocabulary is not None:
            if not labels.dtype.is_string:
                raise InvalidArgumentError("MultiClassHead: with a label_vocabulary the labels must be strings, "
                                           f"got {labels.dtype.name}")
            from ..feature_column import _ops as fc_ops
            ids = fc_ops.vocabulary_lookup(labels, self.label_vocabulary, True, 0, -1, "labels")
            return _ops.check_label_range(ids, 0, self.n_classes - 1,
                                          f"labels must be one of label_vocabulary {self.label_vocabulary}")
        if labels.dtype.is_string:
            raise InvalidArgumentError("MultiClassHead: string labels need a label_vocabulary")
        if not labels.dtype.is_integer:
            raise InvalidArgumentError(f"MultiClassHead: labels must be integer class ids, got {labels.dtype.name}")
        return _ops.check_label_range(cast(labels, _dt.int64), 0, self.n_classes - 1,
                                      f"MultiClassHead labels (must be class ids in [0, {self.n_classes - 1}])")

    def _unreduced_loss(self, labels, logits):
        loss = sparse_softmax_cross_entropy_with_logits(labels=reshape(labels, [-1]), logits=logits)
        return reshape(loss, [-1, 1])

    def _predictions(self, logits):
        probabilities = softmax(logits)
        class_ids = reshape(argmax(logits, axis=1), [-1, 1])
        names = self.label_vocabulary or [str(i) for i in range(self.n_classes)]
        table = constant(np.array([n.encode() for n in names], dtype=object), dtype=_dt.string)
        all_ids = cast(zeros_like(logits), _dt.int32) + constant(np.arange(self.n_classes, dtype=np.int32))
        return {"logits": logits, "probabilities": probabilities, "class_ids": class_ids,
                "classes": gather(table, class_ids), "all_class_ids": all_ids, "all_classes": gather(table, all_ids)}

    def _export_outputs(self, p):
        cls = ClassificationOutput(scores=p["probabilities"], classes=p["all_classes"])
        return {"serving_default": cls, "classification": cls, "predict": PredictOutput(p)}

    def _metrics(self, labels, logits, p, unreduced, weights):
        return {"accuracy": tf_metrics.accuracy(labels, p["class_ids"], weights, name="accuracy"),
                "average_loss": self._mean(unreduced, weights, "average_loss")}


class RegressionHead(_Head):
    """Squared-error regression of `label_dimension` values per example."""

    def __init__(self, label_dimension=1, weight_column=None, loss_reduction="sum_over_batch_size", name=None):
        super().__init__(weight_column, loss_reduction)
        if label_dimension < 1:
            raise InvalidArgumentError(f"RegressionHead: label_dimension must be >= 1, got {label_dimension}")
        self.logits_dimension = int(label_dimension)
        self.name = name

    def _labels(self, labels):
        labels = convert_to_tensor(labels)
        if not (labels.dtype.is_floating or labels.dtype.is_integer):
            raise InvalidArgumentError(f"RegressionHead: labels must be numeric, got {labels.dtype.name}")
        if labels.shape.ndims is not None and labels.shape.ndims >= 2 and labels.shape[-1] not in \
                (None, self.logits_dimension):
            raise InvalidArgumentError(f"RegressionHead: labels have shape {labels.shape}; expected [batch, "
                                       f"{self.logits_dimension}]")
        return reshape(cast(labels, _dt.float32), [-1, self.logits_dimension])

    def _unreduced_loss(self, labels, logits):
        return squared_difference(logits, labels)

    def _predictions(self, logits):
        return {"predictions": identity(logits)}

    def _export_outputs(self, p):
        out = {"predict": PredictOutput(p)}
        reg = RegressionOutput(p["predictions"])
        out["serving_default"] = reg if self.logits_dimension == 1 else out["predict"]
        out["regression"] = reg
        return out

    def _metrics(self, labels, logits, p, unreduced, weights):
        return {"average_loss": self._mean(unreduced, weights, "average_loss"),
                "label/mean": self._mean(labels, weights, "label_mean"),
                "prediction/mean": self._mean(p["predictions"], weights, "prediction_mean")}


def make_head(n_classes=None, label_dimension=None, weight_column=None, label_vocabulary=None,
              loss_reduction="sum_over_batch_size"):
    """The head a canned classifier (n_classes) or regressor (label_dimension) uses."""
    if label_dimension is not None:
        return RegressionHead(label_dimension, weight_column, loss_reduction)
    if n_classes == 2:
        return BinaryClassHead(weight_column, label_vocabulary=label_vocabulary, loss_reduction=loss_reduction)
    return MultiClassHead(n_classes, weight_column, label_vocabulary, loss_reduction)
