"""`from kestimator import keras`: the tf.keras namespace on kestimator's engine.

    from kestimator import keras
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=5)
    keras.models.load_model("m.h5")
    keras.estimator.model_to_estimator(keras_model=model)
"""
import types

import numpy as np

from . import activations, callbacks, constraints, initializers, layers, losses, metrics, models  # noqa: F401
from . import optimizers, regularizers  # noqa: F401
from .errors import InvalidArgumentError
from .layers import Input, InputLayer  # noqa: F401
from .models import Model, Sequential  # noqa: F401

__version__ = "2.15.0"


# -- keras.utils -------------------------------------------------------------------------------------------
def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot rows for integer class labels (a trailing dimension of 1 is dropped, as Keras does).

    Raises:
        InvalidArgumentError: negative labels or labels >= num_classes.
    """
    y = np.asarray(y, dtype="int64")
    shape = y.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    y = y.reshape(-1)
    if y.size and y.min() < 0:
        raise InvalidArgumentError(f"to_categorical: negative label {int(y.min())}")
    n = int(num_classes) if num_classes is not None else (int(y.max()) + 1 if y.size else 0)
    if y.size and y.max() >= n:
        raise InvalidArgumentError(f"to_categorical: label {int(y.max())} is not below num_classes={n}")
    out = np.zeros((y.size, n), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out.reshape(shape + (n,))


def normalize(x, axis=-1, order=2):
    """`x` divided by its L`order` norm along `axis` (zero norms left as 0)."""
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


def set_random_seed(seed):
    """Seed NumPy, new layer weights and the engine's random ops (graph-level seed)."""
    from .engine.ops.random_ops import set_random_seed as _graph_seed
    from .layers.base import set_random_seed as _layer_seed
    np.random.seed(seed)
    _layer_seed(seed)
    _graph_seed(seed)


def _plot_curves(history, path, title=None):
    from .utils import plot_curves
    return plot_curves(history, path, title=title)


utils = types.ModuleType("kestimator.keras.utils", "Keras utilities.")
utils.to_categorical = to_categorical
utils.normalize = normalize
utils.set_random_seed = set_random_seed
utils.plot_curves = _plot_curves
utils.custom_object_scope = layers.registry.custom_object_scope
utils.CustomObjectScope = layers.registry.custom_object_scope


# -- keras.backend (the parts code still calls) ----------------------------------------------------------------
def clear_session():
    """Forget layer names used so far (the next Dense is "dense" again)."""
    from .layers.base import reset_uids
    reset_uids()


def _get_value(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def _set_value(x, value):
    x.assign(value)


backend = types.ModuleType("kestimator.keras.backend", "A minimal keras.backend.")
backend.clear_session = clear_session
backend.floatx = lambda: "float32"
backend.epsilon = lambda: 1e-7
backend.image_data_format = lambda: "channels_last"
backend.backend = lambda: "kestimator"
backend.get_value = _get_value
backend.set_value = _set_value
backend.int_shape = lambda x: tuple(getattr(x, "shape", np.shape(x)))
backend.count_params = lambda x: int(np.prod(tuple(x.shape)))


# -- keras.estimator (model_to_estimator lives with the estimators) -----------------------------------------------
class _EstimatorNamespace(types.ModuleType):
    def __getattr__(self, name):
        if name == "model_to_estimator":
            from .estimators.keras_conversion import model_to_estimator
            return model_to_estimator
        raise AttributeError(f"module 'kestimator.keras.estimator' has no attribute {name!r}")


estimator = _EstimatorNamespace("kestimator.keras.estimator", "keras.estimator.model_to_estimator")


def __getattr__(name):
    if name == "datasets":
        from . import datasets
        return datasets
    raise AttributeError(f"module 'kestimator.keras' has no attribute {name!r}")
