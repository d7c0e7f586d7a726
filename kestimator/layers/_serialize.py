"""Resolving the nested objects of a layer's arguments (initializers, regularizers, constraints,
activations) from names, config dicts or objects, honouring the active custom objects.

While a config is being deserialized (`loading_scope`), an unknown class name raises UnsafeFileError:
it came from a file, and nothing is imported or run to find it. In user code it is an
InvalidArgumentError.
"""
import contextlib
import threading

from ..errors import InvalidArgumentError, UnsafeFileError

_local = threading.local()


def _stack():
    s = getattr(_local, "stack", None)
    if s is None:
        s = _local.stack = []
    return s


@contextlib.contextmanager
def custom_object_scope(custom_objects, loading=False):
    """Make `custom_objects` ({name: class or function}) visible to deserialization in this block."""
    _stack().append((dict(custom_objects or {}), loading))
    try:
        yield
    finally:
        _stack().pop()


def current_custom_objects():
    out = {}
    for objects, _ in _stack():
        out.update(objects)
    return out


def loading():
    return any(flag for _, flag in _stack())


def _resolve(module, identifier):
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        try:
            return module.deserialize(identifier, custom_objects=current_custom_objects())
        except UnsafeFileError as e:
            if loading():
                raise
            raise InvalidArgumentError(str(e)) from None
    return module.get(identifier)


def get_initializer(identifier):
    from .. import initializers
    return _resolve(initializers, identifier)


def get_regularizer(identifier):
    from .. import regularizers
    return _resolve(regularizers, identifier)


def get_constraint(identifier):
    from .. import constraints
    return _resolve(constraints, identifier)


def get_activation(identifier):
    from .. import activations
    if identifier is None:
        return activations.linear
    return _resolve(activations, identifier)


def serialize_initializer(x):
    from .. import initializers
    return initializers.serialize(x)


def serialize_regularizer(x):
    from .. import regularizers
    return regularizers.serialize(x)


def serialize_constraint(x):
    from .. import constraints
    return constraints.serialize(x)


def serialize_activation(x):
    from .. import activations
    return activations.serialize(x)


def weights_config(layer, *weights, activity=False):
    """The `<w>_initializer / <w>_regularizer / <w>_constraint` config entries of each weight name given ("kernel",
    "bias", ...), in Keras's order (all initializers, then regularizers, then constraints), and with `activity`
    the layer's activity_regularizer after the regularizers."""
    config = {f"{w}_initializer": serialize_initializer(getattr(layer, f"{w}_initializer")) for w in weights}
    config.update({f"{w}_regularizer": serialize_regularizer(getattr(layer, f"{w}_regularizer")) for w in weights})
    if activity:
        config["activity_regularizer"] = serialize_regularizer(layer.activity_regularizer)
    config.update({f"{w}_constraint": serialize_constraint(getattr(layer, f"{w}_constraint")) for w in weights})
    return config
