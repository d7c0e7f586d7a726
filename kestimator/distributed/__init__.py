"""ks.distributed: synchronous data-parallel training over MPI ranks (Horovod-style, on mpi4py + MPICH).

    mpiexec -n 4 python train.py          # or: mpiexec -n 4 python -m mpi4py train.py

    import kestimator as ks
    ks.distributed.init()
    opt = ks.distributed.DistributedOptimizer(ks.optimizers.Adam(1e-3 * ks.distributed.size()))
    train_op = opt.minimize(loss)                          # gradients averaged over ranks in fused buckets
    ...
    ks.distributed.broadcast_global_variables(sess)        # every rank starts from rank 0's variables

Without an MPI launcher (plain `python train.py`) or without mpi4py (`pip install 'kestimator[mpi]'`)
in a one-process launch, everything runs as rank 0 of 1 and the collectives return their input: the
same script runs everywhere. mpi4py is imported by `init()` only when a launcher started the process.

Failure handling: an uncaught exception on any rank prints its traceback (tagged with the rank) and
aborts the whole job; every collective has a deadline (`KESTIMATOR_COLLECTIVE_TIMEOUT`, default 300 s)
after which the stall inspector prints which ranks did not arrive and what they are doing, then aborts.
The first gradient reduction checks that all ranks reduce the same tensors (name, shape, dtype, order).

Hooks for the training loops (for fit, Estimator.train, `kestimator train`, boosted trees)
-------------------------------------------------------------------------------------------------
A loop that supports `strategy = MultiWorkerMirroredStrategy()` (e.g. `RunConfig(train_distribute=strategy)`)
needs exactly these calls; all are no-ops in a one-process run:

* optimizer:   `opt = strategy.distribute_optimizer(opt)` (= `DistributedOptimizer(opt)`) before building
               the train op. Nothing else changes: `minimize` / `apply_gradients` add one
               "DistributedApplyOptimizer" op instead of "ApplyOptimizer".
* start state: Estimator: add `strategy.training_hooks()` (a BroadcastGlobalVariablesHook; its
               `after_create_session` runs after init/restore). fit(): prepend `strategy.keras_callbacks()`
               (BroadcastGlobalVariablesCallback, MetricAverageCallback), or call
               `broadcast_model(model)` / `broadcast_global_variables(session)` once the step is built.
* input:       shard with `input_context()` / `shard_range(n)` / `shard_files(files)` (strided, like
               Dataset.shard) and feed `global_batch // size()` rows per rank; run
               `equal_steps(local_batches)` steps so no rank stops early.
* chief work:  write checkpoints, summaries, exports and progress bars only where `is_chief()`
               (`on_chief(fn)` adds the barrier so others do not read a half-written checkpoint);
               `strategy.extended.should_checkpoint` says the same.
* metrics:     `allreduce(value, op="average", name=...)` for evaluation results; boosted trees:
               `allreduce(histogram, op="sum", inplace=True, name=...)` per tree level (one fused
               array per level: gradient and hessian histograms of all nodes and features).
* shutdown:    nothing required; `shutdown()` stops the stall inspector early.

Where they are wired in: fit / evaluate (models/distributed_fit.py, for a model compiled in
`strategy.scope()`), Estimator.train / evaluate and train_and_evaluate (estimator_training.py, for
`RunConfig(train_distribute=..., eval_distribute=...)`), `kestimator train` (cli/runner.py).

Module map: _runtime (launch detection, init, excepthook), _inspector (deadlines, stall report),
collectives (allreduce, broadcast, allgather, barrier, metadata check), reducer (fused gradient
buckets), optimizer (DistributedOptimizer), sync (variable/seed broadcast), hooks (Estimator),
callbacks (Keras), sharding, chief, strategy (tf.distribute names), estimator_training.
"""
import importlib

from ._runtime import abort, init, launched_by_mpi, set_collective_timeout, shutdown  # noqa: F401
from ._runtime import ensure_init as _ensure_init
from .chief import chief_only, chief_section, is_chief, on_chief  # noqa: F401
from .collectives import allgather, allgather_object, allreduce, barrier, broadcast  # noqa: F401
from .sharding import InputContext, equal_steps, input_context, shard_files, shard_range  # noqa: F401


def rank():
    """This process's rank in the job (0 in a one-process run)."""
    return _ensure_init().rank


def size():
    """Number of processes in the job (1 in a one-process run)."""
    return _ensure_init().size


def local_rank():
    """This process's rank among the processes on its host."""
    return _ensure_init().local_rank


def local_size():
    """Number of processes of the job on this host."""
    return _ensure_init().local_size


def is_distributed():
    """True when running as one of several MPI processes."""
    return _ensure_init().distributed


# Modules that pull in the engine, models or estimators load on first use (ks.distributed.rank() in a
# boosted-trees script should not import the graph engine).
_LAZY = {
    "DistributedOptimizer": ".optimizer", "unwrap": ".optimizer",
    "GradientReducer": ".reducer",
    "broadcast_variables": ".sync", "broadcast_global_variables": ".sync", "shared_seed": ".sync",
    "BroadcastGlobalVariablesHook": ".hooks",
    "BroadcastGlobalVariablesCallback": ".callbacks", "MetricAverageCallback": ".callbacks",
    "LearningRateWarmupCallback": ".callbacks", "broadcast_model": ".callbacks",
    "MultiWorkerMirroredStrategy": ".strategy", "ClusterSpec": ".strategy", "Server": ".strategy",
    "ParameterServerStrategy": ".strategy", "replica_device_setter": ".strategy", "get_strategy": ".strategy",
}


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'kestimator.distributed' has no attribute {name!r}")
    value = getattr(importlib.import_module(target, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
