"""LinearClassifier and LinearRegressor: a weighted sum of feature columns (tf.estimator names).

Categorical columns get one weight row per id, gathered rather than multiplied by a one-hot matrix (see
`feature_column.linear_model`). Variables: linear/linear_model/<column>/weights and
linear/linear_model/bias_weights. The default optimizer is FTRL with TF's default learning rate
min(0.2, 1 / sqrt(number of feature columns)).
"""
from ..engine.variables import variable_scope
from ..errors import InvalidArgumentError
from ..feature_column.input_layer import linear_model
from . import _canned_util as util
from .estimator import Estimator
from .heads import make_head
from .model_fn import ModeKeys

__all__ = ["LinearClassifier", "LinearRegressor", "linear_logit_fn_builder"]

_LEARNING_RATE = 0.2


def linear_logit_fn_builder(units, feature_columns, sparse_combiner="sum"):
    """A function (features) -> logits [batch, units]."""
    def linear_logit_fn(features):
        return linear_model(features, feature_columns, units=units, sparse_combiner=sparse_combiner)
    return linear_logit_fn


def _linear_model_fn(features, labels, mode, params, config):
    head, cols = params["head"], params["feature_columns"]
    with variable_scope("linear"):
        logits = linear_logit_fn_builder(head.logits_dimension, cols, params["sparse_combiner"])(features)
    opt = None
    if mode == ModeKeys.TRAIN:
        opt = util.get_optimizer(params["optimizer"], "Ftrl", util.linear_learning_rate(len(cols), _LEARNING_RATE),
                                 "Linear")
    return head.create_estimator_spec(features, mode, logits, labels=labels, optimizer=opt)


class _LinearBase(Estimator):
    def __init__(self, head, feature_columns, model_dir, optimizer, config, warm_start_from, sparse_combiner, what):
        cols = util.check_feature_columns(feature_columns, what)
        if sparse_combiner not in ("sum", "mean", "sqrtn"):
            raise InvalidArgumentError(f"{what}: sparse_combiner must be 'sum', 'mean' or 'sqrtn'")
        self._canned_params = {"head": head, "feature_columns": cols, "optimizer": optimizer,
                               "sparse_combiner": sparse_combiner}
        super().__init__(_linear_model_fn, model_dir=model_dir, config=config, warm_start_from=warm_start_from)

    @property
    def params(self):
        return dict(self._canned_params)


class LinearClassifier(_LinearBase):
    """Logistic (n_classes=2) or softmax regression on feature columns.

    Args:
        feature_columns: any feature columns (categorical ones directly).
        n_classes, weight_column, label_vocabulary, loss_reduction: as DNNClassifier.
        optimizer: name ("Ftrl" default), Optimizer class or instance.
        sparse_combiner: how a row's several ids combine: "sum" (default), "mean", "sqrtn".
    """

    def __init__(self, feature_columns, model_dir=None, n_classes=2, weight_column=None, label_vocabulary=None,
                 optimizer="Ftrl", config=None, warm_start_from=None, loss_reduction="sum_over_batch_size",
                 sparse_combiner="sum"):
        head = make_head(n_classes=n_classes, weight_column=weight_column, label_vocabulary=label_vocabulary,
                         loss_reduction=loss_reduction)
        super().__init__(head, feature_columns, model_dir, optimizer, config, warm_start_from, sparse_combiner,
                         "LinearClassifier")


class LinearRegressor(_LinearBase):
    """Least-squares linear regression on feature columns (`label_dimension` values per example)."""

    def __init__(self, feature_columns, model_dir=None, label_dimension=1, weight_column=None, optimizer="Ftrl",
                 config=None, warm_start_from=None, loss_reduction="sum_over_batch_size", sparse_combiner="sum"):
        head = make_head(label_dimension=label_dimension, weight_column=weight_column, loss_reduction=loss_reduction)
        super().__init__(head, feature_columns, model_dir, optimizer, config, warm_start_from, sparse_combiner,
                         "LinearRegressor")
