"""Keras models: `Model` (functional or subclassed), `Sequential`, training (compile / fit / evaluate /
predict), callbacks, and saving (Keras .h5 files, JSON configs, weights).

    from kestimator import keras
    model = keras.Sequential([keras.layers.Dense(10, activation="softmax", input_shape=(64,))])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=5)
    model.save("m.h5"); keras.models.load_model("m.h5")
"""
from .model import Model  # noqa: F401
from .sequential import Sequential  # noqa: F401
from .saving import load_model, model_from_config, model_from_json, save_model  # noqa: F401


def clone_model(model, input_tensors=None, clone_function=None):
    """A new model with the same architecture and freshly initialized weights (from the config)."""
    from ..errors import InvalidArgumentError
    if input_tensors is not None or clone_function is not None:
        raise InvalidArgumentError("clone_model: input_tensors and clone_function are not supported")
    from .saving import model_from_config as _from_config
    return _from_config({"class_name": model._keras_class_name(), "config": model.get_config()})


def _register():
    from ..layers import registry
    registry.register("Functional", Model)
    registry.register("Sequential", Sequential)


_register()
