"""Feature columns to and from plain dicts (for Keras layer configs and YAML): {"column": class, "config": {...}}.

Only the column classes of this package are accepted when deserializing; a normalizer_fn (a Python
function) cannot be serialized.
"""
from ..engine import dtypes as _dt
from ..errors import InvalidArgumentError
from . import categorical as _cat
from . import columns as _c
from . import dense as _d

__all__ = ["serialize_feature_column", "deserialize_feature_column"]


def serialize_feature_column(column):
    """{"column": class name, "config": the column's config}."""
    if not isinstance(column, _c.FeatureColumn):
        raise InvalidArgumentError(f"serialize_feature_column: {column!r} is not a feature column")
    return {"column": type(column).__name__, "config": column.get_config()}


def _dtype(name):
    return _dt.as_dtype(name)


def _nested(cfg):
    return deserialize_feature_column(cfg) if isinstance(cfg, dict) else cfg


def _numeric(cfg):
    return _c.numeric_column(cfg["key"], tuple(cfg["shape"]), cfg.get("default_value"), _dtype(cfg["dtype"]))


def _vocabulary(cfg):
    return _cat.categorical_column_with_vocabulary_list(cfg["key"], cfg["vocabulary_list"], _dtype(cfg["dtype"]),
                                                      cfg.get("default_value", -1), cfg.get("num_oov_buckets", 0))


_BUILDERS = {
    "NumericColumn": _numeric,
    "BucketizedColumn": lambda cfg: _c.bucketized_column(_numeric(cfg["source_column"]), cfg["boundaries"]),
    "VocabularyColumn": _vocabulary,
    "IdentityColumn": lambda cfg: _cat.categorical_column_with_identity(cfg["key"], cfg["num_buckets"],
                                                                      cfg.get("default_value")),
    "HashedColumn": lambda cfg: _cat.categorical_column_with_hash_bucket(cfg["key"], cfg["hash_bucket_size"],
                                                                       _dtype(cfg["dtype"])),
    "CrossedColumn": lambda cfg: _cat.crossed_column([_nested(k) for k in cfg["keys"]], cfg["hash_bucket_size"],
                                                   cfg.get("hash_key")),
    "WeightedCategoricalColumn": lambda cfg: _cat.weighted_categorical_column(
        _nested(cfg["categorical_column"]), cfg["weight_feature_key"], _dtype(cfg["dtype"])),
    "IndicatorColumn": lambda cfg: _d.indicator_column(_nested(cfg["categorical_column"])),
    "EmbeddingColumn": lambda cfg: _d.embedding_column(_nested(cfg["categorical_column"]), cfg["dimension"],
                                                       cfg.get("combiner", "mean"), max_norm=cfg.get("max_norm"),
                                                       trainable=cfg.get("trainable", True)),
}


def deserialize_feature_column(config):
    """The column a serialize_feature_column dict describes.

    Raises:
        InvalidArgumentError: an unknown column class or a malformed config (naming it).
    """
    if not isinstance(config, dict) or "column" not in config or "config" not in config:
        raise InvalidArgumentError(f"deserialize_feature_column: malformed config {config!r:.100}")
    builder = _BUILDERS.get(config["column"])
    if builder is None:
        raise InvalidArgumentError(f"deserialize_feature_column: unknown column class {config['column']!r}; known: "
                                   f"{sorted(_BUILDERS)}")
    try:
        return builder(config["config"])
    except (KeyError, TypeError) as e:
        raise InvalidArgumentError(f"deserialize_feature_column: {config['column']} config lacks or mistypes "
                                   f"{e}") from None
