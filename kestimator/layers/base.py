"""The Keras layer base: `Weight`, `Layer`, `InputSpec`, and the symbolic `KerasTensor` / `Node` pair.

Stable interface (kestimator/models builds on it; keep it stable):

Weight -- one Keras variable (``layer.kernel``):
    .name "dense/kernel:0"   .shape TensorShape   .dtype DType   .trainable   .initializer / .regularizer /
    .constraint   .numpy() -> a copy of the current value (the live session value while attached)
    .assign(value)   .variable(graph=None) -> the engine `ke.Variable` of this weight in `graph` (default:
    the default graph), created on first use with an initializer that reads the weight's value at
    initialization time; trainable weights go in slab_group "trainable".
    ._as_tensor() -> that Variable's tensor (graph mode) or an eager tensor (eager mode), so a Weight can
    be used directly in engine ops.   ._attach(session, variable) / ._detach() bind / unbind the live value.

Layer:
    __init__(trainable=True, name=None, dtype=None, input_shape / batch_input_shape / batch_size /
    input_dim, activity_regularizer=None)   build(input_shape)   call(inputs, training=None[, mask])
    __call__: KerasTensors in -> a Node in `layer._inbound_nodes` and KerasTensors out (output spec traced
    on placeholders in a private scratch graph); engine tensors / eager tensors / arrays in -> `call`'s
    engine tensors out.   add_weight(name, shape, dtype=None, initializer=None, regularizer=None,
    trainable=True, constraint=None)   weights / trainable_weights / non_trainable_weights (Keras's order)
    get_weights() / set_weights()   count_params()   get_config() / from_config()   compute_output_shape
    trainable (setter freezes the layer and its sub-layers)   graph_losses(graph=None) (regularizer
    losses of the weights + activity losses added in that graph)   graph_updates(graph=None) (update ops
    such as BatchNormalization's moving averages added in that graph)   add_loss(t) / add_update(op)
    input / output / input_shape / output_shape (from the first inbound node).

KerasTensor: .shape (TensorShape, batch None) .dtype .name ._keras_history = (layer, node_index,
    tensor_index); Python operators (x + y, x * 2, x[:, 0]) wrap the engine function in a TFOpLambda layer.
Node: .layer .call_args .call_kwargs .outputs (structure) .input_tensors / .output_tensors (flat KerasTensors)
    .map_arguments(lookup) -> (args, kwargs) with each KerasTensor replaced by lookup(keras_tensor).

Helpers: `set_random_seed(seed)` (weights' NumPy generator and random layers' op seeds), `reset_uids()`
(fresh layer names, as `clear_session`), `layer_name_scope(name)` (prefix weight names, e.g. for
subclassed models), `learning_phase_scope(value)`.

Weight lives in weight.py, KerasTensor and Node in keras_tensor.py, the process-wide state in _context.py;
all of them are re-exported here, so `from kestimator.layers.base import ...` is the one import path.
"""
import contextlib
import inspect

import numpy as np

from .. import _formats
from ..engine import dtypes as _dt
from ..engine import eager as _eager
from ..engine.eager import EagerTensor
from ..engine.graph import Graph, Tensor, TensorShape, get_default_graph
from ..errors import InvalidArgumentError
from . import _nest
from . import _serialize
from ._context import (_eager_mode, _graph_mode, _graph_state, _scope_stack, _training_stack,  # noqa: F401
                       layer_name_scope, learning_phase_scope, reset_uids, set_random_seed, to_snake_case,
                       unique_layer_name)
from .keras_tensor import KerasTensor, Node, _is_symbolic  # noqa: F401
from .weight import Weight, _sample  # noqa: F401


# -- input specs ---------------------------------------------------------------------------------------
class InputSpec:
    """What a layer accepts: rank (`ndim`, `min_ndim`, `max_ndim`), fixed sizes of some `axes`, `dtype`."""

    def __init__(self, dtype=None, shape=None, ndim=None, max_ndim=None, min_ndim=None, axes=None,
                 allow_last_axis_squeeze=False, name=None):
        self.dtype = dtype
        self.shape = tuple(shape) if shape is not None else None
        self.ndim = len(self.shape) if self.shape is not None else ndim
        self.max_ndim, self.min_ndim = max_ndim, min_ndim
        self.axes = dict(axes or {})
        self.name = name

    def __repr__(self):
        return (f"InputSpec(ndim={self.ndim}, min_ndim={self.min_ndim}, max_ndim={self.max_ndim}, "
                f"axes={self.axes})")


def _shape_of(x):
    s = getattr(x, "shape", None)
    if s is None:
        s = np.shape(x)
    return s if isinstance(s, TensorShape) else TensorShape(tuple(s))


def _check_spec(layer, spec, x, index):
    shape = _shape_of(x)
    rank = shape.ndims
    where = f"input {index} of layer {layer.name!r} ({type(layer).__name__})"
    if rank is None:
        return
    if spec.ndim is not None and rank != spec.ndim:
        raise InvalidArgumentError(f"{where} is incompatible: expected ndim={spec.ndim}, found ndim={rank}; "
                                   f"full shape received: {tuple(shape)}")
    if spec.min_ndim is not None and rank < spec.min_ndim:
        raise InvalidArgumentError(f"{where} is incompatible: expected min_ndim={spec.min_ndim}, found "
                                   f"ndim={rank}; full shape received: {tuple(shape)}")
    if spec.max_ndim is not None and rank > spec.max_ndim:
        raise InvalidArgumentError(f"{where} is incompatible: expected max_ndim={spec.max_ndim}, found "
                                   f"ndim={rank}; full shape received: {tuple(shape)}")
    for axis, size in spec.axes.items():
        got = shape[axis] if -rank <= axis < rank else None
        if size is not None and got is not None and got != size:
            raise InvalidArgumentError(f"{where} is incompatible: expected axis {axis} to have value {size}, "
                                       f"got shape {tuple(shape)}")
    if spec.shape is not None:
        for i, (want, got) in enumerate(zip(spec.shape, shape)):
            if want is not None and got is not None and want != got:
                raise InvalidArgumentError(f"{where} is incompatible: expected shape {spec.shape}, got "
                                           f"{tuple(shape)}")


# -- Layer -----------------------------------------------------------------------------------------------
_NOT_TRACKED = {"_inbound_nodes", "_outbound_nodes", "_layers", "_own_weights", "input_spec"}
_BASE_KWARGS = {"input_shape", "batch_input_shape", "batch_size", "input_dim", "weights", "autocast",
                "input_length", "dynamic"}


def _dtype_name(dtype):
    if dtype is None:
        return "float32"
    if isinstance(dtype, dict):        # a mixed-precision policy config: {"class_name": "Policy", ...}
        dtype = (dtype.get("config") or {}).get("name", "float32")
    if isinstance(dtype, str) and dtype.startswith("mixed_"):
        raise InvalidArgumentError(f"mixed-precision policy {dtype!r} is not supported")
    return _dt.as_dtype(dtype).name


class Layer:
    """Base class of every Keras layer: stores its arguments, creates weights in `build`, computes in `call`.

    Args:
        trainable: whether the layer's weights are trained.
        name: a unique name (default: the snake-case class name, made unique: "dense", "dense_1", ...).
        dtype: the dtype of the weights and computations (default "float32").
        input_shape / batch_input_shape / batch_size / input_dim: the input the layer expects when it is
            the first layer of a Sequential model.
        activity_regularizer: a regularizer applied to the outputs (its value / batch size is a loss).

    Raises:
        InvalidArgumentError: an unknown keyword argument.
    """

    def __init__(self, trainable=True, name=None, dtype=None, activity_regularizer=None, **kwargs):
        unknown = set(kwargs) - _BASE_KWARGS
        if unknown:
            raise InvalidArgumentError(f"{type(self).__name__}: unknown keyword arguments {sorted(unknown)}")
        self._own_weights = []
        self._layers = []
        self._inbound_nodes = []
        self._outbound_nodes = []
        self._name = name or unique_layer_name(self._default_name())
        self._trainable = bool(trainable)
        self._dtype = _dtype_name(dtype)
        self.built = False
        self.input_spec = None
        self.supports_masking = False
        self._build_input_shape = None
        self._eager_losses = []
        self._initial_weights = kwargs.get("weights")
        self.activity_regularizer = _serialize.get_regularizer(activity_regularizer)
        batch_input_shape = kwargs.get("batch_input_shape")
        if batch_input_shape is None:
            input_shape = kwargs.get("input_shape")
            if input_shape is None and kwargs.get("input_dim") is not None:
                input_shape = (kwargs["input_dim"],)
            if input_shape is not None:
                if isinstance(input_shape, int):
                    input_shape = (input_shape,)
                batch_input_shape = (kwargs.get("batch_size"),) + tuple(input_shape)
        self._batch_input_shape = tuple(batch_input_shape) if batch_input_shape is not None else None

    def _default_name(self):
        return to_snake_case(type(self).__name__)

    # -- attribute tracking of sub-layers ----------------------------------------------------------------
    def __setattr__(self, name, value):
        if name not in _NOT_TRACKED:
            layers = self.__dict__.get("_layers")
            if layers is None:
                layers = []
                object.__setattr__(self, "_layers", layers)
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                if isinstance(item, Layer) and item is not self and not any(item is x for x in layers):
                    layers.append(item)
        object.__setattr__(self, name, value)

    def _flatten_layers(self, include_self=True):
        """This layer and its sub-layers, depth first, each once."""
        seen, out = set(), []
        stack = [self] if include_self else list(reversed(self._layers))
        while stack:
            layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            out.append(layer)
            stack.extend(reversed(layer._layers))
        return out

    # -- properties -------------------------------------------------------------------------------------
    @property
    def name(self):
        return self._name

    @property
    def dtype(self):
        return self._dtype

    @property
    def compute_dtype(self):
        return self._dtype

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        for layer in self._flatten_layers():
            layer._trainable = bool(value)

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        out = [w for w in self._own_weights if w.trainable]
        for layer in self._layers:
            out += layer.trainable_weights
        return _dedup(out)

    @property
    def non_trainable_weights(self):
        if self.trainable:
            out = [w for w in self._own_weights if not w.trainable]
            for layer in self._layers:
                out += layer.non_trainable_weights
        else:
            out = [w for w in self._own_weights if w.trainable] + [w for w in self._own_weights if not w.trainable]
            for layer in self._layers:
                out += layer.weights
        return _dedup(out)

    @property
    def weights(self):
        return self.trainable_weights + self.non_trainable_weights

    variables = weights
    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    @property
    def layers(self):
        return list(self._layers)

    # -- weights ----------------------------------------------------------------------------------------
    def add_weight(self, name=None, shape=None, dtype=None, initializer=None, regularizer=None,
                   trainable=None, constraint=None, **kwargs):
        """Create a weight of this layer, sampled now from `initializer`.

        Args:
            name: the weight's short name ("kernel"); its full name is "<scopes>/<layer>/<name>:0".
            shape: a tuple of ints.
            dtype: default the layer's dtype.
            initializer: a name, instance or callable (default glorot_uniform for floats, zeros otherwise).
            regularizer, constraint: names, instances or callables.
            trainable: default True.

        Returns:
            The new Weight.
        """
        shape = tuple(int(d) for d in (shape or ()))
        dt = _dt.as_dtype(dtype or self._dtype)
        if initializer is None:
            initializer = "glorot_uniform" if dt.is_floating else "zeros"
        init = _serialize.get_initializer(initializer)
        if _formats._budget:   # loading a file: its config may not declare weights the file cannot back
            _formats.charge(_formats.declared_nbytes(shape, dt.np), f"weight {name!r} of layer {self.name!r}")
        value = _sample(init, shape, dt)
        name = name or f"weight_{len(self._own_weights)}"
        scopes = _scope_stack()
        if (scopes and scopes[-1] == self.name) or self.__dict__.get("_no_name_scope"):
            path = "/".join(scopes + [name])
        else:
            path = "/".join(scopes + [self.name, name])
        w = Weight(path, value, initializer=init, regularizer=_serialize.get_regularizer(regularizer),
                   constraint=_serialize.get_constraint(constraint),
                   trainable=True if trainable is None else trainable)
        w._owner = self
        self._own_weights.append(w)
        return w

    def get_weights(self):
        """The values of `weights`, as NumPy arrays (copies)."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Set the values of `weights` from a list of arrays, in the same order.

        Raises:
            InvalidArgumentError: wrong number of arrays, or an array of the wrong shape (naming the layer
                and the weight).
        """
        ws = self.weights
        weights = list(weights)
        if len(weights) != len(ws):
            raise InvalidArgumentError(f"layer {self.name!r} expects {len(ws)} weights "
                                       f"({[w.name for w in ws]}), but set_weights got {len(weights)}")
        for w, value in zip(ws, weights):
            arr = np.asarray(value)
            if arr.shape != tuple(w.shape):
                raise InvalidArgumentError(f"layer {self.name!r}: weight {w.name} has shape {tuple(w.shape)}, "
                                           f"but the provided value has shape {arr.shape}")
        for w, value in zip(ws, weights):
            w.assign(value)

    def count_params(self):
        """The number of scalars in the layer's weights.

        Raises:
            InvalidArgumentError: the layer is not built yet.
        """
        if not self.built:
            raise InvalidArgumentError(f"layer {self.name!r} is not built yet, so count_params() is not "
                                       "defined; call it on an input first or call build(input_shape)")
        return int(sum(int(np.prod(tuple(w.shape), dtype=np.int64)) for w in self.weights))

    # -- building and calling -------------------------------------------------------------------------------
    def build(self, input_shape):
        """Create the weights for inputs of `input_shape` (TensorShape, or a list of them)."""
        self.built = True

    def call(self, inputs, *args, **kwargs):
        return inputs

    def _maybe_build(self, inputs):
        if not self.built:
            self._maybe_build_from_shape(_nest.map_structure(_shape_of, inputs))

    def _maybe_build_from_shape(self, input_shape):
        """Build for `input_shape` (a shape or a list of shapes) unless already built."""
        if self.built:
            return
        input_shape = _as_shapes(input_shape)
        self._build_input_shape = input_shape
        self.build(input_shape)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def __init_subclass__(cls, **kwargs):
        # Every subclass's build runs under the layer's name scope (weights get "layer/name:0"), receives
        # TensorShapes and marks the layer built, also when user code calls layer.build(shape) directly.
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("build")
        if build is not None and not getattr(build, "_keras_wrapped", False):
            def wrapped(self, input_shape=None, *args, _build=build, **kw):
                input_shape = _as_shapes(input_shape)
                stack = _scope_stack()
                with contextlib.ExitStack() as ctx:
                    if (not stack or stack[-1] != self.name) and not self.__dict__.get("_no_name_scope"):
                        ctx.enter_context(layer_name_scope(self.name))
                    _build(self, input_shape, *args, **kw)
                self.built = True
            wrapped._keras_wrapped = True
            wrapped.__doc__ = build.__doc__
            wrapped.__name__ = "build"
            cls.build = wrapped

    def _call_accepts(self, name):
        cache = type(self).__dict__.get("_call_params_cache")
        if cache is None:
            params = inspect.signature(self.call).parameters
            var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
            cache = (set(params), var_kw)
            type.__setattr__(type(self), "_call_params_cache", cache)
        return name in cache[0]

    def _check_inputs(self, inputs):
        spec = self.input_spec
        if spec is None:
            return
        specs = spec if isinstance(spec, (list, tuple)) else [spec]
        flat = _nest.flatten(inputs)
        if len(specs) > 1 and len(flat) != len(specs):
            raise InvalidArgumentError(f"layer {self.name!r} expects {len(specs)} inputs, got {len(flat)}")
        for i, (s, x) in enumerate(zip(specs if len(specs) > 1 else specs * len(flat), flat)):
            if s is not None:
                _check_spec(self, s, x, i)

    def __call__(self, *args, **kwargs):
        if not args:
            if "inputs" not in kwargs:
                raise InvalidArgumentError(f"layer {self.name!r} was called without inputs")
            args = (kwargs.pop("inputs"),)
        if _is_symbolic((args, kwargs)):
            return self._symbolic_call(args, kwargs)
        return self._concrete_call(args, kwargs)

    def _convert_inputs(self, inputs):
        from ..engine.ops.core import cast, convert_to_tensor
        dt = _dt.as_dtype(self._dtype)

        def conv(x):
            if x is None or isinstance(x, (Tensor, EagerTensor)):
                t = x
            elif hasattr(x, "_as_tensor"):
                t = x._as_tensor()
            else:
                arr = np.asarray(x)
                if arr.dtype.kind == "f" and arr.dtype != dt.np and dt.is_floating:
                    arr = arr.astype(dt.np)
                t = convert_to_tensor(arr)
            # Keras autocasts floating inputs to the layer's dtype
            if t is not None and t.dtype.is_floating and dt.is_floating and t.dtype != dt:
                t = cast(t, dt)
            return t
        return _nest.map_structure(conv, inputs)

    def _concrete_call(self, args, kwargs):
        inputs = self._convert_inputs(args[0])
        rest = args[1:]
        self._check_inputs(inputs)
        self._maybe_build(inputs)
        training = kwargs.pop("training", None)
        if training is None and _training_stack():
            training = _training_stack()[-1]
        if self._call_accepts("training"):
            kwargs["training"] = training
        if "mask" in kwargs and not self._call_accepts("mask"):
            kwargs.pop("mask")          # masks are not propagated (see the layers' docs)
        eager = _eager.executing_eagerly()
        if eager:
            self._eager_losses = []
        push = [] if training is None else [training]
        with contextlib.ExitStack() as stack:
            for value in push:
                stack.enter_context(learning_phase_scope(value))
            if not eager:
                g = _graph_of(inputs)
                stack.enter_context(g.as_default())
                stack.enter_context(g.name_scope(self.name))
            outputs = self.call(inputs, *rest, **kwargs)
            if self.activity_regularizer is not None:
                self._add_activity_loss(outputs)
        return outputs

    def _add_activity_loss(self, outputs):
        from ..engine.ops.core import cast, shape
        from ..engine.ops.math_ops import divide
        for out in _nest.flatten(outputs):
            if out is None:
                continue
            batch = out.shape[0] if out.shape.ndims else None
            size = float(batch) if batch is not None else cast(shape(out)[0], out.dtype)
            self.add_loss(divide(self.activity_regularizer(out), size))

    def _symbolic_call(self, args, kwargs):
        first = args[0]
        flat_in = _nest.flatten(first)
        # Build from the symbolic shapes (weights must exist before tracing).
        self._check_inputs(first)
        self._maybe_build(first)
        scratch = Graph()
        with _graph_mode(), scratch.as_default():
            def to_placeholder(x):
                if isinstance(x, KerasTensor):
                    from ..engine.ops.core import placeholder
                    return placeholder(x.dtype, x.shape, name="keras_input")
                return x
            p_args = [_nest.map_structure(to_placeholder, a) for a in args]
            p_kwargs = {k: _nest.map_structure(to_placeholder, v) for k, v in kwargs.items()}
            traced = self._concrete_call(p_args, dict(p_kwargs))
        node_index = len(self._inbound_nodes)
        flat_out = _nest.flatten(traced)
        kts = []
        for i, t in enumerate(flat_out):
            if t is None:
                kts.append(None)
                continue
            op_type = t.op.type if isinstance(t, Tensor) else "output"
            kts.append(KerasTensor(t.shape, t.dtype, name=f"{self.name}/{op_type}:{i}",
                                   keras_history=(self, node_index, i)))
        outputs = _nest.pack_sequence_as(traced, kts)
        node = Node(self, args, kwargs, outputs)
        self._inbound_nodes.append(node)
        for x in flat_in:
            if isinstance(x, KerasTensor) and x._keras_history is not None:
                x._keras_history[0]._outbound_nodes.append(node)
        return outputs

    # -- shapes -------------------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        """The output shape for `input_shape`, found by tracing `call` on placeholders."""
        def to_kt(s):
            return KerasTensor(TensorShape(s), self._dtype)
        if isinstance(input_shape, (list, tuple)) and input_shape and \
                isinstance(input_shape[0], (list, tuple, TensorShape)):
            kts = [to_kt(s) for s in input_shape]
        else:
            kts = to_kt(input_shape)
        self._maybe_build(kts)
        scratch = Graph()
        with _graph_mode(), scratch.as_default():
            from ..engine.ops.core import placeholder
            ph = _nest.map_structure(lambda k: placeholder(k.dtype, k.shape), kts)
            out = self._concrete_call([ph], {})
        return _nest.map_structure(lambda t: t.shape, out)

    def _node_attr(self, attr, node_index=0):
        if not self._inbound_nodes:
            raise InvalidArgumentError(f"layer {self.name!r} has never been called, so it has no {attr}")
        node = self._inbound_nodes[node_index]
        if attr == "input":
            vals = node.input_tensors
            return vals[0] if len(vals) == 1 else vals
        return node.outputs

    @property
    def input(self):
        return self._node_attr("input")

    @property
    def output(self):
        return self._node_attr("output")

    @property
    def input_shape(self):
        return _nest.map_structure(lambda t: t.shape, self.input)

    @property
    def output_shape(self):
        return _nest.map_structure(lambda t: t.shape, self.output)

    def get_input_at(self, node_index):
        return self._node_attr("input", node_index)

    def get_output_at(self, node_index):
        return self._node_attr("output", node_index)

    # -- losses and updates ------------------------------------------------------------------------------
    def add_loss(self, loss):
        """Record a scalar loss tensor (an activity regularizer's) for the graph it belongs to."""
        if callable(loss) and not hasattr(loss, "dtype"):
            loss = loss()
        if isinstance(loss, Tensor):
            _graph_state(loss.graph, self)["losses"].append(loss)
        else:
            self._eager_losses.append(loss)

    def add_update(self, update):
        """Record an update op (run with each training step) for the graph it belongs to."""
        if update is None:
            return
        op = update.op if isinstance(update, Tensor) else update
        if hasattr(op, "graph"):
            _graph_state(op.graph, self)["updates"].append(update)

    def _regularization_losses(self, graph):
        st = _graph_state(graph, self)
        if st["reg"] is None:
            st["reg"] = []
            for w in self._own_weights:
                if w.regularizer is None:
                    continue
                with _graph_mode(), graph.as_default(), graph.name_scope(w._path + "/Regularizer/"):
                    loss = w.regularizer(w.variable(graph)._as_tensor())
                if loss is not None:
                    st["reg"].append(loss)
        return st["reg"]

    def graph_losses(self, graph=None):
        """Regularizer losses of this layer's (and sub-layers') weights, plus activity losses added by
        calls in `graph` (default: the default graph), as scalar tensors of that graph."""
        g = graph or get_default_graph()
        out = []
        for layer in self._flatten_layers():
            out += layer._regularization_losses(g)
            out += _graph_state(g, layer)["losses"]
        return out

    def graph_updates(self, graph=None):
        """Update ops added by training calls in `graph` (this layer and its sub-layers)."""
        g = graph or get_default_graph()
        out = []
        for layer in self._flatten_layers():
            out += _graph_state(g, layer)["updates"]
        return out

    @property
    def losses(self):
        """Eager mode: the activity losses of the last call plus the weights' regularizer values; graph
        mode: `graph_losses()` for the default graph."""
        if _eager.executing_eagerly():
            out = []
            for layer in self._flatten_layers():
                out += list(layer._eager_losses)
                out += [w.regularizer(w) for w in layer._own_weights if w.regularizer is not None]
            return out
        return self.graph_losses()

    @property
    def updates(self):
        return self.graph_updates()

    # -- config ------------------------------------------------------------------------------------------
    def get_config(self):
        """Keras's config dict: name, trainable, dtype (and batch_input_shape when given), plus the
        layer's own arguments in subclasses."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": self._dtype}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        """A new layer from `get_config()`'s dict (nested objects are deserialized by the constructor)."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def _is_single_shape(s):
    return isinstance(s, TensorShape) or (isinstance(s, (list, tuple)) and
                                          all(d is None or isinstance(d, (int, np.integer)) for d in s))


def _as_shapes(shape):
    """A TensorShape, or a list of TensorShapes for several inputs."""
    if shape is None:
        return None
    if _is_single_shape(shape):
        return shape if isinstance(shape, TensorShape) else TensorShape(tuple(shape))
    if isinstance(shape, dict):
        return {k: _as_shapes(v) for k, v in shape.items()}
    return [_as_shapes(s) for s in shape]


def _dedup(weights):
    seen, out = set(), []
    for w in weights:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


def _graph_of(inputs):
    for x in _nest.flatten(inputs):
        if isinstance(x, Tensor):
            return x.graph
    return get_default_graph()
