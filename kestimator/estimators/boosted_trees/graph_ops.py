"""Engine ops that serve a boosted-trees ensemble from a SavedModel, and the graph that uses them.

The ensemble travels as data: the packed node arrays of every tree (``TreeEnsemble._packed``: global
child ids, leaves looping to themselves) are Variables, so they land in the SavedModel's variables file,
and one registered op, ``BoostedTreesEnsemblePredict``, walks them. Its kernel is written against ``xp``
and advances all rows of a chunk through all trees one level per array step, exactly as
``TreeEnsemble._traverse`` does, and adds the leaf values in tree order with a cumulative sum, as
``TreeEnsemble._sum_leaves`` does, so served logits equal ``estimator.predict``'s bit for bit.

Ops:

* ``BoostedTreesEnsemblePredict(x, roots, feature, threshold, default_left, is_categorical, left, right,
  value, tree_output, baseline)`` -> float64 logits (batch, n_outputs); attr ``max_depth``.
* ``BoostedTreesProbabilities(logits)`` -> float64 probabilities; attr ``kind`` ("logistic" gives two
  columns ``[1 - p, p]``, "softmax" one per class), the formulas of ``loss.py``.
* ``BoostedTreesClassNames(class_ids)`` -> string (batch, 1); attr ``names``.

The feature-column transform reuses the engine and feature-column ops (Cast, Reshape, Bucketize,
VocabularyLookup, IdentityCategorical, IsNan, Select); ``feature_matrix_numpy`` runs the very same kernels
in NumPy for training and ``estimator.predict``, so the two paths cannot drift apart.
"""

import numpy as np

from kestimator.engine import dtypes as _dt
from kestimator.engine.registry import apply_op, get_opdef, register
from kestimator.errors import InvalidArgumentError

# Same chunking as predictor._CHUNK_CELLS: rows x trees per traversal step.
_CHUNK_CELLS = 1 << 18
# Deepest traversal a file may ask for (training allows max_depth <= 30): bounds a corrupt attribute's cost.
_MAX_DEPTH = 64

# The ensemble inputs after ``x``, in op-input order, with the dtype each Variable holds.
ENSEMBLE_ARRAYS = (("roots", np.int64), ("feature", np.int64), ("threshold", np.float64),
                   ("default_left", np.bool_), ("is_categorical", np.bool_), ("left", np.int64),
                   ("right", np.int64), ("value", np.float64), ("tree_output", np.int64),
                   ("baseline", np.float64))
_NODE_ARRAYS = ("feature", "threshold", "default_left", "is_categorical", "left", "right", "value")


# -- the ensemble ---------------------------------------------------------------------------------------------
def _static_len(t):
    return t.shape[0] if t.shape.ndims == 1 else "not-1-D"


def _ensemble_infer(inputs, attrs):
    if len(inputs) != 1 + len(ENSEMBLE_ARRAYS):
        raise InvalidArgumentError(f"BoostedTreesEnsemblePredict takes {1 + len(ENSEMBLE_ARRAYS)} inputs, "
                                   f"got {len(inputs)}")
    x, arrays = inputs[0], dict(zip((n for n, _ in ENSEMBLE_ARRAYS), inputs[1:]))
    if x.shape.ndims != 2:
        raise InvalidArgumentError(f"features must be 2-D (batch, n_features), got shape {x.shape}")
    depth = attrs.get("max_depth")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= _MAX_DEPTH:
        raise InvalidArgumentError(f"max_depth must be an int in [0, {_MAX_DEPTH}], got {depth!r}")
    if not x.dtype.is_floating:
        raise InvalidArgumentError(f"features must be floating point, got {x.dtype.name}")
    for name, dtype in ENSEMBLE_ARRAYS:
        arr = arrays[name]
        if arr.shape.ndims != 1:
            raise InvalidArgumentError(f"ensemble array {name!r} must be 1-D, got shape {arr.shape}")
        if arr.dtype.is_string or arr.dtype.np.kind != np.dtype(dtype).kind:
            raise InvalidArgumentError(f"ensemble array {name!r} must be {np.dtype(dtype).name}, got "
                                       f"{arr.dtype.name}")
    n_nodes = _static_len(arrays["value"])
    for name in _NODE_ARRAYS:
        if _static_len(arrays[name]) != n_nodes:
            raise InvalidArgumentError(f"ensemble array {name!r} has {_static_len(arrays[name])} entries, "
                                       f"'value' has {n_nodes}: the node arrays must have one entry per node")
    if _static_len(arrays["roots"]) != _static_len(arrays["tree_output"]):
        raise InvalidArgumentError(f"ensemble arrays 'roots' ({_static_len(arrays['roots'])}) and 'tree_output' "
                                   f"({_static_len(arrays['tree_output'])}) must have one entry per tree")
    return [((x.shape[0], _static_len(arrays["baseline"])), _dt.float64)]


def _check_ensemble(xp, n_features, roots, feature, left, right, tree_output, baseline):
    """Index ranges checked before any gather uses them (a corrupt file must not read out of bounds)."""
    n_nodes = int(left.shape[0])
    for name, arr, hi in (("roots", roots, n_nodes), ("left", left, n_nodes), ("right", right, n_nodes),
                          ("feature", feature, n_features), ("tree_output", tree_output, int(baseline.shape[0]))):
        if arr.size and (int(xp.min(arr)) < 0 or int(xp.max(arr)) >= hi):
            raise InvalidArgumentError(f"ensemble array {name!r} holds an index outside [0, {hi})")


def _ensemble_kernel(xp, attrs):
    max_depth = int(attrs["max_depth"])

    def run(x, roots, feature, threshold, default_left, is_categorical, left, right, value, tree_output,
            baseline):
        n_rows, n_features = x.shape
        n_outputs = int(baseline.shape[0])
        _check_ensemble(xp, n_features, roots, feature, left, right, tree_output, baseline)
        x = xp.ascontiguousarray(x, dtype=xp.float64)
        out = xp.empty((n_rows, n_outputs), dtype=xp.float64)
        n_trees = int(roots.shape[0])
        if n_trees == 0:
            out[...] = baseline
            return out
        any_categorical = bool(is_categorical.any())
        chunk = max(1, _CHUNK_CELLS // n_trees)
        for r0 in range(0, n_rows, chunk):
            r1 = min(n_rows, r0 + chunk)
            m = r1 - r0
            flat = x[r0:r1].reshape(-1)
            row_base = (xp.arange(m, dtype=xp.int64) * n_features)[:, None]
            pos = xp.broadcast_to(roots, (m, n_trees)).copy()
            for _ in range(max_depth):          # one array step per level; leaves point to themselves
                xv = flat[row_base + feature[pos]]
                t = threshold[pos]
                go_left = xv <= t
                if any_categorical:
                    go_left = xp.where(is_categorical[pos], xv == t, go_left)
                missing = xp.isnan(xv)
                if bool(missing.any()):
                    go_left = xp.where(missing, default_left[pos], go_left)
                pos = xp.where(go_left, left[pos], right[pos])
            leaf_values = value[pos]
            for k in range(n_outputs):
                # sequential sum in training's tree order (TreeEnsemble._sum_leaves)
                cols = leaf_values[:, tree_output == k]
                start = xp.full((m, 1), baseline[k], dtype=xp.float64)
                out[r0:r1, k] = xp.cumsum(xp.concatenate([start, cols], axis=1), axis=1)[:, -1]
        return out
    return run


register("BoostedTreesEnsemblePredict", infer=_ensemble_infer, kernel=_ensemble_kernel, differentiable=False)


def ensemble_predict(x, ensemble_tensors, max_depth, name="boosted_trees_predict"):
    """Logits of the rows of ``x`` (float64 (batch, n_features)) under the ensemble Variables.

    Args:
        x: float64 feature matrix tensor.
        ensemble_tensors: {name: tensor} for every name of ENSEMBLE_ARRAYS.
        max_depth: levels to traverse (the deepest tree's depth).
        name: op name.

    Returns:
        float64 tensor (batch, n_outputs).
    """
    inputs = [x] + [ensemble_tensors[n] for n, _ in ENSEMBLE_ARRAYS]
    return apply_op("BoostedTreesEnsemblePredict", inputs, {"max_depth": int(max_depth)}, name=name)


def packed_ensemble_arrays(ensemble):
    """The arrays of ENSEMBLE_ARRAYS (and the max depth) of a fitted predictor.TreeEnsemble."""
    if not ensemble.trees:
        arrays = {n: np.empty(0, dt) for n, dt in ENSEMBLE_ARRAYS}
        arrays["baseline"] = ensemble.baseline.astype(np.float64)
        return arrays, 0
    p = ensemble._packed()
    arrays = {"roots": p["roots"], "feature": p["feature"], "threshold": p["threshold"],
              "default_left": p["default_left"], "is_categorical": p["is_categorical"], "left": p["left"],
              "right": p["right"], "value": p["value"], "tree_output": p["output"], "baseline": ensemble.baseline}
    return {n: np.ascontiguousarray(arrays[n], dt) for n, dt in ENSEMBLE_ARRAYS}, int(p["max_depth"])


# -- heads ----------------------------------------------------------------------------------------------------
def _proba_infer(inputs, attrs):
    batch = inputs[0].shape[0] if inputs[0].shape.ndims == 2 else None
    width = 2 if attrs["kind"] == "logistic" else (inputs[0].shape[1] if inputs[0].shape.ndims == 2 else None)
    if attrs["kind"] not in ("logistic", "softmax"):
        raise InvalidArgumentError(f"kind must be 'logistic' or 'softmax', got {attrs['kind']!r}")
    return [((batch, width), _dt.float64)]


def _proba_kernel(xp, attrs):
    if attrs["kind"] == "logistic":
        def run(z):
            with np.errstate(over="ignore"):        # exp overflowing to inf correctly gives p = 0
                p = xp.exp(-z[:, 0].astype(xp.float64))
            p += 1.0
            p = xp.reciprocal(p, out=p)
            return xp.stack([1.0 - p, p], axis=1)
        return run

    def run_softmax(z):
        shifted = z - z.max(axis=1, keepdims=True)
        e = xp.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)
    return run_softmax


register("BoostedTreesProbabilities", infer=_proba_infer, kernel=_proba_kernel, differentiable=False)


def _names_infer(inputs, attrs):
    return [((inputs[0].shape[0] if inputs[0].shape.ndims else None, 1), _dt.string)]


def _names_kernel(xp, attrs):
    names = np.asarray([str(n).encode() for n in attrs["names"]] + [b""], dtype=object)

    def run(ids):
        ids = np.asarray(ids).reshape(-1).astype(np.int64)
        ids = np.where((ids < 0) | (ids >= len(names) - 1), len(names) - 1, ids)
        return names[ids].reshape(-1, 1)
    return run


register("BoostedTreesClassNames", infer=_names_infer, kernel=_names_kernel, differentiable=False, gpu=False)


# -- feature columns -> the (rows, features) matrix -----------------------------------------------------------
def categorical_lookup_attrs(col):
    """(op type, attrs) of the feature-column op that maps a categorical column's raw values to ids.

    Out-of-vocabulary values of a vocabulary column without OOV buckets share the id ``len(vocabulary)``
    (a tree can still route them); "" (strings) and -1 (integers) are missing, as in TF.

    Raises:
        InvalidArgumentError: not a vocabulary or identity column.
    """
    from kestimator.feature_column.categorical import IdentityColumn, VocabularyColumn
    if isinstance(col, VocabularyColumn):
        oov = int(col.num_oov_buckets)
        default = len(col.vocabulary) if oov == 0 and col.default_value == -1 else int(col.default_value)
        return "VocabularyLookup", {"vocabulary": tuple(col.vocabulary), "is_string": bool(col.is_string),
                                    "num_oov_buckets": oov, "default_value": default, "column": str(col.name)}
    if isinstance(col, IdentityColumn):
        return "IdentityCategorical", {"num_buckets": int(col.num_buckets), "column": str(col.name),
                                       "default_value": None if col.default_value is None
                                       else int(col.default_value)}
    raise InvalidArgumentError(f"indicator column over {getattr(col, 'name', col)!r}: boosted trees need a "
                               f"vocabulary or identity categorical column, got {type(col).__name__}")


def _run_kernel(op_type, attrs, *arrays):
    return get_opdef(op_type).kernel(np, attrs)(*arrays)


def column_block_numpy(kind, col, raw):
    """The float64 (rows, width) block of one column, computed with the serving ops' kernels."""
    raw = np.asarray(raw)
    n = raw.shape[0] if raw.ndim else 1
    if kind == "categorical":
        op_type, attrs = categorical_lookup_attrs(col.categorical_column)
        first = raw.reshape(n, -1)[:, :1]
        if op_type == "VocabularyLookup" and first.dtype.kind == "f" and not attrs["is_string"]:
            first = first.astype(np.int64)
        ids = _run_kernel(op_type, attrs, first)
        return np.where(ids < 0, np.nan, ids.astype(np.float64))
    if raw.dtype.kind in "OSU":
        key = col.key if kind == "numeric" else col.source.key
        raise InvalidArgumentError(f"feature {key!r} of column {col.name!r} must be numeric, got {raw.dtype}")
    block = raw.astype(np.float64).reshape(n, -1)
    if kind == "bucketized":
        ids = _run_kernel("Bucketize", {"boundaries": tuple(float(b) for b in col.boundaries)}, block)
        block = np.where(np.isnan(block), np.nan, ids.astype(np.float64))
    return block


def column_block_graph(kind, col, tensor):
    """The same block as graph ops on a feature tensor (for the serving graph)."""
    from kestimator.engine.ops.array_ops import reshape
    from kestimator.engine.ops.core import cast
    from kestimator.engine.ops.math_ops import is_nan, where
    from kestimator.feature_column import _ops as fc_ops  # noqa: F401  (registers the lookup ops)
    if kind == "categorical":
        op_type, attrs = categorical_lookup_attrs(col.categorical_column)
        dims = tuple(tensor.shape[1:]) if tensor.shape.ndims else ()
        if None in dims:
            raise InvalidArgumentError(f"column {col.name!r}: the serving input {tensor.name} needs a known shape "
                                       f"after the batch dimension, got {tensor.shape}")
        first = reshape(tensor, [-1, int(np.prod(dims))])[:, 0:1]
        if op_type == "VocabularyLookup" and not first.dtype.is_string and first.dtype.is_floating and \
                not attrs["is_string"]:
            first = cast(first, _dt.int64)
        ids = apply_op(op_type, [first], attrs, name=f"{col.name}_ids")
        return where(ids < 0, np.float64(np.nan), cast(ids, _dt.float64))
    if tensor.dtype.is_string:
        raise InvalidArgumentError(f"column {col.name!r} needs a numeric feature, the serving input is a string")
    width = int(np.prod(col.shape if kind == "numeric" else col.source.shape))
    block = reshape(cast(tensor, _dt.float64), [-1, width])
    if kind == "bucketized":
        ids = apply_op("Bucketize", [block], {"boundaries": tuple(float(b) for b in col.boundaries)},
                       name=f"{col.name}_bucketize")
        block = where(is_nan(block), np.float64(np.nan), cast(ids, _dt.float64))
    return block
