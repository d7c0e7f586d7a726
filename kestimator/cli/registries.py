"""The registries a config's names come from: kestimator's real layers, optimizers, losses, metrics,
callbacks, estimators, activations and initializers.

    from kestimator.cli.registries import registries
    resolved = schema.validate(load_config("mlp_digits.yaml"), registries())

A config can only name what is listed here (:func:`registries` builds ``{kind: {name: class_or_function}}``
in the form :func:`kestimator.cli.schema.validate` takes). Entries that need Python objects as arguments
(``Lambda`` layers, ``LambdaCallback``, ``LearningRateScheduler``) are left out: YAML cannot give them.
"""
import functools
import importlib
import inspect

# Layer classes a config cannot use: they take Python callables, or they are models / abstract bases.
_EXCLUDED_LAYERS = {"Lambda", "TFOpLambda", "Layer", "Sequential", "Functional", "Model"}

# Keras callbacks a config may list; the progress bar and History are the runner's own.
_CALLBACKS = ("EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN", "CSVLogger", "ModelCheckpoint",
              "TensorBoard", "BackupAndRestore")

_ESTIMATORS = ("DNNClassifier", "DNNRegressor", "LinearClassifier", "LinearRegressor",
               "DNNLinearCombinedClassifier", "DNNLinearCombinedRegressor", "BaselineClassifier",
               "BaselineRegressor")
_BOOSTED_TREES = ("BoostedTreesClassifier", "BoostedTreesRegressor")


def _layers():
    from ..layers import registry
    from .. import models  # noqa: F401  (registers Sequential / Functional, excluded below)
    return {name: registry.get_layer_class(name) for name in registry.registered_names()
            if name not in _EXCLUDED_LAYERS}


def _optimizers():
    from .. import optimizers
    return {cls.__name__: cls for cls in (optimizers.SGD, optimizers.Adam, optimizers.AdamW, optimizers.Adagrad,
                                          optimizers.RMSprop, optimizers.Ftrl)}


def keyword_factory(cls):
    """A function ``make(**kwargs) -> cls(**kwargs)`` whose signature lists the arguments ``cls`` takes.

    The Keras wrapper classes (``SparseCategoricalAccuracy``, ``Huber`` ...) are generated with
    ``__init__(*args, **kwargs)``, which tells the schema nothing; their ``get_config()`` names every
    argument with its default, so that becomes the factory's keyword-only signature.
    """
    params = [inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=value)
              for key, value in cls().get_config().items()]

    def make(**kwargs):
        return cls(**kwargs)

    make.__signature__ = inspect.Signature(params)
    make.__name__ = make.__qualname__ = cls.__name__
    make.__doc__ = cls.__doc__
    make.made_class = cls
    return make


def _with_factories(entries, wrapper_base):
    """Replace the generated wrapper classes among ``entries`` by :func:`keyword_factory` functions."""
    made = {}
    out = {}
    for name, obj in entries.items():
        if isinstance(obj, type) and issubclass(obj, wrapper_base) and obj is not wrapper_base:
            obj = made.get(obj) or made.setdefault(obj, keyword_factory(obj))
        out[name] = obj
    return out


def _losses():
    from ..losses import keras_losses
    # The string names ("sparse_categorical_crossentropy", "mse") and the classes, as compile() takes them.
    out = dict(keras_losses._FUNCTIONS)
    out.update(keras_losses._CLASSES)
    return _with_factories(out, keras_losses.LossFunctionWrapper)


def _metrics():
    from ..metrics import keras_metrics
    out = dict(keras_metrics._FUNCTION_NAMES)
    out.update(keras_metrics._CLASSES)
    return _with_factories(out, keras_metrics.MeanMetricWrapper)


def _callbacks():
    from .. import callbacks
    return {name: getattr(callbacks, name) for name in _CALLBACKS}


def _boosted_trees_class(name):
    """The lead's boosted-tree estimator class, or None while its module does not exist yet."""
    for module, attr in (("kestimator.estimators", name), ("kestimator.estimators.boosted_trees", name)):
        try:
            value = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if not (e.name or "").startswith("kestimator.estimators"):
                raise           # a real missing dependency inside the module: show it
            continue
        except AttributeError:
            continue
        return value
    return None


def _estimators():
    from .. import estimators
    out = {name: getattr(estimators, name) for name in _ESTIMATORS}
    for name in _BOOSTED_TREES:
        cls = _boosted_trees_class(name)
        if cls is not None:
            out[name] = cls
    return out


def _activations():
    from .. import activations
    return dict(activations._BY_NAME)


def _initializers():
    from .. import initializers
    out = dict(initializers._SNAKE)
    out.update(initializers._CLASSES)
    return out


@functools.lru_cache(maxsize=1)
def _cached():
    return {"layer": _layers(), "optimizer": _optimizers(), "loss": _losses(), "metric": _metrics(),
            "callback": _callbacks(), "estimator": _estimators(), "activation": _activations(),
            "initializer": _initializers()}


def registries():
    """``{kind: {name: class_or_function}}`` for every registry kind a config may name.

    Returns:
        A fresh dict of fresh dicts (callers may change them); the lookups behind them run once.
    """
    return {kind: dict(entries) for kind, entries in _cached().items()}
