"""DNNLinearCombinedClassifier / Regressor ("wide & deep"): logits = linear logits + DNN logits.

Each part has its own optimizer (linear: FTRL, learning rate min(0.005, 1/sqrt(#linear columns)); DNN:
Adagrad 0.001, TF's defaults); one training step computes the gradients once and applies both updates,
then increments the global step once.
"""
from ..engine.autodiff import gradients
from ..engine.graph import GraphKeys, get_default_graph
from ..engine.ops.core import group
from ..engine.variables import variable_scope
from ..errors import InvalidArgumentError
from . import _canned_util as util
from .dnn import _check_dnn_args, _relu, dnn_logit_fn_builder
from .estimator import Estimator
from .heads import make_head
from .linear import linear_logit_fn_builder
from .model_fn import ModeKeys

__all__ = ["DNNLinearCombinedClassifier", "DNNLinearCombinedRegressor"]

_DNN_LEARNING_RATE = 0.001
_LINEAR_LEARNING_RATE = 0.005


def _combined_model_fn(features, labels, mode, params, config):
    head = params["head"]
    lin_cols, dnn_cols = params["linear_feature_columns"], params["dnn_feature_columns"]
    parts, scopes = [], {}
    if dnn_cols:
        with variable_scope("dnn") as scope:
            parts.append(dnn_logit_fn_builder(head.logits_dimension, params["dnn_hidden_units"], dnn_cols,
                                              params["dnn_activation_fn"], params["dnn_dropout"],
                                              params["batch_norm"])(features, mode))
        scopes["dnn"] = scope.name
    if lin_cols:
        with variable_scope("linear") as scope:
            parts.append(linear_logit_fn_builder(head.logits_dimension, lin_cols,
                                                 params["linear_sparse_combiner"])(features))
        scopes["linear"] = scope.name
    logits = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    if mode != ModeKeys.TRAIN:
        return head.create_estimator_spec(features, mode, logits, labels=labels)
    g = get_default_graph()
    trainable = g.get_collection(GraphKeys.TRAINABLE_VARIABLES)
    by_part = {k: [v for v in trainable if v.op.name.startswith(s + "/")] for k, s in scopes.items()}
    optimizers = {}
    if "dnn" in by_part:
        optimizers["dnn"] = util.get_optimizer(params["dnn_optimizer"], "Adagrad", _DNN_LEARNING_RATE, "DNN part")
    if "linear" in by_part:
        optimizers["linear"] = util.get_optimizer(params["linear_optimizer"], "Ftrl",
                                                  util.linear_learning_rate(len(lin_cols), _LINEAR_LEARNING_RATE),
                                                  "linear part")

    def train_op_fn(loss):
        names = [k for k in ("dnn", "linear") if by_part.get(k)]
        var_lists = [by_part[k] for k in names]
        grads = gradients(loss, [v for vs in var_lists for v in vs])
        ops, start = [], 0
        for k, vs in zip(names, var_lists):
            pairs = list(zip(grads[start:start + len(vs)], vs))
            start += len(vs)
            ops.append(optimizers[k].apply_gradients(pairs))
        return group(*ops)

    return head.create_estimator_spec(features, mode, logits, labels=labels, train_op_fn=train_op_fn)


class _CombinedBase(Estimator):
    def __init__(self, head, model_dir, linear_feature_columns, linear_optimizer, dnn_feature_columns, dnn_optimizer,
                 dnn_hidden_units, dnn_activation_fn, dnn_dropout, config, warm_start_from, batch_norm,
                 linear_sparse_combiner, what):
        lin = list(linear_feature_columns or [])
        dnn = list(dnn_feature_columns or [])
        if not lin and not dnn:
            raise InvalidArgumentError(f"{what}: give linear_feature_columns and/or dnn_feature_columns")
        if dnn:
            dnn_hidden_units = _check_dnn_args(dnn_hidden_units, dnn_dropout, what)
            dnn = util.check_feature_columns(dnn, what)
        if lin:
            lin = util.check_feature_columns(lin, what)
        self._canned_params = {
            "head": head, "linear_feature_columns": lin, "linear_optimizer": linear_optimizer,
            "dnn_feature_columns": dnn, "dnn_optimizer": dnn_optimizer, "dnn_hidden_units": dnn_hidden_units,
            "dnn_activation_fn": util.activation_fn(dnn_activation_fn, what) or _relu(), "dnn_dropout": dnn_dropout,
            "batch_norm": bool(batch_norm), "linear_sparse_combiner": linear_sparse_combiner}
        super().__init__(_combined_model_fn, model_dir=model_dir, config=config, warm_start_from=warm_start_from)

    @property
    def params(self):
        return dict(self._canned_params)


class DNNLinearCombinedClassifier(_CombinedBase):
    """Wide & deep classifier: linear_feature_columns feed a linear model, dnn_feature_columns a DNN; their
    logits add up. Other arguments as LinearClassifier / DNNClassifier."""

    def __init__(self, model_dir=None, linear_feature_columns=None, linear_optimizer="Ftrl",
                 dnn_feature_columns=None, dnn_optimizer="Adagrad", dnn_hidden_units=None, dnn_activation_fn=None,
                 dnn_dropout=None, n_classes=2, weight_column=None, label_vocabulary=None, config=None,
                 warm_start_from=None, loss_reduction="sum_over_batch_size", batch_norm=False,
                 linear_sparse_combiner="sum"):
        head = make_head(n_classes=n_classes, weight_column=weight_column, label_vocabulary=label_vocabulary,
                         loss_reduction=loss_reduction)
        super().__init__(head, model_dir, linear_feature_columns, linear_optimizer, dnn_feature_columns, dnn_optimizer,
                         dnn_hidden_units, dnn_activation_fn, dnn_dropout, config, warm_start_from, batch_norm,
                         linear_sparse_combiner, "DNNLinearCombinedClassifier")


class DNNLinearCombinedRegressor(_CombinedBase):
    """Wide & deep regressor (squared error, `label_dimension` values per example)."""

    def __init__(self, model_dir=None, linear_feature_columns=None, linear_optimizer="Ftrl",
                 dnn_feature_columns=None, dnn_optimizer="Adagrad", dnn_hidden_units=None, dnn_activation_fn=None,
                 dnn_dropout=None, label_dimension=1, weight_column=None, config=None, warm_start_from=None,
                 loss_reduction="sum_over_batch_size", batch_norm=False, linear_sparse_combiner="sum"):
        head = make_head(label_dimension=label_dimension, weight_column=weight_column, loss_reduction=loss_reduction)
        super().__init__(head, model_dir, linear_feature_columns, linear_optimizer, dnn_feature_columns, dnn_optimizer,
                         dnn_hidden_units, dnn_activation_fn, dnn_dropout, config, warm_start_from, batch_norm,
                         linear_sparse_combiner, "DNNLinearCombinedRegressor")
