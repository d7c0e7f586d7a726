"""The Estimator's training loop: restore, run compiled steps, summarize, checkpoint, stop.

Per step the loop does as little Python as it can: take the next batch, flatten it into the feed list,
call the compiled step (fetching the loss and the updated global step), check the loss for NaN and the
stop conditions. Summaries, logging and checkpoints use other compiled variants of the step only on the
steps they are due. User hooks that ask for extra fetches get a compiled variant per set of fetches.

Resuming an interrupted train(): every checkpoint records the call's target (max_steps) and how many
batches it had consumed. A later train() with the same max_steps whose newest checkpoint says that call
did not finish moves its input past those batches (see `_feeding.Batches.iterator`), so with a
deterministic input_fn the resumed run sees exactly the data an uninterrupted run would have seen.
"""
import logging
import time

import numpy as np

from ..engine.graph import GraphKeys
from ..engine.ops.core import identity
from ..errors import InvalidArgumentError
from . import _state
from .hooks import NanLossDuringTrainingError, SessionRunContext, SessionRunValues
from .model_fn import ModeKeys

logger = logging.getLogger("kestimator.estimators")


class _Timer:
    """Fires every `every_steps` global steps or `every_secs` seconds (TF's SecondOrStepTimer)."""

    def __init__(self, every_steps=None, every_secs=None):
        self.every_steps = every_steps or None
        self.every_secs = every_secs or None
        self.last_step = None
        self.last_time = None

    @property
    def active(self):
        return self.every_steps is not None or self.every_secs is not None

    def update(self, step):
        self.last_step, self.last_time = step, time.time()

    def due(self, step):
        if self.last_step is None:
            return True
        if step == self.last_step:
            return False
        if self.every_steps is not None:
            return step >= self.last_step + self.every_steps
        if self.every_secs is not None:
            return time.time() >= self.last_time + self.every_secs
        return False


def _summary_bytes(values):
    """Concatenate serialized Summary protos (their concatenation is their merge)."""
    out = []
    for v in values:
        # never np.asarray(bytes): a NumPy "S" array drops trailing NUL bytes, corrupting the proto
        if isinstance(v, np.ndarray):
            v = v.reshape(-1).tolist()
        for item in (v if isinstance(v, list) else [v]):
            out.append(bytes(item))
    return b"".join(out)


class TrainLoop:
    """One train() call."""

    def __init__(self, estimator, input_fn, hooks, steps, max_steps, saving_listeners):
        self.est = estimator
        self.config = estimator.config
        self.input_fn = input_fn
        self.user_hooks = hooks
        self.steps, self.max_steps = steps, max_steps
        self.listeners = saving_listeners
        self.writer = None

    # -- setup -----------------------------------------------------------------------------------------
    def run(self):
        est = self.est
        est._checkpoints.remove_temporary_files()
        ckpt = est._load_checkpoint()
        start_step = ckpt[2]["global_step"] if ckpt is not None else 0
        if self.max_steps is not None and start_step >= self.max_steps:
            logger.info("Skipping training since max_steps has already saved (global step %d >= %d)",
                        start_step, self.max_steps)
            return
        self.target = self.max_steps if self.max_steps is not None else (
            start_step + self.steps if self.steps is not None else None)
        resume = self._input_resume_point(ckpt)
        self.batches = est._input_batches(self.input_fn, ModeKeys.TRAIN)
        if self.batches.fixed and self.target is None:
            raise InvalidArgumentError("train: the input_fn returns one fixed batch, which train() would repeat "
                                       "forever; give steps or max_steps")
        it = self.batches.iterator(resume)
        try:
            first = next(it)
        except StopIteration:
            logger.warning("train: the input_fn produced no batches; nothing to do")
            return
        built = est._build(ModeKeys.TRAIN, first[0], first[1])
        self.built, self.graph = built, built.graph
        self.start_step = start_step
        self._prepare_fetches()
        hooks = list(self.user_hooks) + list(built.spec.training_hooks) + list(built.spec.training_chief_hooks)
        with self.graph.as_default():
            for h in hooks:
                h.begin()
        self.sess = est._new_session(built)
        self.state = _state.StateReader(self.sess, self.graph)
        if ckpt is not None:
            _state.restore(self.sess, self.graph, ckpt[1], ckpt[2], ckpt[0])
            logger.info("Restored from checkpoint %s (global step %d)", ckpt[0], start_step)
        elif est._warm_start_settings is not None:
            loaded = _state.warm_start(self.sess, self.graph, est._warm_start_settings, est._warm_start_loader)
            logger.info("Warm-started %d variables from %s", len(loaded),
                        est._warm_start_settings.ckpt_to_initialize_from)
        try:
            with self.graph.as_default():   # hooks and listeners see the training graph as the default
                self._run_session(ckpt, it, first, hooks, start_step)
        finally:
            self.sess.close()
            self.batches.close()
            _release_optimizer_state(self.graph)

    def _run_session(self, ckpt, it, first, hooks, start_step):
        self.graph.finalize()   # from here on nothing may add ops (each would invalidate the compiled plans)
        for h in hooks:
            h.after_create_session(self.sess, None)
        for listener in self.listeners:
            listener.begin()
        self.ckpt_timer = _Timer(self.config.save_checkpoints_steps, self.config.save_checkpoints_secs)
        self.summary_timer = _Timer(self.config.save_summary_steps)
        self.log_every = self.config.log_step_count_steps or None
        self.last_saved_step = start_step if ckpt is not None else None
        self._last_save_unfinished = False
        if ckpt is None:   # as TF: a new model is checkpointed before its first step
            self._save(start_step, finished=False, pending=1)
        self.ckpt_timer.update(start_step)
        try:
            final_step = self._loop(it, first, hooks)
        finally:
            if self.writer is not None:
                self.writer.close()
        if self.last_saved_step != final_step or self._last_save_unfinished:
            self._save(final_step, finished=True)
        for h in hooks:
            h.end(self.sess)
        for listener in self.listeners:
            listener.end(self.sess, final_step)

    def _input_resume_point(self, ckpt):
        """The input position to resume from when the newest checkpoint is from an unfinished call with
        the same max_steps target."""
        if ckpt is None or self.max_steps is None:
            return None
        call = ckpt[2].get("train_call") or {}
        if call.get("finished", True) or call.get("target") != self.max_steps:
            return None
        return call.get("input")

    def _prepare_fetches(self):
        spec, g = self.built.spec, self.graph
        with g.as_default():
            with g.control_dependencies([spec.train_op]):
                self.step_after = identity(self.built.global_step._as_tensor(), name="global_step_after_train")
        self.loss = spec.loss
        self.feeds = self.built.feed.tensors
        self.summary_tensors = [t for t in g.get_collection(GraphKeys.SUMMARIES) if hasattr(t, "op")]
        self._callables = {}

    def _callable(self, key, extra):
        fn = self._callables.get(key)
        if fn is None:
            fn = self._callables[key] = self.sess.make_callable([self.loss, self.step_after] + extra, self.feeds)
        return fn

    # -- the loop --------------------------------------------------------------------------------------------
    def _loop(self, it, first, hooks):
        feed = self.built.feed
        base = self._callable("base", [])
        with_summary = self._callable("summary", list(self.summary_tensors)) if self.summary_tensors else None
        step = self.start_step
        target = self.target
        summaries_on = self.summary_timer.active and self.config.save_summary_steps
        log_every = self.log_every
        last_log = (step, time.time())
        previous = step
        batch = first
        while True:
            arrays = feed.flatten(batch[0], batch[1])
            summarize = summaries_on and self.summary_timer.due(step + 1)
            if hooks:
                loss, step, stop = self._hooked_step(hooks, arrays, summarize)
            else:
                stop = False
                if summarize and with_summary is not None:
                    out = with_summary(*arrays)
                    loss, step = out[0], int(out[1])
                    self._write_summaries(step, loss, out[2:])
                else:
                    loss, step = base(*arrays)
                    step = int(step)
                    if summarize:
                        self._write_summaries(step, loss, ())
            if summarize:
                self.summary_timer.update(step)
            if step == previous:
                raise InvalidArgumentError(
                    f"the train_op did not increment the global step (still {step} after a training step), so "
                    "steps / max_steps can never be reached; pass global_step=ke.train.get_global_step() to "
                    "optimizer.minimize")
            previous = None   # checked on the first step only
            if loss != loss:   # NaN: TF's NanTensorHook stops training with an error
                raise NanLossDuringTrainingError(f"model diverged with loss = NaN at global step {step}")
            if log_every is not None and step - last_log[0] >= log_every:
                now = time.time()
                rate = (step - last_log[0]) / max(now - last_log[1], 1e-9)
                logger.info("loss = %s, step = %d (%.1f steps/sec)", float(loss), step, rate)
                self._writer().add_scalar("global_step/sec", rate, step)
                last_log = (step, now)
            done = target is not None and step >= target
            if not done and self.ckpt_timer.active and self.ckpt_timer.due(step):
                stop = self._save(step, finished=False) or stop
                self.ckpt_timer.update(step)
            if stop or done:
                return step
            try:
                batch = next(it)
            except StopIteration:
                logger.info("train: input exhausted at global step %d", step)
                return step

    def _hooked_step(self, hooks, arrays, summarize):
        ctx = SessionRunContext(None, self.sess)
        requests = [h.before_run(ctx) for h in hooks]
        fetches = [r.fetches if r is not None and r.fetches is not None else [] for r in requests]
        feeds = {}
        for r in requests:
            if r is not None and r.feed_dict:
                feeds.update(r.feed_dict)
        extra = list(self.summary_tensors) if summarize else []
        if feeds:
            fd = dict(zip(self.feeds, arrays))
            fd.update(feeds)
            out = self.sess.run([self.loss, self.step_after, extra, fetches], feed_dict=fd)
            loss, step, summ, results = out[0], int(out[1]), out[2], out[3]
        else:
            key = ("hooks", summarize, tuple(_fetch_key(f) for f in fetches))
            entry = self._callables.get(key)
            if entry is None:
                flat = []
                rebuild = flatten_fetches([extra, fetches], flat)
                entry = self._callables[key] = (self.sess.make_callable([self.loss, self.step_after] + flat,
                                                                        self.feeds), rebuild)
            out = entry[0](*arrays)
            summ, results = entry[1](out[2:])
            loss, step = out[0], int(out[1])
        if summarize:
            self._write_summaries(step, loss, summ)
        for h, req, res in zip(hooks, requests, results):
            h.after_run(ctx, SessionRunValues(res if req is not None and req.fetches is not None else None,
                                              None, None))
        return loss, step, ctx.stop_requested

    # -- side outputs ----------------------------------------------------------------------------------------
    def _writer(self):
        if self.writer is None:
            from ..io.events import EventFileWriter
            self.writer = EventFileWriter(self.est.model_dir)
        return self.writer

    def _write_summaries(self, step, loss, summary_values):
        w = self._writer()
        w.add_scalar("loss", float(loss), step)
        if summary_values:
            w.add_summary(_summary_bytes(summary_values), step)

    def _save(self, step, finished, pending=0):
        """Checkpoint the session; returns True when a saving listener asks to stop.

        `pending` batches were read from the input but not trained on yet (the first batch, read to build
        the graph); the recorded input position excludes them.
        """
        for listener in self.listeners:
            listener.before_save(self.sess, step)
        position = self.batches.position()
        if pending:
            position = {"kind": position["kind"], "batches": max(0, position["batches"] - pending)}
        meta = {"rng_states": self.state.rng_states(),
                "train_call": {"target": self.target, "start_step": self.start_step, "finished": finished,
                               "input": position}}
        path = self.est._checkpoints.save(step, self.state.tensors(), meta)
        logger.info("Saving checkpoints for %d into %s", step, path)
        self.last_saved_step = step
        self._last_save_unfinished = not finished
        stop = False
        for listener in self.listeners:
            stop = bool(listener.after_save(self.sess, step)) or stop
        return stop


def _release_optimizer_state(graph):
    """Optimizers keep per-graph state (slot variables); an instance reused by many train() calls would
    otherwise keep every finished call's graph alive."""
    for op in graph.get_operations():
        opt = op.attrs.get("optimizer") if op.type.endswith("ApplyOptimizer") else None
        state = getattr(opt, "_graph_state", None)
        if isinstance(state, dict):
            state.pop(graph, None)


def flatten_fetches(fetches, out):
    """Append the leaves of nested list / tuple / dict `fetches` to `out`; returns values -> structure."""
    if isinstance(fetches, (list, tuple)):
        parts = [flatten_fetches(f, out) for f in fetches]
        kind = type(fetches)
        return lambda vals: kind(p(vals) for p in parts)
    if isinstance(fetches, dict):
        parts = {k: flatten_fetches(v, out) for k, v in fetches.items()}
        return lambda vals: {k: p(vals) for k, p in parts.items()}
    index = len(out)
    out.append(fetches)
    return lambda vals: vals[index]


def _fetch_key(f):
    """A hashable identity of a (nested) fetch structure."""
    if f is None:
        return None
    if isinstance(f, dict):
        return ("d",) + tuple((k, _fetch_key(v)) for k, v in sorted(f.items(), key=lambda kv: str(kv[0])))
    if isinstance(f, (list, tuple)):
        return ("l",) + tuple(_fetch_key(v) for v in f)
    return id(f) if not isinstance(f, str) else f

