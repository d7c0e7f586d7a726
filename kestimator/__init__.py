"""kestimator: tf.keras / tf.estimator / tf.data style machine learning on its own NumPy graph engine.

    import kestimator as ks
    model = ks.keras.Sequential([ks.layers.Dense(10, activation="softmax")])

Submodules load on first use so that `import kestimator` stays fast.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "engine", "errors", "layers", "models", "keras", "estimators", "data", "optimizers", "losses", "metrics",
    "nn", "feature_column", "utils", "config", "datasets", "saved_model", "optimize", "distributed",
    "initializers", "activations", "regularizers", "constraints", "callbacks", "io", "cli", "train",
}
_ALIASES = {"nn": "kestimator.engine.nn", "initializers": "kestimator.initializers", "train": "kestimator.engine.train"}


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(_ALIASES.get(name, f"kestimator.{name}"))
        globals()[name] = module
        return module
    raise AttributeError(f"module 'kestimator' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
