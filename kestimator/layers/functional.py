"""TF1-style functional layers for estimator model_fns: ``ks.layers.dense(net, 64, activation=ke.nn.relu)``.

They create plain graph variables with `get_variable` under a variable scope named after the layer
("dense", "dense_1", ...), so estimator checkpoints hold "dense/kernel", "dense_1/bias", ...
"""
from ..engine import variables as _v
from ..engine.graph import get_default_graph
from ..engine.ops import math_ops as _m
from ..engine.ops import reduce_ops as _r
from ..engine.ops import array_ops as _a
from ..engine.ops.core import convert_to_tensor
from ..engine.ops.random_ops import dropout as _dropout
from ..errors import InvalidArgumentError
from . import _serialize as S


def dense(inputs, units, activation=None, use_bias=True, kernel_initializer=None, bias_initializer=None,
          kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
          bias_constraint=None, trainable=True, name=None, reuse=None):
    """``activation(inputs @ kernel + bias)`` with graph variables `<scope>/kernel` and `<scope>/bias`.

    Args:
        inputs: a tensor of rank >= 2 with a known last dimension.
        units: output size.
        activation: a function (e.g. ke.nn.relu), a name, or None.
        kernel_initializer: default glorot_uniform; bias_initializer: default zeros.
        name: the variable scope (default a unique "dense", "dense_1", ...).
        reuse: reuse the variables of an existing scope of the same name.

    Returns:
        The output tensor.

    Raises:
        InvalidArgumentError: the last dimension of `inputs` is unknown.
    """
    x = convert_to_tensor(inputs)
    if x.shape.ndims is None or x.shape[-1] is None:
        raise InvalidArgumentError(f"dense(): the last dimension of the inputs must be known, got {x.shape}")
    g = get_default_graph()
    scope_name = name if name is not None else None
    with _v.variable_scope(scope_name, default_name="dense", reuse=reuse):
        kernel = _v.get_variable("kernel", shape=[x.shape[-1], int(units)], dtype=x.dtype,
                                 initializer=S.get_initializer(kernel_initializer or "glorot_uniform"),
                                 regularizer=S.get_regularizer(kernel_regularizer),
                                 constraint=S.get_constraint(kernel_constraint), trainable=trainable)
        if x.shape.ndims == 2:
            y = _r.matmul(x, kernel)
        else:
            y = _r.tensordot(x, kernel, [[x.shape.ndims - 1], [0]])
        if use_bias:
            bias = _v.get_variable("bias", shape=[int(units)], dtype=x.dtype,
                                   initializer=S.get_initializer(bias_initializer or "zeros"),
                                   regularizer=S.get_regularizer(bias_regularizer),
                                   constraint=S.get_constraint(bias_constraint), trainable=trainable)
            y = _m.add(y, bias)
        if activation is not None:
            y = S.get_activation(activation)(y)
        if activity_regularizer is not None:
            reg = S.get_regularizer(activity_regularizer)(y)
            g.add_to_collection("regularization_losses", reg)
    return y


def dropout(inputs, rate=0.5, noise_shape=None, seed=None, training=False, name=None):
    """Dropout when `training` is True (a Python bool), the identity otherwise."""
    if not training:
        return convert_to_tensor(inputs)
    return _dropout(inputs, rate=rate, seed=seed, name=name)


def flatten(inputs, name=None):
    """(batch, ...) -> (batch, product of the other dimensions)."""
    x = convert_to_tensor(inputs)
    rest = x.shape[1:]
    if any(d is None for d in rest):
        raise InvalidArgumentError(f"flatten(): non-batch dimensions must be known, got {x.shape}")
    n = 1
    for d in rest:
        n *= d
    return _a.reshape(x, [-1, n], name=name)
