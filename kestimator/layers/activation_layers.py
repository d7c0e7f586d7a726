"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax."""
import numpy as np

from ..engine.ops import math_ops as _m
from ..engine.ops import nn_ops as _nn
from ..errors import InvalidArgumentError
from .. import activations as _act
from . import _serialize as S
from .base import Layer


def _f32(v):
    return float(np.float32(v))


class ReLU(Layer):
    """max(x, 0) with an optional cap `max_value`, slope `negative_slope` below `threshold`."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise InvalidArgumentError(f"ReLU {self.name!r}: max_value must be >= 0, got {max_value}")
        self.max_value = None if max_value is None else _f32(max_value)
        self.negative_slope = _f32(negative_slope)
        self.threshold = _f32(threshold)

    def call(self, inputs):
        return _act.relu(inputs, alpha=self.negative_slope, max_value=self.max_value, threshold=self.threshold)

    def get_config(self):
        config = super().get_config()
        config.update({"max_value": self.max_value, "negative_slope": self.negative_slope,
                       "threshold": self.threshold})
        return config


class LeakyReLU(Layer):
    """x for x > 0, alpha * x otherwise (default alpha 0.3, as tf.keras 2)."""

    def __init__(self, alpha=0.3, **kwargs):
        alpha = kwargs.pop("negative_slope", alpha)
        super().__init__(**kwargs)
        self.alpha = _f32(alpha)

    def call(self, inputs):
        return _m.leaky_relu(inputs, self.alpha)

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


class ELU(Layer):
    """x for x > 0, alpha (exp(x) - 1) otherwise."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _f32(alpha)

    def call(self, inputs):
        return _act.elu(inputs, self.alpha)

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


class Softmax(Layer):
    """softmax along `axis`."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        return _nn.softmax(inputs, axis=self.axis)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


class PReLU(Layer):
    """x for x > 0, alpha * x otherwise, with a learned `alpha` per unit (shared along `shared_axes`)."""

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = S.get_initializer(alpha_initializer)
        self.alpha_regularizer = S.get_regularizer(alpha_regularizer)
        self.alpha_constraint = S.get_constraint(alpha_constraint)
        if shared_axes is not None and not isinstance(shared_axes, (list, tuple)):
            shared_axes = [shared_axes]
        self.shared_axes = None if shared_axes is None else [int(a) for a in shared_axes]

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for ax in self.shared_axes or []:
            shape[ax - 1] = 1
        self.alpha = self.add_weight("alpha", tuple(shape), initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint)

    def call(self, inputs):
        # relu(x) - alpha * relu(-x)
        return _m.subtract(_m.relu(inputs), _m.multiply(self.alpha, _m.relu(_m.negative(inputs))))

    def get_config(self):
        config = super().get_config()
        config.update({"alpha_initializer": S.serialize_initializer(self.alpha_initializer),
                       "alpha_regularizer": S.serialize_regularizer(self.alpha_regularizer),
                       "alpha_constraint": S.serialize_constraint(self.alpha_constraint),
                       "shared_axes": self.shared_axes})
        return config
