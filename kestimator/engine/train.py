"""TF 1.x's `tf.train` on the kestimator engine: Saver and checkpoint state, the global step, the TF1
optimizer classes, and learning-rate decays that return graph tensors.

    saver = ke.train.Saver(max_to_keep=3)
    with ke.Session() as sess:
        sess.run(ke.global_variables_initializer())
        saver.save(sess, "run/model.ckpt", global_step=100)     # -> "run/model.ckpt-100"
        saver.restore(sess, ke.train.latest_checkpoint("run"))

The names live in focused modules and are gathered here, where `ke.train.X` finds them:

* `engine.saver` — Saver, the folder's `checkpoint` state file, checkpoint readers;
* `engine.train_global_step` — get_global_step, create_global_step, ...;
* `engine.tf1_optimizers` — GradientDescentOptimizer, AdamOptimizer, ...;
* `engine.lr_decay` — exponential_decay, piecewise_constant, ....
"""
import time  # noqa: F401  (kept: code and tests patch `train.time.time`, the clock the Saver reads)

from .train_global_step import (assert_global_step, create_global_step, get_global_step,  # noqa: F401
                                get_or_create_global_step, global_step)
from .lr_decay import (cosine_decay, exponential_decay, inverse_time_decay, piecewise_constant,  # noqa: F401
                       polynomial_decay)
from .saver import (CheckpointReader, CheckpointState, NewCheckpointReader, Saver, checkpoint_exists,  # noqa: F401
                    get_checkpoint_state, latest_checkpoint, list_variables, load_variable,
                    update_checkpoint_state)
from .tf1_optimizers import (AdagradOptimizer, AdamOptimizer, FtrlOptimizer, GradientDescentOptimizer,  # noqa: F401
                             MomentumOptimizer, Optimizer, RMSPropOptimizer)

__all__ = ["Saver", "CheckpointState", "get_checkpoint_state", "latest_checkpoint", "update_checkpoint_state",
           "checkpoint_exists", "list_variables", "load_variable", "NewCheckpointReader", "CheckpointReader",
           "get_global_step", "create_global_step", "get_or_create_global_step", "global_step",
           "assert_global_step", "Optimizer", "GradientDescentOptimizer", "MomentumOptimizer", "AdamOptimizer",
           "AdagradOptimizer", "RMSPropOptimizer", "FtrlOptimizer", "exponential_decay", "piecewise_constant",
           "cosine_decay", "inverse_time_decay", "polynomial_decay"]

# TF 1.x's cluster names (`tf.train.ClusterSpec`, `Server`, `replica_device_setter`) belong to ks.distributed,
# which sits above the engine; they resolve lazily so that `ke.train.Server(...)` raises its clear
# "parameter-server training is not supported; use mpiexec" error instead of an AttributeError.
_CLUSTER_NAMES = ("ClusterSpec", "Server", "replica_device_setter")


def __getattr__(name):
    if name in _CLUSTER_NAMES:
        from ..distributed import strategy
        return getattr(strategy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
