"""`Input` and `InputLayer`: the source of a functional model's KerasTensors."""
from ..engine import dtypes as _dt
from ..engine.graph import TensorShape
from ..errors import InvalidArgumentError
from .base import KerasTensor, Layer, Node, unique_layer_name


class InputLayer(Layer):
    """The layer behind `Input()`: holds the batch shape and dtype of a model input.

    Args:
        input_shape: the shape without the batch dimension.
        batch_size: a fixed batch size (default None: any).
        dtype: the input dtype (default "float32").
        sparse, ragged: must be False (kept for Keras configs).
        name: default "input_1", "input_2", ...
        batch_input_shape: the full shape including the batch dimension (instead of input_shape).

    Raises:
        InvalidArgumentError: no shape, or sparse/ragged input requested.
    """

    def __init__(self, input_shape=None, batch_size=None, dtype=None, input_tensor=None, sparse=False,
                 name=None, ragged=False, batch_input_shape=None, optional=False, **kwargs):
        if input_tensor is not None:
            raise InvalidArgumentError(f"InputLayer {name or ''}: input_tensor is not supported; use shape=")
        if sparse or ragged:
            raise InvalidArgumentError(f"InputLayer {name or ''}: sparse and ragged inputs are not supported")
        if batch_input_shape is None:
            if input_shape is None:
                raise InvalidArgumentError("InputLayer needs input_shape or batch_input_shape")
            if isinstance(input_shape, int):
                input_shape = (input_shape,)
            batch_input_shape = (batch_size,) + tuple(input_shape)
        name = name or unique_layer_name("input", zero_based=False)
        super().__init__(name=name, dtype=dtype or "float32", **kwargs)
        self._batch_input_shape = tuple(None if d is None else int(d) for d in batch_input_shape)
        self.sparse, self.ragged = False, False
        self.is_placeholder = True
        self.built = True
        kt = KerasTensor(TensorShape(self._batch_input_shape), _dt.as_dtype(self._dtype), name=name,
                         keras_history=(self, 0, 0))
        self._inbound_nodes.append(Node(self, (), {}, kt))

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {"batch_input_shape": list(self._batch_input_shape), "dtype": self._dtype, "sparse": False,
                "ragged": False, "name": self.name, "optional": False}


def Input(shape=None, batch_size=None, name=None, dtype=None, sparse=False, tensor=None, ragged=False,
          batch_shape=None, **kwargs):
    """A symbolic model input: ``x = Input(shape=(8, 8)); y = Dense(3)(Flatten()(x))``.

    Args:
        shape: the shape of one example (no batch dimension); None entries for variable sizes.
        batch_size: optional fixed batch size.
        name: the input's name (default "input_1", ...); feeds dicts by this name.
        dtype: default "float32".
        batch_shape: the full shape including the batch dimension (instead of shape).

    Returns:
        A KerasTensor.
    """
    if tensor is not None:
        raise InvalidArgumentError("Input(tensor=...) is not supported; pass shape= and feed the values")
    if shape is None and batch_shape is None:
        raise InvalidArgumentError("Input() needs shape= or batch_shape=")
    if isinstance(shape, int):
        shape = (shape,)
    layer = InputLayer(input_shape=shape, batch_size=batch_size, dtype=dtype, name=name, sparse=sparse,
                       ragged=ragged, batch_input_shape=batch_shape)
    return layer._inbound_nodes[0].outputs
