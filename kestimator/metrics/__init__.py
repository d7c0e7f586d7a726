"""Metrics: stateful Keras metric classes (`ks.metrics.AUC`) and the TF1-style `(value, update_op)`
functions estimators' model_fns use (`ks.metrics.accuracy(labels, predictions)`)."""
from .keras_metrics import *  # noqa: F401,F403
from .tf_metrics import *  # noqa: F401,F403
