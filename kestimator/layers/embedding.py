"""Embedding: integer ids -> rows of a learned (input_dim, output_dim) matrix."""
from ..engine.ops import array_ops as _a
from ..engine.ops.core import cast
from ..engine import dtypes as _dt
from ..errors import InvalidArgumentError
from . import _serialize as S
from .base import Layer


class Embedding(Layer):
    """``Embedding(input_dim, output_dim)``: (batch, ...) ids in [0, input_dim) -> (batch, ..., output_dim).

    Args:
        input_dim: vocabulary size; output_dim: embedding size.
        embeddings_initializer: default "uniform" (RandomUniform(-0.05, 0.05)).
        mask_zero: kept for configs; masks are not propagated to later layers.
        input_length: the length of the id sequences, when fixed.
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 activity_regularizer=None, embeddings_constraint=None, mask_zero=False, input_length=None,
                 **kwargs):
        if "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            # tf.keras records the (possibly unknown) sequence length as the input shape
            kwargs["input_shape"] = (input_length,) if not isinstance(input_length, (list, tuple)) \
                else tuple(input_length)
        kwargs.setdefault("dtype", "float32")
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        if self.input_dim <= 0 or self.output_dim <= 0:
            raise InvalidArgumentError(f"Embedding {self.name!r}: input_dim and output_dim must be positive, got "
                                       f"{input_dim} and {output_dim}")
        self.embeddings_initializer = S.get_initializer(embeddings_initializer)
        self.embeddings_regularizer = S.get_regularizer(embeddings_regularizer)
        self.embeddings_constraint = S.get_constraint(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)

    def _convert_inputs(self, inputs):
        from ..engine.ops.core import convert_to_tensor
        import numpy as np
        if hasattr(inputs, "dtype") and not isinstance(inputs, np.ndarray):
            return convert_to_tensor(inputs)
        arr = np.asarray(inputs)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.int32)
        return convert_to_tensor(arr)

    def call(self, inputs):
        if not inputs.dtype.is_integer:
            inputs = cast(inputs, _dt.int32)
        return _a.gather(self.embeddings, inputs)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        from ..engine.ops.math_ops import not_equal
        return not_equal(inputs, 0)

    def get_config(self):
        config = super().get_config()
        config.update({
            "input_dim": self.input_dim, "output_dim": self.output_dim,
            "embeddings_initializer": S.serialize_initializer(self.embeddings_initializer),
            "embeddings_regularizer": S.serialize_regularizer(self.embeddings_regularizer),
            "activity_regularizer": S.serialize_regularizer(self.activity_regularizer),
            "embeddings_constraint": S.serialize_constraint(self.embeddings_constraint),
            "mask_zero": self.mask_zero, "input_length": self.input_length})
        return config
