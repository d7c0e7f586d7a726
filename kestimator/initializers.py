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
from .utils.keras_objects import ObjectCatalogue

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


def _config_of(init):
    if isinstance(init, Identity):     # the engine class has no config of its own
        return {"gain": init.gain}
    return dict(init.get_config())


# class names in configs: the classes, and the snake-case names old Keras configs also use as class names
_CATALOGUE = ObjectCatalogue("initializer", "keras.initializers", Initializer, {**_SNAKE, **_CLASSES},
                             names={**_CLASSES, **_SNAKE}, config_of=_config_of, ignored_args=("dtype",),
                             instantiate_classes=True)

# serialize(initializer) -> JSON form; deserialize(config, custom_objects=None) -> initializer, raising
# UnsafeFileError for a name neither here nor in custom_objects; get(identifier) -> initializer or callable.
serialize = _CATALOGUE.serialize
deserialize = _CATALOGUE.deserialize
get = _CATALOGUE.get
