"""make_parse_example_spec: the tf.Example parsing spec the columns need (for ks.data.parse_example)."""
from ..engine import dtypes as _dt
from ..errors import InvalidArgumentError
from .categorical import (CrossedColumn, HashedColumn, IdentityColumn, VocabularyColumn,
                          WeightedCategoricalColumn)
from .columns import BucketizedColumn, FeatureColumn, NumericColumn

__all__ = ["make_parse_example_spec"]


def _spec_of(column, out):
    from ..data.example import FixedLenFeature, VarLenFeature
    if isinstance(column, NumericColumn):
        out[column.key] = FixedLenFeature(column.shape, column.dtype, column.default_value)
    elif isinstance(column, VocabularyColumn):
        out[column.key] = VarLenFeature(_dt.string if column.is_string else _dt.int64)
    elif isinstance(column, HashedColumn):
        out[column.key] = VarLenFeature(_dt.string if column.is_string else _dt.int64)
    elif isinstance(column, IdentityColumn):
        out[column.key] = VarLenFeature(_dt.int64)
    elif isinstance(column, WeightedCategoricalColumn):
        out[column.weight_feature_key] = VarLenFeature(column.dtype)
        _spec_of(column.categorical_column, out)
    elif isinstance(column, CrossedColumn):
        for k in column.keys:
            if isinstance(k, str):
                out.setdefault(k, VarLenFeature(_dt.string))
            else:
                _spec_of(k, out)
    elif isinstance(column, BucketizedColumn):
        _spec_of(column.source, out)
    else:
        for p in column.parents:
            _spec_of(p, out)


def make_parse_example_spec(feature_columns):
    """dict feature key -> FixedLenFeature / VarLenFeature for parsing tf.Example records.

    Raises:
        InvalidArgumentError: an item is not a feature column, or two columns want one key differently.
    """
    out = {}
    for c in feature_columns:
        if not isinstance(c, FeatureColumn):
            raise InvalidArgumentError(f"make_parse_example_spec: {c!r} is not a feature column")
        spec = {}
        _spec_of(c, spec)
        for k, v in spec.items():
            if k in out and out[k] != v:
                raise InvalidArgumentError(f"make_parse_example_spec: feature {k!r} is parsed as {out[k]} by one "
                                           f"column and as {v} by {c.name!r}")
            out[k] = v
    return out
