"""The layer registry: the only place class names in configs and files are resolved.

    registry.serialize(layer)            # {"module": "keras.layers", "class_name": "Dense", "config": {...}}
    registry.deserialize(cfg, custom_objects={"MyLayer": MyLayer})
    registry.register("Sequential", Sequential)   # models add their classes

A class name is accepted only when kestimator registered it or the caller passed it in custom_objects;
module paths ("keras.src.layers.Dense", "os.system") and unknown names raise UnsafeFileError naming the
layer. Nothing is imported, unpickled or evaluated to find a class.
"""
import inspect

from ..errors import InvalidArgumentError, UnsafeFileError
from . import _serialize

_CLASSES = {}
_loaded = [False]


def _load():
    if _loaded[0]:
        return
    _loaded[0] = True
    from . import _catalogue
    for name, cls in _catalogue.all_layer_classes().items():
        _CLASSES.setdefault(name, cls)


def register(name, cls):
    """Register a class under `name` (models register Sequential, Functional and Model this way)."""
    _load()
    _CLASSES[name] = cls


def get_layer_class(name):
    """The registered class named `name`.

    Raises:
        UnsafeFileError: no such registered class.
    """
    _load()
    cls = _CLASSES.get(name)
    if cls is None:
        raise UnsafeFileError(f"unknown layer class {name!r}: not a kestimator layer")
    return cls


def registered_names():
    _load()
    return sorted(_CLASSES)


def serialize(layer):
    """Keras's JSON form of a layer: {"module", "class_name", "config", "registered_name"}."""
    return {"module": "keras.layers", "class_name": type(layer).__name__, "config": layer.get_config(),
            "registered_name": None}


def deserialize(config, custom_objects=None):
    """A new layer from {"class_name": ..., "config": {...}}; class names only from this registry or
    `custom_objects`.

    Raises:
        UnsafeFileError: an unknown or module-path class name (the message names the layer).
        InvalidArgumentError: a malformed config.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise InvalidArgumentError(f"a layer config must be a dict with class_name and config, got {config!r}")
    class_name = config["class_name"]
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise InvalidArgumentError(f"layer config of class {class_name!r} must be a dict, got {type(inner)}")
    layer_name = inner.get("name", "?")
    custom_objects = dict(custom_objects or {})
    cls = custom_objects.get(class_name)
    if cls is None:
        if not isinstance(class_name, str) or "." in class_name or "/" in class_name:
            raise UnsafeFileError(f"layer {layer_name!r}: class name {class_name!r} is a module path; only "
                                  "registered kestimator classes or custom_objects are loaded")
        _load()
        cls = _CLASSES.get(class_name)
    if cls is None:
        raise UnsafeFileError(f"layer {layer_name!r}: unknown class {class_name!r}; it is not a kestimator layer "
                              "and not in custom_objects")
    with _serialize.custom_object_scope(custom_objects, loading=True):
        from_config = cls.from_config
        try:
            takes_objects = "custom_objects" in inspect.signature(from_config).parameters
        except (TypeError, ValueError):
            takes_objects = False
        if takes_objects:
            return from_config(inner, custom_objects=custom_objects)
        try:
            return from_config(inner)
        except TypeError as e:
            raise InvalidArgumentError(f"layer {layer_name!r} ({class_name}): bad config: {e}") from None


custom_object_scope = _serialize.custom_object_scope
