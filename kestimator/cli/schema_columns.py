"""The ``feature_columns`` section: ``all_numeric`` or a list of column specs, as in tf.feature_column.

Each list item is a one-key mapping ``{kind: {arguments}}``::

    - numeric: {key: bill_length_mm, normalizer: standardize}
    - bucketized: {key: age, boundaries: [18, 25, 30]}            # or {numeric: {key: age}, boundaries: ...}
    - indicator: {categorical_vocabulary: {key: island, vocabulary: [Biscoe, Dream, Torgersen]}}
    - embedding: {categorical_vocabulary: {key: sex, vocabulary: [male, female]}, dimension: 2}
    - identity: {key: weekday, num_buckets: 7}
    - hash_bucket: {key: city, hash_bucket_size: 100}
    - crossed: {keys: [island, {bucketized: {key: age, boundaries: [30]}}], hash_bucket_size: 50}

Every item resolves to the same one-key form with all defaults written out.
"""
from .config_loader import ConfigMap
from .schema_core import (INVALID, REQUIRED, Bool, Choice, Custom, Field, Float, Int, ListOf, Nullable, PathT,
                          Str, Struct, listing, loc_of, shown, suggest, type_name)

ALL_NUMERIC = "all_numeric"
CATEGORICAL_KINDS = ("categorical_vocabulary", "identity", "hash_bucket", "bucketized", "crossed")
DENSE_KINDS = ("numeric", "indicator", "embedding")
COLUMN_KINDS = DENSE_KINDS + CATEGORICAL_KINDS

_NUMBER = Float()
_KEY = Str(describe="a feature name")


def _check_boundaries(out, value, path, loc, ctx):
    bounds = out["boundaries"]
    if any(b >= c for b, c in zip(bounds, bounds[1:])):
        return ctx.error(path + ("boundaries",), loc_of(value, "boundaries", loc),
                         f"boundaries must be strictly increasing, got {bounds}")
    return out


def _check_vocabulary(out, value, path, loc, ctx):
    given = [k for k in ("vocabulary", "vocabulary_file") if out[k] is not None]
    if len(given) != 1:
        return ctx.error(path, loc, "categorical_vocabulary needs exactly one of vocabulary, vocabulary_file"
                                    + ("; found both" if len(given) == 2 else ""))
    vocab = out["vocabulary"]
    if vocab is not None:
        seen = set()
        for i, word in enumerate(vocab):
            if word in seen:
                return ctx.error(path + ("vocabulary", i), loc_of(value, "vocabulary", loc),
                                 f"vocabulary entry {word!r} is repeated")
            seen.add(word)
    if out["num_oov_buckets"] > 0 and out["default_value"] is not None:
        return ctx.error(path + ("default_value",), loc_of(value, "default_value", loc),
                         "default_value and num_oov_buckets > 0 exclude each other (an unknown word goes to "
                         "an out-of-vocabulary bucket, or gets default_value)")
    return out


NUMERIC = Struct({
    "key": Field(_KEY, REQUIRED),
    "shape": Field(ListOf(Int(min=1), min_len=1, allow_single=True), [1]),
    "default_value": Field(Nullable(_NUMBER), None),
    "dtype": Field(Str(choices=("float32", "float64", "int32", "int64")), "float32"),
    "normalizer": Field(Nullable(Str(choices=("standardize", "min_max"))), None),
}, "a numeric column")

CATEGORICAL_VOCABULARY = Struct({
    "key": Field(_KEY, REQUIRED),
    "vocabulary": Field(Nullable(ListOf(Choice({str: Str(non_empty=False), int: Int()}, "a string or an integer"),
                                        min_len=1)), None),
    "vocabulary_file": Field(Nullable(PathT()), None),
    "num_oov_buckets": Field(Int(min=0), 0),
    "default_value": Field(Nullable(Int()), None),
    "dtype": Field(Str(choices=("string", "int64")), "string"),
}, "a categorical_vocabulary column", post=_check_vocabulary)

IDENTITY = Struct({
    "key": Field(_KEY, REQUIRED),
    "num_buckets": Field(Int(min=1), REQUIRED),
    "default_value": Field(Nullable(Int(min=0)), None),
}, "an identity column")

HASH_BUCKET = Struct({
    "key": Field(_KEY, REQUIRED),
    "hash_bucket_size": Field(Int(min=1), REQUIRED),
    "dtype": Field(Str(choices=("string", "int64")), "string"),
}, "a hash_bucket column")


def _check_bucketized(value, path, loc, ctx):
    if isinstance(value, dict) and "key" in value and "numeric" in value:
        return ctx.error(path, loc, "bucketized takes key (a shorthand) or numeric, not both")
    fields = {"numeric": Field(NUMERIC, REQUIRED),
              "boundaries": Field(ListOf(_NUMBER, min_len=1), REQUIRED)}
    if isinstance(value, dict) and "key" in value:
        key_loc = loc_of(value, "key", loc)
        shorthand = value["key"]
        rest = _submap(value, [k for k in value if k != "key"], loc)
        resolved = Struct({"boundaries": fields["boundaries"]}, "a bucketized column (besides key)",
                          post=_check_boundaries).check(rest, path, loc, ctx)
        numeric = NUMERIC.check({"key": shorthand}, path + ("numeric",), key_loc, ctx)
        if INVALID in (resolved, numeric):
            return INVALID
        return {"numeric": numeric, "boundaries": resolved["boundaries"]}
    return Struct(fields, "a bucketized column", post=_check_boundaries).check(value, path, loc, ctx)


def _column_of(kinds, what):
    """A one-key mapping ``{kind: args}`` with ``kind`` among ``kinds``."""

    def check(value, path, loc, ctx):
        if not isinstance(value, dict) or len(value) != 1:
            return ctx.error(path, loc, f"expected {what}: a one-key mapping {{kind: {{arguments}}}} with kind "
                                        f"one of {', '.join(kinds)}; got {type_name(value)} {shown(value)}")
        (kind, args), = value.items()
        kind_loc = loc_of(value, kind, loc)
        if kind not in kinds:
            return ctx.error(path + (kind,), kind_loc,
                             f"unknown column kind{suggest(kind, kinds)} (allowed here: {listing(kinds)})")
        resolved = COLUMN_TYPES[kind].check(args, path + (kind,), kind_loc, ctx)
        return INVALID if resolved is INVALID else {kind: resolved}

    return Custom(check, what)


def _submap(value, keys, loc):
    """The entries ``keys`` of a mapping, keeping their locations."""
    sub = ConfigMap({k: value[k] for k in keys}, loc=getattr(value, "loc", loc))
    sub.key_locs = {k: loc_of(value, k, loc) for k in keys}
    return sub


def _wrapping(name, extra_fields):
    """indicator / embedding: one categorical column given inline, plus the wrapper's own arguments."""

    def check(value, path, loc, ctx):
        if value is None or not isinstance(value, dict):
            own = listing(extra_fields) if extra_fields else "nothing else"
            return ctx.error(path, loc, f"expected a mapping for {name}: one categorical column "
                                        f"({', '.join(CATEGORICAL_KINDS)}) and {own}; "
                                        f"got {type_name(value)} {shown(value)}")
        inner = [k for k in value if k in CATEGORICAL_KINDS]
        if len(inner) != 1:
            return ctx.error(path, loc, f"{name} wraps exactly one categorical column "
                                        f"({', '.join(CATEGORICAL_KINDS)}); found {len(inner)}")
        column = CATEGORICAL.check(_submap(value, [inner[0]], loc), path, loc, ctx)
        article = "an" if name[0] in "aeiou" else "a"
        own = Struct(extra_fields, f"{article} {name} column (besides its categorical column)").check(
            _submap(value, [k for k in value if k != inner[0]], loc), path, loc, ctx)
        if INVALID in (column, own):
            return INVALID
        resolved = dict(column)
        resolved.update({k: own[k] for k in extra_fields})
        return resolved

    return Custom(check, f"an {name} column")


CATEGORICAL = _column_of(CATEGORICAL_KINDS, "a categorical column")

CROSSED = Struct({
    "keys": Field(ListOf(Choice({str: _KEY, dict: CATEGORICAL}, "a feature name or a categorical column"),
                         min_len=2), REQUIRED),
    "hash_bucket_size": Field(Int(min=1), REQUIRED),
}, "a crossed column")

COLUMN_TYPES = {
    "numeric": NUMERIC,
    "bucketized": Custom(_check_bucketized, "a bucketized column"),
    "categorical_vocabulary": CATEGORICAL_VOCABULARY,
    "identity": IDENTITY,
    "hash_bucket": HASH_BUCKET,
    "crossed": CROSSED,
    "indicator": _wrapping("indicator", {}),
    "embedding": _wrapping("embedding", {
        "dimension": Field(Int(min=1), REQUIRED),
        "combiner": Field(Str(choices=("mean", "sqrtn", "sum")), "mean"),
        "max_norm": Field(Nullable(Float(min=0)), None),
        "trainable": Field(Bool(), True),
    }),
}

FEATURE_COLUMNS = Choice({
    str: Str(choices=(ALL_NUMERIC,)),
    list: ListOf(_column_of(COLUMN_KINDS, "a feature column"), min_len=1),
}, f"'{ALL_NUMERIC}' or a list of feature columns")
