"""Keras weight regularizers: `L1`, `L2`, `L1L2` (and `l1`, `l2`, `l1_l2`), callables on engine tensors
returning a scalar loss."""
import numpy as np

from .engine.ops import math_ops as _m
from .engine.ops import reduce_ops as _r
from .engine.ops.core import convert_to_tensor
from .utils.keras_objects import ObjectCatalogue


def _f32(v):
    # Keras stores the factor as a float32 (its configs then read 0.009999999776482582 for 0.01)
    return float(np.float32(v))


class Regularizer:
    """Base class: `reg(weight_tensor) -> scalar tensor`."""

    def __call__(self, x):
        return None

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    """l1 * sum(|x|) + l2 * sum(x^2)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _f32(l1), _f32(l2)

    def __call__(self, x):
        x = convert_to_tensor(x)
        loss = None
        if self.l1:
            loss = _m.multiply(_r.reduce_sum(_m.abs(x)), self.l1)
        if self.l2:
            term = _m.multiply(_r.reduce_sum(_m.square(x)), self.l2)
            loss = term if loss is None else _m.add(loss, term)
        if loss is None:
            loss = _m.multiply(_r.reduce_sum(x), 0.0)
        return loss

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum(|x|)."""

    def __init__(self, l1=0.01, **kwargs):
        l1 = kwargs.pop("l", l1)
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(x^2)."""

    def __init__(self, l2=0.01, **kwargs):
        l2 = kwargs.pop("l", l2)
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1(l=0.01):  # noqa: E741 - Keras's argument name
    return L1(l1=l)


def l2(l=0.01):  # noqa: E741
    return L2(l2=l)


def l1_l2(l1=0.01, l2=0.01):
    return L1L2(l1=l1, l2=l2)


_CATALOGUE = ObjectCatalogue("regularizer", "keras.regularizers", Regularizer,
                             {"L1L2": L1L2, "L1": L1, "L2": L2, "l1": L1, "l2": L2, "l1_l2": L1L2},
                             names={"l1": l1, "l2": l2, "l1_l2": l1_l2})
_CLASSES = _CATALOGUE.classes

# serialize(regularizer) -> JSON form; deserialize(config, custom_objects=None) -> regularizer, raising
# UnsafeFileError for a name neither here nor in custom_objects; get(identifier) -> regularizer or callable.
serialize = _CATALOGUE.serialize
deserialize = _CATALOGUE.deserialize
get = _CATALOGUE.get
