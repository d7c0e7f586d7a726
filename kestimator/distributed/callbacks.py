"""Keras callbacks for data-parallel fit(): same start, averaged metrics, learning-rate warm-up.

They use the model's session when it has one (a compiled model that fit() has set up: `model._runtime`
with `.session` and `.graph`), and fall back to `get_weights` / `set_weights` otherwise. Put
MetricAverageCallback before callbacks that read metrics (checkpointing on val_loss, early stopping,
CSV logging) so they see the averaged values.
"""
import numpy as np

from ..errors import InvalidArgumentError
from ..models.callbacks import Callback
from . import collectives
from ._runtime import ensure_init
from .sync import broadcast_variables


def _session_and_graph(model):
    rt = getattr(model, "_runtime", None)
    sess, graph = getattr(rt, "session", None), getattr(rt, "graph", None)
    return (sess, graph) if sess is not None and graph is not None else (None, None)


def broadcast_model(model, root_rank=0):
    """Copy `model`'s weights (and, once fit() built the training step, its optimizer's iterations,
    learning rate and slots) from `root_rank` to every rank."""
    st = ensure_init()
    if not st.distributed:
        return
    sess, graph = _session_and_graph(model)
    if sess is not None:
        from ..engine.graph import GraphKeys
        broadcast_variables(sess, graph.get_collection(GraphKeys.GLOBAL_VARIABLES), root_rank=root_rank)
        return
    weights = [np.asarray(w) for w in model.get_weights()]
    weights = collectives.broadcast(weights, root=root_rank, name=f"{getattr(model, 'name', 'model')} weights")
    if st.rank != root_rank:
        model.set_weights(weights)


class BroadcastGlobalVariablesCallback(Callback):
    """At the start of training, give every rank `root_rank`'s weights and optimizer state.

    fit() builds the training step (and so the optimizer's slots) before on_train_begin, so one broadcast
    there covers weights restored by load_weights on the chief, optimizer state, and step counters.

    Args:
        root_rank: the rank whose values win.
    """

    def __init__(self, root_rank=0):
        super().__init__()
        self.root_rank = root_rank
        self.broadcast_done = False

    def on_train_begin(self, logs=None):
        broadcast_model(self.model, self.root_rank)
        self.broadcast_done = True


class MetricAverageCallback(Callback):
    """At each epoch end, replace every numeric entry of `logs` by its average over ranks (in place), so
    History, checkpoint and early-stopping callbacks on every rank see the same numbers.

    Raises:
        InvalidArgumentError: ranks report different metric names.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        st = ensure_init()
        keys = sorted(k for k, v in logs.items() if isinstance(v, (int, float, np.integer, np.floating))
                      and not isinstance(v, bool))
        if not st.distributed or not keys:
            return
        collectives.check_consistent("metric average", "epoch logs", [[k, [], "<f8"] for k in keys])
        values = np.array([float(logs[k]) for k in keys], np.float64)
        averaged = collectives.allreduce(values, op="average", name="epoch logs")
        for k, v in zip(keys, averaged):
            logs[k] = float(v)
        # fit() may have handed these logs to its History before this callback ran: correct its entry too
        history = getattr(self.model, "history", None)
        if history is not None and getattr(history, "epoch", None) and history.epoch[-1] == epoch:
            for k in keys:
                series = history.history.get(k)
                if series:
                    series[-1] = logs[k]


class LearningRateWarmupCallback(Callback):
    """Ramp the learning rate from initial_lr / size to initial_lr over the first `warmup_epochs` epochs
    (Goyal et al., "Accurate, Large Minibatch SGD", 2017): with size ranks the effective batch is size
    times larger and the usual remedy is a size-times larger rate, which diverges if applied at once.

    lr(epoch e, batch b) = initial_lr / size * (1 + (e + b / steps_per_epoch) * (size - 1) / warmup_epochs)

    Args:
        initial_lr: the rate to reach (already scaled by the number of ranks).
        warmup_epochs: length of the ramp in epochs.
        steps_per_epoch: batches per epoch (default: fit()'s `params["steps"]`).
        verbose: print the rate reached at the end of the warm-up (on the chief).

    Raises:
        InvalidArgumentError: non-positive initial_lr or warmup_epochs; steps per epoch unknown.
    """

    def __init__(self, initial_lr, warmup_epochs=5, steps_per_epoch=None, verbose=0):
        super().__init__()
        if not initial_lr > 0:
            raise InvalidArgumentError(f"LearningRateWarmupCallback: initial_lr must be > 0, got {initial_lr!r}")
        if not warmup_epochs > 0:
            raise InvalidArgumentError(f"LearningRateWarmupCallback: warmup_epochs must be > 0, got {warmup_epochs!r}")
        self.initial_lr, self.warmup_epochs = float(initial_lr), float(warmup_epochs)
        self.steps_per_epoch, self.verbose = steps_per_epoch, verbose
        self._epoch = 0

    def rate(self, epoch_fraction):
        """The learning rate after `epoch_fraction` epochs (a float)."""
        n = ensure_init().size
        if epoch_fraction >= self.warmup_epochs:
            return self.initial_lr
        return self.initial_lr / n * (1.0 + epoch_fraction * (n - 1) / self.warmup_epochs)

    def _steps(self):
        steps = self.steps_per_epoch or (self.params or {}).get("steps")
        if not steps:
            raise InvalidArgumentError("LearningRateWarmupCallback: steps_per_epoch is unknown; pass it")
        return steps

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self._epoch >= self.warmup_epochs:
            return
        _set_learning_rate(self.model, self.rate(self._epoch + batch / self._steps()))

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.warmup_epochs > epoch:
            _set_learning_rate(self.model, self.initial_lr)
            if self.verbose and ensure_init().rank == 0:
                print(f"\nEpoch {epoch + 1}: finished the learning-rate warm-up at {self.initial_lr:g}")


def _set_learning_rate(model, value):
    setter = getattr(model, "_set_learning_rate", None)
    if setter is not None:
        setter(value)
    else:
        model.optimizer.learning_rate = float(value)
