"""Layer wrappers: Bidirectional (an RNN run forwards and backwards) and TimeDistributed."""
from ..engine.ops import array_ops as _a
from ..engine.ops import math_ops as _m
from ..errors import InvalidArgumentError
from . import _nest
from . import _serialize
from .base import Layer


def _copy_layer(layer, name, **overrides):
    from . import registry
    config = dict(registry.serialize(layer))
    inner = dict(config["config"])
    inner["name"] = name
    inner.update(overrides)
    config["config"] = inner
    return registry.deserialize(config, _serialize.current_custom_objects())


class Bidirectional(Layer):
    """Run `layer` (an RNN) forwards and a copy backwards, and merge their outputs.

    Args:
        layer: an RNN layer (LSTM, GRU, SimpleRNN, RNN); the wrapper builds copies named
            "forward_<name>" and "backward_<name>" (so weights are "bidirectional/forward_lstm/...").
        merge_mode: "concat" (default), "sum", "mul", "ave", or None (a list of both outputs).
        backward_layer: an explicit backward layer (its go_backwards must be the opposite of `layer`'s).
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, Layer):
            raise InvalidArgumentError(f"Bidirectional needs a Layer, got {layer!r}")
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise InvalidArgumentError(f"Bidirectional: merge_mode must be concat, sum, mul, ave or None, got "
                                       f"{merge_mode!r}")
        super().__init__(**kwargs)
        self.__dict__["layer"] = layer        # the template: not tracked, never built
        self.forward_layer = _copy_layer(layer, "forward_" + layer.name)
        if backward_layer is None:
            self.backward_layer = _copy_layer(layer, "backward_" + layer.name,
                                              go_backwards=not layer.go_backwards)
        else:
            if backward_layer.go_backwards == layer.go_backwards:
                raise InvalidArgumentError("Bidirectional: backward_layer.go_backwards must differ from "
                                           "layer.go_backwards")
            self.backward_layer = backward_layer
        self._explicit_backward = backward_layer is not None
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self._initial_weights = weights

    def build(self, input_shape):
        self.forward_layer._maybe_build_from_shape(input_shape)
        self.backward_layer._maybe_build_from_shape(input_shape)

    def call(self, inputs, training=None, initial_state=None):
        fw_state = bw_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fw_state, bw_state = initial_state[:half], initial_state[half:]
        y_f = self.forward_layer(inputs, training=training, initial_state=fw_state)
        y_b = self.backward_layer(inputs, training=training, initial_state=bw_state)
        states = []
        if self.return_state:
            states = list(y_f[1:]) + list(y_b[1:])
            y_f, y_b = y_f[0], y_b[0]
        if self.return_sequences:
            time_axis = 0 if getattr(self.forward_layer, "time_major", False) else 1
            y_b = _a.reverse(y_b, [time_axis])
        if self.merge_mode == "concat":
            out = _a.concat([y_f, y_b], axis=-1)
        elif self.merge_mode == "sum":
            out = _m.add(y_f, y_b)
        elif self.merge_mode == "mul":
            out = _m.multiply(y_f, y_b)
        elif self.merge_mode == "ave":
            out = _m.multiply(_m.add(y_f, y_b), 0.5)
        else:
            out = [y_f, y_b]
        if self.return_state:
            return (out if isinstance(out, list) else [out]) + states
        return out

    def get_config(self):
        from . import registry
        config = super().get_config()
        config["layer"] = registry.serialize(self.layer)
        config["merge_mode"] = self.merge_mode
        if self._explicit_backward:
            config["backward_layer"] = registry.serialize(self.backward_layer)
        return config

    @classmethod
    def from_config(cls, config):
        from . import registry
        config = dict(config)
        objects = _serialize.current_custom_objects()
        layer = registry.deserialize(config.pop("layer"), objects)
        backward = config.pop("backward_layer", None)
        if backward is not None:
            backward = registry.deserialize(backward, objects)
        return cls(layer, backward_layer=backward, **config)


class TimeDistributed(Layer):
    """Apply `layer` to every time step of (batch, time, ...) inputs (one call on batch * time rows)."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise InvalidArgumentError(f"TimeDistributed needs a Layer, got {layer!r}")
        self.layer = layer

    def build(self, input_shape):
        from ..engine.graph import TensorShape
        if input_shape.ndims is None or input_shape.ndims < 3:
            raise InvalidArgumentError(f"TimeDistributed {self.name!r} needs inputs of rank >= 3, got "
                                       f"{tuple(input_shape)}")
        # as tf.keras: the wrapped layer's weights are named after the wrapper ("time_distributed/kernel:0")
        self.layer.__dict__["_no_name_scope"] = True
        try:
            self.layer._maybe_build_from_shape(TensorShape((None,) + tuple(input_shape[2:])))
        finally:
            self.layer.__dict__.pop("_no_name_scope", None)

    def call(self, inputs, training=None):
        t = inputs.shape[1]
        rest = list(inputs.shape[2:])
        if t is None or any(d is None for d in rest):
            raise InvalidArgumentError(f"TimeDistributed {self.name!r} needs known time and feature sizes, got "
                                       f"{tuple(inputs.shape)}")
        flat = _a.reshape(inputs, [-1] + rest)
        y = self.layer(flat, training=training)
        return _nest.map_structure(lambda o: _a.reshape(o, [-1, t] + list(o.shape[1:])), y)

    def get_config(self):
        from . import registry
        config = super().get_config()
        config["layer"] = registry.serialize(self.layer)
        return config

    @classmethod
    def from_config(cls, config):
        from . import registry
        config = dict(config)
        layer = registry.deserialize(config.pop("layer"), _serialize.current_custom_objects())
        return cls(layer, **config)
