"""tf.distribute names: MultiWorkerMirroredStrategy (synchronous data parallelism over MPI ranks), and
the parameter-server names, which raise: kestimator trains synchronously only.

The strategy object is what `RunConfig(train_distribute=...)` and Keras code receive. In kestimator
each MPI rank is one worker with one replica (one process, one device), so a strategy is a thin view
of the process group plus the pieces a training loop plugs in: `distribute_optimizer`,
`training_hooks` (Estimator), `keras_callbacks` (fit) and `input_context`.
"""
import contextlib
import threading
import weakref

from ..errors import InvalidArgumentError, UnimplementedError
from ._runtime import ensure_init
from .sharding import input_context

_current = threading.local()

_PS_ADVICE = ("kestimator does not run asynchronous parameter-server training. Use synchronous data "
              "parallelism instead: launch N processes with `mpiexec -n N python train.py` and use "
              "ks.distributed.MultiWorkerMirroredStrategy() (RunConfig(train_distribute=...)) or "
              "ks.distributed.DistributedOptimizer + BroadcastGlobalVariablesHook; see docs/DISTRIBUTED.md.")


class _Extended:
    """The strategy's `extended` attribute: what TF code reads off it."""

    def __init__(self, strategy):
        self._strategy = strategy

    @property
    def worker_devices(self):
        return ("/job:worker/replica:0/task:%d/device:CPU:0" % ensure_init().rank,)

    parameter_devices = worker_devices

    @property
    def should_checkpoint(self):
        return ensure_init().rank == 0

    should_save_summary = should_checkpoint

    @property
    def should_init(self):
        return True

    experimental_should_init = should_init
    experimental_between_graph = True

    @property
    def num_workers(self):
        return ensure_init().size


class _ClusterResolver:
    """task_type / task_id / num_workers as TF's TFConfigClusterResolver reports them."""

    task_type = "worker"

    @property
    def task_id(self):
        return ensure_init().rank

    @property
    def num_workers(self):
        return ensure_init().size


class MultiWorkerMirroredStrategy:
    """Synchronous data-parallel training over the MPI ranks of this job (one replica per rank).

    Args:
        cluster_resolver: ignored (the MPI launcher defines the cluster); accepted for TF compatibility.
        communication_options: ignored; gradients go through MPI allreduce.

    Example:
        strategy = ks.distributed.MultiWorkerMirroredStrategy()
        config = ks.estimators.RunConfig(train_distribute=strategy)
    """

    def __init__(self, cluster_resolver=None, communication_options=None):
        ensure_init()
        self.extended = _Extended(self)
        self.cluster_resolver = _ClusterResolver()
        self._views = weakref.WeakKeyDictionary()   # optimizer -> its DistributedOptimizer view (scope use)

    @property
    def num_replicas_in_sync(self):
        return ensure_init().size

    @contextlib.contextmanager
    def scope(self):
        """Make this the current strategy (`get_strategy()`) inside the block."""
        stack = getattr(_current, "stack", None)
        if stack is None:
            stack = _current.stack = []
        stack.append(self)
        try:
            yield self
        finally:
            stack.pop()

    # -- hooks a training loop calls --------------------------------------------------------------------
    def distribute_optimizer(self, optimizer, **kwargs):
        """`optimizer` wrapped in DistributedOptimizer (kwargs: compression, backward_passes_per_step...)."""
        from .optimizer import DistributedOptimizer
        if isinstance(optimizer, DistributedOptimizer):
            return optimizer
        return DistributedOptimizer(optimizer, **kwargs)

    def _aggregate_gradients(self, optimizer, vars_):
        """Optimizer._aggregate_gradients inside scope(): with several ranks every optimizer's update
        averages the gradients over them (as apply_gradients does under a tf.distribute strategy), through
        a DistributedOptimizer view of `optimizer` kept for the optimizer's lifetime."""
        if ensure_init().size == 1:
            return "ApplyOptimizer", {}
        from .optimizer import DistributedOptimizer
        view = self._views.get(optimizer)
        if view is None:
            view = self._views[optimizer] = DistributedOptimizer(optimizer)
        return view._aggregate_gradients(vars_)

    def training_hooks(self):
        """SessionRunHooks an Estimator adds to train(): the initial broadcast from the chief."""
        from .hooks import BroadcastGlobalVariablesHook
        return [BroadcastGlobalVariablesHook(0)]

    def keras_callbacks(self):
        """Callbacks fit() prepends: the initial broadcast and the epoch-end metric average."""
        from .callbacks import BroadcastGlobalVariablesCallback, MetricAverageCallback
        return [BroadcastGlobalVariablesCallback(0), MetricAverageCallback()]

    def input_context(self):
        return input_context()

    def distribute_datasets_from_function(self, dataset_fn):
        """dataset_fn(InputContext) on this rank (it shards and batches per replica itself)."""
        return dataset_fn(input_context())

    def experimental_distribute_dataset(self, dataset):
        """This rank's shard of `dataset` (Dataset.shard(size, rank)); batch it per replica."""
        st = ensure_init()
        return dataset.shard(st.size, st.rank) if st.size > 1 else dataset

    def reduce(self, reduce_op, value, axis=None):
        """Sum or mean of a per-rank value over all ranks ("SUM"/"MEAN", or ReduceOp-like names).

        Raises:
            InvalidArgumentError: unknown reduce_op, or an axis is given (values are per-rank already).
        """
        from .collectives import allreduce
        op = str(getattr(reduce_op, "value", reduce_op)).upper()
        if axis is not None:
            raise InvalidArgumentError("MultiWorkerMirroredStrategy.reduce: axis is not supported; reduce the "
                                       "value locally first")
        if op not in ("SUM", "MEAN"):
            raise InvalidArgumentError(f"unknown reduce_op {reduce_op!r}; expected 'SUM' or 'MEAN'")
        return allreduce(value, op="sum" if op == "SUM" else "average", name="strategy.reduce")

    def run(self, fn, args=(), kwargs=None):
        """fn(*args, **kwargs) on this rank's one replica."""
        return fn(*args, **(kwargs or {}))


def get_strategy():
    """The strategy whose scope() is active, or None."""
    stack = getattr(_current, "stack", None)
    return stack[-1] if stack else None


class ClusterSpec:
    """TF1 cluster description for parameter-server / between-graph training: not supported.

    Raises:
        UnimplementedError: always, explaining what to use instead.
    """

    def __init__(self, cluster=None, *args, **kwargs):
        raise UnimplementedError(f"ClusterSpec: {_PS_ADVICE}")


class Server:
    """TF1 in-process gRPC server for parameter-server training: not supported.

    Raises:
        UnimplementedError: always, explaining what to use instead.
    """

    def __init__(self, server_or_cluster_def=None, *args, **kwargs):
        raise UnimplementedError(f"Server: {_PS_ADVICE}")


class ParameterServerStrategy:
    """tf.distribute.experimental.ParameterServerStrategy: not supported.

    Raises:
        UnimplementedError: always.
    """

    def __init__(self, *args, **kwargs):
        raise UnimplementedError(f"ParameterServerStrategy: {_PS_ADVICE}")


def replica_device_setter(*args, **kwargs):
    """tf.train.replica_device_setter: not supported.

    Raises:
        UnimplementedError: always.
    """
    raise UnimplementedError(f"replica_device_setter: {_PS_ADVICE}")
