"""`Lambda` (wrap a Python function as a layer) and `TFOpLambda` (an engine function applied to
KerasTensors, e.g. ``x + y`` in the functional API).

Saving rule: a config names the function; it never holds code. Loading a Lambda whose config carries
serialized bytecode (what tf.keras writes for lambdas) raises UnsafeFileError unless the caller passes
the function in custom_objects under the layer's name (or the function's name).
"""
import inspect

from ..errors import InvalidArgumentError, UnsafeFileError
from . import _serialize
from .base import Layer


def _function_name(fn):
    name = getattr(fn, "__name__", None)
    if name is None:
        raise InvalidArgumentError(f"cannot name function {fn!r} in a Lambda config")
    return name


class Lambda(Layer):
    """``Lambda(lambda x: x ** 2)``: a stateless layer computing `function(inputs, **arguments)` with
    engine ops.

    Args:
        function: a callable of the input tensor(s).
        output_shape: optional output shape (without batch) or a function of the input shape; by default
            the shape is found by running `function` on placeholders.
        mask: unused (kept for Keras configs).
        arguments: keyword arguments passed to `function`.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise InvalidArgumentError(f"Lambda {self.name!r}: function must be callable, got {function!r}")
        self.function = function
        self._output_shape = output_shape
        self.mask = mask
        self.arguments = dict(arguments or {})
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):
            params = {}
        self._fn_takes_training = "training" in params

    def call(self, inputs, training=None):
        kwargs = dict(self.arguments)
        if self._fn_takes_training:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            return super().compute_output_shape(input_shape)
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        return (input_shape[0],) + tuple(self._output_shape)

    def get_config(self):
        config = super().get_config()
        out_shape = self._output_shape
        if callable(out_shape):
            out_shape_cfg, out_type, out_module = _function_name(out_shape), "function", out_shape.__module__
        else:
            out_shape_cfg = list(out_shape) if out_shape is not None else None
            out_type, out_module = "raw", None
        config.update({"function": _function_name(self.function), "function_type": "function",
                       "module": getattr(self.function, "__module__", None), "output_shape": out_shape_cfg,
                       "output_shape_type": out_type, "output_shape_module": out_module,
                       "arguments": self.arguments})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A Lambda from its config; the function must be a kestimator activation or in custom_objects.

        Raises:
            UnsafeFileError: the config stores bytecode, or names a function the caller did not provide.
        """
        config = dict(config)
        objects = dict(_serialize.current_custom_objects())
        objects.update(custom_objects or {})
        name = config.get("name", "lambda")
        fn = _lookup_function(config.pop("function", None), config.pop("function_type", "function"),
                              objects, name, "function")
        out_type = config.pop("output_shape_type", "raw")
        out = config.pop("output_shape", None)
        if out is not None and out_type != "raw":
            out = _lookup_function(out, out_type, objects, name, "output_shape")
        config.pop("module", None)
        config.pop("output_shape_module", None)
        return cls(fn, output_shape=out, **config)


def _lookup_function(spec, kind, objects, layer_name, what):
    if kind == "lambda" or not isinstance(spec, str):
        if layer_name in objects:
            return objects[layer_name]
        raise UnsafeFileError(
            f"Lambda layer {layer_name!r}: its config stores the {what} as Python bytecode; kestimator never "
            f"runs code from a file. Pass the function as custom_objects={{{layer_name!r}: fn}}")
    if spec in objects:
        return objects[spec]
    if layer_name in objects:
        return objects[layer_name]
    from .. import activations
    fn = activations._BY_NAME.get(spec)
    if fn is not None:
        return fn
    raise UnsafeFileError(f"Lambda layer {layer_name!r}: unknown {what} {spec!r}; pass it in custom_objects "
                          f"({{{spec!r}: fn}})")


def _engine_functions():
    """tf.keras's TFOpLambda function names -> engine functions (the only ones a config may name)."""
    from ..engine.ops import array_ops as a
    from ..engine.ops import math_ops as m
    from ..engine.ops import nn_ops as n
    from ..engine.ops import overloads
    from ..engine.ops import reduce_ops as r
    table = {f"__operators__.{k.strip('_')}": fn for k, fn in overloads._OPERATORS.items()}
    table.update({
        "math.add": m.add, "math.subtract": m.subtract, "math.multiply": m.multiply, "math.truediv": m.divide,
        "math.divide": m.divide, "math.maximum": m.maximum, "math.minimum": m.minimum, "math.exp": m.exp,
        "math.log": m.log, "math.sqrt": m.sqrt, "math.square": m.square, "math.abs": m.abs,
        "math.tanh": m.tanh, "math.sigmoid": m.sigmoid, "nn.relu": m.relu, "nn.softmax": n.softmax,
        "math.reduce_sum": r.reduce_sum, "math.reduce_mean": r.reduce_mean, "math.reduce_max": r.reduce_max,
        "linalg.matmul": r.matmul, "reshape": a.reshape, "concat": a.concat, "stack": a.stack,
        "transpose": a.transpose, "expand_dims": a.expand_dims, "squeeze": a.squeeze,
        "__operators__.getitem": a.strided_slice, "compat.v1.gather": a.gather, "gather": a.gather,
    })
    return table


class TFOpLambda(Layer):
    """An engine function applied inside the functional API (made by operators on KerasTensors)."""

    def __init__(self, function, **kwargs):
        if isinstance(function, str):
            fn = _engine_functions().get(function)
            if fn is None:
                raise UnsafeFileError(f"TFOpLambda {kwargs.get('name')!r}: unknown function {function!r}")
            self._fn_name, function = function, fn
        else:
            self._fn_name = None
        super().__init__(**kwargs)
        self.function = function

    def _default_name(self):
        return "tf_op_lambda"

    def call(self, inputs, *args, **kwargs):
        return self.function(inputs, *args, **kwargs)

    def get_config(self):
        config = super().get_config()
        name = self._fn_name
        if name is None:
            for key, fn in _engine_functions().items():
                if fn is self.function:
                    name = key
                    break
        if name is None:
            raise InvalidArgumentError(f"TFOpLambda {self.name!r}: function {self.function!r} has no "
                                       "serializable name")
        config["function"] = name
        return config
