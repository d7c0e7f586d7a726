"""Keras activations: functions of engine tensors (graph or eager), looked up by name.

    ks.activations.get("relu")(x)
    ks.activations.serialize(ks.nn.relu)   # "relu"
"""
from .engine.ops import math_ops as _m
from .engine.ops import nn_ops as _nn
from .engine.ops.core import convert_to_tensor
from .errors import InvalidArgumentError, UnsafeFileError


def linear(x):
    """The identity: f(x) = x."""
    return x


def relu(x, alpha=0.0, max_value=None, threshold=0.0):
    """max(x, 0); with `alpha` a leaky slope below `threshold`, with `max_value` a cap (Keras's relu)."""
    x = convert_to_tensor(x)
    if alpha == 0.0 and max_value is None and threshold == 0.0:
        return _m.relu(x)
    if max_value == 6 and alpha == 0.0 and threshold == 0.0:
        return _m.relu6(x)
    if threshold != 0.0:
        out = _m.where(_m.greater(x, threshold), x, _m.multiply(_m.subtract(x, threshold), alpha))
    elif alpha != 0.0:
        out = _m.leaky_relu(x, alpha)
    else:
        out = _m.relu(x)
    if max_value is not None:
        out = _m.minimum(out, float(max_value))
    return out


def sigmoid(x):
    return _m.sigmoid(x)


def hard_sigmoid(x):
    """clip(0.2 x + 0.5, 0, 1), as tf.keras 2."""
    x = convert_to_tensor(x)
    return _m.minimum(_m.maximum(_m.add(_m.multiply(x, 0.2), 0.5), 0.0), 1.0)


def tanh(x):
    return _m.tanh(x)


def softmax(x, axis=-1):
    return _nn.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return _nn.log_softmax(x, axis=axis)


def elu(x, alpha=1.0):
    """x for x > 0, alpha (exp(x) - 1) otherwise."""
    if alpha == 1.0:
        return _m.elu(x)
    x = convert_to_tensor(x)
    return _m.where(_m.greater(x, 0.0), x, _m.multiply(_m.expm1(_m.minimum(x, 0.0)), float(alpha)))


def selu(x):
    return _m.selu(x)


def softplus(x):
    return _m.softplus(x)


def softsign(x):
    return _m.softsign(x)


def gelu(x, approximate=False):
    return _m.gelu(x, approximate=approximate)


def swish(x):
    """x * sigmoid(x) (also called silu)."""
    return _m.swish(x)


silu = swish


def exponential(x):
    return _m.exp(x)


def relu6(x):
    return _m.relu6(x)


def leaky_relu(x, alpha=0.2):
    """x for x > 0, alpha * x otherwise (Keras 3's default slope 0.2)."""
    return _m.leaky_relu(x, alpha)


_BY_NAME = {f.__name__: f for f in (linear, relu, sigmoid, hard_sigmoid, tanh, softmax, log_softmax, elu, selu,
                                    softplus, softsign, gelu, swish, exponential, relu6, leaky_relu)}
_BY_NAME["silu"] = swish


def _engine_aliases():
    """The engine's own functions (ks.nn.relu ...) serialize to their Keras names."""
    from .engine.ops import math_ops, nn_ops
    return {id(math_ops.relu): "relu", id(math_ops.sigmoid): "sigmoid", id(math_ops.tanh): "tanh",
            id(nn_ops.softmax): "softmax", id(nn_ops.log_softmax): "log_softmax", id(math_ops.elu): "elu",
            id(math_ops.selu): "selu", id(math_ops.softplus): "softplus", id(math_ops.softsign): "softsign",
            id(math_ops.gelu): "gelu", id(math_ops.swish): "swish", id(math_ops.exp): "exponential",
            id(math_ops.relu6): "relu6", id(math_ops.leaky_relu): "leaky_relu"}


def get(identifier):
    """An activation function from a name, a function or None (= linear).

    Raises:
        InvalidArgumentError: an unknown name or a non-callable.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier)
        if fn is None:
            raise InvalidArgumentError(f"unknown activation {identifier!r}; known: {sorted(_BY_NAME)}")
        return fn
    if isinstance(identifier, dict):
        try:
            return deserialize(identifier)
        except UnsafeFileError as e:
            raise InvalidArgumentError(str(e)) from None
    if callable(identifier):
        return identifier
    raise InvalidArgumentError(f"cannot interpret {identifier!r} as an activation function")


def serialize(activation):
    """The Keras name of an activation ("relu"); a layer object serializes as its config dict."""
    if activation is None:
        return "linear"
    name = _engine_aliases().get(id(activation))
    if name is not None:
        return name
    if getattr(activation, "__module__", None) == __name__ and activation.__name__ in _BY_NAME:
        return activation.__name__
    if hasattr(activation, "get_config"):
        return {"module": "keras.layers", "class_name": type(activation).__name__,
                "config": activation.get_config(), "registered_name": None}
    name = getattr(activation, "__name__", None)
    if name is None:
        raise InvalidArgumentError(f"cannot serialize activation {activation!r}: it has no name")
    return name


def deserialize(config, custom_objects=None):
    """The activation a config names; names come only from this module or `custom_objects`.

    Raises:
        UnsafeFileError: an unknown name (no code is imported or run to find it).
    """
    custom_objects = custom_objects or {}
    if isinstance(config, dict):
        name = config.get("class_name")
        if name in custom_objects:
            obj = custom_objects[name]
            return obj.from_config(config.get("config", {})) if hasattr(obj, "from_config") else obj
        from .layers import registry
        return registry.deserialize(config, custom_objects)
    if config in custom_objects:
        return custom_objects[config]
    fn = _BY_NAME.get(config)
    if fn is None:
        raise UnsafeFileError(f"unknown activation {config!r}: not a kestimator activation and not in "
                              "custom_objects")
    return fn
