"""Quantile binning of raw features into at most 255 bins (one byte per value).

Trees only ever compare a feature with a threshold, so each numeric column is replaced once per
training run by the index of the quantile interval its value falls in. Histograms are then built over
these small integers instead of sorting floats at every node.

Conventions shared by every module of the package:

* A column has ``n_bins[f]`` value bins, ids ``0 .. n_bins[f]-1``, plus one bin for missing values
  whose id is always ``missing_bin == max_bins`` (255 with the default), so a histogram row has
  ``max_bins + 1`` slots for every feature.
* Numeric columns: with edges ``e_0 < e_1 < ...`` (``n_bins[f] - 1`` of them),
  ``bin(x) = #{i : e_i < x}`` (``np.searchsorted(edges, x, side="left")``). Hence ``bin(x) <= b``
  exactly when ``x <= e_b``, and a split "bin <= b" is the raw split "x <= e_b" (``+inf`` for the last
  bin). NaN is missing.
* Bucketized columns hold ordered integer ids (e.g. the output of a bucketized feature column) and are
  used as bins directly; categorical columns hold unordered integer ids and are split by equality.
  For both, NaN and negative ids are missing, and ids must be below ``max_bins``.

The edges are computed from a random row sample whose size follows from ``quantile_sketch_epsilon``
(see :func:`quantile_sample_size`), and they are plain arrays so they go into a checkpoint.
"""

import math

import numpy as np

from kestimator.errors import DataLossError, InvalidArgumentError
from kestimator.estimators.boosted_trees import _backend

NUMERIC = 0
BUCKETIZED = 1
CATEGORICAL = 2
MAX_BINS_LIMIT = 255


def quantile_sample_size(epsilon, confidence_failure=1e-3):
    """Rows to sample so every quantile edge is within ``epsilon`` in rank, with high probability.

    By the Dvoretzky-Kiefer-Wolfowitz inequality the empirical CDF of ``s`` random rows is uniformly
    within ``epsilon`` of the true one with probability at least ``1 - 2 exp(-2 s epsilon^2)``; solving
    for a failure probability of ``confidence_failure`` gives ``s = ln(2 / failure) / (2 epsilon^2)``
    (38,005 rows for epsilon = 0.01).

    Args:
      epsilon: rank error allowed, in (0, 1).
      confidence_failure: allowed probability that some edge is further off than ``epsilon``.

    Returns:
      The sample size as an int.
    """
    return int(math.ceil(math.log(2.0 / confidence_failure) / (2.0 * epsilon * epsilon)))


def prepare_features(X, feature_kinds, max_id=None, where="X"):
    """Validates ``X`` and returns it as C-ordered float64 with every missing value set to NaN.

    Args:
      X: array-like of shape (n_rows, n_features), numeric.
      feature_kinds: uint8 array (n_features,) of NUMERIC / BUCKETIZED / CATEGORICAL.
      max_id: when given, ids of bucketized and categorical columns must be below it (binning needs
        this; prediction does not: an unseen id simply matches no split).
      where: name used in error messages.

    Returns:
      float64 array (n_rows, n_features); never the caller's array when a value had to change.

    Raises:
      InvalidArgumentError: wrong rank or width, non-numeric data, or an id column holding a
        non-integer, an infinity or an id >= ``max_id`` (the row and column are named).
    """
    original = X
    X = np.asarray(X)
    if X.ndim != 2:
        raise InvalidArgumentError(f"{where} must be 2-D (n_rows, n_features), got shape {X.shape}")
    if X.shape[1] != len(feature_kinds):
        raise InvalidArgumentError(
            f"{where} has {X.shape[1]} features, the model was built for {len(feature_kinds)}")
    if X.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{where} must be numeric, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    id_columns = np.flatnonzero(np.asarray(feature_kinds) != NUMERIC)
    if id_columns.size:
        ids = X[:, id_columns]
        with np.errstate(invalid="ignore"):
            bad = ((ids != np.floor(ids)) & ~np.isnan(ids)) | np.isinf(ids)
            if max_id is not None:
                bad |= ids >= max_id
        if bad.any():
            row, col = np.argwhere(bad)[0]
            limit = "" if max_id is None else f" below {max_id}"
            raise InvalidArgumentError(
                f"{where}[{row}, {id_columns[col]}] = {float(ids[row, col])!r}: a bucketized or categorical "
                f"feature must hold integer ids{limit} (NaN or a negative id means missing)")
        negative = ids < 0
        if negative.any():
            if np.may_share_memory(X, original):
                X = X.copy()
            ids[negative] = np.nan
            X[:, id_columns] = ids
    return X


class BinMapper:
    """Learns per-feature bin edges and maps raw features to uint8 bin ids.

    Args:
      max_bins: value bins per feature, 2..255; the missing bin comes on top, with id ``max_bins``.
      quantile_sketch_epsilon: rank precision of the numeric edges; sets the sample size.
      feature_kinds: sequence (n_features,) of NUMERIC / BUCKETIZED / CATEGORICAL, or None for all
        numeric (then fixed on the first ``fit``).
      random_state: seed of the row sample.
      kernels: "auto", "numba" or "numpy" (see _backend.resolve_kernels).

    Attributes (after ``fit``):
      bin_edges_: float64, the numeric edges of all features back to back.
      edge_offsets_: int64 (n_features + 1,); feature f's edges are
        ``bin_edges_[edge_offsets_[f]:edge_offsets_[f + 1]]`` (empty for id columns).
      n_bins_: int32 (n_features,), value bins actually used per feature.
      feature_kinds_: uint8 (n_features,).
      missing_bin: int, the id of the missing bin (== max_bins).
    """

    def __init__(self, max_bins=255, quantile_sketch_epsilon=0.01, feature_kinds=None,
                 random_state=0, kernels="auto"):
        if not (isinstance(max_bins, (int, np.integer)) and 2 <= max_bins <= MAX_BINS_LIMIT):
            raise InvalidArgumentError(f"max_bins must be an int in [2, {MAX_BINS_LIMIT}], got {max_bins!r}")
        if not 0.0 < quantile_sketch_epsilon < 1.0:
            raise InvalidArgumentError(
                f"quantile_sketch_epsilon must be in (0, 1), got {quantile_sketch_epsilon!r}")
        self.max_bins = int(max_bins)
        self.quantile_sketch_epsilon = float(quantile_sketch_epsilon)
        self.feature_kinds = None if feature_kinds is None else np.asarray(feature_kinds, np.uint8)
        self.random_state = random_state
        self.kernels = kernels

    @property
    def missing_bin(self):
        return self.max_bins

    @property
    def n_features(self):
        return len(self.n_bins_)

    def fit(self, X, collectives=None, global_rows=None):
        """Computes the bin edges (numeric columns) and bin counts (all columns) from ``X``.

        Args:
          X: array-like (n_rows, n_features); see :func:`prepare_features`.
          collectives: a distributed.TreeCollectives when ``X`` is this rank's shard of the rows: the
            edges are then those of the whole data set, agreed once (see :meth:`_fit_distributed`).
          global_rows: the global row numbers of this shard (default: consecutive blocks in rank order).

        Returns:
          self.

        Raises:
          InvalidArgumentError: bad ``X`` (shape, dtype, ids).
        """
        if collectives is not None and collectives.distributed:
            return self._fit_distributed(X, collectives, global_rows)
        X, kinds = self._prepared(X, "")
        n_rows, n_features = X.shape
        sample_size = quantile_sample_size(self.quantile_sketch_epsilon)
        if n_rows > sample_size:
            rng = np.random.default_rng(self.random_state)
            sample = X[np.sort(rng.choice(n_rows, sample_size, replace=False))]
        else:
            sample = X
        edges, n_bins = [], np.zeros(n_features, np.int32)
        for f in range(n_features):
            if kinds[f] == NUMERIC:
                e = self._numeric_edges(sample[:, f])
                n_bins[f] = e.size + 1
            else:
                e = np.empty(0)
                column = X[:, f]
                present = column[~np.isnan(column)]
                n_bins[f] = int(present.max()) + 1 if present.size else 0
            edges.append(e)
        self.feature_kinds_ = kinds
        self.n_bins_ = n_bins
        self.edge_offsets_ = np.concatenate([[0], np.cumsum([e.size for e in edges])]).astype(np.int64)
        self.bin_edges_ = np.concatenate(edges).astype(np.float64) if edges else np.empty(0)
        return self

    def _prepared(self, X, where):
        """(X checked (2-D, at least one row; `where` names the rank) and prepared for binning, feature kinds)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] == 0:
            raise InvalidArgumentError(f"X must be 2-D with at least one row{where}, got shape {X.shape}")
        kinds = self.feature_kinds
        if kinds is None:
            kinds = np.zeros(X.shape[1], np.uint8)
        if np.any(kinds > CATEGORICAL):
            raise InvalidArgumentError(f"feature_kinds must be 0, 1 or 2, got {kinds.tolist()}")
        return prepare_features(X, kinds, max_id=self.max_bins), kinds

    def _fit_distributed(self, X, collectives, global_rows):
        """Edges of the rows of all ranks: sample -> rank 0 -> broadcast.

        The quantile sample is drawn over the global row numbers with this mapper's seed, exactly as a
        one-process ``fit`` on all rows draws it; each rank contributes its rows of it, rank 0 computes
        the edges from the gathered sample and broadcasts them. Edges are then equal to the one-process
        ones (the percentiles of a multiset do not depend on the order its rows arrive in).
        """
        from kestimator.estimators.boosted_trees.distributed import global_row_numbers
        X, kinds = self._prepared(X, f" on rank {collectives.rank}")
        n_rows, n_features = X.shape
        total, rows = global_row_numbers(collectives, n_rows, global_rows)
        sample_size = quantile_sample_size(self.quantile_sketch_epsilon)
        numeric = np.flatnonzero(kinds == NUMERIC)
        if total > sample_size:
            chosen = np.random.default_rng(self.random_state).choice(total, sample_size, replace=False)
            local = X[np.isin(rows, chosen)][:, numeric]
        else:
            local = X[:, numeric]
        sample = collectives.allgather(np.ascontiguousarray(local, np.float64), "boosted_trees/bins/sample")
        ids = np.flatnonzero(kinds != NUMERIC)
        top = np.full(ids.size, -1.0)
        for j, f in enumerate(ids):
            present = X[:, f][~np.isnan(X[:, f])]
            top[j] = present.max() if present.size else -1.0
        top = collectives.max(top, "boosted_trees/bins/max_id")
        if collectives.rank == 0:
            edges, n_bins = [], np.zeros(n_features, np.int32)
            for f in range(n_features):
                e = np.empty(0)
                if kinds[f] == NUMERIC:
                    e = self._numeric_edges(sample[:, int(np.searchsorted(numeric, f))])
                    n_bins[f] = e.size + 1
                else:
                    n_bins[f] = int(top[int(np.searchsorted(ids, f))]) + 1
                edges.append(e)
            offsets = np.concatenate([[0], np.cumsum([e.size for e in edges])]).astype(np.int64)
            bin_edges = np.concatenate(edges).astype(np.float64) if edges else np.empty(0)
        else:
            n_bins, offsets, bin_edges = (np.zeros(n_features, np.int32), np.zeros(n_features + 1, np.int64),
                                          np.empty(0))
        self.feature_kinds_ = kinds
        self.n_bins_ = collectives.broadcast(n_bins, "boosted_trees/bins/n_bins").astype(np.int32)
        self.edge_offsets_ = collectives.broadcast(offsets, "boosted_trees/bins/offsets").astype(np.int64)
        self.bin_edges_ = collectives.broadcast(bin_edges, "boosted_trees/bins/edges").astype(np.float64)
        return self

    def _numeric_edges(self, column):
        """Edges of one numeric column: midpoints of the distinct values, or quantiles.

        Only finite values place edges (a midpoint next to an infinity is not a number);
        infinities still fall in the first or last bin.
        """
        column = column[np.isfinite(column)]
        if column.size == 0:
            return np.empty(0)
        distinct = np.unique(column)
        if distinct.size <= self.max_bins:
            # Few distinct values: one bin each, split halfway between neighbours (halves added,
            # not the sum halved, so huge values do not overflow; unique because the midpoint of
            # two adjacent floats rounds onto one of them).
            return np.unique(distinct[:-1] * 0.5 + distinct[1:] * 0.5)
        percentiles = np.linspace(0.0, 100.0, self.max_bins + 1)[1:-1]
        edges = np.unique(np.percentile(column, percentiles, method="midpoint"))
        # An edge at the largest value would only make an empty top bin.
        return edges[edges < distinct[-1]]

    def edges(self, feature):
        """The numeric edges of ``feature`` (empty for id columns)."""
        return self.bin_edges_[self.edge_offsets_[feature]:self.edge_offsets_[feature + 1]]

    def transform(self, X):
        """Maps raw features to bin ids.

        Args:
          X: array-like (n_rows, n_features), already passed through :func:`prepare_features` or not.

        Returns:
          uint8 array of shape (n_features, n_rows) — feature-major, because the histogram and
          partition loops read one feature of many rows.

        Raises:
          InvalidArgumentError: bad ``X``.
        """
        X = prepare_features(X, self.feature_kinds_, max_id=self.max_bins)
        n_rows, n_features = X.shape
        out = np.empty((n_features, n_rows), np.uint8)
        numeric = np.flatnonzero(self.feature_kinds_ == NUMERIC)
        if numeric.size:
            if _backend.resolve_kernels(self.kernels) == "numba":
                work = 8 * n_rows * numeric.size  # ~8 search steps a value
                _backend.numba_kernels().bin_numeric(X, numeric.astype(np.int64), self.bin_edges_,
                                                     self.edge_offsets_, self.missing_bin, out,
                                                     _backend.worth_threads(work))
            else:
                for f in numeric:
                    column = X[:, f]
                    out[f] = np.searchsorted(self.edges(f), column, side="left")
                    out[f, np.isnan(column)] = self.missing_bin
        for f in np.flatnonzero(self.feature_kinds_ != NUMERIC):
            column = X[:, f]
            missing = np.isnan(column)
            out[f] = np.where(missing, self.missing_bin, column).astype(np.uint8)
        return out

    def raw_thresholds(self, features, bins):
        """Raw thresholds of bin splits: ``x <= threshold`` (ordinal) or ``x == threshold`` (categorical).

        Args:
          features: int array of split features.
          bins: int array of split bins, same shape.

        Returns:
          float64 array: the edge ``e_b`` for numeric features (``+inf`` for the last bin), the id
          ``b`` itself for bucketized and categorical features.
        """
        features = np.asarray(features, np.int64)
        bins = np.asarray(bins, np.int64)
        out = bins.astype(np.float64)
        numeric = self.feature_kinds_[features] == NUMERIC
        if numeric.any():
            f, b = features[numeric], bins[numeric]
            last = b >= self.n_bins_[f] - 1
            pos = np.where(last, 0, self.edge_offsets_[f] + b)
            edge = self.bin_edges_[pos] if self.bin_edges_.size else np.zeros(pos.shape)
            out[numeric] = np.where(last, np.inf, edge)
        return out

    def get_state(self):
        """The fitted mapper as plain arrays and scalars (for checkpoints)."""
        return {
            "max_bins": self.max_bins,
            "quantile_sketch_epsilon": self.quantile_sketch_epsilon,
            "bin_edges": self.bin_edges_.copy(),
            "bin_edge_offsets": self.edge_offsets_.copy(),
            "n_bins": self.n_bins_.copy(),
            "feature_kinds": self.feature_kinds_.copy(),
        }

    @classmethod
    def from_state(cls, state, random_state=0, kernels="auto"):
        """Rebuilds a fitted mapper from :meth:`get_state` output, checking every array.

        Raises:
          DataLossError: a missing key, or arrays whose shapes or values do not fit together.
        """
        try:
            mapper = cls(int(state["max_bins"]), float(state["quantile_sketch_epsilon"]),
                         random_state=random_state, kernels=kernels)
            edges = np.asarray(state["bin_edges"], np.float64).ravel()
            offsets = np.asarray(state["bin_edge_offsets"], np.int64).ravel()
            n_bins = np.asarray(state["n_bins"], np.int32).ravel()
            kinds = np.asarray(state["feature_kinds"], np.uint8).ravel()
        except KeyError as e:
            raise DataLossError(f"boosted-trees state: missing key {e.args[0]!r}") from None
        except (InvalidArgumentError, TypeError, ValueError) as e:
            raise DataLossError(f"boosted-trees state: bad binning entry ({e})") from None
        n_features = kinds.size
        problems = []
        if offsets.size != n_features + 1 or n_bins.size != n_features:
            problems.append(f"bin_edge_offsets has {offsets.size} entries and n_bins {n_bins.size} "
                            f"for {n_features} features")
        elif offsets[0] != 0 or offsets[-1] != edges.size or np.any(np.diff(offsets) < 0):
            problems.append("bin_edge_offsets is not an increasing index into bin_edges")
        elif np.any(kinds > CATEGORICAL) or np.any(n_bins < 0) or np.any(n_bins > mapper.max_bins):
            problems.append("feature_kinds or n_bins out of range")
        else:
            numeric = kinds == NUMERIC
            if np.any(np.diff(offsets)[numeric] != n_bins[numeric] - 1):
                problems.append("n_bins does not match the number of edges of a numeric feature")
            if np.any(np.diff(offsets)[~numeric] != 0):
                problems.append("an id feature has numeric edges")
            for f in np.flatnonzero(numeric):
                e = edges[offsets[f]:offsets[f + 1]]
                if np.any(np.isnan(e)) or np.any(np.diff(e) <= 0):
                    problems.append(f"edges of feature {f} are not strictly increasing")
                    break
        if problems:
            raise DataLossError(f"boosted-trees state: {problems[0]}")
        mapper.feature_kinds = kinds
        mapper.feature_kinds_, mapper.n_bins_ = kinds, n_bins
        mapper.edge_offsets_, mapper.bin_edges_ = offsets, edges
        return mapper
