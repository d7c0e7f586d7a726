"""Keras weight constraints: projections the optimizer applies to a weight after each update.

Each constraint is a callable on a NumPy array returning the projected array (the engine's optimizer
calls `variable.constraint(array)`).
"""
import numpy as np

from .utils.keras_objects import ObjectCatalogue

_EPSILON = 1e-7    # Keras's backend.epsilon(): keeps the division finite for an all-zero column


def _np(w):
    return np.asarray(getattr(w, "numpy", lambda: w)())


def _norms(w, axis):
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class Constraint:
    """Base class: `constraint(array) -> array`."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class MaxNorm(Constraint):
    """Scale each slice along `axis` whose L2 norm exceeds `max_value` back to `max_value`."""

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        w = _np(w)
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (_EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Set negative entries to zero."""

    def __call__(self, w):
        w = _np(w)
        return (w * (w >= 0)).astype(w.dtype, copy=False)


class UnitNorm(Constraint):
    """Scale each slice along `axis` to unit L2 norm."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        w = _np(w)
        return (w / (_EPSILON + _norms(w, self.axis))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move each slice's norm towards [min_value, max_value] at `rate` (1.0 = clip exactly)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        w = _np(w)
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return (w * (desired / (_EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

_CATALOGUE = ObjectCatalogue(
    "constraint", "keras.constraints", Constraint,
    {"MaxNorm": MaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm,
     "max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm})
_CLASSES = _CATALOGUE.classes

# serialize(constraint) -> JSON form; deserialize(config, custom_objects=None) -> constraint, raising
# UnsafeFileError for a name neither here nor in custom_objects; get(identifier) -> constraint or callable.
serialize = _CATALOGUE.serialize
deserialize = _CATALOGUE.deserialize
get = _CATALOGUE.get
