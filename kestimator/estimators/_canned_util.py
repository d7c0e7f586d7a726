"""Pieces the canned estimators share: optimizer arguments, dense and batch-norm layers built from engine ops."""
import math

import numpy as np

from ..engine import dtypes as _dt
from ..engine.graph import GraphKeys, get_default_graph
from ..engine.initializers import GlorotUniform, Ones, Zeros
from ..engine.ops.core import convert_to_tensor
from ..engine.ops.math_ops import add, multiply, subtract
from ..engine.ops.nn_ops import batch_normalization, moments
from ..engine.ops.reduce_ops import matmul
from ..engine.variables import get_variable, variable_scope
from ..errors import InvalidArgumentError

_OPTIMIZER_NAMES = {"adagrad": "Adagrad", "adam": "Adam", "ftrl": "Ftrl", "rmsprop": "RMSprop", "sgd": "SGD",
                    "adamw": "AdamW"}


def get_optimizer(optimizer, default_name, learning_rate, what):
    """An optimizer instance from a name ("Adam"), a class, an instance, a zero-argument callable or None.

    Names and classes get the canned estimator's default learning rate (as TF's canned estimators give
    string optimizers); instances are used as they are.

    Raises:
        InvalidArgumentError: an unknown name or something that is not an optimizer.
    """
    from .. import optimizers as _opt
    if optimizer is None:
        optimizer = default_name
    if isinstance(optimizer, str):
        cls_name = _OPTIMIZER_NAMES.get(optimizer.lower())
        if cls_name is None:
            raise InvalidArgumentError(f"{what}: unknown optimizer {optimizer!r}; known: "
                                       f"{sorted(_OPTIMIZER_NAMES.values())}")
        return getattr(_opt, cls_name)(learning_rate=learning_rate)
    if isinstance(optimizer, type) and issubclass(optimizer, _opt.Optimizer):
        return optimizer(learning_rate=learning_rate)
    if isinstance(optimizer, _opt.Optimizer):
        return optimizer
    if callable(optimizer):
        made = optimizer()
        if isinstance(made, _opt.Optimizer):
            return made
    raise InvalidArgumentError(f"{what}: optimizer must be a name, an Optimizer class or instance, or a callable "
                               f"returning one; got {optimizer!r}")


def linear_learning_rate(num_columns, cap):
    """TF's default for linear models: min(cap, 1 / sqrt(number of feature columns))."""
    return min(cap, 1.0 / math.sqrt(max(num_columns, 1)))


def activation_fn(fn, what):
    if fn is None or callable(fn):
        return fn
    if isinstance(fn, str):
        from ..engine import nn
        found = getattr(nn, fn, None)
        if found is not None:
            return found
    raise InvalidArgumentError(f"{what}: activation_fn must be callable or the name of a ke.nn function, got {fn!r}")


def dense_in_scope(x, units, activation=None):
    """x @ kernel + bias with variables "kernel" (Glorot uniform) and "bias" (zeros) in the current variable
    scope (TF's canned names: dnn/hiddenlayer_0/kernel)."""
    x = convert_to_tensor(x)
    fan_in = x.shape[-1]
    if fan_in is None:
        raise InvalidArgumentError(f"dense layer: the input's last dimension must be known, got {x.shape}")
    kernel = get_variable("kernel", shape=[fan_in, units], dtype=_dt.float32, initializer=GlorotUniform())
    bias = get_variable("bias", shape=[units], dtype=_dt.float32, initializer=Zeros())
    y = add(matmul(x, kernel), bias)
    return activation(y) if activation is not None else y


def batch_norm(x, training, name, momentum=0.999, epsilon=1e-3):
    """Batch normalization over the batch axis (Keras's defaults in TF's DNN: momentum 0.999, epsilon 1e-3).

    In training it normalizes by the batch statistics and adds ops to UPDATE_OPS that move the running
    mean and variance toward them; otherwise it uses the running statistics.
    """
    units = x.shape[-1]
    with variable_scope(name):
        gamma = get_variable("gamma", shape=[units], initializer=Ones())
        beta = get_variable("beta", shape=[units], initializer=Zeros())
        moving_mean = get_variable("moving_mean", shape=[units], initializer=Zeros(), trainable=False)
        moving_var = get_variable("moving_variance", shape=[units], initializer=Ones(), trainable=False)
        if not training:
            return batch_normalization(x, moving_mean._as_tensor(), moving_var._as_tensor(), beta, gamma, epsilon)
        mean, var = moments(x, axes=[0])
        decay = np.float32(1.0 - momentum)
        g = get_default_graph()
        # moving -= (moving - batch_stat) * (1 - momentum)
        g.add_to_collection(GraphKeys.UPDATE_OPS, moving_mean.assign_sub(
            multiply(subtract(moving_mean._as_tensor(), mean), decay)))
        g.add_to_collection(GraphKeys.UPDATE_OPS, moving_var.assign_sub(
            multiply(subtract(moving_var._as_tensor(), var), decay)))
        return batch_normalization(x, mean, var, beta, gamma, epsilon)


def check_feature_columns(feature_columns, what):
    from ..feature_column.columns import FeatureColumn
    if isinstance(feature_columns, FeatureColumn):
        feature_columns = [feature_columns]
    cols = list(feature_columns or [])
    if not cols:
        raise InvalidArgumentError(f"{what}: feature_columns must not be empty")
    for c in cols:
        if not isinstance(c, FeatureColumn):
            raise InvalidArgumentError(f"{what}: {c!r} is not a feature column")
    return cols
