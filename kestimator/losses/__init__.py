"""Losses: Keras classes and functions (`ks.losses.SparseCategoricalCrossentropy`, "mse") and the
TF1-style graph functions estimators' model_fns use (`ks.losses.sparse_softmax_cross_entropy`)."""
from .keras_losses import *  # noqa: F401,F403
from .tf_losses import *  # noqa: F401,F403
