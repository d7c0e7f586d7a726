"""BaselineClassifier / BaselineRegressor: predictions that ignore the features (tf.estimator names).

The model is one bias vector, variable baseline/bias: the classifier learns the class prior (its logits
converge to the log-odds of the label distribution), the regressor the label mean. Useful as the number
a real model has to beat. Default optimizer FTRL with learning rate 0.3, as TF.
"""
from ..engine import dtypes as _dt
from ..engine.initializers import Zeros
from ..engine.ops.array_ops import stack, strided_slice
from ..engine.ops.core import convert_to_tensor, fill, shape
from ..engine.ops.math_ops import add
from ..engine.variables import get_variable, variable_scope
from ..errors import InvalidArgumentError
from . import _canned_util as util
from .estimator import Estimator
from .heads import make_head
from .model_fn import ModeKeys

__all__ = ["BaselineClassifier", "BaselineRegressor"]

_LEARNING_RATE = 0.3


def _batch_size(features):
    items = features.values() if isinstance(features, dict) else [features]
    for t in items:
        t = convert_to_tensor(t)
        if t.shape.ndims:
            return strided_slice(shape(t), (0,))
    raise InvalidArgumentError("Baseline: the features must hold at least one tensor with a batch dimension")


def _baseline_model_fn(features, labels, mode, params, config):
    head = params["head"]
    units = head.logits_dimension
    with variable_scope("baseline"):
        bias = get_variable("bias", shape=[units], dtype=_dt.float32, initializer=Zeros())
        logits = add(fill(stack([_batch_size(features), units]), 0.0), bias)   # [batch, units] copies of the bias
    opt = None
    if mode == ModeKeys.TRAIN:
        opt = util.get_optimizer(params["optimizer"], "Ftrl", _LEARNING_RATE, "Baseline")
    return head.create_estimator_spec(features, mode, logits, labels=labels, optimizer=opt)


class _BaselineBase(Estimator):
    def __init__(self, head, model_dir, optimizer, config):
        self._canned_params = {"head": head, "optimizer": optimizer}
        super().__init__(_baseline_model_fn, model_dir=model_dir, config=config)

    @property
    def params(self):
        return dict(self._canned_params)


class BaselineClassifier(_BaselineBase):
    """Predicts the class distribution of the training labels for every example."""

    def __init__(self, model_dir=None, n_classes=2, weight_column=None, label_vocabulary=None, optimizer="Ftrl",
                 config=None, loss_reduction="sum_over_batch_size"):
        head = make_head(n_classes=n_classes, weight_column=weight_column, label_vocabulary=label_vocabulary,
                         loss_reduction=loss_reduction)
        super().__init__(head, model_dir, optimizer, config)


class BaselineRegressor(_BaselineBase):
    """Predicts the (weighted) mean of the training labels for every example."""

    def __init__(self, model_dir=None, label_dimension=1, weight_column=None, optimizer="Ftrl", config=None,
                 loss_reduction="sum_over_batch_size"):
        head = make_head(label_dimension=label_dimension, weight_column=weight_column, loss_reduction=loss_reduction)
        super().__init__(head, model_dir, optimizer, config)
