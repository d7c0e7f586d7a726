"""ModeKeys and EstimatorSpec: what a model_fn receives and what it returns (tf.estimator names)."""
import collections

from ..engine.graph import Operation, Tensor
from ..errors import InvalidArgumentError

__all__ = ["ModeKeys", "EstimatorSpec"]


class ModeKeys:
    """The three modes a model_fn is called in."""
    TRAIN = "train"
    EVAL = "eval"
    PREDICT = "infer"

    @classmethod
    def all(cls):
        return (cls.TRAIN, cls.EVAL, cls.PREDICT)


def _as_tensor_or_none(value, what):
    if value is None:
        return None
    conv = getattr(value, "_as_tensor", None)
    if conv is not None:
        value = conv()
    if not isinstance(value, (Tensor, Operation)):
        raise InvalidArgumentError(f"EstimatorSpec: {what} must be a graph Tensor or Operation, got "
                                   f"{type(value).__name__}")
    return value


def _check_predictions(predictions):
    if predictions is None:
        return None
    if isinstance(predictions, dict):
        out = {}
        for k, v in predictions.items():
            if not isinstance(k, str):
                raise InvalidArgumentError(f"EstimatorSpec: prediction keys must be strings, got {k!r}")
            t = _as_tensor_or_none(v, f"predictions[{k!r}]")
            if not isinstance(t, Tensor):
                raise InvalidArgumentError(f"EstimatorSpec: predictions[{k!r}] must be a Tensor")
            out[k] = t
        return out
    t = _as_tensor_or_none(predictions, "predictions")
    if not isinstance(t, Tensor):
        raise InvalidArgumentError("EstimatorSpec: predictions must be a Tensor or a dict of Tensors")
    return t


def _check_metric_ops(eval_metric_ops):
    out = {}
    for name, m in (eval_metric_ops or {}).items():
        if not isinstance(name, str):
            raise InvalidArgumentError(f"EstimatorSpec: eval_metric_ops keys must be strings, got {name!r}")
        if hasattr(m, "result") and hasattr(m, "update_state"):
            raise InvalidArgumentError(f"EstimatorSpec: eval_metric_ops[{name!r}] is a Keras metric object; give "
                                       "its (value, update_op) pair instead: metric.as_tf1(labels, predictions)")
        if not isinstance(m, (tuple, list)) or len(m) != 2:
            raise InvalidArgumentError(f"EstimatorSpec: eval_metric_ops[{name!r}] must be a (value, update_op) "
                                       f"pair, got {type(m).__name__}")
        value = _as_tensor_or_none(m[0], f"eval_metric_ops[{name!r}] value")
        update = _as_tensor_or_none(m[1], f"eval_metric_ops[{name!r}] update_op")
        if not isinstance(value, Tensor):
            raise InvalidArgumentError(f"EstimatorSpec: eval_metric_ops[{name!r}] value must be a Tensor")
        out[name] = (value, update)
    return out


class EstimatorSpec(collections.namedtuple("EstimatorSpec", [
        "mode", "predictions", "loss", "train_op", "eval_metric_ops", "export_outputs", "training_chief_hooks",
        "training_hooks", "scaffold", "evaluation_hooks", "prediction_hooks"])):
    """The ops and objects a model_fn returns, checked for the mode.

    Args:
        mode: a ModeKeys value.
        predictions: a Tensor or dict of Tensors (required in PREDICT).
        loss: scalar float Tensor (required in TRAIN and EVAL).
        train_op: the op that runs one training step (required in TRAIN).
        eval_metric_ops: dict name -> (value_tensor, update_op) as returned by ks.metrics.* functions.
        export_outputs: dict name -> ExportOutput (PredictOutput, ClassificationOutput, RegressionOutput)
            used by export_saved_model; default: one PredictOutput of `predictions`.
        training_hooks / evaluation_hooks / prediction_hooks / training_chief_hooks: SessionRunHooks.
        scaffold: accepted for compatibility; ignored.

    Raises:
        InvalidArgumentError: a required field is missing for `mode`, or a field has the wrong type.
    """

    def __new__(cls, mode, predictions=None, loss=None, train_op=None, eval_metric_ops=None,
                export_outputs=None, training_chief_hooks=None, training_hooks=None, scaffold=None,
                evaluation_hooks=None, prediction_hooks=None):
        if mode not in ModeKeys.all():
            raise InvalidArgumentError(f"EstimatorSpec: mode must be one of {ModeKeys.all()}, got {mode!r}")
        predictions = _check_predictions(predictions)
        loss = _as_tensor_or_none(loss, "loss")
        if loss is not None:
            if not isinstance(loss, Tensor):
                raise InvalidArgumentError("EstimatorSpec: loss must be a Tensor")
            nd = loss.shape.ndims
            if nd is not None and not (nd == 0 or (nd == 1 and loss.shape[0] in (1, None))):
                raise InvalidArgumentError(f"EstimatorSpec: loss must be a scalar, got shape {loss.shape}")
        train_op = _as_tensor_or_none(train_op, "train_op")
        if mode == ModeKeys.TRAIN:
            if loss is None:
                raise InvalidArgumentError("EstimatorSpec: loss is required in TRAIN mode")
            if train_op is None:
                raise InvalidArgumentError("EstimatorSpec: train_op is required in TRAIN mode")
        if mode == ModeKeys.EVAL and loss is None:
            raise InvalidArgumentError("EstimatorSpec: loss is required in EVAL mode")
        if mode == ModeKeys.PREDICT and predictions is None:
            raise InvalidArgumentError("EstimatorSpec: predictions are required in PREDICT mode")
        eval_metric_ops = _check_metric_ops(eval_metric_ops)
        if export_outputs is not None and not isinstance(export_outputs, dict):
            raise InvalidArgumentError("EstimatorSpec: export_outputs must be a dict name -> ExportOutput")
        hooks = {}
        for key, value in (("training_chief_hooks", training_chief_hooks), ("training_hooks", training_hooks),
                           ("evaluation_hooks", evaluation_hooks), ("prediction_hooks", prediction_hooks)):
            value = tuple(value or ())
            for h in value:
                if not hasattr(h, "before_run"):
                    raise InvalidArgumentError(f"EstimatorSpec: {key} must hold SessionRunHooks, got {h!r}")
            hooks[key] = value
        return super().__new__(cls, mode, predictions, loss, train_op, eval_metric_ops, export_outputs,
                               hooks["training_chief_hooks"], hooks["training_hooks"], scaffold,
                               hooks["evaluation_hooks"], hooks["prediction_hooks"])
