"""Turning features into a model's first tensor: `input_layer` (DNN input) and `linear_model` (logits).

Columns are processed in order of their names, as TF does, so the concatenation order (and the order of
variables) does not depend on the order the caller lists them in.
"""
from ..engine import dtypes as _dt
from ..engine.graph import GraphKeys, get_default_graph
from ..engine.initializers import Zeros
from ..engine.ops.array_ops import concat, expand_dims, gather, reshape
from ..engine.ops.math_ops import add_n, maximum, multiply
from ..engine.ops.reduce_ops import matmul, reduce_sum
from ..engine.variables import get_variable, variable_scope
from ..errors import InvalidArgumentError
from .columns import CategoricalColumn, DenseColumn, FeatureColumn, FeatureTransformationCache
from .dense import id_weights

__all__ = ["input_layer", "linear_model", "GraphStateManager"]


class GraphStateManager:
    """Creates column variables with `get_variable` under `variable_scope(column.name)` in the caller's scope.

    Args:
        trainable: False makes every column variable non-trainable.
        collections: extra graph collections for the variables (TF's weight_collections).
    """

    def __init__(self, trainable=True, collections=None):
        self.trainable = trainable
        self.collections = list(collections or [])
        self._vars = {}
        self.created = {}

    def create_variable(self, column, name, shape, dtype, initializer, trainable=True):
        with variable_scope(column.name):
            collections = [GraphKeys.GLOBAL_VARIABLES, GraphKeys.MODEL_VARIABLES] + self.collections
            var = get_variable(name, shape=list(shape), dtype=dtype, initializer=initializer,
                               trainable=bool(trainable and self.trainable), collections=collections)
        self._vars[(column.name, name)] = var
        self.created.setdefault(column, []).append(var)
        return var

    def get_variable(self, column, name):
        return self._vars.get((column.name, name))


def _sorted_columns(feature_columns, what):
    if isinstance(feature_columns, FeatureColumn):
        feature_columns = [feature_columns]
    cols = list(feature_columns or [])
    if not cols:
        raise InvalidArgumentError(f"{what}: feature_columns must not be empty")
    for c in cols:
        if not isinstance(c, FeatureColumn):
            raise InvalidArgumentError(f"{what}: items of feature_columns must be feature columns, got {c!r}")
    names = [c.name for c in cols]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise InvalidArgumentError(f"{what}: duplicate feature column names {dups}")
    return sorted(cols, key=lambda c: c.name)


def dense_features(features, feature_columns, state, what="input_layer", cols_to_output_tensors=None):
    """The [batch, total] float32 concatenation of the dense columns' outputs."""
    cols = _sorted_columns(feature_columns, what)
    for c in cols:
        if not isinstance(c, DenseColumn):
            raise InvalidArgumentError(
                f"{what}: items of feature_columns must be dense columns; {c.name!r} is a "
                f"{type(c).__name__}. Wrap a categorical column in embedding_column or indicator_column.")
    cache = FeatureTransformationCache(features)
    outputs = []
    for c in cols:
        with get_default_graph().name_scope(c.name.replace(":", "_")):
            t = c.get_dense_tensor(cache, state)
        if cols_to_output_tensors is not None:
            cols_to_output_tensors[c] = t
        outputs.append(t)
    return outputs[0] if len(outputs) == 1 else concat(outputs, axis=1)


def input_layer(features, feature_columns, weight_collections=None, trainable=True, cols_to_vars=None,
                cols_to_output_tensors=None):
    """The input layer of a DNN: dense columns' outputs concatenated along axis 1, in column-name order.

    Args:
        features: dict key -> tensor (or array) of raw features, e.g. the Estimator's features.
        feature_columns: dense columns (numeric, bucketized, indicator, embedding).
        weight_collections: extra collections for the created variables (embedding tables).
        trainable: whether created variables are trainable.
        cols_to_vars: optional dict filled with column -> [variables].
        cols_to_output_tensors: optional dict filled with column -> output tensor.

    Returns:
        float32 tensor [batch, sum of the columns' widths].

    Raises:
        InvalidArgumentError: a categorical column given directly, a missing feature key (names the
            column and the available keys), a feature of the wrong type for its column.
    """
    state = GraphStateManager(trainable, weight_collections)
    with variable_scope(None, default_name="input_layer"):
        out = dense_features(features, feature_columns, state, "input_layer", cols_to_output_tensors)
    if cols_to_vars is not None:
        for c in _sorted_columns(feature_columns, "input_layer"):
            cols_to_vars[c] = state.created.get(c, [])
    return out


def linear_model(features, feature_columns, units=1, sparse_combiner="sum", weight_collections=None,
                 trainable=True, cols_to_vars=None, bias_initializer=None):
    """Logits of a linear model: sum over columns of their weighted inputs, plus a bias.

    Dense columns: [batch, width] @ weights [width, units]. Categorical columns: one weight row per id,
    gathered (no one-hot matrix), combined over a row's ids by `sparse_combiner` ("sum", "mean" or
    "sqrtn") with the id weights. Variables: "<column name>/weights" and "bias_weights" in the current
    variable scope (TF's names under "linear_model").

    Returns:
        float32 tensor [batch, units].
    """
    if sparse_combiner not in ("sum", "mean", "sqrtn"):
        raise InvalidArgumentError(f"linear_model: sparse_combiner must be 'sum', 'mean' or 'sqrtn', "
                                   f"got {sparse_combiner!r}")
    cols = _sorted_columns(feature_columns, "linear_model")
    state = GraphStateManager(trainable, weight_collections)
    cache = FeatureTransformationCache(features)
    parts = []
    with variable_scope(None, default_name="linear_model"):
        for c in cols:
            if isinstance(c, CategoricalColumn):
                parts.append(_categorical_logits(c, cache, state, units, sparse_combiner))
            elif isinstance(c, DenseColumn):
                x = c.get_dense_tensor(cache, state)
                width = 1
                for d in c.variable_shape:
                    width *= int(d)
                w = state.create_variable(c, "weights", (width, units), _dt.float32, Zeros(), True)
                parts.append(matmul(reshape(x, [-1, width]), w))
            else:
                raise InvalidArgumentError(f"linear_model: unsupported column {c!r}")
        bias = get_variable("bias_weights", shape=[units], dtype=_dt.float32,
                            initializer=bias_initializer or Zeros(), trainable=trainable,
                            collections=[GraphKeys.GLOBAL_VARIABLES, GraphKeys.MODEL_VARIABLES]
                            + list(weight_collections or []))
    logits = add_n(parts) if len(parts) > 1 else parts[0]
    if cols_to_vars is not None:
        for c in cols:
            cols_to_vars[c] = state.created.get(c, [])
        cols_to_vars["bias"] = [bias]
    return logits + bias


def _categorical_logits(column, cache, state, units, combiner):
    from ..engine.ops.math_ops import divide, greater, sqrt, where
    ids, weights = column.get_ids(cache, state)
    w = id_weights(ids, weights)                                    # [batch, k], 0 for missing ids
    table = state.create_variable(column, "weights", (column.num_buckets, units), _dt.float32, Zeros(), True)
    rows = gather(table, maximum(ids, 0))                           # [batch, k, units]
    total = reduce_sum(multiply(rows, expand_dims(w, -1)), axis=1)  # [batch, units]
    if combiner == "sum":
        return total
    den = reduce_sum(w, axis=1, keepdims=True) if combiner == "mean" else \
        sqrt(reduce_sum(multiply(w, w), axis=1, keepdims=True))
    positive = greater(den, 0.0)
    return where(positive, divide(total, where(positive, den, den + 1.0)), total)
