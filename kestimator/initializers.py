"""Keras initializers: the engine's initializer classes under their Keras names, plus Keras serialization.

    ks.initializers.GlorotUniform(seed=1)
    ks.initializers.get("he_normal")
    ks.initializers.serialize(init)   # {"module": "keras.initializers", "class_name": ..., "config": ...}

Every initializer samples NumPy values with `sample(rng, shape, np_dtype)`; layers use that to create
their weights, and graph code may still call `init(shape, dtype)` to get an "Initializer" op.
"""
from .engine.initializers import (Constant, GlorotNormal, GlorotUniform, HeNormal, HeUniform,  # noqa: F401
                                  Identity, Initializer, LecunNormal, LecunUniform, Ones, Orthogonal,
                                  RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling, Zeros)
from .errors import InvalidArgumentError, UnsafeFileError

# Keras's function-style aliases (keras.initializers.glorot_uniform is the class itself).
zeros = Zeros
ones = Ones
constant = Constant
random_uniform = RandomUniform
random_normal = RandomNormal
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
glorot_uniform = GlorotUniform
glorot_normal = GlorotNormal
he_normal = HeNormal
he_uniform = HeUniform
lecun_normal = LecunNormal
lecun_uniform = LecunUniform
orthogonal = Orthogonal
identity = Identity

_CLASSES = {cls.__name__: cls for cls in (
    Constant, GlorotNormal, GlorotUniform, HeNormal, HeUniform, Identity, LecunNormal, LecunUniform, Ones,
    Orthogonal, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling, Zeros)}
_SNAKE = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_uniform": RandomUniform,
    "random_normal": RandomNormal, "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal, "identity": Identity,
    # TF1 class spellings that appear in old Keras configs
    "uniform": RandomUniform, "normal": RandomNormal, "Zeros": Zeros,
}
_MODULE = "keras.initializers"


def _config_of(init):
    if isinstance(init, Identity):     # the engine class has no config of its own
        return {"gain": init.gain}
    return dict(init.get_config())


def serialize(initializer):
    """Keras's JSON form of an initializer instance (None stays None)."""
    if initializer is None:
        return None
    if not isinstance(initializer, Initializer):
        name = getattr(initializer, "__name__", None)
        if name is None:
            raise InvalidArgumentError(f"cannot serialize initializer {initializer!r}")
        return name
    return {"module": _MODULE, "class_name": type(initializer).__name__, "config": _config_of(initializer),
            "registered_name": None}


def deserialize(config, custom_objects=None):
    """An initializer from Keras's JSON form; class names come only from this module or `custom_objects`.

    Raises:
        UnsafeFileError: the class name is neither a kestimator initializer nor in `custom_objects`.
    """
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        if config in custom_objects:
            obj = custom_objects[config]
            return obj() if isinstance(obj, type) else obj
        cls = _SNAKE.get(config) or _CLASSES.get(config)
        if cls is None:
            raise UnsafeFileError(f"unknown initializer {config!r}: not a kestimator initializer and not in "
                                  "custom_objects")
        return cls()
    if not isinstance(config, dict) or "class_name" not in config:
        raise InvalidArgumentError(f"an initializer config must be a name or a {{class_name, config}} dict, "
                                   f"got {config!r}")
    name = config["class_name"]
    cls = custom_objects.get(name) or _CLASSES.get(name) or _SNAKE.get(name)
    if cls is None:
        raise UnsafeFileError(f"unknown initializer class {name!r}: not a kestimator initializer and not in "
                              "custom_objects")
    args = dict(config.get("config") or {})
    args.pop("dtype", None)
    if hasattr(cls, "from_config"):
        return cls.from_config(args)
    return cls(**args)


def get(identifier):
    """An initializer from a name, a class, a config dict, an instance or a callable.

    Raises:
        InvalidArgumentError: the identifier names no initializer.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        cls = _SNAKE.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise InvalidArgumentError(f"unknown initializer {identifier!r}; known: {sorted(_SNAKE)}")
        return cls()
    if isinstance(identifier, dict):
        try:
            return deserialize(identifier)
        except UnsafeFileError as e:
            raise InvalidArgumentError(str(e)) from None
    if callable(identifier):
        return identifier
    raise InvalidArgumentError(f"cannot interpret {identifier!r} as an initializer")
