"""Boosting on MPI ranks that each hold a shard of the rows (data-parallel histogram boosting).

What crosses the network, and when (everything else stays local to a rank):

* once per training run, the bin edges: every rank sends the rows of its shard that the one-process
  quantile sample would pick (``BinMapper.fit``: the sample indices are drawn over the *global* row
  numbers with the same seed), rank 0 computes the edges from the gathered sample and broadcasts them,
  so the edges equal a one-process run's on the same rows; id columns agree on their bin count with a
  max-reduction;
* once per run, the baseline (``center_bias``): the weighted label sums, reduced;
* per tree level, ONE in-place sum-allreduce of a single float64 array holding the gradient / hessian /
  count histograms of every node built at that level (grower.py: the smaller child of each split; the
  sibling is then the reduced parent minus the reduced child, on every rank).

Since every rank then holds the same global histograms, every rank computes the same split gains,
chooses the same splits and the same leaf values (a Newton step of the global sums), and partitions its
own rows with them; nothing else needs agreeing. The histograms are float64 sums of float32 gradients:
a rank's sums are added to another's in a different order than one process adds all rows, so sums, leaf
values and gains may differ from a one-process run in the last bits (relative 1e-15), never the splits
unless two candidate gains tie to that precision.
"""

import time

import numpy as np

from kestimator.errors import InvalidArgumentError


class TreeCollectives:
    """The collectives distributed boosting uses (ks.distributed underneath), with communication timing.

    In a one-process run (no MPI launcher) every call returns at once and the trainer behaves exactly as
    without collectives.

    Attributes:
        rank, size: this process's rank and the job size.
        histogram_calls, histogram_seconds, histogram_bytes: per-level histogram reductions so far.
        other_seconds: time in the once-per-run collectives (bin edges, baseline).
    """

    def __init__(self):
        from kestimator import distributed as kd
        self._kd = kd
        self.rank, self.size = kd.rank(), kd.size()
        self.histogram_calls = 0
        self.histogram_seconds = 0.0
        self.histogram_bytes = 0
        self.other_seconds = 0.0

    @property
    def distributed(self):
        return self.size > 1

    def sum_histograms(self, hist, depth):
        """Sums ``hist`` (C-contiguous float64, every node built at this level) over ranks, in place."""
        if not self.distributed:
            return hist
        t0 = time.perf_counter()
        self._kd.allreduce(hist, op="sum", inplace=True, name=f"boosted_trees/histograms/depth{depth}")
        self.histogram_seconds += time.perf_counter() - t0
        self.histogram_calls += 1
        self.histogram_bytes += hist.nbytes
        return hist

    def _timed(self, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.other_seconds += time.perf_counter() - t0

    def sum(self, array, name):
        """A new array: ``array`` summed over ranks."""
        return self._timed(self._kd.allreduce, np.ascontiguousarray(array), op="sum", name=name)

    def max(self, array, name):
        return self._timed(self._kd.allreduce, np.ascontiguousarray(array), op="max", name=name)

    def allgather(self, array, name):
        return self._timed(self._kd.allgather, np.ascontiguousarray(array), name=name)

    def broadcast(self, array, name):
        """Rank 0's array on every rank."""
        return self._timed(self._kd.broadcast, np.ascontiguousarray(array), root=0, name=name)


def global_row_numbers(collectives, n_rows, global_rows=None):
    """(total rows over ranks, this rank's global row numbers).

    Args:
        collectives: TreeCollectives.
        n_rows: rows of this rank's shard.
        global_rows: the global numbers of this rank's rows when known (e.g. ``shard_range``'s strided
            ones); default: shards are consecutive blocks in rank order.

    Raises:
        InvalidArgumentError: ``global_rows`` does not have one entry per row.
    """
    counts = collectives.allgather(np.array([n_rows], np.int64), "boosted_trees/bins/row_counts")
    total = int(counts.sum())
    if global_rows is None:
        offset = int(counts[:collectives.rank].sum())
        return total, np.arange(offset, offset + n_rows, dtype=np.int64)
    global_rows = np.asarray(global_rows, np.int64).ravel()
    if global_rows.shape != (n_rows,):
        raise InvalidArgumentError(f"global_rows has {global_rows.size} entries for {n_rows} rows on rank "
                                   f"{collectives.rank}")
    return total, global_rows


def distributed_baseline(loss, y, w, collectives):
    """The loss's optimal constant raw score from label sums reduced over ranks (== loss.baseline on all rows).

    Args:
        loss: a loss.Loss.
        y: this rank's labels; w: its weights or None.
        collectives: TreeCollectives.

    Returns:
        float64 (n_outputs,).
    """
    from kestimator.estimators.boosted_trees.loss import LogisticLoss, SoftmaxLoss, _PROBA_CLIP
    w = np.ones(len(y)) if w is None else np.asarray(w, np.float64)
    if isinstance(loss, SoftmaxLoss):
        stats = np.append(np.bincount(y.astype(np.int64), weights=w, minlength=loss.n_outputs), w.sum())
        stats = collectives.sum(stats, "boosted_trees/baseline")
        prior = stats[:-1] / stats[-1]
        log_prior = np.log(np.clip(prior, _PROBA_CLIP, 1.0))
        return log_prior - log_prior.mean()
    stats = collectives.sum(np.array([np.dot(w, y), w.sum()]), "boosted_trees/baseline")
    mean = stats[0] / stats[1]
    if isinstance(loss, LogisticLoss):
        p = np.clip(mean, _PROBA_CLIP, 1 - _PROBA_CLIP)
        return np.array([np.log(p / (1 - p))])
    return np.array([mean])
