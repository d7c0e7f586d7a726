"""The functional API's symbolic side: `KerasTensor` (a shape, a dtype and the layer call that made it)
and `Node` (one call of a layer on KerasTensors).

Re-exported by `kestimator.layers.base`; import from there.
"""
from ..engine import dtypes as _dt
from ..engine.graph import TensorShape
from . import _nest
from ._context import unique_layer_name

class KerasTensor:
    """A symbolic tensor of the functional API: a shape (batch dim None), a dtype and where it came from."""

    __array_priority__ = 100

    def __init__(self, shape, dtype="float32", name=None, keras_history=None, sparse=False):
        self.shape = shape if isinstance(shape, TensorShape) else TensorShape(shape)
        self.dtype = _dt.as_dtype(dtype)
        self.name = name
        self._keras_history = keras_history
        self.sparse = sparse

    def get_shape(self):
        return self.shape

    @property
    def ndim(self):
        return self.shape.ndims

    @property
    def node(self):
        layer, node_index, _ = self._keras_history
        return layer._inbound_nodes[node_index]

    def __repr__(self):
        return (f"<KerasTensor shape={tuple(self.shape)} dtype={self.dtype.name} name={self.name!r}"
                + (f" (created by layer {self._keras_history[0].name!r})>" if self._keras_history else ">"))

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __bool__(self):
        raise TypeError(f"a KerasTensor ({self.name}) is symbolic and has no truth value")

    def __iter__(self):
        raise TypeError(f"a KerasTensor ({self.name}) is symbolic and not iterable")

    def __len__(self):
        raise TypeError(f"a KerasTensor ({self.name}) is symbolic; len() is not defined")


def _install_keras_tensor_operators():
    from ..engine.ops import overloads

    def make(fn_name, fn):
        def method(self, *args):
            from .lambda_layer import TFOpLambda
            return TFOpLambda(fn, name=unique_layer_name(f"tf.__operators__.{fn_name.strip('_')}"))(self, *args)
        method.__name__ = fn_name
        return method
    for name, fn in overloads._OPERATORS.items():
        setattr(KerasTensor, name, make(name, fn))


_install_keras_tensor_operators()


class Node:
    """One call of a layer on KerasTensors: the arguments as given and the outputs produced."""

    def __init__(self, layer, call_args, call_kwargs, outputs):
        self.layer = layer
        self.call_args = tuple(call_args)
        self.call_kwargs = dict(call_kwargs)
        self.outputs = outputs
        self.input_tensors = [x for x in _nest.flatten((self.call_args, self.call_kwargs))
                              if isinstance(x, KerasTensor)]
        self.output_tensors = [x for x in _nest.flatten(outputs) if isinstance(x, KerasTensor)]

    @property
    def inbound_layers(self):
        return [t._keras_history[0] for t in self.input_tensors]

    @property
    def parent_nodes(self):
        return [t.node for t in self.input_tensors if t._keras_history is not None]

    def map_arguments(self, lookup):
        """(args, kwargs) of this call with every KerasTensor replaced by `lookup(keras_tensor)`."""
        def sub(x):
            return lookup(x) if isinstance(x, KerasTensor) else x
        args = _nest.map_structure(sub, list(self.call_args))
        kwargs = {k: _nest.map_structure(sub, v) for k, v in self.call_kwargs.items()}
        return args, kwargs

    def __repr__(self):
        return f"<Node of layer {self.layer.name!r}: {len(self.input_tensors)} inputs>"


def _is_symbolic(structure):
    return any(isinstance(x, KerasTensor) for x in _nest.flatten(structure))
