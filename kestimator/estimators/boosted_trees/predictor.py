"""Trees as flat arrays, and vectorised prediction, explanations and feature importances.

A tree is a handful of parallel arrays indexed by node id, root first, every child after its parent
(breadth-first order). A split node sends a row left when ``x <= threshold`` (``x == threshold`` for a
categorical split) and missing values (NaN) to ``default_left``'s side. Every node, internal or not,
keeps ``value``: the learning-rate-scaled Newton step of its rows, so a leaf's value is its output and
an internal node's value is what it would output if it were a leaf (used by post-pruning and by the
explanations).

Prediction never loops over rows in Python: all rows of a chunk and all trees advance one level per
NumPy step. Leaves point to themselves, so rows that reached a leaf simply stay there.
"""

from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from kestimator.errors import DataLossError, FailedPreconditionError
from kestimator.estimators.boosted_trees.binning import CATEGORICAL, prepare_features

# Rows x trees per traversal step: keeps the per-step temporaries (a few MB) in cache.
_CHUNK_CELLS = 1 << 18


@dataclass
class Tree:
    """One regression tree as flat arrays (n_nodes,) each; see the module docstring.

    Attributes:
      feature: int32, split feature (-1 at leaves).
      bin: int32, split bin in the training binning (-1 at leaves).
      threshold: float64, raw threshold (0 at leaves).
      default_left: bool, side of missing values.
      is_categorical: bool, equality split.
      left, right: int32 child ids (-1 at leaves).
      value: float64, output of the node as a leaf (learning rate applied).
      gain: float64, gain of the split (0 at leaves).
      count: int64, training rows reaching the node.
      hessian: float64, their hessian sum.
    """

    feature: np.ndarray
    bin: np.ndarray
    threshold: np.ndarray
    default_left: np.ndarray
    is_categorical: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    gain: np.ndarray
    count: np.ndarray
    hessian: np.ndarray

    DTYPES = {"feature": np.int32, "bin": np.int32, "threshold": np.float64,
              "default_left": np.bool_, "is_categorical": np.bool_, "left": np.int32,
              "right": np.int32, "value": np.float64, "gain": np.float64, "count": np.int64,
              "hessian": np.float64}

    @property
    def n_nodes(self):
        return len(self.value)

    @property
    def is_leaf(self):
        return self.left < 0

    def depth(self):
        """Length of the longest root-to-leaf path (0 for a single leaf)."""
        depth = np.zeros(self.n_nodes, np.int64)
        for i in np.flatnonzero(~self.is_leaf):  # parents come before children
            depth[self.left[i]] = depth[self.right[i]] = depth[i] + 1
        return int(depth.max()) if self.n_nodes else 0


class Explanation(NamedTuple):
    """Output of :meth:`TreeEnsemble.predict_with_explanations`.

    Attributes:
      logits: float64 (n_rows, n_outputs), the raw scores.
      bias: float64 (n_outputs,), the baseline plus every tree's root value: the prediction before any
        feature is looked at.
      contributions: float64 (n_rows, n_outputs, n_features); ``contributions.sum(-1) == logits - bias``.
    """

    logits: np.ndarray
    bias: np.ndarray
    contributions: np.ndarray


class TreeEnsemble:
    """An additive ensemble: ``raw[:, k] = baseline[k] + sum of the trees of output k``.

    Args:
      baseline: float64 (n_outputs,), the starting raw score.
      feature_kinds: uint8 (n_features,), from the bin mapper (ids: negative means missing).
    """

    def __init__(self, baseline, feature_kinds):
        self.baseline = np.asarray(baseline, np.float64).ravel()
        self.feature_kinds = np.asarray(feature_kinds, np.uint8).ravel()
        self.trees = []
        self.tree_output = []
        self._packed_cache = None

    @property
    def n_outputs(self):
        return self.baseline.size

    @property
    def n_features(self):
        return self.feature_kinds.size

    @property
    def n_trees(self):
        return len(self.trees)

    def add_tree(self, tree, output=0):
        """Appends ``tree``, which adds to raw score column ``output``."""
        self.trees.append(tree)
        self.tree_output.append(int(output))
        self._packed_cache = None

    def _packed(self):
        """All trees in one set of arrays, in traversal form (leaves loop to themselves)."""
        if self._packed_cache is None:
            sizes = np.array([t.n_nodes for t in self.trees], np.int64)
            roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            cat = lambda name: np.concatenate([getattr(t, name) for t in self.trees])  # noqa: E731
            leaf = cat("left") < 0
            own = np.arange(int(sizes.sum()), dtype=np.int64)
            offset = np.repeat(roots, sizes)
            self._packed_cache = {
                "roots": roots,
                "feature": np.where(leaf, 0, cat("feature")).astype(np.int64),
                "threshold": np.where(leaf, np.inf, cat("threshold")),
                "default_left": cat("default_left") | leaf,
                "is_categorical": cat("is_categorical") & ~leaf,
                "left": np.where(leaf, own, cat("left") + offset),
                "right": np.where(leaf, own, cat("right") + offset),
                "value": cat("value"),
                "max_depth": max(t.depth() for t in self.trees),
                "output": np.asarray(self.tree_output, np.int64),
            }
        return self._packed_cache

    def _traverse(self, X, explain):
        """Yields (row slice, leaf node ids (m, T), contributions or None) chunk by chunk."""
        p = self._packed()
        n_rows, n_features = X.shape
        n_trees = len(p["roots"])
        chunk = max(1, _CHUNK_CELLS // max(n_trees, 1))
        any_categorical = bool(p["is_categorical"].any())
        for r0 in range(0, n_rows, chunk):
            r1 = min(n_rows, r0 + chunk)
            m = r1 - r0
            flat = X[r0:r1].ravel()
            row_base = (np.arange(m, dtype=np.int64) * n_features)[:, None]
            pos = np.broadcast_to(p["roots"], (m, n_trees)).copy()
            contrib = None
            if explain:
                contrib = np.zeros(m * self.n_outputs * n_features)
                cell = ((np.arange(m)[:, None] * self.n_outputs + p["output"][None, :])
                        * n_features)
            for _ in range(p["max_depth"]):
                f = p["feature"][pos]
                x = flat[row_base + f]
                t = p["threshold"][pos]
                left = x <= t
                if any_categorical:
                    left = np.where(p["is_categorical"][pos], x == t, left)
                missing = np.isnan(x)
                if missing.any():
                    left = np.where(missing, p["default_left"][pos], left)
                nxt = np.where(left, p["left"][pos], p["right"][pos])
                if explain:
                    delta = p["value"][nxt] - p["value"][pos]
                    contrib += np.bincount((cell + f).ravel(), weights=delta.ravel(),
                                           minlength=contrib.size)
                pos = nxt
            yield slice(r0, r1), pos, contrib

    def _sum_leaves(self, leaf_values, out):
        """``out[:, k] = baseline[k] + leaf values of output k's trees``, added in tree order.

        The sum is sequential (``np.cumsum``), in the order training added the trees, so predictions
        of a resumed run reproduce the training-time raw scores bit for bit.
        """
        outputs = self._packed()["output"]
        for k in range(self.n_outputs):
            cols = leaf_values[:, outputs == k]
            start = np.full((cols.shape[0], 1), self.baseline[k])
            out[:, k] = np.cumsum(np.concatenate([start, cols], axis=1), axis=1)[:, -1]

    def predict_raw(self, X):
        """Raw scores (logits) of the rows of ``X``.

        Args:
          X: array-like (n_rows, n_features); NaN (and negative ids in id columns) are missing.

        Returns:
          float64 (n_rows, n_outputs).

        Raises:
          InvalidArgumentError: ``X`` has the wrong shape or is not numeric.
        """
        X = prepare_features(X, self.feature_kinds)
        out = np.empty((X.shape[0], self.n_outputs))
        if not self.trees:
            out[:] = self.baseline
            return out
        value = self._packed()["value"]
        for rows, leaves, _ in self._traverse(X, explain=False):
            self._sum_leaves(value[leaves], out[rows])
        return out

    def predict_with_explanations(self, X):
        """Raw scores plus per-feature contributions (Saabas path attribution).

        Following each row's path, the change of node value at every split (child value minus
        parent value) is credited to the split's feature. Summed over a path this telescopes to
        ``leaf value - root value``, so for every row ``contributions.sum(-1) == logits - bias``
        (TF's ``experimental_predict_with_explanations`` reports the same "directional feature
        contributions").

        Args:
          X: array-like (n_rows, n_features).

        Returns:
          Explanation(logits, bias, contributions).
        """
        X = prepare_features(X, self.feature_kinds)
        n_rows = X.shape[0]
        logits = np.empty((n_rows, self.n_outputs))
        contributions = np.zeros((n_rows, self.n_outputs, self.n_features))
        bias = self.baseline.copy()
        if not self.trees:
            logits[:] = self.baseline
            return Explanation(logits, bias, contributions)
        p = self._packed()
        np.add.at(bias, p["output"], p["value"][p["roots"]])
        for rows, leaves, contrib in self._traverse(X, explain=True):
            self._sum_leaves(p["value"][leaves], logits[rows])
            contributions[rows] = contrib.reshape(-1, self.n_outputs, self.n_features)
        return Explanation(logits, bias, contributions)

    def feature_importances(self, normalize=True):
        """Total split gain per feature.

        Args:
          normalize: divide by the total so the importances sum to 1.

        Returns:
          float64 (n_features,).

        Raises:
          FailedPreconditionError: ``normalize`` and the ensemble has no split with positive gain.
        """
        importances = np.zeros(self.n_features)
        for tree in self.trees:
            split = ~tree.is_leaf
            importances += np.bincount(tree.feature[split], weights=tree.gain[split],
                                       minlength=self.n_features)
        if normalize:
            total = importances.sum()
            if not total > 0:
                raise FailedPreconditionError(
                    "cannot normalize feature importances: the trees hold no split with positive gain")
            importances = importances / total
        return importances

    def get_state(self):
        """The ensemble as flat arrays (node arrays of all trees back to back, child ids local)."""
        sizes = [t.n_nodes for t in self.trees]
        state = {
            "baseline": self.baseline.copy(),
            "tree_node_offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            "tree_output": np.asarray(self.tree_output, np.int32),
        }
        for field in fields(Tree):
            arrays = [getattr(t, field.name) for t in self.trees]
            dtype = Tree.DTYPES[field.name]
            state["node_" + field.name] = (np.concatenate(arrays).astype(dtype) if arrays
                                           else np.empty(0, dtype))
        return state

    @classmethod
    def from_state(cls, state, feature_kinds):
        """Rebuilds an ensemble from :meth:`get_state` output, checking structure and ranges.

        Raises:
          DataLossError: a missing key, or arrays whose shapes or contents are inconsistent (the key
            and tree are named).
        """
        try:
            ensemble = cls(state["baseline"], feature_kinds)
            offsets = np.asarray(state["tree_node_offsets"], np.int64).ravel()
            outputs = np.asarray(state["tree_output"], np.int64).ravel()
            nodes = {f.name: np.asarray(state["node_" + f.name]).ravel() for f in fields(Tree)}
        except KeyError as e:
            raise DataLossError(f"boosted-trees state: missing key {e.args[0]!r}") from None
        n_nodes = offsets[-1] if offsets.size else -1
        if offsets.size != outputs.size + 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 1):
            raise DataLossError("boosted-trees state: tree_node_offsets does not match tree_output "
                                "or has an empty tree")
        for name, array in nodes.items():
            if array.size != n_nodes:
                raise DataLossError(f"boosted-trees state: node_{name} has {array.size} entries, "
                                    f"tree_node_offsets says {n_nodes}")
            kind = np.dtype(Tree.DTYPES[name]).kind
            if array.dtype.kind != kind and not (kind == "f" and array.dtype.kind in "iu"):
                raise DataLossError(f"boosted-trees state: node_{name} has dtype {array.dtype}")
        if np.any((outputs < 0) | (outputs >= ensemble.n_outputs)):
            raise DataLossError("boosted-trees state: tree_output out of range")
        for t in range(outputs.size):
            a, b = offsets[t], offsets[t + 1]
            tree = Tree(**{name: nodes[name][a:b].astype(Tree.DTYPES[name]) for name in nodes})
            problem = _structure_problem(tree, ensemble.feature_kinds)
            if problem:
                raise DataLossError(f"boosted-trees state: tree {t}: {problem}")
            ensemble.add_tree(tree, outputs[t])
        return ensemble


def _structure_problem(tree, feature_kinds):
    """Why ``tree`` is not a valid breadth-first binary tree over these features, or None."""
    n = tree.n_nodes
    split = tree.left >= 0
    ids = np.arange(n)
    if np.any(split != (tree.right >= 0)):
        return "a node has exactly one child"
    children = np.concatenate([tree.left[split], tree.right[split]])
    parents = np.concatenate([ids[split], ids[split]])
    # Children after their parent makes the graph acyclic; each node reached once makes it a tree.
    if np.any(children <= parents) or np.any(children >= n):
        return "a child id is out of range or not after its parent"
    if np.unique(children).size != children.size or children.size != n - 1:
        return "a node has two parents or is unreachable"
    f = tree.feature[split]
    if np.any((f < 0) | (f >= len(feature_kinds))):
        return "split feature out of range"
    if np.any(tree.is_categorical[split] != (feature_kinds[f] == CATEGORICAL)):
        return "split kind does not match the feature kind"
    if not (np.all(np.isfinite(tree.value)) and not np.any(np.isnan(tree.threshold))):
        return "non-finite node value or NaN threshold"
    return None

