"""BatchNormalization and LayerNormalization."""
from ..engine import eager as _eager
from ..engine.ops import array_ops as _a
from ..engine.ops import math_ops as _m
from ..engine.ops import nn_ops as _nn
from ..errors import InvalidArgumentError
from . import _serialize as S
from .base import InputSpec, Layer


def _normalize_axes(axis, rank, layer):
    axes = [axis] if isinstance(axis, int) else list(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -rank <= a < rank:
            raise InvalidArgumentError(f"layer {layer.name!r}: axis {a} is out of range for inputs of rank {rank}")
        out.append(a % rank)
    return sorted(set(out))


def _param_shape(input_shape, axes, layer):
    shape = []
    for a in axes:
        if input_shape[a] is None:
            raise InvalidArgumentError(f"layer {layer.name!r}: axis {a} of the inputs must have a known size, got "
                                       f"{tuple(input_shape)}")
        shape.append(input_shape[a])
    return tuple(shape)


def _broadcast(param, axes, rank):
    """Reshape a parameter of shape input_shape[axes] to broadcast against the inputs."""
    if axes == list(range(rank - len(axes), rank)):
        return param                       # trailing axes: NumPy broadcasting already lines up
    shape = [1] * rank
    for a, d in zip(axes, param.shape):
        shape[a] = d
    return _a.reshape(param, shape)


class _Affine(Layer):
    """What BatchNormalization and LayerNormalization share: the optional scale gamma and offset beta, with
    their initializers, regularizers and constraints, as weights and as config."""

    def _init_affine(self, axis, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                     gamma_regularizer, beta_constraint, gamma_constraint):
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = S.get_initializer(beta_initializer)
        self.gamma_initializer = S.get_initializer(gamma_initializer)
        self.beta_regularizer = S.get_regularizer(beta_regularizer)
        self.gamma_regularizer = S.get_regularizer(gamma_regularizer)
        self.beta_constraint = S.get_constraint(beta_constraint)
        self.gamma_constraint = S.get_constraint(gamma_constraint)
        self.supports_masking = True

    def _add_affine_weights(self, shape):
        self.gamma = self.add_weight("gamma", shape, initializer=self.gamma_initializer,
                                     regularizer=self.gamma_regularizer, constraint=self.gamma_constraint) \
            if self.scale else None
        self.beta = self.add_weight("beta", shape, initializer=self.beta_initializer,
                                    regularizer=self.beta_regularizer, constraint=self.beta_constraint) \
            if self.center else None

    def _affine_config(self):
        return {"axis": self.axis, "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": S.serialize_initializer(self.beta_initializer),
                "gamma_initializer": S.serialize_initializer(self.gamma_initializer),
                "beta_regularizer": S.serialize_regularizer(self.beta_regularizer),
                "gamma_regularizer": S.serialize_regularizer(self.gamma_regularizer),
                "beta_constraint": S.serialize_constraint(self.beta_constraint),
                "gamma_constraint": S.serialize_constraint(self.gamma_constraint)}


class BatchNormalization(_Affine):
    """Normalize with the batch's statistics while training and with moving averages at inference.

    y = gamma * (x - mean) / sqrt(var + epsilon) + beta. In training, the moving statistics are updated
    as moving = moving * momentum + batch * (1 - momentum) by ops that `graph_updates()` returns (run
    them with the train step). A frozen layer (trainable=False) always runs in inference mode, as in TF2.
    The moving variance is updated with the biased batch variance (Keras 3; tf.keras's fused 4-D kernel
    uses the unbiased one).

    Args:
        axis: the feature axis (or axes) kept; default -1.
        momentum, epsilon, center, scale: as in Keras.
        *_initializer / *_regularizer / *_constraint: for beta, gamma and the moving statistics.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, **kwargs):
        for legacy in ("renorm", "renorm_clipping", "renorm_momentum", "fused", "virtual_batch_size",
                       "adjustment", "synchronized"):
            value = kwargs.pop(legacy, None)
            if value and legacy in ("renorm", "virtual_batch_size", "adjustment", "synchronized"):
                raise InvalidArgumentError(f"BatchNormalization: {legacy} is not supported")
        super().__init__(**kwargs)
        self._init_affine(axis, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                          gamma_regularizer, beta_constraint, gamma_constraint)
        self.momentum = float(momentum)
        self.moving_mean_initializer = S.get_initializer(moving_mean_initializer)
        self.moving_variance_initializer = S.get_initializer(moving_variance_initializer)

    def build(self, input_shape):
        rank = input_shape.ndims
        if rank is None:
            raise InvalidArgumentError(f"BatchNormalization {self.name!r} needs inputs of known rank")
        self.axis = _normalize_axes(self.axis, rank, self)
        shape = _param_shape(input_shape, self.axis, self)
        self.input_spec = InputSpec(ndim=rank, axes={a: input_shape[a] for a in self.axis})
        self._add_affine_weights(shape)
        self.moving_mean = self.add_weight("moving_mean", shape, initializer=self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape,
                                               initializer=self.moving_variance_initializer, trainable=False)

    def call(self, inputs, training=None):
        rank = inputs.shape.ndims
        training = bool(training) and self.trainable
        reduce_axes = [i for i in range(rank) if i not in self.axis]

        def bc(p):
            return None if p is None else _broadcast(p, self.axis, rank)
        if training:
            mean, var = _nn.moments(inputs, reduce_axes)
            self._update_moving(mean, var)
        else:
            mean, var = self.moving_mean, self.moving_variance
        return _nn.batch_normalization(inputs, bc(mean), bc(var), bc(self.beta), bc(self.gamma), self.epsilon)

    def _update_moving(self, mean, var):
        decay = 1.0 - self.momentum
        if _eager.executing_eagerly():
            for w, batch in ((self.moving_mean, mean), (self.moving_variance, var)):
                w.assign(w.numpy() * self.momentum + batch.numpy() * decay)
            return
        for w, batch in ((self.moving_mean, mean), (self.moving_variance, var)):
            v = w.variable()
            new = _m.add(_m.multiply(v._as_tensor(), self.momentum), _m.multiply(batch, decay))
            self.add_update(v.assign(new))

    def get_config(self):
        config = super().get_config()
        config.update(self._affine_config())
        config.update({
            "momentum": self.momentum,
            "moving_mean_initializer": S.serialize_initializer(self.moving_mean_initializer),
            "moving_variance_initializer": S.serialize_initializer(self.moving_variance_initializer)})
        return config


class LayerNormalization(_Affine):
    """Normalize each example over `axis` (default the last): gamma * (x - mean) / sqrt(var + eps) + beta."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self._init_affine(axis, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                          gamma_regularizer, beta_constraint, gamma_constraint)

    def build(self, input_shape):
        rank = input_shape.ndims
        if rank is None:
            raise InvalidArgumentError(f"LayerNormalization {self.name!r} needs inputs of known rank")
        self.axis = _normalize_axes(self.axis, rank, self)
        shape = _param_shape(input_shape, self.axis, self)
        self._add_affine_weights(shape)

    def call(self, inputs):
        rank = inputs.shape.ndims
        mean, var = _nn.moments(inputs, self.axis, keepdims=True)

        def bc(p):
            return None if p is None else _broadcast(p, self.axis, rank)
        return _nn.batch_normalization(inputs, mean, var, bc(self.beta), bc(self.gamma), self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(self._affine_config())
        return config
