"""Exporting an Estimator for serving (tf.estimator.export names).

    def serving_input_receiver_fn():
        x = ke.placeholder(ke.float32, [None, 4], name="x")
        return ks.estimators.export.ServingInputReceiver({"x": x}, {"x": x})

    path = est.export_saved_model("exports", serving_input_receiver_fn)
    ks.saved_model.load(path).signatures["serving_default"](x=batch)

The PREDICT graph is built on the receiver's features, the newest checkpoint's variables are loaded, and
the part of the graph the export outputs need is written with `ks.saved_model.write_saved_model` to a new
folder named by the Unix time under export_dir_base. Each ExportOutput of the EstimatorSpec becomes a
signature (default: one "serving_default" PredictOutput of the predictions) whose inputs are the
receiver_tensors.
"""
import os
import time

from ..engine.graph import Graph, Tensor
from ..engine.ops.core import placeholder
from ..engine.ops.random_ops import set_random_seed
from ..engine.session import Session
from ..engine.variables import global_variables_initializer, local_variables_initializer
from ..errors import InvalidArgumentError, NotFoundError
from . import _state
from ._global_step import get_or_create_global_step
from .export_output import ClassificationOutput, ExportOutput, PredictOutput, RegressionOutput
from .model_fn import ModeKeys

__all__ = ["ServingInputReceiver", "build_raw_serving_input_receiver_fn", "PredictOutput", "ClassificationOutput",
           "RegressionOutput", "ExportOutput", "export_estimator"]


def _as_tensor_dict(value, what, default_key):
    if value is None:
        raise InvalidArgumentError(f"ServingInputReceiver: {what} must not be None")
    if not isinstance(value, dict):
        value = {default_key: value}
    out = {}
    for k, t in value.items():
        conv = getattr(t, "_as_tensor", None)
        t = conv() if conv is not None else t
        if not isinstance(k, str) or not isinstance(t, Tensor):
            raise InvalidArgumentError(f"ServingInputReceiver: {what} must map strings to graph Tensors, got "
                                       f"{k!r}: {type(t).__name__}")
        out[k] = t
    return out


class ServingInputReceiver:
    """What a serving_input_receiver_fn returns.

    Args:
        features: the model_fn's features (dict of tensors, or one tensor).
        receiver_tensors: the placeholders a request feeds (dict, or one tensor named "input").
        receiver_tensors_alternatives: not supported (must be None).
    """

    def __init__(self, features, receiver_tensors, receiver_tensors_alternatives=None):
        if receiver_tensors_alternatives:
            raise InvalidArgumentError("ServingInputReceiver: receiver_tensors_alternatives are not supported")
        self.features = features if not isinstance(features, dict) else _as_tensor_dict(features, "features", "feature")
        if not isinstance(features, dict):
            _as_tensor_dict(features, "features", "feature")
        self.receiver_tensors = _as_tensor_dict(receiver_tensors, "receiver_tensors", "input")
        self.receiver_tensors_alternatives = None


def build_raw_serving_input_receiver_fn(features, default_batch_size=None):
    """A serving_input_receiver_fn with one placeholder per feature, shaped like `features`.

    Args:
        features: dict name -> an example array (its shape after the batch dimension and its dtype are used)
            or a placeholder spec (a Tensor, whose dtype and shape are copied).
        default_batch_size: fixed batch dimension (default None: any).
    """
    import numpy as np
    from ..engine import dtypes as _dt

    specs = {}
    for k, v in features.items():
        if isinstance(v, Tensor):
            specs[k] = (v.dtype, tuple(v.shape)[1:])
        else:
            arr = np.asarray(v)
            dt = _dt.string if arr.dtype.kind in "OUS" else _dt.as_dtype(arr.dtype)
            specs[k] = (dt, arr.shape[1:])

    def serving_input_receiver_fn():
        phs = {k: placeholder(dt, (default_batch_size,) + tuple(shape), name=k) for k, (dt, shape) in specs.items()}
        return ServingInputReceiver(phs, phs)
    return serving_input_receiver_fn


def _signatures(spec, receiver):
    outputs = spec.export_outputs
    if not outputs:
        preds = spec.predictions
        outputs = {"serving_default": PredictOutput(preds)}
    sigs = {}
    for name, out in outputs.items():
        if not isinstance(out, ExportOutput):
            raise InvalidArgumentError(f"export_outputs[{name!r}] must be an ExportOutput, got {type(out).__name__}")
        method = {ClassificationOutput: "classify", RegressionOutput: "regress"}.get(type(out), "predict")
        sigs[name] = {"inputs": dict(receiver.receiver_tensors), "outputs": out.outputs, "method_name": method}
    return sigs


def export_estimator(est, export_dir_base, serving_input_receiver_fn, assets_extra=None, checkpoint_path=None,
                     mode=ModeKeys.PREDICT):
    """See Estimator.export_saved_model."""
    from ..saved_model.writer import write_saved_model
    if mode != ModeKeys.PREDICT:
        raise InvalidArgumentError("export_saved_model: only the PREDICT mode can be exported")
    found = est._load_checkpoint(checkpoint_path)
    if found is None:
        raise NotFoundError(f"export_saved_model: no trained model in {est.model_dir}; train the estimator first")
    g = Graph()
    with g.as_default():
        if est.config.tf_random_seed is not None:
            set_random_seed(est.config.tf_random_seed)
        get_or_create_global_step(g)
        receiver = serving_input_receiver_fn()
        if not isinstance(receiver, ServingInputReceiver):
            raise InvalidArgumentError("serving_input_receiver_fn must return a ServingInputReceiver, got "
                                       f"{type(receiver).__name__}")
        spec = est._call_model_fn(receiver.features, None, ModeKeys.PREDICT)
        sigs = _signatures(spec, receiver)
        sess = Session(graph=g)
        sess.run([global_variables_initializer(), local_variables_initializer()])
    path, tensors, meta = found
    _state.restore(sess, g, tensors, meta, path)
    base = os.fspath(export_dir_base)
    os.makedirs(base, exist_ok=True)
    stamp = int(time.time())
    while os.path.exists(os.path.join(base, str(stamp))):
        stamp += 1
    out = write_saved_model(os.path.join(base, str(stamp)), sess, sigs, assets_extra)
    sess.close()
    return out
