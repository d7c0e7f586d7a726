"""Dense views of categorical columns: indicator (multi-hot) and embedding columns.

Both read a categorical column's ids ([batch, k], -1 = no id) and optional weights, and ignore the -1 ids.
"""
import math

from ..engine import dtypes as _dt
from ..engine.initializers import TruncatedNormal
from ..engine.ops.array_ops import expand_dims, gather, one_hot
from ..engine.ops.core import cast
from ..engine.ops.math_ops import greater, greater_equal, maximum, multiply, sqrt, where
from ..engine.ops.math_ops import divide as _divide
from ..engine.ops.reduce_ops import reduce_sum
from ..errors import InvalidArgumentError
from .columns import CategoricalColumn, DenseColumn

__all__ = ["indicator_column", "embedding_column"]


def id_weights(ids, weights):
    """Float32 [batch, k] weights of the ids: 0 where the id is -1, the given weight (or 1) elsewhere."""
    present = cast(greater_equal(ids, 0), _dt.float32)
    return present if weights is None else multiply(present, weights)


class IndicatorColumn(DenseColumn):
    def __init__(self, categorical_column):
        self.categorical_column = categorical_column
        self.name = f"{categorical_column.name}_indicator"
        self.variable_shape = (categorical_column.num_buckets,)

    @property
    def parents(self):
        return [self.categorical_column]

    def get_dense_tensor(self, cache, state):
        def build():
            ids, weights = self.categorical_column.get_ids(cache, state)
            hot = one_hot(ids, self.categorical_column.num_buckets, dtype=_dt.float32)   # [batch, k, n]; -1 -> 0
            if weights is not None:
                hot = multiply(hot, expand_dims(weights, -1))
            return reduce_sum(hot, axis=1)
        return cache.get(self, "dense", build)

    def get_config(self):
        return {"categorical_column": {"column": type(self.categorical_column).__name__,
                                       "config": self.categorical_column.get_config()}}


def indicator_column(categorical_column):
    """Multi-hot [batch, num_buckets] float32: the count (or summed weight) of each id in the row.

    Raises:
        InvalidArgumentError: the argument is not a categorical column.
    """
    if not isinstance(categorical_column, CategoricalColumn):
        raise InvalidArgumentError(f"indicator_column needs a categorical column, got {categorical_column!r}")
    return IndicatorColumn(categorical_column)


class EmbeddingColumn(DenseColumn):
    def __init__(self, categorical_column, dimension, combiner, initializer, max_norm, trainable):
        self.categorical_column, self.dimension, self.combiner = categorical_column, dimension, combiner
        self.initializer, self.max_norm, self.trainable = initializer, max_norm, trainable
        self.name = f"{categorical_column.name}_embedding"
        self.variable_shape = (dimension,)

    @property
    def parents(self):
        return [self.categorical_column]

    def create_state(self, state):
        init = self.initializer or TruncatedNormal(mean=0.0, stddev=1.0 / math.sqrt(self.dimension))
        return state.create_variable(self, "embedding_weights", (self.categorical_column.num_buckets, self.dimension),
                                     _dt.float32, init, self.trainable)

    def get_dense_tensor(self, cache, state):
        def build():
            table = state.get_variable(self, "embedding_weights")
            if table is None:
                table = self.create_state(state)
            ids, weights = self.categorical_column.get_ids(cache, state)
            w = id_weights(ids, weights)                                   # [batch, k]
            safe = maximum(ids, 0)                                         # -1 ids look up row 0, weighted 0
            vectors = gather(table, safe)                                  # [batch, k, d]
            if self.max_norm is not None:
                norms = sqrt(reduce_sum(multiply(vectors, vectors), axis=-1, keepdims=True))
                vectors = multiply(vectors, _divide(self.max_norm, maximum(norms, self.max_norm)))
            total = reduce_sum(multiply(vectors, expand_dims(w, -1)), axis=1)   # [batch, d]
            if self.combiner == "sum":
                return total
            den = reduce_sum(w, axis=1, keepdims=True) if self.combiner == "mean" else \
                sqrt(reduce_sum(multiply(w, w), axis=1, keepdims=True))
            positive = greater(den, 0.0)
            # a row without ids gets a zero vector (TF's safe_embedding_lookup_sparse)
            return where(positive, _divide(total, where(positive, den, den + 1.0)), total)
        return cache.get(self, "dense", build)

    def get_config(self):
        return {"categorical_column": {"column": type(self.categorical_column).__name__,
                                       "config": self.categorical_column.get_config()},
                "dimension": self.dimension, "combiner": self.combiner, "max_norm": self.max_norm,
                "trainable": self.trainable}


def embedding_column(categorical_column, dimension, combiner="mean", initializer=None, ckpt_to_load_from=None,
                     tensor_name_in_ckpt=None, max_norm=None, trainable=True, use_safe_embedding_lookup=True):
    """A trainable [num_buckets, dimension] table; each row's vectors are combined by `combiner`:
    "sum", "mean" (weighted sum / sum of weights) or "sqrtn" (weighted sum / sqrt(sum of squared weights)).

    Args:
        initializer: default truncated normal with stddev 1/sqrt(dimension), as TF.
        max_norm: clip each looked-up vector to this L2 norm.
        ckpt_to_load_from / tensor_name_in_ckpt: not supported (use the Estimator's warm_start_from).

    Raises:
        InvalidArgumentError: not a categorical column, dimension < 1, unknown combiner.
    """
    if not isinstance(categorical_column, CategoricalColumn):
        raise InvalidArgumentError(f"embedding_column needs a categorical column, got {categorical_column!r}")
    if dimension is None or int(dimension) < 1:
        raise InvalidArgumentError(f"embedding_column {categorical_column.name!r}: dimension must be >= 1, "
                                   f"got {dimension}")
    if combiner not in ("mean", "sum", "sqrtn"):
        raise InvalidArgumentError(f"embedding_column {categorical_column.name!r}: combiner must be 'mean', 'sum' "
                                   f"or 'sqrtn', got {combiner!r}")
    if ckpt_to_load_from is not None or tensor_name_in_ckpt is not None:
        raise InvalidArgumentError("embedding_column: ckpt_to_load_from is not supported; use the Estimator's "
                                   "warm_start_from")
    if initializer is not None and not callable(initializer):
        raise InvalidArgumentError("embedding_column: initializer must be callable")
    return EmbeddingColumn(categorical_column, int(dimension), combiner, initializer, max_norm, bool(trainable))
