"""GradientBoostedTrees: the NumPy-level trainer behind BoostedTreesClassifier / Regressor.

Example::

    from kestimator.estimators.boosted_trees import GradientBoostedTrees
    model = GradientBoostedTrees(n_trees=100, max_depth=6, n_classes=2).fit(X_train, y_train)
    p = model.predict_proba(X_test)[:, 1]
    state = model.get_state()                  # arrays + JSON-able scalars, for a checkpoint
    model = GradientBoostedTrees.from_state(state)
    model.fit(X_train, y_train)                # resumes: adds trees up to n_trees in total

Training, per round: gradients and hessians of the loss at the current raw scores (loss.py), then
one tree per raw-score column (one for binary and regression, one per class for multi-class) grown
on the binned features (grower.py); each leaf's value is added to its rows' raw scores.
"""

import math
import numbers

import numpy as np

from kestimator.errors import DataLossError, InvalidArgumentError, NotFoundError
from kestimator.estimators.boosted_trees import _backend
from kestimator.estimators.boosted_trees.binning import (BUCKETIZED, CATEGORICAL, NUMERIC, BinMapper,
                                                         prepare_features)
from kestimator.estimators.boosted_trees.distributed import distributed_baseline
from kestimator.estimators.boosted_trees.grower import PRUNING_MODES, GrowerParams, grow_tree
from kestimator.estimators.boosted_trees.loss import make_loss
from kestimator.estimators.boosted_trees.predictor import TreeEnsemble
from kestimator.estimators.boosted_trees.splitting import SplitParams

STATE_FORMAT = "kestimator.boosted_trees.v1"
_HYPERPARAMETERS = ("n_trees", "max_depth", "learning_rate", "l1_regularization",
                    "l2_regularization", "tree_complexity", "min_node_weight", "center_bias",
                    "pruning_mode", "quantile_sketch_epsilon", "n_classes", "max_bins", "random_state")


class GradientBoostedTrees:
    """Histogram gradient-boosted trees on NumPy arrays (TF BoostedTrees hyperparameters).

    Args:
      n_trees: boosting rounds in total (a multi-class round grows one tree per class).
      max_depth: levels of splits per tree.
      learning_rate: shrinkage of every leaf value.
      l1_regularization, l2_regularization: penalties on leaf weights, applied to the gradient and
        hessian sums of a node (see splitting.py).
      tree_complexity: gain a split must pay for its extra leaf.
      min_node_weight: minimum hessian sum of each child of a split.
      center_bias: start from the best constant (prior log-odds / log priors / mean) instead of 0.
      pruning_mode: "none", "pre" or "post" (see grower.py); "pre" and "post" need
        tree_complexity > 0, as in TF.
      quantile_sketch_epsilon: rank precision of the numeric bin edges (binning.py).
      n_classes: 2 (logistic), >= 3 (softmax), 1 or "regression" (squared error).
      max_bins: value bins per feature, <= 255 (plus one for missing values).
      categorical_features: column indices holding unordered integer ids (equality splits).
      bucketized_features: column indices holding ordered integer ids, used as bins directly.
      random_state: seed of the row sample used for the bin edges.
      kernels: "auto", "numba" or "numpy" (see _backend.resolve_kernels).

    Attributes (after ``fit``):
      bin_mapper_: the fitted binning.BinMapper.
      ensemble_: the predictor.TreeEnsemble.
      n_rounds_: boosting rounds done so far.
    """

    def __init__(self, n_trees=100, max_depth=6, learning_rate=0.1, l1_regularization=0.0,
                 l2_regularization=0.0, tree_complexity=0.0, min_node_weight=0.0, center_bias=True,
                 pruning_mode="none", quantile_sketch_epsilon=0.01, n_classes=2, max_bins=255,
                 categorical_features=(), bucketized_features=(), random_state=0, kernels="auto"):
        self.n_trees = n_trees
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.l1_regularization = l1_regularization
        self.l2_regularization = l2_regularization
        self.tree_complexity = tree_complexity
        self.min_node_weight = min_node_weight
        self.center_bias = center_bias
        self.pruning_mode = pruning_mode
        self.quantile_sketch_epsilon = quantile_sketch_epsilon
        self.n_classes = n_classes
        self.max_bins = max_bins
        self.categorical_features = categorical_features
        self.bucketized_features = bucketized_features
        self.random_state = random_state
        self.kernels = kernels
        self.bin_mapper_ = None
        self.ensemble_ = None
        self.n_rounds_ = 0

    # ----------------------------------------------------------------------------------- training

    @property
    def is_fitted(self):
        return self.ensemble_ is not None

    def _check_params(self):
        """Validates the hyperparameters; returns (loss, GrowerParams, kernels).

        Raises:
          InvalidArgumentError: the first bad hyperparameter, named.
        """
        def check(ok, message):
            if not ok:
                raise InvalidArgumentError(message)

        is_int = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)  # noqa: E731
        check(is_int(self.n_trees) and self.n_trees >= 1, f"n_trees must be an int >= 1, got {self.n_trees!r}")
        check(is_int(self.max_depth) and 1 <= self.max_depth <= 30,
              f"max_depth must be an int in [1, 30], got {self.max_depth!r}")
        check(isinstance(self.learning_rate, numbers.Real) and 0 < self.learning_rate < math.inf,
              f"learning_rate must be a positive number, got {self.learning_rate!r}")
        for name in ("l1_regularization", "l2_regularization", "tree_complexity", "min_node_weight"):
            v = getattr(self, name)
            check(isinstance(v, numbers.Real) and 0 <= v < math.inf,
                  f"{name} must be a finite number >= 0, got {v!r}")
        check(self.pruning_mode in PRUNING_MODES,
              f"pruning_mode must be one of {PRUNING_MODES}, got {self.pruning_mode!r}")
        check(self.pruning_mode == "none" or self.tree_complexity > 0,
              f"pruning_mode={self.pruning_mode!r} needs tree_complexity > 0 (it prunes splits whose "
              f"gain does not pay the tree_complexity)")
        check(is_int(self.max_bins) and 2 <= self.max_bins <= 255,
              f"max_bins must be an int in [2, 255], got {self.max_bins!r}")
        check(0 < self.quantile_sketch_epsilon < 1,
              f"quantile_sketch_epsilon must be in (0, 1), got {self.quantile_sketch_epsilon!r}")
        loss = make_loss(self.n_classes)
        grower = GrowerParams(
            max_depth=int(self.max_depth), learning_rate=float(self.learning_rate),
            split=SplitParams(float(self.l1_regularization), float(self.l2_regularization),
                              float(self.tree_complexity), float(self.min_node_weight)),
            pruning_mode=self.pruning_mode)
        return loss, grower, _backend.resolve_kernels(self.kernels)

    def _feature_kinds(self, n_features):
        kinds = np.full(n_features, NUMERIC, np.uint8)
        for name, kind in (("categorical_features", CATEGORICAL), ("bucketized_features", BUCKETIZED)):
            for f in getattr(self, name):
                if not (isinstance(f, (int, np.integer)) and 0 <= f < n_features):
                    raise InvalidArgumentError(f"{name} holds {f!r}, not a column index below {n_features}")
                if kinds[f] != NUMERIC:
                    raise InvalidArgumentError(f"column {f} is listed twice in categorical/bucketized_features")
                kinds[f] = kind
        return kinds

    def fit(self, X, y, sample_weight=None, n_new_trees=None, collectives=None, global_rows=None):
        """Trains, or continues training, until ``n_trees`` rounds exist.

        A second call resumes: the bin edges and baseline of the first call are kept, raw scores are
        recomputed from the existing trees, and new trees are added. Fitting 50 rounds and then 50
        more on the same data gives exactly the trees of fitting 100 at once.

        Args:
          X: array-like (n_rows, n_features); NaN is a missing value (as is a negative id in a
            categorical or bucketized column).
          y: labels (n_rows,): 0/1, class ids, or regression targets.
          sample_weight: optional non-negative weights (n_rows,).
          n_new_trees: at most this many rounds in this call (None: until ``n_trees``).
          collectives: a distributed.TreeCollectives when this process holds one shard of the rows
            of an MPI job: bin edges, baseline and every level's histograms are then agreed over the
            ranks, and every rank ends with the same ensemble, that of a one-process fit on all rows
            (up to the last bits of the leaf values; see distributed.py).
          global_rows: global row numbers of this shard (default: consecutive blocks in rank order);
            only the bin-edge sample uses them.

        Returns:
          self.

        Raises:
          InvalidArgumentError: bad hyperparameters, shapes, labels or weights.
        """
        loss, grower_params, kernels = self._check_params()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] == 0:
            raise InvalidArgumentError(f"X must be 2-D with at least one row, got shape {X.shape}")
        y = loss.check_labels(y)
        if y.shape[0] != X.shape[0]:
            raise InvalidArgumentError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        w = _check_sample_weight(sample_weight, X.shape[0])
        if n_new_trees is not None and not (isinstance(n_new_trees, (int, np.integer)) and n_new_trees >= 0):
            raise InvalidArgumentError(f"n_new_trees must be an int >= 0 or None, got {n_new_trees!r}")

        if not self.is_fitted:
            kinds = self._feature_kinds(X.shape[1])
            self.bin_mapper_ = BinMapper(self.max_bins, self.quantile_sketch_epsilon, kinds,
                                         self.random_state, kernels).fit(X, collectives, global_rows)
        X = prepare_features(X, self.bin_mapper_.feature_kinds_, max_id=self.max_bins)
        if self.is_fitted:
            raw = self.ensemble_.predict_raw(X)
        else:
            if not self.center_bias:
                baseline = np.zeros(loss.n_outputs)
            elif collectives is not None and collectives.distributed:
                baseline = distributed_baseline(loss, y, w, collectives)
            else:
                baseline = loss.baseline(y, w)
            self.ensemble_ = TreeEnsemble(baseline, self.bin_mapper_.feature_kinds_)
            self.n_rounds_ = 0
            raw = np.tile(self.ensemble_.baseline, (X.shape[0], 1))
        rounds = self.n_trees - self.n_rounds_
        if n_new_trees is not None:
            rounds = min(rounds, int(n_new_trees))
        if rounds <= 0:
            return self
        self.bin_mapper_.kernels = kernels  # this call's choice (a restored mapper keeps its own)
        binned = self.bin_mapper_.transform(X)
        reduce = collectives.sum_histograms if collectives is not None and collectives.distributed else None
        self._boost(binned, y, w, raw, loss, grower_params, kernels, rounds, reduce)
        return self

    def _boost(self, binned, y, w, raw, loss, grower_params, kernels, rounds, reduce=None):
        n_rows = binned.shape[1]
        n_outputs = loss.n_outputs
        gradients = np.empty((n_rows, n_outputs), np.float32)
        hessians = np.empty((n_rows, n_outputs), np.float32)
        sample_indices = np.empty(n_rows, np.int32)
        scratch = np.empty(n_rows, np.int32)
        rows = np.arange(n_rows, dtype=np.int32)
        single = n_outputs == 1
        for _ in range(rounds):
            if single:
                loss.gradients_hessians(y, raw[:, 0], w, gradients[:, 0], hessians[:, 0])
            else:
                loss.gradients_hessians(y, raw, w, gradients, hessians)
            for k in range(n_outputs):
                g = np.ascontiguousarray(gradients[:, k])
                h = np.ascontiguousarray(hessians[:, k])
                sample_indices[:] = rows
                grown = grow_tree(binned, g, h, sample_indices, scratch, self.bin_mapper_,
                                  grower_params, kernels, reduce)
                _add_leaf_values(raw, k, sample_indices, grown, kernels)
                self.ensemble_.add_tree(grown.tree, k)
            self.n_rounds_ += 1

    # --------------------------------------------------------------------------------- prediction

    def _check_fitted(self):
        if not self.is_fitted:
            raise NotFoundError("this GradientBoostedTrees has no trees yet: call fit() or from_state()")

    def predict_raw(self, X):
        """Raw scores (logits): float64 (n_rows,) for binary/regression, (n_rows, n_classes) else."""
        self._check_fitted()
        raw = self.ensemble_.predict_raw(X)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def predict_proba(self, X):
        """Class probabilities (n_rows, n_classes) (2 columns for binary).

        Raises:
          InvalidArgumentError: the model is a regressor.
        """
        loss = make_loss(self.n_classes)
        if not loss.is_classification:
            raise InvalidArgumentError("predict_proba needs a classifier (n_classes >= 2)")
        return loss.raw_to_prediction(self.predict_raw(X))

    def predict(self, X):
        """Class ids (classifier) or predicted values (regressor), shape (n_rows,)."""
        loss = make_loss(self.n_classes)
        if loss.is_classification:
            return np.argmax(self.predict_proba(X), axis=1)
        return self.predict_raw(X)

    def predict_with_explanations(self, X):
        """predictor.Explanation (logits, bias, per-feature contributions) of the rows of ``X``."""
        self._check_fitted()
        return self.ensemble_.predict_with_explanations(X)

    def feature_importances(self, normalize=True):
        """Total split gain per feature, float64 (n_features,); see TreeEnsemble.feature_importances."""
        self._check_fitted()
        return self.ensemble_.feature_importances(normalize)

    # -------------------------------------------------------------------------------- checkpoints

    def get_state(self):
        """Everything needed to predict and to resume: NumPy arrays and JSON-able scalars only.

        Returns:
          dict with the hyperparameters, ``n_rounds``, the bin edges (binning state) and the trees
          (ensemble state); :meth:`from_state` rebuilds the model.
        """
        self._check_fitted()
        state = {"format": STATE_FORMAT, "n_rounds": int(self.n_rounds_)}
        for name in _HYPERPARAMETERS:
            value = getattr(self, name)
            state[name] = value.item() if isinstance(value, np.generic) else value
        state["categorical_features"] = np.asarray(self.categorical_features, np.int64).ravel()
        state["bucketized_features"] = np.asarray(self.bucketized_features, np.int64).ravel()
        state.update(self.bin_mapper_.get_state())
        state.update(self.ensemble_.get_state())
        return state

    @classmethod
    def from_state(cls, state, kernels="auto"):
        """Rebuilds a model from :meth:`get_state` output (e.g. read back from a checkpoint).

        Args:
          state: mapping of the keys written by :meth:`get_state`.
          kernels: "auto", "numba" or "numpy".

        Returns:
          A fitted GradientBoostedTrees.

        Raises:
          DataLossError: wrong format, a missing key, or arrays that do not fit together.
        """
        if state.get("format") != STATE_FORMAT:
            raise DataLossError(f"boosted-trees state: format is {state.get('format')!r}, "
                                f"expected {STATE_FORMAT!r}")
        try:
            kwargs = {name: _scalar(state[name]) for name in _HYPERPARAMETERS}
            n_rounds = int(_scalar(state["n_rounds"]))
            kwargs["categorical_features"] = [int(f) for f in np.asarray(state["categorical_features"]).ravel()]
            kwargs["bucketized_features"] = [int(f) for f in np.asarray(state["bucketized_features"]).ravel()]
        except KeyError as e:
            raise DataLossError(f"boosted-trees state: missing key {e.args[0]!r}") from None
        model = cls(kernels=kernels, **kwargs)
        try:
            loss, _, _ = model._check_params()
        except InvalidArgumentError as e:
            raise DataLossError(f"boosted-trees state: {e}") from None
        mapper = BinMapper.from_state(state, model.random_state, kernels)
        try:
            expected_kinds = model._feature_kinds(mapper.n_features)
        except InvalidArgumentError as e:
            raise DataLossError(f"boosted-trees state: {e}") from None
        if not np.array_equal(expected_kinds, mapper.feature_kinds_):
            raise DataLossError("boosted-trees state: feature_kinds disagree with "
                                "categorical_features / bucketized_features")
        ensemble = TreeEnsemble.from_state(state, mapper.feature_kinds_)
        if ensemble.n_outputs != loss.n_outputs:
            raise DataLossError(f"boosted-trees state: baseline has {ensemble.n_outputs} entries, "
                                f"n_classes={model.n_classes!r} needs {loss.n_outputs}")
        if ensemble.n_trees != n_rounds * loss.n_outputs or n_rounds > model.n_trees:
            raise DataLossError(f"boosted-trees state: {ensemble.n_trees} trees for n_rounds={n_rounds} "
                                f"(n_trees={model.n_trees})")
        expected_outputs = np.tile(np.arange(loss.n_outputs), n_rounds)
        if not np.array_equal(np.asarray(ensemble.tree_output), expected_outputs):
            raise DataLossError("boosted-trees state: tree_output is not one tree per class per round")
        model.bin_mapper_, model.ensemble_, model.n_rounds_ = mapper, ensemble, n_rounds
        return model


def _scalar(value):
    """A state scalar as a Python value (checkpoints may hand back 0-d arrays or bytes)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _check_sample_weight(sample_weight, n_rows):
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, np.float64)
    if w.shape != (n_rows,):
        raise InvalidArgumentError(f"sample_weight must have shape ({n_rows},), got {w.shape}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidArgumentError(f"sample_weight[{row}] = {float(w[row])!r}: weights must be finite and >= 0")
    if not w.sum() > 0:
        raise InvalidArgumentError("sample_weight sums to 0: nothing to learn from")
    return w


def _add_leaf_values(raw, column, sample_indices, grown, kernels):
    """``raw[rows of leaf j, column] += value of leaf j`` for every leaf of the new tree."""
    if kernels == "numba":
        _backend.numba_kernels().add_leaf_values(raw, column, sample_indices, grown.leaf_starts,
                                                 grown.leaf_stops, grown.leaf_values,
                                                 _backend.worth_threads(len(sample_indices)))
        return
    for s, e, v in zip(grown.leaf_starts, grown.leaf_stops, grown.leaf_values):
        raw[sample_indices[s:e], column] += v
