"""Feature columns from a config's ``feature_columns`` section, and the feature arrays they read.

``all_numeric`` gives one ``numeric_column`` per feature of the training data; a list gives exactly those
columns (see :mod:`.schema_columns` for the resolved forms). A numeric column's ``normalizer``
(``standardize`` / ``min_max``) is computed on the training data; the statistics are kept in the run
directory (``feature_stats.json``) so that evaluate / predict / export of the run use the very same ones.
"""
import os

import numpy as np

from ..errors import InvalidArgumentError
from .rundir import read_json, write_json
from .schema_columns import CATEGORICAL_KINDS

FEATURE_STATS_FILE = "feature_stats.json"
ARRAY_FEATURE_KEY = "x"        # the feature key of a source that gives one unnamed array


# ---- data ------------------------------------------------------------------------------------------------
def as_feature_dict(features):
    """Estimators take a dict of features; one unnamed array becomes ``{"x": array}``."""
    return features if isinstance(features, dict) else {ARRAY_FEATURE_KEY: features}


def _walk(columns_cfg):
    """Every column of a resolved list, nested ones included, as ``(kind, args)``; and the raw keys a
    crossed column names directly, as ``("raw", key)``."""
    def visit(kind, args):
        yield kind, args
        if kind in ("indicator", "embedding"):
            inner = _wrapped_kind(args)
            yield from visit(inner, args[inner])
        elif kind == "bucketized":
            yield from visit("numeric", args["numeric"])
        elif kind == "crossed":
            for key in args["keys"]:
                if isinstance(key, dict):
                    (k, a), = key.items()
                    yield from visit(k, a)
                else:
                    yield "raw", key

    for item in columns_cfg if isinstance(columns_cfg, list) else []:
        (kind, args), = item.items()
        yield from visit(kind, args)


def used_keys(columns_cfg):
    """The feature keys a list of columns reads (``None`` for ``all_numeric``: every feature)."""
    if not isinstance(columns_cfg, list):
        return None
    return {args if kind == "raw" else args["key"] for kind, args in _walk(columns_cfg) if kind == "raw" or
            "key" in args}


def _integer_keys(columns_cfg):
    """Feature keys that categorical columns read as integer ids (a CSV gives them as float32)."""
    keys = set()
    for kind, args in _walk(columns_cfg):
        if kind == "identity" or (kind == "categorical_vocabulary" and _int_vocabulary(args)) or \
                (kind == "hash_bucket" and args.get("dtype") == "int64"):
            keys.add(args["key"])
    return keys


def _wrapped_kind(args):
    """The categorical column inside a resolved indicator / embedding column."""
    return next(k for k in args if k in CATEGORICAL_KINDS)


def _int_vocabulary(args):
    vocab = args.get("vocabulary")
    return args.get("dtype") == "int64" or (vocab is not None and all(isinstance(v, int) for v in vocab))


def prepare_features(features, columns_cfg, where):
    """The features the columns read (an exported model then takes exactly those), with integral float
    columns cast to int64 where an integer categorical column reads them.

    Raises:
        InvalidArgumentError: a column's feature is missing, or not whole numbers where ids are needed.
    """
    features = as_feature_dict(features)
    keys = used_keys(columns_cfg)
    if keys is not None:
        missing = sorted(keys - set(features))
        if missing:
            raise InvalidArgumentError(f"{where}: feature_columns read {missing}, which the data does not have "
                                       f"(its features: {sorted(features)})")
        features = {k: v for k, v in features.items() if k in keys}
    features = dict(features)
    for key in _integer_keys(columns_cfg):
        value = features.get(key)
        if value is None or value.dtype.kind in "iu":
            continue
        if value.dtype.kind != "f" or not np.all(np.isfinite(value)) or np.any(value != np.round(value)):
            raise InvalidArgumentError(f"{where}: feature {key!r} feeds an integer categorical column, but holds "
                                       f"{value.dtype} values that are not whole numbers")
        features[key] = value.astype(np.int64)
    return features


# ---- feature columns ---------------------------------------------------------------------------------------
def feature_stats(train_features, columns_cfg):
    """``{key: {"mean", "std", "min", "max"}}`` of the numeric columns that ask for a normalizer."""
    stats = {}
    for key in _normalized_keys(columns_cfg):
        if key not in train_features:
            raise InvalidArgumentError(f"feature_columns: numeric column {key!r} is not a feature of the training "
                                       f"data (features: {sorted(train_features)})")
        values = np.asarray(train_features[key], dtype=np.float64)
        std = np.nanstd(values, axis=0)
        stats[key] = {"mean": np.nanmean(values, axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist(),
                      "min": np.nanmin(values, axis=0).tolist(), "max": np.nanmax(values, axis=0).tolist()}
    return stats


def _normalized_keys(columns_cfg):
    """Keys of the numeric columns (bucketized ones' sources included) that ask for a normalizer."""
    return sorted({args["key"] for kind, args in _walk(columns_cfg) if kind == "numeric" and args.get("normalizer")})


def load_or_compute_stats(run_dir, train_features, columns_cfg, reuse=True):
    """The normalizer statistics saved in ``run_dir`` (a trained model was fitted with them), else computed
    from ``train_features`` and saved.

    Args:
        reuse: take the saved statistics when they cover every normalized column; False for a model
            trained from scratch, whose statistics come from the current training data.
    """
    path = os.path.join(run_dir, FEATURE_STATS_FILE)
    keys = _normalized_keys(columns_cfg)
    saved = read_json(path) if reuse else None
    if isinstance(saved, dict) and all(k in saved for k in keys):
        return saved
    if not keys:
        return {}
    if train_features is None:
        raise InvalidArgumentError(f"feature_columns: normalizers need the training data (data.train) or the "
                                   f"statistics of a trained run ({path})")
    stats = feature_stats(train_features, columns_cfg)
    write_json(path, stats)
    return stats


def _normalizer(kind, stats, key):
    s = stats[key]
    if kind == "standardize":
        shift, scale = np.asarray(s["mean"], np.float32), 1.0 / np.asarray(s["std"], np.float32)
    else:
        lo, hi = np.asarray(s["min"], np.float32), np.asarray(s["max"], np.float32)
        shift, scale = lo, 1.0 / np.where(hi > lo, hi - lo, 1.0).astype(np.float32)

    def normalize(x):
        # constants on the right: a NumPy array on the left would broadcast over the tensor object
        return (x - shift) * scale

    normalize.__name__ = f"{kind}_{key}"
    return normalize


def _numeric(args, stats):
    from .. import feature_column as fc
    fn = _normalizer(args["normalizer"], stats, args["key"]) if args.get("normalizer") else None
    return fc.numeric_column(args["key"], shape=tuple(args["shape"]), default_value=args.get("default_value"),
                             dtype=args.get("dtype", "float32"), normalizer_fn=fn)


def _categorical(kind, args, stats):
    from .. import feature_column as fc
    if kind == "categorical_vocabulary":
        oov, default = args.get("num_oov_buckets", 0), args.get("default_value")
        if args.get("vocabulary") is not None:
            dtype = None if _int_vocabulary(args) else "string"
            return fc.categorical_column_with_vocabulary_list(
                args["key"], args["vocabulary"], dtype=dtype, num_oov_buckets=oov,
                default_value=-1 if default is None else default)
        return fc.categorical_column_with_vocabulary_file(args["key"], args["vocabulary_file"], num_oov_buckets=oov,
                                                          default_value=default, dtype=args.get("dtype", "string"))
    if kind == "identity":
        return fc.categorical_column_with_identity(args["key"], args["num_buckets"], args.get("default_value"))
    if kind == "hash_bucket":
        return fc.categorical_column_with_hash_bucket(args["key"], args["hash_bucket_size"],
                                                      dtype=args.get("dtype", "string"))
    if kind == "bucketized":
        return fc.bucketized_column(_numeric(args["numeric"], stats), args["boundaries"])
    if kind == "crossed":
        keys = [key if isinstance(key, str) else _categorical(*next(iter(key.items())), stats)
                for key in args["keys"]]
        return fc.crossed_column(keys, args["hash_bucket_size"])
    raise InvalidArgumentError(f"feature_columns: unknown column kind {kind!r}")


def _column(item, stats):
    from .. import feature_column as fc
    (kind, args), = item.items()
    if kind == "numeric":
        return _numeric(args, stats)
    if kind in ("indicator", "embedding"):
        inner_kind = _wrapped_kind(args)
        inner = _categorical(inner_kind, args[inner_kind], stats)
        if kind == "indicator":
            return fc.indicator_column(inner)
        return fc.embedding_column(inner, args["dimension"], combiner=args.get("combiner", "mean"),
                                   max_norm=args.get("max_norm"), trainable=args.get("trainable", True))
    return _categorical(kind, args, stats)


def all_numeric_columns(features):
    """One ``numeric_column`` per feature, shaped like one row of it.

    Raises:
        InvalidArgumentError: a feature holding strings (it needs a categorical column: list the columns).
    """
    from .. import feature_column as fc
    columns = []
    for key in sorted(features):
        value = features[key]
        if value.dtype.kind in "USO":
            raise InvalidArgumentError(f"feature_columns: all_numeric, but feature {key!r} holds strings; list the "
                                       f"feature columns instead (e.g. an indicator of a categorical_vocabulary)")
        columns.append(fc.numeric_column(key, shape=tuple(value.shape[1:]) or (1,)))
    return columns


def build_feature_columns(columns_cfg, features, stats):
    """The feature column objects of the ``feature_columns`` section."""
    if columns_cfg == "all_numeric" or columns_cfg is None:
        return all_numeric_columns(features)
    return [_column(item, stats) for item in columns_cfg]
