"""Categorical columns: raw values -> integer ids (vocabulary list / file, identity, hash bucket, crosses,
weighted ids). See `columns` for the id convention ([batch, k] int64, -1 = no id) and `_ops` for the lookup
ops and the documented hash."""
import os

import numpy as np

from ..engine import dtypes as _dt
from ..engine.ops.core import cast
from ..errors import InvalidArgumentError, NotFoundError
from . import _ops
from .columns import CategoricalColumn, _check_key

__all__ = ["categorical_column_with_vocabulary_list", "categorical_column_with_vocabulary_file",
           "categorical_column_with_identity", "categorical_column_with_hash_bucket", "crossed_column",
           "weighted_categorical_column"]


# -- categorical -------------------------------------------------------------------------------------------
def _raw_kind(raw, column_name, want_string):
    """Check the raw feature's dtype against the column's (strings vs integers)."""
    if want_string and not raw.dtype.is_string:
        raise InvalidArgumentError(f"categorical column {column_name!r} holds strings, but its feature has dtype "
                                   f"{raw.dtype.name}")
    if not want_string and not raw.dtype.is_integer:
        raise InvalidArgumentError(f"categorical column {column_name!r} holds integers, but its feature has dtype "
                                   f"{raw.dtype.name}")


class VocabularyColumn(CategoricalColumn):
    def __init__(self, key, vocabulary, is_string, num_oov_buckets, default_value, vocabulary_file=None):
        self.key, self.name = key, key
        self.vocabulary, self.is_string = vocabulary, is_string
        self.num_oov_buckets, self.default_value = num_oov_buckets, default_value
        self.vocabulary_file = vocabulary_file
        self.num_buckets = len(vocabulary) + num_oov_buckets

    def get_ids(self, cache, state):
        def build():
            raw = cache.raw(self.key, self.name)
            _raw_kind(raw, self.name, self.is_string)
            return _ops.vocabulary_lookup(raw, self.vocabulary, self.is_string, self.num_oov_buckets,
                                          self.default_value, self.name)
        return cache.get(self, "ids", build), None

    def get_config(self):
        return {"key": self.key, "vocabulary_list": list(self.vocabulary), "num_oov_buckets": self.num_oov_buckets,
                "default_value": self.default_value, "dtype": "string" if self.is_string else "int64"}


def _vocab_dtype(values, dtype, what):
    if dtype is not None:
        dt = _dt.as_dtype(dtype)
        if not (dt.is_string or dt.is_integer):
            raise InvalidArgumentError(f"{what}: dtype must be string or an integer type, got {dt.name}")
        return dt.is_string
    kinds = {isinstance(v, (str, bytes)) for v in values}
    if len(kinds) != 1:
        raise InvalidArgumentError(f"{what}: the vocabulary mixes strings and non-strings")
    if kinds.pop():
        return True
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise InvalidArgumentError(f"{what}: vocabulary values must be strings or integers")
    return False


def _normalize_vocab(values, is_string, what):
    if is_string:
        out = [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
        if not all(isinstance(v, str) for v in out):
            raise InvalidArgumentError(f"{what}: a string vocabulary holds non-string values")
    else:
        out = [int(v) for v in values]
    if len(set(out)) != len(out):
        dup = sorted({v for v in out if out.count(v) > 1})[:5]
        raise InvalidArgumentError(f"{what}: the vocabulary has duplicate values {dup}")
    return tuple(out)


def _check_oov(num_oov_buckets, default_value, what):
    if num_oov_buckets < 0:
        raise InvalidArgumentError(f"{what}: num_oov_buckets must be >= 0, got {num_oov_buckets}")
    if num_oov_buckets and default_value not in (None, -1):
        raise InvalidArgumentError(f"{what}: give num_oov_buckets or default_value, not both")
    return -1 if default_value is None else int(default_value)


def categorical_column_with_vocabulary_list(key, vocabulary_list, dtype=None, default_value=-1, num_oov_buckets=0):
    """Ids from an in-memory vocabulary: id = position in `vocabulary_list`.

    Out-of-vocabulary values get `default_value` (-1: no id) or, with num_oov_buckets > 0, id
    len(vocabulary) + hash(value) % num_oov_buckets.

    Raises:
        InvalidArgumentError: empty or duplicated vocabulary, mixed types, both OOV options.
    """
    what = f"categorical_column_with_vocabulary_list {key!r}"
    _check_key(key, "categorical_column_with_vocabulary_list")
    values = list(vocabulary_list)
    if not values:
        raise InvalidArgumentError(f"{what}: vocabulary_list is empty")
    is_string = _vocab_dtype(values, dtype, what)
    default_value = _check_oov(int(num_oov_buckets), default_value, what)
    return VocabularyColumn(key, _normalize_vocab(values, is_string, what), is_string, int(num_oov_buckets),
                            default_value)


def categorical_column_with_vocabulary_file(key, vocabulary_file, vocabulary_size=None, num_oov_buckets=0,
                                            default_value=None, dtype=_dt.string):
    """Ids from a vocabulary file, one value per line (line number = id). The file is read when the column
    is created; `vocabulary_size` keeps only the first lines.

    Raises:
        NotFoundError: the file does not exist.
        InvalidArgumentError: vocabulary_size larger than the file, duplicates, both OOV options.
    """
    what = f"categorical_column_with_vocabulary_file {key!r}"
    _check_key(key, "categorical_column_with_vocabulary_file")
    path = os.fspath(vocabulary_file)
    if not os.path.isfile(path):
        raise NotFoundError(f"{what}: vocabulary file {path} not found")
    with open(path, "r", encoding="utf-8") as f:
        lines = [line.rstrip("\r\n") for line in f]
    while lines and lines[-1] == "":
        lines.pop()
    if vocabulary_size is not None:
        if vocabulary_size <= 0 or vocabulary_size > len(lines):
            raise InvalidArgumentError(f"{what}: vocabulary_size {vocabulary_size} but {path} has {len(lines)} "
                                       "lines")
        lines = lines[:vocabulary_size]
    if not lines:
        raise InvalidArgumentError(f"{what}: {path} is empty")
    is_string = _dt.as_dtype(dtype).is_string
    if not is_string:
        try:
            values = [int(v) for v in lines]
        except ValueError as e:
            raise InvalidArgumentError(f"{what}: {path} holds a non-integer line ({e})") from None
    else:
        values = lines
    default_value = _check_oov(int(num_oov_buckets), default_value, what)
    return VocabularyColumn(key, _normalize_vocab(values, is_string, what), is_string, int(num_oov_buckets),
                            default_value, vocabulary_file=path)


class IdentityColumn(CategoricalColumn):
    def __init__(self, key, num_buckets, default_value):
        self.key, self.name, self.num_buckets, self.default_value = key, key, num_buckets, default_value

    def get_ids(self, cache, state):
        def build():
            raw = cache.raw(self.key, self.name)
            _raw_kind(raw, self.name, want_string=False)
            return _ops.identity_ids(raw, self.num_buckets, self.default_value, self.name)
        return cache.get(self, "ids", build), None

    def get_config(self):
        return {"key": self.key, "num_buckets": self.num_buckets, "default_value": self.default_value}


def categorical_column_with_identity(key, num_buckets, default_value=None):
    """Integer features used as ids directly; values outside [0, num_buckets) become `default_value`, or are
    an error (naming the column) when it is None. -1 means "no value"."""
    _check_key(key, "categorical_column_with_identity")
    if num_buckets < 1:
        raise InvalidArgumentError(f"categorical_column_with_identity {key!r}: num_buckets must be >= 1")
    if default_value is not None and not 0 <= default_value < num_buckets:
        raise InvalidArgumentError(f"categorical_column_with_identity {key!r}: default_value {default_value} is "
                                   f"outside [0, {num_buckets})")
    return IdentityColumn(key, int(num_buckets), default_value)


class HashedColumn(CategoricalColumn):
    def __init__(self, key, hash_bucket_size, is_string):
        self.key, self.name, self.num_buckets, self.is_string = key, key, hash_bucket_size, is_string

    def get_ids(self, cache, state):
        def build():
            raw = cache.raw(self.key, self.name)
            _raw_kind(raw, self.name, self.is_string)
            return _ops.hash_bucket(raw, self.num_buckets, self.is_string, self.name)
        return cache.get(self, "ids", build), None

    def get_config(self):
        return {"key": self.key, "hash_bucket_size": self.num_buckets,
                "dtype": "string" if self.is_string else "int64"}


def categorical_column_with_hash_bucket(key, hash_bucket_size, dtype=_dt.string):
    """Ids by hashing: fingerprint64(value as text) % hash_bucket_size (see `_ops` for the hash)."""
    _check_key(key, "categorical_column_with_hash_bucket")
    if hash_bucket_size < 1:
        raise InvalidArgumentError(f"categorical_column_with_hash_bucket {key!r}: hash_bucket_size must be >= 1")
    dt = _dt.as_dtype(dtype)
    if not (dt.is_string or dt.is_integer):
        raise InvalidArgumentError(f"categorical_column_with_hash_bucket {key!r}: dtype must be string or integer")
    return HashedColumn(key, int(hash_bucket_size), dt.is_string)


class CrossedColumn(CategoricalColumn):
    def __init__(self, keys, hash_bucket_size, hash_key):
        self.keys, self.num_buckets, self.hash_key = keys, hash_bucket_size, hash_key
        self.name = "_X_".join(sorted(k if isinstance(k, str) else k.name for k in keys))

    @property
    def parents(self):
        return [k for k in self.keys if not isinstance(k, str)]

    def get_ids(self, cache, state):
        def build():
            inputs, kinds = [], []
            for k in self.keys:
                if isinstance(k, str):
                    raw = cache.raw(k, self.name)
                    inputs.append(raw)
                    kinds.append(raw.dtype.is_string)
                else:
                    ids, _ = k.get_ids(cache, state)
                    inputs.append(ids)
                    kinds.append(False)
            return _ops.cross_hash(inputs, kinds, self.num_buckets, self.hash_key, self.name)
        return cache.get(self, "ids", build), None

    def get_config(self):
        return {"keys": [k if isinstance(k, str) else {"column": type(k).__name__, "config": k.get_config()}
                         for k in self.keys], "hash_bucket_size": self.num_buckets, "hash_key": self.hash_key}


def crossed_column(keys, hash_bucket_size, hash_key=None):
    """Hash every combination of the inputs' values into `hash_bucket_size` ids.

    Args:
        keys: feature keys (their raw values, strings or integers) and/or categorical columns (their ids);
            at least two. Bucketized columns cross by bucket.
        hash_bucket_size: number of ids.
        hash_key: optional integer salt mixed into the hash.

    Raises:
        InvalidArgumentError: fewer than two keys, or a key that is neither a string nor a categorical column
            (hashed columns are refused as in TF: cross their raw key instead).
    """
    keys = list(keys)
    if len(keys) < 2:
        raise InvalidArgumentError(f"crossed_column needs at least two keys, got {keys}")
    for k in keys:
        if isinstance(k, str):
            continue
        if isinstance(k, HashedColumn):
            raise InvalidArgumentError(f"crossed_column does not take hashed column {k.name!r}; use its key "
                                       f"{k.key!r}")
        if not isinstance(k, CategoricalColumn):
            raise InvalidArgumentError(f"crossed_column keys must be strings or categorical columns, got {k!r}")
    if hash_bucket_size < 1:
        raise InvalidArgumentError("crossed_column: hash_bucket_size must be >= 1")
    return CrossedColumn(tuple(keys), int(hash_bucket_size), hash_key)


class WeightedCategoricalColumn(CategoricalColumn):
    def __init__(self, categorical_column, weight_feature_key, dtype):
        self.categorical_column, self.weight_feature_key, self.dtype = categorical_column, weight_feature_key, dtype
        self.name = f"{categorical_column.name}_weighted_by_{weight_feature_key}"
        self.num_buckets = categorical_column.num_buckets

    @property
    def parents(self):
        return [self.categorical_column]

    def get_ids(self, cache, state):
        def build():
            ids, _ = self.categorical_column.get_ids(cache, state)
            w = cache.raw(self.weight_feature_key, self.name)
            if not (w.dtype.is_floating or w.dtype.is_integer):
                raise InvalidArgumentError(f"weighted_categorical_column {self.name!r}: weight feature "
                                           f"{self.weight_feature_key!r} must be numeric, got {w.dtype.name}")
            if ids.shape.ndims == 2 and w.shape.ndims == 2 and None not in (ids.shape[1], w.shape[1]) and \
                    ids.shape[1] != w.shape[1]:
                raise InvalidArgumentError(f"weighted_categorical_column {self.name!r}: weights have {w.shape[1]} "
                                           f"values per example, the ids {ids.shape[1]}")
            return ids, cast(w, _dt.float32)
        return cache.get(self, "ids", build)

    def get_config(self):
        return {"categorical_column": {"column": type(self.categorical_column).__name__,
                                       "config": self.categorical_column.get_config()},
                "weight_feature_key": self.weight_feature_key, "dtype": self.dtype.name}


def weighted_categorical_column(categorical_column, weight_feature_key, dtype=_dt.float32):
    """Give each id of `categorical_column` the weight in feature `weight_feature_key` (same shape as the ids):
    indicator columns sum the weights, embeddings combine weighted vectors, linear models scale weights."""
    if not isinstance(categorical_column, CategoricalColumn):
        raise InvalidArgumentError(f"weighted_categorical_column needs a categorical column, got "
                                   f"{categorical_column!r}")
    _check_key(weight_feature_key, "weighted_categorical_column")
    dt = _dt.as_dtype(dtype)
    if not dt.is_floating:
        raise InvalidArgumentError(f"weighted_categorical_column: dtype must be a float type, got {dt.name}")
    return WeightedCategoricalColumn(categorical_column, weight_feature_key, dt)
