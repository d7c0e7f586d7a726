"""Keras weight regularizers: `L1`, `L2`, `L1L2` (and `l1`, `l2`, `l1_l2`), callables on engine tensors
returning a scalar loss."""
import numpy as np

from .engine.ops import math_ops as _m
from .engine.ops import reduce_ops as _r
from .engine.ops.core import convert_to_tensor
from .errors import InvalidArgumentError, UnsafeFileError


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


_CLASSES = {"L1L2": L1L2, "L1": L1, "L2": L2, "l1": L1, "l2": L2, "l1_l2": L1L2}


def serialize(regularizer):
    if regularizer is None:
        return None
    if not isinstance(regularizer, Regularizer):
        name = getattr(regularizer, "__name__", None)
        if name is None:
            raise InvalidArgumentError(f"cannot serialize regularizer {regularizer!r}")
        return name
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    """A regularizer from Keras's JSON form; class names only from this module or `custom_objects`.

    Raises:
        UnsafeFileError: an unknown class name.
    """
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        if config in custom_objects:
            obj = custom_objects[config]
            return obj() if isinstance(obj, type) else obj
        if config in ("l1", "l2", "l1_l2"):
            return {"l1": l1, "l2": l2, "l1_l2": l1_l2}[config]()
        raise UnsafeFileError(f"unknown regularizer {config!r}: not a kestimator regularizer and not in "
                              "custom_objects")
    if not isinstance(config, dict) or "class_name" not in config:
        raise InvalidArgumentError(f"a regularizer config must be a name or a {{class_name, config}} dict, got "
                                   f"{config!r}")
    name = config["class_name"]
    cls = custom_objects.get(name) or _CLASSES.get(name)
    if cls is None:
        raise UnsafeFileError(f"unknown regularizer class {name!r}: not a kestimator regularizer and not in "
                              "custom_objects")
    args = dict(config.get("config") or {})
    return cls.from_config(args) if hasattr(cls, "from_config") else cls(**args)


def get(identifier):
    """A regularizer from None, a name ("l2"), a config dict, an instance or a callable.

    Raises:
        InvalidArgumentError: the identifier names no regularizer.
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, (str, dict)):
        try:
            return deserialize(identifier)
        except UnsafeFileError as e:
            raise InvalidArgumentError(str(e)) from None
    if callable(identifier):
        return identifier
    raise InvalidArgumentError(f"cannot interpret {identifier!r} as a regularizer")
