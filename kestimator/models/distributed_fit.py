"""Data-parallel compile / fit / evaluate under `ks.distributed.MultiWorkerMirroredStrategy` (tf.distribute style).

    strategy = ks.distributed.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = make_model()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=256)          # 256 = the GLOBAL batch; mpiexec -n 2 -> 128 rows per rank

The same script runs unchanged as one process. With several MPI ranks, a model compiled inside the scope
(or with `compile(distribute=strategy)`) trains data-parallel:

* the optimizer is wrapped in DistributedOptimizer (gradients averaged over ranks in fused buckets);
* every rank reads the same data in the same (shuffled) order, with the chief's shuffle seed, and feeds
  rows r, r + N, r + 2N, ... of each global batch: together the ranks' i-th batches hold exactly the rows of
  a one-process fit's i-th batch, and every rank runs the same number of steps. Array data needs a global
  batch divisible by N; a final partial batch with fewer rows than ranks is skipped on every rank;
* weights and optimizer state are broadcast from the chief once training starts (after the callbacks'
  on_train_begin: a BackupAndRestore / load_weights on the chief reaches everyone), and so are the chief's
  resume point and shuffle seed;
* metric state (totals, counts, confusion counts: all additive) is summed over ranks at each epoch end
  and at the end of evaluate(), so logs, History, EarlyStopping etc. see the global values on every rank
  (TF's SUM-aggregated metric variables). Batch-level logs stay local;
* only the chief runs ModelCheckpoint, TensorBoard, CSVLogger, BackupAndRestore, RemoteMonitor and the
  progress bar; callbacks that steer training (EarlyStopping, ReduceLROnPlateau...) run on every rank and
  agree because they see the same reduced logs;
* evaluate() shards the rows (strided) and reduces the metric state; predict() runs on each rank over all
  the data it is given.

Dataset input is read in full by every rank and each batch split strided (tf.data's AutoShardPolicy.DATA
on rebatched elements): the dataset must yield the same batches on every rank (seed its shuffles).
"""
import sys

import numpy as np

from ..errors import InvalidArgumentError
from . import callbacks as _cb

# Callbacks that write files or print: the chief's job (TF gives the other workers throw-away folders).
_CHIEF_ONLY = ("ModelCheckpoint", "TensorBoard", "CSVLogger", "BackupAndRestore", "RemoteMonitor", "ProgbarLogger")


def _active_strategy():
    """The strategy whose scope() is active, without importing ks.distributed when nobody used it."""
    module = sys.modules.get("kestimator.distributed.strategy")
    return module.get_strategy() if module is not None else None


def on_compile(model, optimizer, distribute=None):
    """compile()'s hook: bind the model to `distribute` or the active strategy; return the optimizer to use
    (wrapped in DistributedOptimizer when the strategy spans several ranks).

    Raises:
        InvalidArgumentError: `distribute` is not a strategy.
    """
    strategy = distribute if distribute is not None else _active_strategy()
    if strategy is not None and not hasattr(strategy, "distribute_optimizer"):
        raise InvalidArgumentError(f"compile(distribute=...) expects a ks.distributed strategy, got "
                                   f"{type(strategy).__name__}")
    model._distribute_strategy = strategy
    if strategy is not None and optimizer is not None and strategy.num_replicas_in_sync > 1:
        optimizer = strategy.distribute_optimizer(optimizer)
    return optimizer


def for_model(model):
    """The FitDistribution of a model compiled under a multi-rank strategy, else None."""
    strategy = getattr(model, "_distribute_strategy", None)
    if strategy is None or strategy.num_replicas_in_sync <= 1:
        return None
    return FitDistribution(strategy)


def local_verbose(model, verbose):
    """`verbose` on the chief (or without a multi-rank strategy); 0 on the other ranks."""
    dist = for_model(model)
    return verbose if dist is None or dist.rank == 0 else 0


class _StridedBatches:
    """A batch source whose batches are this rank's rows r::size of the wrapped source's global batches.

    Args:
        source: an ArrayBatches / IterableBatches (anything with `epoch(epoch, start_step, steps)`).
        rank, size: this rank and the number of ranks.
        train: skip a batch with fewer rows than ranks (some rank would have none) on every rank; when
            False (evaluation) a rank skips only the batches in which it has no row.
    """

    def __init__(self, source, rank, size, train):
        self.inner, self.rank, self.size, self.train = source, rank, size, train
        self.steps = getattr(source, "steps", None)

    def epoch(self, epoch, start_step=0, steps=None):
        r, n = self.rank, self.size
        for step, feeds in self.inner.epoch(epoch, start_step, steps):
            rows = len(feeds[0]) if feeds else 0
            if rows < n and (self.train or rows <= r):
                continue
            # a contiguous copy of every n-th row: the compiled step reads C-ordered feeds
            yield step, [np.ascontiguousarray(a[r::n]) for a in feeds]


class _DistributedStart(_cb.Callback):
    """Runs after the other callbacks' on_train_begin: the chief's weights, optimizer state, resume point
    and shuffle seed go to every rank."""

    def __init__(self, dist, source, callbacks):
        super().__init__()
        self._dist, self._source, self._others = dist, source, callbacks
        self._resume_point = None

    def on_train_begin(self, logs=None):
        from ..distributed import collectives
        from ..distributed.callbacks import broadcast_model
        inner = getattr(self._source, "inner", None)
        state = None
        if self._dist.rank == 0:
            point = next((c._resume_point for c in self._others
                          if getattr(c, "_resume_point", None) is not None), None)
            state = {"resume": list(point) if point is not None else None,
                     "seed": getattr(inner, "seed", None), "model_seed": self.model._shuffle_seed}
        state = collectives.broadcast(state, root=0, name="fit start")
        self._resume_point = tuple(state["resume"]) if state["resume"] is not None else None
        if state["seed"] is not None and hasattr(inner, "seed"):
            inner.seed = int(state["seed"])
        self.model._shuffle_seed = state["model_seed"]
        broadcast_model(self.model, 0)


class FitDistribution:
    """What fit / evaluate do differently on one of several ranks (see the module docstring)."""

    def __init__(self, strategy):
        from ..distributed import rank, size
        self.strategy, self.rank, self.size = strategy, rank(), size()

    def check_global_batch(self, batch_size):
        """Raises InvalidArgumentError when the global batch does not split evenly over the ranks."""
        if batch_size % self.size:
            raise InvalidArgumentError(f"fit: batch_size={batch_size} is the global batch and must be divisible by "
                                       f"the {self.size} ranks (num_replicas_in_sync), each of which trains on "
                                       f"batch_size / {self.size} rows per step; use a multiple of {self.size}")

    def prepare_fit(self, source, callbacks):
        """(sharded source, callbacks for this rank) for fit()."""
        batch_size = getattr(source, "batch_size", None)   # array data (ArrayBatches): a known global batch
        if batch_size is not None:
            self.check_global_batch(batch_size)
        sharded = _StridedBatches(source, self.rank, self.size, train=True)
        user = list(callbacks or [])
        if self.rank != 0:
            user = [c for c in user if type(c).__name__ not in _CHIEF_ONLY]
        user.append(_DistributedStart(self, sharded, user))
        return sharded, user

    def shard_eval(self, source):
        """This rank's strided share of every evaluation batch."""
        return _StridedBatches(source, self.rank, self.size, train=False)

    def reduce_metrics(self, runtime):
        """Sum every metric's state over the ranks in place (all kestimator metric states are additive:
        totals, counts, confusion counts), so results() gives the metric over all ranks' rows."""
        from ..distributed import collectives
        metrics = runtime.all_metrics()
        variables = [v for m in metrics for _, v in sorted(m.variables_in(runtime.graph).items())]
        if not variables:
            return
        session = runtime.session
        values = session.run(variables)
        flat = np.concatenate([np.asarray(v, np.float64).reshape(-1) for v in values])
        label = "metrics " + ",".join(m.name for m in metrics) + f" ({flat.size})"
        collectives.allreduce(flat, op="sum", name=label, inplace=True)
        offset = 0
        for v, old in zip(variables, values):
            size = int(np.size(old))
            v.load(flat[offset:offset + size].reshape(np.shape(old)).astype(np.asarray(old).dtype), session)
            offset += size
