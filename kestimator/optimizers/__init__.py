"""Optimizers shared by low-level graphs (`minimize`), Keras models and estimators."""
from ..errors import InvalidArgumentError
from . import schedules  # noqa: F401
from .base import Optimizer  # noqa: F401
from .optimizers import SGD, Adagrad, Adam, AdamW, Ftrl, RMSprop  # noqa: F401

_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad, "rmsprop": RMSprop, "ftrl": Ftrl}


def get(identifier):
    """An optimizer from a name ("adam"), a config dict, or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise InvalidArgumentError(f"unknown optimizer {identifier!r}; known: {sorted(_BY_NAME)}")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_NAME.get(identifier["class_name"].lower())
        if cls is None:
            raise InvalidArgumentError(f"unknown optimizer {identifier['class_name']!r}")
        return cls.from_config(identifier.get("config", {}))
    raise InvalidArgumentError(f"cannot interpret {identifier!r} as an optimizer")


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config, custom_objects=None):
    return get(config)
