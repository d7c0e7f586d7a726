"""DNNClassifier and DNNRegressor: feed-forward networks over feature columns (tf.estimator names).

Variables, as TF names them: dnn/hiddenlayer_<i>/kernel, .../bias (and .../batchnorm_<i>/gamma, beta,
moving_mean, moving_variance with batch_norm), dnn/logits/kernel, dnn/logits/bias, plus embedding tables
under dnn/input_from_feature_columns/input_layer/<column>/embedding_weights.
"""
from ..engine.ops.random_ops import dropout as _dropout
from ..engine.variables import variable_scope
from ..errors import InvalidArgumentError
from ..feature_column.input_layer import input_layer
from . import _canned_util as util
from .estimator import Estimator
from .heads import make_head
from .model_fn import ModeKeys

__all__ = ["DNNClassifier", "DNNRegressor", "dnn_logit_fn_builder"]

_LEARNING_RATE = 0.05   # TF's DNN default (Adagrad)


def dnn_logit_fn_builder(units, hidden_units, feature_columns, activation_fn, dropout, batch_norm):
    """A function (features, mode) -> logits [batch, units] of the network."""
    def dnn_logit_fn(features, mode):
        training = mode == ModeKeys.TRAIN
        with variable_scope("input_from_feature_columns"):
            net = input_layer(features, feature_columns)
        for i, width in enumerate(hidden_units):
            with variable_scope(f"hiddenlayer_{i}"):
                net = util.dense_in_scope(net, width, activation_fn)
                if dropout is not None and training:
                    net = _dropout(net, rate=dropout)
                if batch_norm:
                    net = util.batch_norm(net, training, f"batchnorm_{i}")
        with variable_scope("logits"):
            logits = util.dense_in_scope(net, units, None)
        return logits
    return dnn_logit_fn


def _check_dnn_args(hidden_units, dropout, what):
    hidden_units = list(hidden_units or [])
    if not hidden_units or any(int(u) < 1 for u in hidden_units):
        raise InvalidArgumentError(f"{what}: hidden_units must be a non-empty list of positive ints, got {hidden_units}")
    if dropout is not None and not 0.0 <= float(dropout) < 1.0:
        raise InvalidArgumentError(f"{what}: dropout must be in [0, 1), got {dropout}")
    return [int(u) for u in hidden_units]


def _dnn_model_fn(features, labels, mode, params, config):
    head, optimizer = params["head"], params["optimizer"]
    with variable_scope("dnn"):
        logits = dnn_logit_fn_builder(head.logits_dimension, params["hidden_units"], params["feature_columns"],
                                      params["activation_fn"], params["dropout"], params["batch_norm"])(features, mode)
    opt = util.get_optimizer(optimizer, "Adagrad", _LEARNING_RATE, "DNN") if mode == ModeKeys.TRAIN else None
    return head.create_estimator_spec(features, mode, logits, labels=labels, optimizer=opt)


class _DNNBase(Estimator):
    def __init__(self, head, hidden_units, feature_columns, model_dir, optimizer, activation_fn, dropout, config,
                 warm_start_from, batch_norm, what):
        hidden_units = _check_dnn_args(hidden_units, dropout, what)
        cols = util.check_feature_columns(feature_columns, what)
        params = {"head": head, "hidden_units": hidden_units, "feature_columns": cols, "optimizer": optimizer,
                  "activation_fn": util.activation_fn(activation_fn, what), "dropout": dropout,
                  "batch_norm": bool(batch_norm)}
        self._canned_params = params
        super().__init__(_dnn_model_fn, model_dir=model_dir, config=config, warm_start_from=warm_start_from)

    @property
    def params(self):
        return dict(self._canned_params)


def _relu():
    from ..engine.nn import relu
    return relu


class DNNClassifier(_DNNBase):
    """A classifier on a feed-forward network.

    Args:
        hidden_units: widths of the hidden layers, e.g. [64, 32].
        feature_columns: dense feature columns (categorical ones wrapped in indicator / embedding columns).
        model_dir, config, warm_start_from: as Estimator.
        n_classes: number of classes (2: logistic head; more: softmax head).
        weight_column: key (or numeric_column) of per-example weights.
        label_vocabulary: label strings (labels are then strings).
        optimizer: name ("Adagrad" default, learning rate 0.05), Optimizer class or instance.
        activation_fn: hidden-layer activation (default relu).
        dropout: probability of dropping a hidden unit in training.
        batch_norm: batch normalization after each hidden layer.
        loss_reduction: "sum_over_batch_size" (default) or "sum".
    """

    def __init__(self, hidden_units, feature_columns, model_dir=None, n_classes=2, weight_column=None,
                 label_vocabulary=None, optimizer="Adagrad", activation_fn=None, dropout=None, config=None,
                 warm_start_from=None, loss_reduction="sum_over_batch_size", batch_norm=False):
        head = make_head(n_classes=n_classes, weight_column=weight_column, label_vocabulary=label_vocabulary,
                         loss_reduction=loss_reduction)
        super().__init__(head, hidden_units, feature_columns, model_dir, optimizer, activation_fn or _relu(),
                         dropout, config, warm_start_from, batch_norm, "DNNClassifier")


class DNNRegressor(_DNNBase):
    """A regressor on a feed-forward network (squared-error loss); arguments as DNNClassifier, with
    `label_dimension` (values per example) instead of n_classes / label_vocabulary."""

    def __init__(self, hidden_units, feature_columns, model_dir=None, label_dimension=1, weight_column=None,
                 optimizer="Adagrad", activation_fn=None, dropout=None, config=None, warm_start_from=None,
                 loss_reduction="sum_over_batch_size", batch_norm=False):
        head = make_head(label_dimension=label_dimension, weight_column=weight_column, loss_reduction=loss_reduction)
        super().__init__(head, hidden_units, feature_columns, model_dir, optimizer, activation_fn or _relu(),
                         dropout, config, warm_start_from, batch_norm, "DNNRegressor")
