"""The ``data`` section: ``train`` / ``eval`` / ``validation`` / ``test`` sources (see :mod:`.sources`)."""
from ..errors import InvalidArgumentError
from .schema_core import (INVALID, Any_, Bool, Choice, Custom, Field, Float, Int, ListOf, MapOf,
                          Nullable, PathT, Str, Struct, loc_of, wrong_type)
from .sources import DEFAULT_NA_VALUES, SKLEARN_DATASETS, SOURCE_KINDS, parse_split

# Keys that only some kinds of source understand; the rest apply to all.
KIND_KEYS = {
    "dataset": (),
    "csv": ("label", "drop_missing", "fill_numeric", "fill_string", "na_values", "delimiter", "columns",
            "label_dtype"),
    "npz": ("x", "y"),
    "h5": ("x", "y"),
    "records": ("label", "feature_spec", "compression"),
}
COMMON_KEYS = ("split", "shuffle", "image_shape", "scale", "features")
DATA_SECTIONS = ("train", "eval", "validation", "test")


def _check_split(value, path, loc, ctx):
    if not isinstance(value, str):
        return wrong_type(ctx, path, loc, "a split string such as '0:1500' or '0.8:'", value)
    try:
        parse_split(value)
    except InvalidArgumentError as exc:
        return ctx.error(path, loc, str(exc))
    return value


_FEATURE_SPEC_ENTRY = Struct({
    "dtype": Field(Str(choices=("float32", "int64", "string")), "float32"),
    "shape": Field(ListOf(Int(min=0)), []),
    "default": Field(Any_(), None),
}, "a record feature")

_FIELDS = {
    "dataset": Field(Nullable(Str(choices=tuple(f"sklearn.{name}" for name in SKLEARN_DATASETS))), None),
    "csv": Field(Nullable(PathT()), None),
    "npz": Field(Nullable(PathT()), None),
    "h5": Field(Nullable(PathT()), None),
    "records": Field(Nullable(ListOf(PathT(), min_len=1, allow_single=True)), None),
    "label": Field(Nullable(Str()), None),
    "x": Field(Nullable(Choice({str: Str(), dict: MapOf(Str(), "features", min_len=1)},
                               "an array name or a mapping {feature: array name}")), None),
    "y": Field(Nullable(Str()), None),
    "split": Field(Nullable(Custom(_check_split, "a split string")), None),
    "shuffle": Field(Bool(), True),
    "drop_missing": Field(Bool(), False),
    "fill_numeric": Field(Float(), 0.0),
    "fill_string": Field(Str(non_empty=False), ""),
    "na_values": Field(ListOf(Str(non_empty=False)), list(DEFAULT_NA_VALUES)),
    "delimiter": Field(Str(pattern=r"[^\n\r\"]", describe="one character"), ","),
    "columns": Field(Nullable(ListOf(Str(), min_len=1)), None),
    "label_dtype": Field(Str(choices=("auto", "int64", "float32", "string")), "auto"),
    "feature_spec": Field(Nullable(MapOf(_FEATURE_SPEC_ENTRY, "feature_spec", min_len=1)), None),
    "compression": Field(Nullable(Str(choices=("GZIP", "ZLIB"))), None),
    "image_shape": Field(Nullable(ListOf(Int(min=1), min_len=1)), None),
    "scale": Field(Nullable(Float()), None),
    "features": Field(Nullable(Str()), None),
}


def _check_source(out, value, path, loc, ctx):
    """Exactly one kind; only keys that kind understands; kind-specific defaults filled."""
    kinds = [k for k in SOURCE_KINDS if out[k] is not None]
    if len(kinds) != 1:
        if not kinds:
            return ctx.error(path, loc, f"a data source needs one of: {', '.join(SOURCE_KINDS)}")
        return ctx.error(path + (kinds[1],), loc_of(value, kinds[1], loc),
                         f"a data source takes only one of {', '.join(SOURCE_KINDS)}; found {', '.join(kinds)}")
    kind = kinds[0]
    allowed = set(KIND_KEYS[kind]) | set(COMMON_KEYS) | {kind}
    ok = True
    for key in value:
        if key in _FIELDS and key not in allowed:
            users = [k for k, keys in KIND_KEYS.items() if key in keys] or list(SOURCE_KINDS)
            ok = False
            ctx.error(path + (key,), loc_of(value, key, loc),
                      f"'{key}' applies to {' and '.join(users)} sources, not to this {kind} source")
    if kind == "records" and out["feature_spec"] is None:
        ok = False
        ctx.error(path + ("feature_spec",), loc, "a records source needs feature_spec: {feature: {dtype, shape}}")
    spec = out["feature_spec"]
    if kind == "records" and out["label"] is not None and spec and out["label"] not in spec:
        ok = False
        ctx.error(path + ("label",), loc_of(value, "label", loc),
                  f"the label {out['label']!r} is not in feature_spec ({', '.join(out['feature_spec'])})")
    if not ok:
        return INVALID
    if kind in ("npz", "h5"):
        out["x"] = out["x"] if "x" in value else "x"
        out["y"] = out["y"] if "y" in value else "y"
        if out["x"] is None:
            return ctx.error(path + ("x",), loc_of(value, "x", loc), "x (the features array) cannot be null")
    return {key: out[key] for key in _FIELDS if key in allowed}


SOURCE = Struct(_FIELDS, "a data source", post=_check_source)


def _check_data(out, value, path, loc, ctx):
    if all(out[k] is None for k in DATA_SECTIONS):
        return ctx.error(path, loc, f"data needs at least one source: {', '.join(DATA_SECTIONS)}")
    return out


DATA = Struct({name: Field(Nullable(SOURCE), None) for name in DATA_SECTIONS}, "data", post=_check_data)
