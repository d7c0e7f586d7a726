"""Engine ops that turn raw categorical values into integer ids, so that lookups run inside the graph (and
inside exported SavedModels, which then serve raw strings without Python preprocessing).

Every op maps a [batch, k] tensor of raw values to [batch, k] int64 ids, with -1 marking "no id" (a
missing value: "" for strings, -1 for integers, as TF drops them; or an out-of-vocabulary value when no
OOV bucket or default id is configured). Downstream columns ignore -1 ids.

Hashing (hash buckets, OOV buckets, crosses) uses a fixed, documented function so ids are stable across
processes and machines: the value as UTF-8 text (integers in decimal, as TF's `as_string`), hashed with
BLAKE2b with an 8-byte digest, read as a little-endian unsigned 64-bit integer, modulo the bucket count.
(TensorFlow uses FarmHash64 here, so bucket ids differ from TF's; the idea is the same.)

The kernels work on the distinct values of a batch (`np.unique`), so each distinct string is looked up or
hashed once per batch.
"""
import hashlib

import numpy as np

from ..engine import dtypes as _dt
from ..engine.registry import apply_op, register
from ..errors import InvalidArgumentError

_CROSS_SEP = "\x1f_X_\x1f"   # joins the parts of a crossed value before hashing (never in normal text)


def fingerprint64(text):
    """The stable 64-bit hash of a str: first 8 bytes of BLAKE2b(UTF-8), little-endian."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _as_text(v, column):
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    raise InvalidArgumentError(f"feature column {column!r}: value {v!r} of type {type(v).__name__} is not a "
                               "string")


def _unique(x, column, is_string):
    """(unique values, inverse indices) of a raw batch, strings normalized to str."""
    flat = x.reshape(-1)
    if is_string:
        if flat.dtype != object and flat.dtype.kind not in "US":
            raise InvalidArgumentError(f"feature column {column!r} expects string values, got an array of "
                                       f"{flat.dtype}")
        flat = np.array([_as_text(v, column) for v in flat], dtype=object) if flat.dtype == object else \
            flat.astype(str).astype(object)
        try:
            uniq, inv = np.unique(flat, return_inverse=True)
        except TypeError:   # pragma: no cover - normalized to str above, so values compare
            raise InvalidArgumentError(f"feature column {column!r}: values cannot be compared") from None
        return uniq, inv
    if flat.dtype.kind not in "iu":
        raise InvalidArgumentError(f"feature column {column!r} expects integer values, got an array of "
                                   f"{flat.dtype}")
    return np.unique(flat, return_inverse=True)


def _missing(value, is_string):
    return value == "" if is_string else value == -1


def _ids_infer(inputs, attrs):
    return [(inputs[0].shape, _dt.int64)]


# -- vocabulary lookup -----------------------------------------------------------------------------------
def _vocab_kernel(xp, a):
    vocab = {v: i for i, v in enumerate(a["vocabulary"])}
    n, oov, default = len(a["vocabulary"]), int(a["num_oov_buckets"]), int(a["default_value"])
    column, is_string = a["column"], bool(a["is_string"])

    def run(x):
        uniq, inv = _unique(np.asarray(x), column, is_string)
        ids = np.empty(len(uniq), dtype=np.int64)
        for j, u in enumerate(uniq.tolist()):
            if _missing(u, is_string):
                ids[j] = -1
                continue
            i = vocab.get(u)
            if i is None:
                i = n + fingerprint64(str(u)) % oov if oov else default
            ids[j] = i
        return xp.asarray(ids[inv].reshape(x.shape))
    return run


register("VocabularyLookup", infer=_ids_infer, kernel=_vocab_kernel, differentiable=False)


def vocabulary_lookup(x, vocabulary, is_string, num_oov_buckets, default_value, column):
    return apply_op("VocabularyLookup", [x], {"vocabulary": tuple(vocabulary), "is_string": bool(is_string),
                                              "num_oov_buckets": int(num_oov_buckets),
                                              "default_value": int(default_value), "column": str(column)},
                    name="vocabulary_lookup")


# -- hash buckets ------------------------------------------------------------------------------------------
def _hash_kernel(xp, a):
    size, column, is_string = int(a["num_buckets"]), a["column"], bool(a["is_string"])

    def run(x):
        uniq, inv = _unique(np.asarray(x), column, is_string)
        ids = np.array([-1 if _missing(u, is_string) else fingerprint64(str(u)) % size for u in uniq.tolist()],
                       dtype=np.int64)
        return xp.asarray(ids[inv].reshape(x.shape))
    return run


register("HashBucket", infer=_ids_infer, kernel=_hash_kernel, differentiable=False)


def hash_bucket(x, num_buckets, is_string, column):
    return apply_op("HashBucket", [x], {"num_buckets": int(num_buckets), "is_string": bool(is_string),
                                        "column": str(column)}, name="hash_bucket")


# -- identity ids ------------------------------------------------------------------------------------------
def _identity_kernel(xp, a):
    n, default, column = int(a["num_buckets"]), a["default_value"], a["column"]

    def run(x):
        ids = np.asarray(x).astype(np.int64, copy=True)
        missing = ids == -1
        bad = ~missing & ((ids < 0) | (ids >= n))
        if bad.any():
            if default is None:
                raise InvalidArgumentError(f"feature column {column!r}: id {int(ids[bad][0])} is outside "
                                           f"[0, {n}) and the column has no default_value")
            ids[bad] = int(default)
        ids[missing] = -1
        return xp.asarray(ids)
    return run


def _identity_infer(inputs, attrs):
    if not inputs[0].dtype.is_integer:
        raise InvalidArgumentError(f"feature column {attrs['column']!r} needs integer ids, got "
                                   f"{inputs[0].dtype.name}")
    return [(inputs[0].shape, _dt.int64)]


register("IdentityCategorical", infer=_identity_infer, kernel=_identity_kernel, differentiable=False)


def identity_ids(x, num_buckets, default_value, column):
    return apply_op("IdentityCategorical", [x], {"num_buckets": int(num_buckets), "column": str(column),
                                                 "default_value": None if default_value is None
                                                 else int(default_value)}, name="identity_ids")


# -- bucketize ---------------------------------------------------------------------------------------------
def _bucketize_kernel(xp, a):
    bounds = np.asarray(a["boundaries"], dtype=np.float64)

    def run(x):
        # bucket i holds [b[i-1], b[i]): searchsorted(side="right") counts the boundaries <= x
        return xp.asarray(np.searchsorted(bounds, np.asarray(x, dtype=np.float64), side="right").astype(np.int64))
    return run


register("Bucketize", infer=_ids_infer, kernel=_bucketize_kernel, differentiable=False)


def bucketize(x, boundaries):
    return apply_op("Bucketize", [x], {"boundaries": tuple(float(b) for b in boundaries)}, name="bucketize")


# -- crosses -----------------------------------------------------------------------------------------------
def _cross_infer(inputs, attrs):
    k = 1
    for t in inputs:
        d = t.shape[1] if t.shape.ndims == 2 else None
        k = None if d is None or k is None else k * d
    batch = inputs[0].shape[0] if inputs[0].shape.ndims else None
    return [((batch, k), _dt.int64)]


def _cross_kernel(xp, a):
    size, column = int(a["num_buckets"]), a["column"]
    salt = "" if a["hash_key"] is None else f"{int(a['hash_key'])}{_CROSS_SEP}"
    kinds = a["is_string"]

    def tokens(x, is_string):
        """[batch, k] of text tokens, None where the value is missing."""
        x = np.asarray(x)
        out = np.empty(x.shape, dtype=object)
        flat = x.reshape(-1)
        toks = out.reshape(-1)
        for i, v in enumerate(flat.tolist()):
            if is_string:
                t = _as_text(v, column)
                toks[i] = None if t == "" else t
            else:
                toks[i] = None if int(v) < 0 else str(int(v))
        return out

    def run(*xs):
        parts = [tokens(x, s) for x, s in zip(xs, kinds)]
        batch = parts[0].shape[0]
        width = 1
        for p in parts:
            width *= p.shape[1]
        out = np.full((batch, width), -1, dtype=np.int64)
        cache = {}
        for r in range(batch):
            combos = None
            for p in parts:   # the cartesian product of the row's present values, in input order
                toks = [t for t in p[r] if t is not None]
                combos = toks if combos is None else [c + _CROSS_SEP + t for c in combos for t in toks]
            for col, c in enumerate(combos):
                h = cache.get(c)
                if h is None:
                    h = cache[c] = fingerprint64(salt + c) % size
                out[r, col] = h
        return xp.asarray(out)
    return run


register("CrossHash", infer=_cross_infer, kernel=_cross_kernel, differentiable=False)


def cross_hash(inputs, is_string, num_buckets, hash_key, column):
    return apply_op("CrossHash", list(inputs), {"num_buckets": int(num_buckets), "column": str(column),
                                                "is_string": tuple(bool(s) for s in is_string),
                                                "hash_key": None if hash_key is None else int(hash_key)},
                    name="cross_hash")
