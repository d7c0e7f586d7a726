"""``ks.estimators``: tf.estimator on kestimator's graph engine.

    est = ks.estimators.DNNClassifier(feature_columns=cols, hidden_units=[64, 32], n_classes=3)
    est.train(ks.estimators.inputs.numpy_input_fn(x, y, shuffle=True, num_epochs=None), steps=1000)
    est.evaluate(eval_input_fn)          # {"accuracy": ..., "average_loss": ..., "loss": ..., "global_step": ...}

Modules: `estimator` (Estimator), `model_fn` (EstimatorSpec, ModeKeys), `run_config`, `hooks`,
`checkpoint_manager` (checkpoints and their index), `inputs` (numpy_input_fn), `heads` and the canned
estimators (`dnn`, `linear`, `dnn_linear_combined`, `baseline`), `export` (export_saved_model),
`keras_conversion` (model_to_estimator).
"""
import importlib

from . import inputs  # noqa: F401
from .checkpoint_manager import latest_checkpoint, list_checkpoints  # noqa: F401
from .estimator import Estimator, VocabInfo, WarmStartSettings  # noqa: F401
from .hooks import (CheckpointSaverListener, FeedFnHook, FinalOpsHook, LoggingTensorHook,  # noqa: F401
                    NanLossDuringTrainingError, NanTensorHook, SessionRunArgs, SessionRunContext, SessionRunHook,
                    SessionRunValues, StepCounterHook, StopAtStepHook)
from .model_fn import EstimatorSpec, ModeKeys  # noqa: F401
from .run_config import RunConfig  # noqa: F401

# Canned estimators, heads and export load on first use (they pull in feature columns).
_LAZY = {
    "DNNClassifier": ".dnn", "DNNRegressor": ".dnn", "dnn_logit_fn_builder": ".dnn",
    "LinearClassifier": ".linear", "LinearRegressor": ".linear", "linear_logit_fn_builder": ".linear",
    "DNNLinearCombinedClassifier": ".dnn_linear_combined", "DNNLinearCombinedRegressor": ".dnn_linear_combined",
    "BaselineClassifier": ".baseline", "BaselineRegressor": ".baseline",
    "BinaryClassHead": ".heads", "MultiClassHead": ".heads", "RegressionHead": ".heads",
    "export": ".export", "ServingInputReceiver": ".export", "build_raw_serving_input_receiver_fn": ".export",
    "PredictOutput": ".export", "ClassificationOutput": ".export", "RegressionOutput": ".export",
    "heads": ".heads", "model_to_estimator": ".keras_conversion",
    "BoostedTreesClassifier": ".canned_boosted_trees", "BoostedTreesRegressor": ".canned_boosted_trees",
    "TrainSpec": ".training_spec", "EvalSpec": ".training_spec", "train_and_evaluate": ".training_spec",
}

__all__ = ["Estimator", "EstimatorSpec", "ModeKeys", "RunConfig", "WarmStartSettings", "inputs",
           "list_checkpoints", "latest_checkpoint", "SessionRunHook", "SessionRunArgs", "SessionRunContext",
           "SessionRunValues", "StopAtStepHook", "LoggingTensorHook", "NanTensorHook", "StepCounterHook",
           "FinalOpsHook", "FeedFnHook", "CheckpointSaverListener", "NanLossDuringTrainingError"] + sorted(_LAZY)


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'kestimator.estimators' has no attribute {name!r}")
    module = importlib.import_module(target, __name__)
    value = module if name in ("export", "heads") else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
