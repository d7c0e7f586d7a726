"""`Model`: a functional model (``Model(inputs, outputs)``) or a subclassed one (override `call`).

A Model is a Layer, so models nest. Its training API (compile, fit, evaluate, predict) comes from
`training.TrainingMixin`; saving from `saving`.
"""
import json

from ..errors import InvalidArgumentError
from ..layers import _nest
from ..layers.base import KerasTensor, Layer
from . import functional as _fn
from .training import TrainingMixin

KERAS_VERSION = "2.15.0"   # the tf.keras config dialect these files speak


class Model(TrainingMixin, Layer):
    """A model: ``Model(inputs, outputs, name=None)`` from KerasTensors, or a subclass defining `call`.

    Args:
        inputs: a KerasTensor from `Input`, or a list / dict of them.
        outputs: KerasTensor(s) computed from `inputs` by layer calls.
        name: the model name (default "model", "model_1", ...).

    Raises:
        InvalidArgumentError: outputs that cannot be computed from the inputs.
    """

    def __init__(self, *args, **kwargs):
        inputs = kwargs.pop("inputs", None)
        outputs = kwargs.pop("outputs", None)
        if args:
            inputs = args[0]
            if len(args) > 1:
                outputs = args[1]
            if len(args) > 2:
                raise InvalidArgumentError("Model takes at most (inputs, outputs) positionally")
        name = kwargs.pop("name", None)
        trainable = kwargs.pop("trainable", True)
        Layer.__init__(self, name=name, trainable=trainable, **kwargs)
        self._network = None
        self._output_structure = None
        self._input_structure = None
        self._training_init()
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise InvalidArgumentError("a functional Model needs both inputs and outputs")
            self._init_graph_network(inputs, outputs)

    def _default_name(self):
        return "model" if type(self) is Model else super()._default_name()

    # -- functional structure ---------------------------------------------------------------------------------
    def _init_graph_network(self, inputs, outputs):
        self._input_structure = inputs
        self._output_structure = outputs
        flat_in = list(inputs.values()) if isinstance(inputs, dict) else _nest.flatten(inputs)
        flat_out = list(outputs.values()) if isinstance(outputs, dict) else _nest.flatten(outputs)
        self._network = _fn.GraphNetwork(flat_in, flat_out)
        self._layers = list(self._network.layers)
        self.inputs = flat_in
        self.outputs = flat_out
        if isinstance(inputs, dict):
            self.input_names = list(inputs.keys())
        else:
            self.input_names = [t._keras_history[0].name for t in flat_in]
        if isinstance(outputs, dict):
            self.output_names = list(outputs.keys())
        else:
            names, seen = [], {}
            for t in flat_out:
                base = t._keras_history[0].name
                k = seen.get(base, 0)
                seen[base] = k + 1
                names.append(base if k == 0 else f"{base}_{k}")
            self.output_names = names
        self.built = True
        self._reset_runtime()

    def _is_graph_network(self):
        return self._network is not None

    @property
    def input_names(self):
        if self._network is None:
            return getattr(self, "_subclass_input_names", ["input_1"])
        return self._input_names

    @input_names.setter
    def input_names(self, value):
        self._input_names = list(value)

    @property
    def output_names(self):
        if self._network is None:
            return getattr(self, "_subclass_output_names", ["output_1"])
        return self._output_names

    @output_names.setter
    def output_names(self, value):
        self._output_names = list(value)

    @property
    def layers(self):
        return list(self._layers)

    def _io(self, which):
        tensors = getattr(self, which, None)
        if self._network is None or not tensors:
            raise InvalidArgumentError(f"model {self.name!r} has no known {which} (it is not built from Input)")
        return tensors[0] if len(tensors) == 1 else list(tensors)

    @property
    def input(self):
        return self._io("inputs")

    @property
    def output(self):
        return self._io("outputs")

    @property
    def input_shape(self):
        x = self._io("inputs")
        return tuple(x.shape) if not isinstance(x, list) else [tuple(t.shape) for t in x]

    @property
    def output_shape(self):
        x = self._io("outputs")
        return tuple(x.shape) if not isinstance(x, list) else [tuple(t.shape) for t in x]

    def get_layer(self, name=None, index=None):
        """The layer called `name` (or at position `index`).

        Raises:
            InvalidArgumentError: no such layer.
        """
        if index is not None:
            if not -len(self._layers) <= index < len(self._layers):
                raise InvalidArgumentError(f"model {self.name!r} has {len(self._layers)} layers; no index {index}")
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise InvalidArgumentError(f"no layer named {name!r} in model {self.name!r}; layers: "
                                   f"{[l.name for l in self._layers]}")

    # -- calling ------------------------------------------------------------------------------------------------
    def _flatten_call_inputs(self, inputs):
        n = len(self.inputs)
        if isinstance(inputs, dict):
            missing = [k for k in self.input_names if k not in inputs]
            if missing:
                raise InvalidArgumentError(f"model {self.name!r}: inputs {missing} missing from the dict "
                                           f"(keys {sorted(inputs)})")
            return [inputs[k] for k in self.input_names]
        flat = _nest.flatten(inputs)
        if len(flat) != n:
            raise InvalidArgumentError(f"model {self.name!r} expects {n} inputs {self.input_names}, got {len(flat)}")
        return flat

    def __call__(self, *args, **kwargs):
        """On KerasTensors: a node of a larger model; on graph tensors: the output tensors; on arrays
        (NumPy, lists, eager tensors): the outputs computed now, as eager tensors (`.numpy()`)."""
        from ..engine.eager import EagerTensor
        from ..engine.graph import Tensor
        inputs = args[0] if args else kwargs.get("inputs")
        leaves = _nest.flatten(inputs)
        concrete = leaves and not any(isinstance(x, (KerasTensor, Tensor)) or
                                      (hasattr(x, "_as_tensor") and not hasattr(x, "numpy")) for x in leaves)
        if not concrete:
            return Layer.__call__(self, *args, **kwargs)
        training = kwargs.get("training")
        if training:
            # a training-mode call runs eagerly on the weights' current values
            from ..losses.keras_losses import execution_mode
            self._reset_runtime()
            with execution_mode(True):
                return Layer.__call__(self, *args, **kwargs)
        if self._network is not None and isinstance(self._input_structure, dict) and isinstance(inputs, dict):
            arrays = [inputs[k] for k in self.input_names]
        else:
            arrays = _nest.flatten(inputs)
        arrays = [x.numpy() if hasattr(x, "numpy") else x for x in arrays]
        out = self.predict_on_batch(arrays if len(arrays) > 1 else arrays[0])
        return _nest.map_structure(lambda a: EagerTensor(a), out)

    def call(self, inputs, training=None, mask=None):
        """Run the functional graph on `inputs` (engine tensors); subclasses override this."""
        if self._network is None:
            raise InvalidArgumentError(f"model {self.name!r} ({type(self).__name__}) must define call() or be "
                                       "built from inputs and outputs")
        outs = self._network.run(self._flatten_call_inputs(inputs), training=training)
        if isinstance(self._output_structure, dict):
            return dict(zip(self.output_names, outs))
        return _nest.pack_sequence_as(self._output_structure, outs)

    def _call_flat(self, input_tensors, training):
        """The model's outputs on engine tensors, as a flat list (used by the runtime)."""
        if self._network is not None and isinstance(self._input_structure, dict):
            structure = dict(zip(self.input_names, input_tensors))
        else:
            structure = input_tensors[0] if len(input_tensors) == 1 else list(input_tensors)
        out = self(structure, training=training)
        if isinstance(out, dict) and self._network is None:
            self._subclass_output_names = list(out.keys())
            return list(out.values())
        flat = _nest.flatten(out)
        if self._network is None:
            self._subclass_output_names = [f"output_{i + 1}" for i in range(len(flat))]
        return flat

    def _note_subclass_inputs(self, data):
        """A subclassed model learns how many inputs it has (and their names) from the first data."""
        if self._network is not None or hasattr(self, "_subclass_input_names"):
            return
        if isinstance(data, dict):
            self._subclass_input_names = list(data)
        elif isinstance(data, (list, tuple)) and len(data) > 1 and all(hasattr(a, "shape") for a in data):
            self._subclass_input_names = [f"input_{i + 1}" for i in range(len(data))]

    def build(self, input_shape):
        """Create the weights of a subclassed model by running `call` on placeholders of `input_shape`."""
        if self._network is not None or self.built:
            self.built = True
            return
        from ..engine.graph import Graph
        from ..engine.ops.core import placeholder
        from ..layers.base import _graph_mode
        scratch = Graph()
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        with _graph_mode(), scratch.as_default():
            phs = [placeholder(self._dtype, tuple(s)) for s in shapes]
            self.built = True
            self.call(phs[0] if len(phs) == 1 else phs)

    def _ensure_built(self, arrays=None):
        """Build a subclassed model from the shapes of the first data it sees."""
        if self._network is None and not self.built and arrays is not None:
            import numpy as np
            shapes = [(None,) + tuple(np.shape(a))[1:] for a in arrays]
            self.build(shapes[0] if len(shapes) == 1 else shapes)

    # -- summary ----------------------------------------------------------------------------------------------
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False):
        """Print a table of the layers, their output shapes and parameter counts (as Keras does)."""
        from .summary import print_summary
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      expand_nested=expand_nested, show_trainable=show_trainable)

    # -- config ----------------------------------------------------------------------------------------------
    def get_config(self):
        """The functional config (tf.keras 2 layout): layers with their inbound nodes, input and output
        layers. A subclassed model has no such config.

        Raises:
            InvalidArgumentError: a subclassed model (use save_weights, or define get_config/from_config).
        """
        if self._network is None:
            raise InvalidArgumentError(f"model {self.name!r} is a subclassed model; it has no functional config "
                                       "(implement get_config/from_config, or use save_weights)")
        from ..layers import registry
        net = self._network
        layers = []
        for layer in net.layers:
            entry = registry.serialize(layer) if not isinstance(layer, Model) else \
                {"class_name": layer._keras_class_name(), "config": layer.get_config()}
            entry = {"class_name": entry["class_name"], "config": entry["config"], "name": layer.name,
                     "inbound_nodes": _fn.serialize_nodes(net, layer)}
            layers.append(entry)
        cfg = {"name": self.name, "trainable": self.trainable, "layers": layers,
               "input_layers": _fn.tensor_refs(net, self.inputs),
               "output_layers": _fn.tensor_refs(net, self.outputs)}
        if isinstance(self._input_structure, dict):
            cfg["input_layers"] = dict(zip(self.input_names, cfg["input_layers"]))
        if isinstance(self._output_structure, dict):
            cfg["output_layers"] = dict(zip(self.output_names, cfg["output_layers"]))
        return cfg

    def _keras_class_name(self):
        return "Functional" if type(self) is Model else type(self).__name__

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A functional model from `get_config()` output (tf.keras 2 or Keras 3 layouts).

        Raises:
            UnsafeFileError: a layer class that is neither registered nor in `custom_objects`.
            InvalidArgumentError: a malformed config.
        """
        if "layers" not in config or "input_layers" not in config:
            if cls is Model:
                raise InvalidArgumentError("a Model config needs 'layers', 'input_layers' and 'output_layers'")
            return cls(**config)
        inputs, outputs, name = _build_from_config(config, custom_objects)
        model = cls(inputs=inputs, outputs=outputs, name=name)
        if config.get("trainable") is False:
            model.trainable = False
        return model

    def to_json(self, **kwargs):
        """The model config as a JSON string (model_from_json reads it back)."""
        return json.dumps({"class_name": self._keras_class_name(), "config": self.get_config(),
                           "keras_version": KERAS_VERSION, "backend": "tensorflow"}, **kwargs)

    def to_yaml(self, **kwargs):
        raise InvalidArgumentError("to_yaml() was removed from Keras (it could run code on load); use to_json()")

    # -- saving -----------------------------------------------------------------------------------------------
    def save(self, filepath, overwrite=True, include_optimizer=True, save_format=None, **kwargs):
        """Save config, weights and optimizer state to a Keras .h5 file (written atomically)."""
        from .saving import save_model
        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer,
                   save_format=save_format)

    def save_weights(self, filepath, overwrite=True, save_format=None, options=None):
        """Save the weights: Keras's h5 layout for a ".h5" path, else a kestimator checkpoint file
        (weights and optimizer state)."""
        from .saving import save_weights
        save_weights(self, filepath, overwrite=overwrite, save_format=save_format)

    def load_weights(self, filepath, by_name=False, skip_mismatch=False, options=None):
        """Load weights saved by save_weights (either format) or from a Keras .h5 model/weights file."""
        from .saving import load_weights
        return load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)


def _build_from_config(config, custom_objects):
    """(inputs, outputs, name) of a functional model described by a config."""
    from ..layers import registry
    from .sequential import Sequential
    objects = {"Functional": Model, "Model": Model, "Sequential": Sequential}
    objects.update(custom_objects or {})
    layers_cfg = config["layers"]
    if not isinstance(layers_cfg, list):
        raise InvalidArgumentError("model config: 'layers' must be a list")
    created, order = {}, []
    for entry in layers_cfg:
        if not isinstance(entry, dict):
            raise InvalidArgumentError(f"model config: malformed layer entry {entry!r}")
        entry_cfg = _normalize_layer_entry(entry)
        cls_name = entry_cfg["class_name"]
        if cls_name in ("Functional", "Model", "Sequential") and cls_name not in (custom_objects or {}):
            layer = objects[cls_name].from_config(entry_cfg["config"], custom_objects=custom_objects)
        else:
            layer = registry.deserialize(entry_cfg, custom_objects=objects)
        name = entry.get("name") or entry_cfg["config"].get("name") or layer.name
        if name in created:
            raise InvalidArgumentError(f"model config: two layers are named {name!r}")
        created[name] = layer
        order.append((name, layer, list(entry.get("inbound_nodes") or [])))
    outputs_by_node = {}
    for name, layer, _ in order:
        if getattr(layer, "is_placeholder", False):
            outputs_by_node[(name, 0)] = _nest.flatten(layer._inbound_nodes[0].outputs)

    def lookup(lname, ni, ti):
        outs = outputs_by_node[(lname, ni)]   # KeyError: not computed yet
        if ti >= len(outs):
            raise InvalidArgumentError(f"model config: layer {lname!r} node {ni} has no output {ti}")
        return outs[ti]

    keras3 = any(isinstance(n, dict) for _, _, nodes in order for n in nodes)
    pending = {name: list(nodes) for name, _, nodes in order}
    done_count = {name: (1 if getattr(layer, "is_placeholder", False) else _fn.first_node_number(layer, keras3))
                  for name, layer, _ in order}
    progress = True
    while progress and any(pending.values()):
        progress = False
        for name, layer, _ in order:
            queue = pending[name]
            while queue:
                try:
                    args, kwargs = _fn.decode_node(queue[0], lookup, name)
                except KeyError:
                    break
                out = layer(*args, **kwargs)
                outputs_by_node[(name, done_count[name])] = _nest.flatten(out)
                done_count[name] += 1
                queue.pop(0)
                progress = True
    if any(pending.values()):
        stuck = [n for n, q in pending.items() if q]
        raise InvalidArgumentError(f"model config: cannot connect layers {stuck}: their inputs are never produced")

    def resolve(spec, what):
        refs = _fn.parse_refs(spec, what)
        keys = [k for k, _ in refs]
        tensors = []
        for _, (lname, ni, ti) in refs:
            try:
                tensors.append(lookup(lname, ni, ti))
            except KeyError:
                raise InvalidArgumentError(f"model config: {what} refers to layer {lname!r} node {ni}, which "
                                           "does not exist") from None
        if all(k is not None for k in keys) and keys:
            return dict(zip(keys, tensors))
        return tensors
    inputs = resolve(config["input_layers"], "input_layers")
    outputs = resolve(config["output_layers"], "output_layers")
    if isinstance(inputs, list) and len(inputs) == 1 and not _is_list_form(config["input_layers"]):
        inputs = inputs[0]
    if isinstance(outputs, list) and len(outputs) == 1 and not _is_list_form(config["output_layers"]):
        outputs = outputs[0]
    return inputs, outputs, config.get("name")


def _is_list_form(spec):
    return isinstance(spec, list) and bool(spec) and isinstance(spec[0], list) and len(spec) > 1


# Keras 3 arguments that mean "feature not used" when null; tf.keras 2 configs never have them.
_KERAS3_NULL_KEYS = ("quantization_config", "input_axes", "output_axes", "lora_rank", "lora_alpha")


def _drop_keras3_nulls(value):
    if isinstance(value, dict):
        return {k: _drop_keras3_nulls(v) for k, v in value.items()
                if not (k in _KERAS3_NULL_KEYS and v is None)}
    if isinstance(value, list):
        return [_drop_keras3_nulls(v) for v in value]
    return value


def _normalize_layer_entry(entry):
    """Keras 3 / tf.keras 2 differences the layer classes need not know about."""
    cls_name = entry.get("class_name")
    cfg = _drop_keras3_nulls(dict(entry.get("config") or {}))
    if cls_name == "InputLayer":
        if "batch_shape" in cfg and "batch_input_shape" not in cfg:
            cfg["batch_input_shape"] = cfg.pop("batch_shape")
        cfg.pop("optional", None)
    return {"class_name": cls_name, "config": cfg}


def is_keras_tensor(x):
    return isinstance(x, KerasTensor)
