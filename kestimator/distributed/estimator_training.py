"""Estimator training under `RunConfig(train_distribute=MultiWorkerMirroredStrategy())` on MPI ranks.

Every rank runs the Estimator's own training loop (`estimators._training.TrainLoop`) on its shard of the
input; this module adds what differs:

* input: `input_fn(input_context)` gets this rank's InputContext (num_input_pipelines = ranks,
  input_pipeline_id = rank) and shards itself; an input_fn without that argument that returns a
  ks.data.Dataset is sharded with `Dataset.shard(ranks, rank)` (whole elements: with a batched Dataset
  each rank trains on whole batches, so the input_fn's batch size is per rank, as in tf.estimator); one
  that returns a fixed (features, labels) batch feeds the same batch on every rank; any other iterable is
  refused (it cannot be sharded safely). Before every step the ranks agree (one 8-byte allreduce) that
  each still has a batch, so a rank whose shard ends first stops every rank instead of hanging them;
* model: the model_fn is called inside the strategy's scope, so every optimizer's update averages the
  gradients over the ranks (canned DNN / linear / combined estimators included);
* start state: `strategy.training_hooks()` broadcasts every global variable from the chief after
  initialization or restore;
* chief work: only rank 0 writes checkpoints (the CheckpointManager's temp + rename), summaries and
  exports; the others wait for it (a broadcast of the saving listeners' stop request doubles as the
  barrier). A time-based checkpoint rule (save_checkpoints_secs) follows the chief's clock: its decision is
  broadcast each step. model_dir must be a folder every rank sees (a shared file system), so a restarted
  job restores the same checkpoint everywhere.
"""
import numpy as np

from ..errors import InvalidArgumentError
from . import collectives
from ._runtime import ensure_init
from .chief import chief_section


def auto_shard(result, context, what="train"):
    """Shard what an input_fn without an `input_context` argument returned.

    Args:
        result: the input_fn's return value.
        context: this rank's InputContext.
        what: "train" / "eval", for messages.

    Returns:
        A Dataset shard, or `result` itself (a fixed batch, or one pipeline).

    Raises:
        InvalidArgumentError: an iterable other than a Dataset with several pipelines.
    """
    from ..estimators._feeding import FIXED, Batches
    if context.num_input_pipelines == 1:
        return result
    kind = Batches(result, what).kind
    if kind == FIXED:
        return result
    if hasattr(result, "shard") and hasattr(result, "iterator_from_state"):
        return result.shard(context.num_input_pipelines, context.input_pipeline_id)
    raise InvalidArgumentError(
        f"{what}: under a {context.num_input_pipelines}-rank MultiWorkerMirroredStrategy the input_fn returned a "
        f"{type(result).__name__}, which kestimator cannot shard; return a ks.data.Dataset (sharded "
        "automatically), or give the input_fn an `input_context` argument and read the shard "
        "input_context.input_pipeline_id of input_context.num_input_pipelines yourself")


class SyncedBatches:
    """A `_feeding.Batches` whose iterator stops on every rank as soon as one rank has no next batch."""

    def __init__(self, batches):
        self._batches = batches
        self._gathered = None

    def __getattr__(self, name):
        return getattr(self._batches, name)

    def gather_positions(self):
        """Collect every rank's input position (a collective: every rank calls it before the chief saves)."""
        self._gathered = collectives.allgather_object(self._batches.position(), name="input positions")

    def position(self):
        """This rank's position, plus every rank's (`per_rank`) when gathered for a checkpoint: a Dataset
        shard's iterator state belongs to that rank's pipeline."""
        pos = dict(self._batches.position())
        if self._gathered is not None:
            pos["per_rank"] = self._gathered
        return pos

    def iterator(self, resume=None):
        if resume and "per_rank" in resume:
            st = ensure_init()
            per_rank = resume["per_rank"]
            # the checkpoint's own entry for this rank; a job restarted with another size keeps only the count
            resume = per_rank[st.rank] if len(per_rank) == st.size else {"batches": resume.get("batches", 0)}
        it = self._batches.iterator(resume)
        if self._batches.fixed:   # the same fixed batch forever on every rank: nothing to agree on
            return it
        return self._agreed(it)

    @staticmethod
    def _agreed(it):
        flag = np.zeros(1, np.int64)
        while True:
            try:
                element = next(it)
                flag[0] = 1
            except StopIteration:
                element, flag[0] = None, 0
            collectives.allreduce(flag, op="min", name="input has a next batch", inplace=True)
            if not flag[0]:
                return
            yield element


class _NullWriter:
    """What a non-chief rank writes summaries to: nothing."""

    def add_scalar(self, *args, **kwargs):
        pass

    def add_summary(self, *args, **kwargs):
        pass

    def close(self):
        pass


class _ChiefTimer:
    """A time-based checkpoint timer whose decisions are the chief's (broadcast), so all ranks save at the
    same steps; step-based timers are deterministic and stay as they are."""

    def __init__(self, timer):
        self._timer = timer

    def __getattr__(self, name):
        return getattr(self._timer, name)

    def due(self, step):
        decision = bool(self._timer.due(step)) if ensure_init().rank == 0 else None
        return bool(collectives.broadcast(decision, root=0, name="checkpoint due"))

    def update(self, step):
        self._timer.update(step)


def distributed_train_loop_class():
    """The TrainLoop subclass used when an Estimator trains on several ranks."""
    from ..estimators._training import TrainLoop

    class DistributedTrainLoop(TrainLoop):
        """TrainLoop with chief-only checkpoints and summaries and rank-agreed checkpoint times."""

        def _loop(self, it, first, hooks):
            timer = self.ckpt_timer
            if timer.every_steps is None and timer.every_secs is not None:
                self.ckpt_timer = _ChiefTimer(timer)
            return super()._loop(it, first, hooks)

        def _writer(self):
            if ensure_init().rank != 0:
                return _NullWriter()
            return super()._writer()

        def _save(self, step, finished, pending=0):
            gather = getattr(self.batches, "gather_positions", None)
            if gather is not None:
                gather()
            if ensure_init().rank == 0:
                with chief_section():   # saving listeners (train_and_evaluate's evaluation) run here alone
                    stop = super()._save(step, finished, pending)
            else:   # what the chief's save records about itself, so the ranks agree on the final save
                self.last_saved_step = step
                self._last_save_unfinished = not finished
                stop = None
            # every rank waits here until the chief's checkpoint is renamed into place (the barrier), and
            # learns whether a saving listener on the chief asked to stop
            return bool(collectives.broadcast(stop, root=0, name="checkpoint saved"))

    return DistributedTrainLoop


# -- evaluation under RunConfig(eval_distribute=...) ------------------------------------------------------------
def sum_metric_variables(session):
    """Sum every metric variable of `session`'s graph over the ranks, in place (metric states are sums:
    totals, counts, confusion counts), so the metric values read next cover every rank's rows."""
    from ..engine.graph import GraphKeys
    variables = session.graph.get_collection(GraphKeys.METRIC_VARIABLES)
    if not variables:
        return
    values = session.run(variables)
    flat = np.concatenate([np.asarray(v, np.float64).reshape(-1) for v in values])
    collectives.allreduce(flat, op="sum", name=f"evaluation metrics ({len(variables)} variables, {flat.size})",
                          inplace=True)
    offset = 0
    for v, old in zip(variables, values):
        old = np.asarray(old)
        v.load(flat[offset:offset + old.size].reshape(old.shape).astype(old.dtype), session)
        offset += old.size


class _ReduceAtEnd:
    """The evaluation batches of one rank: at most `steps` of them; when they end, the metric variables are
    summed over the ranks before evaluate() reads them."""

    def __init__(self, batches, view, steps):
        self._batches, self._view, self._steps = batches, view, steps

    def __getattr__(self, name):
        return getattr(self._batches, name)

    def iterator(self, resume=None):
        it = self._batches.iterator(resume)
        n = 0
        for element in it:
            yield element
            n += 1
            if self._steps is not None and n >= self._steps:
                break
        sum_metric_variables(self._view.session)


class _EvalView:
    """The Estimator as `_evaluation.evaluate` sees it on one rank: its batches reduce at the end, its
    session is remembered, and a non-chief rank's event files go to a throw-away folder."""

    def __init__(self, estimator, steps, model_dir):
        self._est, self._steps, self.model_dir, self.session = estimator, steps, model_dir, None

    def __getattr__(self, name):
        return getattr(self._est, name)

    def _input_batches(self, input_fn, mode):
        return _ReduceAtEnd(self._est._input_batches(input_fn, mode), self, self._steps)

    def _new_session(self, built):
        self.session = self._est._new_session(built)
        return self.session


def distributed_evaluate(estimator, input_fn, steps, hooks, checkpoint_path, name):
    """Estimator.evaluate on every rank over its shard of the input (input_fn(input_context), or a Dataset
    sharded for it), with the metric variables summed over the ranks before they are read: every rank
    returns the metrics over all ranks' rows. Only the chief writes the evaluation event file.

    A rank whose shard is empty fails ("produced no batches") and ends the job; a hook that stops
    evaluation early on one rank only is not supported (the ranks must all reach the end of their input
    or `steps`).
    """
    import tempfile
    from ..estimators._evaluation import evaluate
    if ensure_init().rank == 0:
        return evaluate(_EvalView(estimator, steps, estimator.model_dir), input_fn, None, hooks, checkpoint_path,
                        name)
    with tempfile.TemporaryDirectory(prefix="kestimator_eval_") as tmp:
        return evaluate(_EvalView(estimator, steps, tmp), input_fn, None, hooks, checkpoint_path, name)
