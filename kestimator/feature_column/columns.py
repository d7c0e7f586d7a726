"""Feature columns: how raw features become model inputs (tf.feature_column names and semantics).

Two families:

* dense columns (`numeric_column`, `bucketized_column`, `indicator_column`, `embedding_column`) give a
  float32 [batch, n] tensor; `input_layer` / `DenseFeatures` concatenate them;
* categorical columns (`categorical_column_with_*`, `bucketized_column`, `crossed_column`,
  `weighted_categorical_column`) give integer ids in [0, num_buckets): a [batch, k] int64 tensor with -1
  where a row has no id (a missing value, or an out-of-vocabulary one without an OOV bucket). Wrap them in
  an indicator or embedding column for a DNN; linear models use them directly (one weight per id).

Lookups run as engine ops (see `_ops`), so they are part of the graph and of exported models. Raw features
may be [batch] or [batch, k] (k values per example; "" or -1 marks an absent value).
"""
import numpy as np

from ..engine import dtypes as _dt
from ..engine.ops.array_ops import reshape
from ..engine.ops.core import cast, convert_to_tensor
from ..errors import InvalidArgumentError
from . import _ops

__all__ = ["numeric_column", "bucketized_column", "FeatureColumn", "DenseColumn", "CategoricalColumn",
           "FeatureTransformationCache"]


class FeatureTransformationCache:
    """The features of one model call, and each column's transformed output computed once."""

    def __init__(self, features):
        if not isinstance(features, dict):
            raise InvalidArgumentError(f"feature columns need a dict of features, got {type(features).__name__}")
        self.features = features
        self._cache = {}
        self._raw = {}

    def raw(self, key, column_name):
        """The raw feature `key` as a tensor of rank >= 2 ([batch] becomes [batch, 1])."""
        if key not in self._raw:
            if key not in self.features:
                raise InvalidArgumentError(f"feature column {column_name!r} reads feature {key!r}, which is not "
                                           f"in the features; available: {sorted(self.features)}")
            t = convert_to_tensor(self.features[key])
            if t.shape.ndims == 0:
                raise InvalidArgumentError(f"feature {key!r} (column {column_name!r}) is a scalar; it needs a "
                                           "batch dimension")
            if t.shape.ndims == 1:
                t = reshape(t, [-1, 1])
            self._raw[key] = t
        return self._raw[key]

    def get(self, column, kind, build):
        key = (column.name, kind)
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


class FeatureColumn:
    """Base class. `name` orders columns in `input_layer` and names their variables."""

    name = None

    @property
    def parents(self):
        return []

    def get_config(self):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, self.name))


class DenseColumn(FeatureColumn):
    """A column giving a float32 [batch, variable_shape...] tensor."""

    variable_shape = None

    def get_dense_tensor(self, cache, state):
        raise NotImplementedError


class CategoricalColumn(FeatureColumn):
    """A column giving int64 ids [batch, k] in [0, num_buckets) (-1: no id) and optional float weights."""

    num_buckets = None

    def get_ids(self, cache, state):
        """(ids, weights or None)."""
        raise NotImplementedError


def _check_key(key, what):
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError(f"{what}: key must be a non-empty string, got {key!r}")


# -- numeric -------------------------------------------------------------------------------------------
class NumericColumn(DenseColumn):
    def __init__(self, key, shape, default_value, dtype, normalizer_fn):
        self.key, self.shape, self.default_value, self.dtype = key, shape, default_value, dtype
        self.normalizer_fn = normalizer_fn
        self.name = key
        self.variable_shape = shape

    def _dim(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def get_dense_tensor(self, cache, state):
        def build():
            raw = cache.raw(self.key, self.name)
            if raw.dtype.is_string:
                raise InvalidArgumentError(f"numeric_column {self.name!r}: feature {self.key!r} holds strings; "
                                           "use a categorical column for them")
            inner = raw.shape[1:]
            if inner.is_fully_defined() and inner.num_elements() != self._dim():
                raise InvalidArgumentError(f"numeric_column {self.name!r}: feature {self.key!r} has shape "
                                           f"{raw.shape} per batch; the column's shape {self.shape} needs "
                                           f"{self._dim()} values per example")
            x = cast(raw, _dt.float32)
            if self.normalizer_fn is not None:
                x = cast(convert_to_tensor(self.normalizer_fn(x)), _dt.float32)
            return reshape(x, [-1, self._dim()])
        return cache.get(self, "dense", build)

    def get_config(self):
        if self.normalizer_fn is not None:
            raise InvalidArgumentError(f"numeric_column {self.name!r}: a normalizer_fn cannot be serialized")
        return {"key": self.key, "shape": list(self.shape), "default_value": self.default_value,
                "dtype": self.dtype.name}


def numeric_column(key, shape=(1,), default_value=None, dtype=_dt.float32, normalizer_fn=None):
    """A real-valued feature of `shape` per example, flattened to [batch, prod(shape)] float32.

    Args:
        key: the feature's key.
        shape: per-example shape (an int or a tuple).
        default_value: recorded for parsing specs (dense NumPy inputs have no missing rows).
        dtype: the feature's dtype (a float or integer type).
        normalizer_fn: optional function applied to the float32 tensor (e.g. lambda x: (x - 3) / 2).

    Raises:
        InvalidArgumentError: bad key, shape or dtype.
    """
    _check_key(key, "numeric_column")
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    if not shape or any(d <= 0 for d in shape):
        raise InvalidArgumentError(f"numeric_column {key!r}: shape must have positive dimensions, got {shape}")
    dtype = _dt.as_dtype(dtype)
    if not (dtype.is_floating or dtype.is_integer):
        raise InvalidArgumentError(f"numeric_column {key!r}: dtype must be a float or integer type, got {dtype.name}")
    if normalizer_fn is not None and not callable(normalizer_fn):
        raise InvalidArgumentError(f"numeric_column {key!r}: normalizer_fn must be callable")
    if default_value is not None:
        dv = np.asarray(default_value, dtype=np.float64)
        if dv.size not in (1, int(np.prod(shape))):
            raise InvalidArgumentError(f"numeric_column {key!r}: default_value of {dv.size} values does not "
                                       f"fit shape {shape}")
        default_value = tuple(np.broadcast_to(dv, shape).reshape(-1).tolist())
    return NumericColumn(key, shape, default_value, dtype, normalizer_fn)


# -- bucketized ------------------------------------------------------------------------------------------
class BucketizedColumn(DenseColumn, CategoricalColumn):
    def __init__(self, source, boundaries):
        self.source, self.boundaries = source, boundaries
        self.name = f"{source.name}_bucketized"
        self._per_dim = len(boundaries) + 1
        self._dims = source._dim()
        self.num_buckets = self._per_dim * self._dims
        self.variable_shape = (self.num_buckets,)

    @property
    def parents(self):
        return [self.source]

    def _bucket_ids(self, cache, state):
        return cache.get(self, "buckets", lambda: _ops.bucketize(self.source.get_dense_tensor(cache, state),
                                                                 self.boundaries))

    def get_dense_tensor(self, cache, state):
        from ..engine.ops.array_ops import one_hot
        ids = self._bucket_ids(cache, state)
        return cache.get(self, "dense", lambda: reshape(one_hot(ids, self._per_dim, dtype=_dt.float32),
                                                        [-1, self.num_buckets]))

    def get_ids(self, cache, state):
        def build():
            # element i of the source uses ids [i * per_dim, (i + 1) * per_dim)
            ids = self._bucket_ids(cache, state)
            if self._dims == 1:
                return ids
            offsets = np.arange(self._dims, dtype=np.int64) * self._per_dim
            return ids + convert_to_tensor(offsets)
        return cache.get(self, "ids", build), None

    def get_config(self):
        return {"source_column": self.source.get_config(), "boundaries": list(self.boundaries)}


def bucketized_column(source_column, boundaries):
    """Bucket a numeric column by `boundaries`: bucket 0 is (-inf, b0), bucket i is [b(i-1), b(i)), the
    last [b(n-1), inf). Dense output: one-hot [batch, dims * (n+1)]; as a categorical column its ids are
    bucket + element_index * (n+1).

    Raises:
        InvalidArgumentError: source is not a numeric_column, or boundaries are not sorted ascending.
    """
    if not isinstance(source_column, NumericColumn):
        raise InvalidArgumentError(f"bucketized_column needs a numeric_column source, got {source_column!r}")
    b = [float(x) for x in boundaries]
    if not b or any(b[i] >= b[i + 1] for i in range(len(b) - 1)):
        raise InvalidArgumentError(f"bucketized_column {source_column.name!r}: boundaries must be a non-empty "
                                   f"strictly increasing list, got {list(boundaries)}")
    return BucketizedColumn(source_column, tuple(b))
