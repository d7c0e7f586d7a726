"""`Sequential`: a stack of layers, each feeding the next. It builds a functional model inside as soon as
the input shape is known (from an `Input`, a first layer's `input_shape`, or the first data seen)."""
import numpy as np

from ..errors import InvalidArgumentError
from ..layers.base import KerasTensor, Layer
from ..layers.input_layer import InputLayer
from .model import Model


class Sequential(Model):
    """``Sequential([Dense(64, activation="relu", input_shape=(8,)), Dense(1)])``.

    Args:
        layers: layers to add in order; the first element may be `Input(...)` or an InputLayer.
        name: the model name (default "sequential", "sequential_1", ...).

    Raises:
        InvalidArgumentError: an element that is not a layer.
    """

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        # tf.keras names a Sequential model's weights by layer only ("dense/kernel:0"), so building the
        # layers inside build() must not add the model's name
        self._no_name_scope = True
        self._stack = []
        self._input_layer = None
        for layer in layers or []:
            self.add(layer)

    # -- building -----------------------------------------------------------------------------------------
    def add(self, layer):
        """Append a layer (or set the input with `Input(...)` / an InputLayer as the first element)."""
        if isinstance(layer, KerasTensor):
            source = layer._keras_history[0] if layer._keras_history else None
            if not isinstance(source, InputLayer) or self._stack:
                raise InvalidArgumentError("Sequential.add: only an Input(...) tensor may start a Sequential model")
            layer = source
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise InvalidArgumentError("Sequential.add: an InputLayer must be the first layer")
            self._input_layer = layer
            self._rebuild()
            return
        if not isinstance(layer, Layer):
            raise InvalidArgumentError(f"Sequential.add expects a Layer, got {layer!r}")
        if any(l is layer for l in self._stack):
            raise InvalidArgumentError(f"layer {layer.name!r} is already in model {self.name!r}")
        if not self._stack and self._input_layer is None and getattr(layer, "_batch_input_shape", None) is not None:
            self._input_layer = InputLayer(batch_input_shape=layer._batch_input_shape, dtype=layer.dtype,
                                           name=f"{layer.name}_input")
        self._stack.append(layer)
        if self._network is not None and len(self._stack) > 1:
            out = layer(self.outputs[0])
            self._set_network(out)
        else:
            self._rebuild()

    def pop(self):
        """Remove the last layer.

        Raises:
            InvalidArgumentError: the model has no layers.
        """
        if not self._stack:
            raise InvalidArgumentError(f"model {self.name!r} has no layers to pop")
        layer = self._stack.pop()
        self._rebuild()
        return layer

    def _set_network(self, output):
        inp = self._input_layer._inbound_nodes[0].outputs
        self._init_graph_network(inp, output)

    def _rebuild(self):
        self._reset_runtime()
        if self._input_layer is None or not self._stack:
            self._network = None
            self._layers = ([self._input_layer] if self._input_layer is not None else []) + list(self._stack)
            self.built = False
            self.inputs = [self._input_layer._inbound_nodes[0].outputs] if self._input_layer is not None else []
            self.outputs = []
            return
        x = self._input_layer._inbound_nodes[0].outputs
        for layer in self._stack:
            x = layer(x)
            if isinstance(x, (list, tuple)) and len(x) != 1:
                raise InvalidArgumentError(f"layers of a Sequential model must have one output; {layer.name!r} "
                                           f"has {len(x)}")
        self._set_network(x)

    def build(self, input_shape=None):
        """Fix the input shape (batch dimension included) and create the weights."""
        if self._network is not None:
            return
        if input_shape is None:
            raise InvalidArgumentError(f"model {self.name!r} needs an input shape to build")
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        first = self._stack[0] if self._stack else None
        dtype = "int32" if first is not None and hasattr(first, "input_dim") and hasattr(first, "output_dim") \
            else "float32"
        self._input_layer = InputLayer(batch_input_shape=tuple(input_shape), dtype=dtype)
        self._rebuild()

    def _ensure_built(self, arrays=None):
        if self._network is None:
            if arrays is None:
                raise InvalidArgumentError(f"model {self.name!r} has no input shape yet: give the first layer "
                                           "input_shape=, start with keras.Input(...), or call fit/predict")
            self.build((None,) + tuple(np.shape(arrays[0]))[1:])

    def _is_graph_network(self):
        return self._network is not None

    def call(self, inputs, training=None, mask=None):
        if self._network is None:
            self.build((None,) + tuple(inputs.shape)[1:])
        return super().call(inputs, training=training, mask=mask)

    @property
    def layers(self):
        return list(self._stack)

    @property
    def input_names(self):
        return [self._input_layer.name] if self._input_layer is not None else ["input_1"]

    @input_names.setter
    def input_names(self, value):
        pass

    @property
    def output_names(self):
        if self._network is None:
            return [self._stack[-1].name] if self._stack else ["output_1"]
        return self._output_names

    @output_names.setter
    def output_names(self, value):
        self._output_names = list(value)

    # -- config ------------------------------------------------------------------------------------------------
    def _keras_class_name(self):
        return "Sequential"

    def get_config(self):
        """{"name", "layers": [InputLayer entry (when the input is known), layer entries...]}."""
        from ..layers import registry
        layers = []
        if self._input_layer is not None:
            layers.append({"class_name": "InputLayer", "config": self._input_layer.get_config()})
        for layer in self._stack:
            if isinstance(layer, Model):
                layers.append({"class_name": layer._keras_class_name(), "config": layer.get_config()})
            else:
                entry = registry.serialize(layer)
                layers.append({"class_name": entry["class_name"], "config": entry["config"]})
        return {"name": self.name, "layers": layers}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A Sequential model from its config (tf.keras 2 or Keras 3 layouts)."""
        from ..layers import registry
        from .model import _normalize_layer_entry
        if isinstance(config, list):   # very old Keras: the config is the list of layers
            config = {"layers": config}
        entries = config.get("layers")
        if not isinstance(entries, list):
            raise InvalidArgumentError("Sequential config: 'layers' must be a list")
        model = cls(name=config.get("name"))
        objects = {"Functional": Model, "Model": Model, "Sequential": Sequential}
        objects.update(custom_objects or {})
        for entry in entries:
            if not isinstance(entry, dict):
                raise InvalidArgumentError(f"Sequential config: malformed layer entry {entry!r}")
            entry = _normalize_layer_entry(entry)
            if entry["class_name"] in ("Functional", "Model", "Sequential") and \
                    entry["class_name"] not in (custom_objects or {}):
                layer = objects[entry["class_name"]].from_config(entry["config"], custom_objects=custom_objects)
            else:
                layer = registry.deserialize(entry, custom_objects=objects)
            model.add(layer)
        shape = config.get("build_input_shape")
        if model._network is None and shape is not None and model._stack:
            model.build(tuple(shape))
        return model
