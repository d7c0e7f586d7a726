"""SessionRunHook and the standard hooks (tf.estimator / tf.compat.v1.train names).

A hook sees the training (or evaluation / prediction) loop: `begin()` once the graph is built,
`after_create_session(session, coord)`, then around every step `before_run(run_context)` (it may return
SessionRunArgs naming extra tensors to fetch in the same step) and `after_run(run_context, run_values)`,
and `end(session)`. `run_context.request_stop()` ends the loop after the current step.
"""
import collections
import logging
import math
import time

import numpy as np

from ..errors import FailedPreconditionError, InvalidArgumentError

__all__ = ["SessionRunHook", "SessionRunArgs", "SessionRunContext", "SessionRunValues", "StopAtStepHook",
           "LoggingTensorHook", "NanTensorHook", "NanLossDuringTrainingError", "StepCounterHook",
           "FinalOpsHook", "FeedFnHook", "CheckpointSaverListener"]

logger = logging.getLogger("kestimator.estimators")


class NanLossDuringTrainingError(FailedPreconditionError):
    """The training loss became NaN (or infinite)."""


class SessionRunArgs(collections.namedtuple("SessionRunArgs", ["fetches", "feed_dict", "options"])):
    """What a hook adds to one step: `fetches` (a tensor, op, name, or nested list/tuple/dict of them)."""

    def __new__(cls, fetches, feed_dict=None, options=None):
        return super().__new__(cls, fetches, feed_dict, options)


class SessionRunValues(collections.namedtuple("SessionRunValues", ["results", "options", "run_metadata"])):
    """The values of a hook's SessionRunArgs fetches after the step, in the same structure."""


class SessionRunContext:
    """Handed to before_run / after_run: the session, the original fetches, and the stop switch."""

    def __init__(self, original_args, session):
        self._original_args = original_args
        self._session = session
        self._stop_requested = False

    @property
    def original_args(self):
        return self._original_args

    @property
    def session(self):
        return self._session

    @property
    def stop_requested(self):
        return self._stop_requested

    def request_stop(self):
        self._stop_requested = True


class SessionRunHook:
    """Base class: override any of the methods; the defaults do nothing."""

    def begin(self):
        pass

    def after_create_session(self, session, coord):
        pass

    def before_run(self, run_context):
        return None

    def after_run(self, run_context, run_values):
        pass

    def end(self, session):
        pass


def _global_step_tensor():
    from ._global_step import get_global_step
    gs = get_global_step()
    if gs is None:
        raise FailedPreconditionError("this hook needs a global step variable in the graph "
                                      "(ke.train.get_or_create_global_step())")
    return gs


class StopAtStepHook(SessionRunHook):
    """Request a stop after `num_steps` more steps, or once the global step reaches `last_step`.

    Raises:
        InvalidArgumentError: both or neither of num_steps and last_step are given.
    """

    def __init__(self, num_steps=None, last_step=None):
        if (num_steps is None) == (last_step is None):
            raise InvalidArgumentError("StopAtStepHook: give exactly one of num_steps and last_step")
        self._num_steps, self._last_step = num_steps, last_step

    def begin(self):
        self._gs = _global_step_tensor()

    def after_create_session(self, session, coord):
        step = int(session.run(self._gs))
        if self._last_step is None:
            self._last_step = step + self._num_steps
        if step >= self._last_step:
            self._stop_now = True

    def before_run(self, run_context):
        if getattr(self, "_stop_now", False):
            run_context.request_stop()
        return SessionRunArgs(self._gs)

    def after_run(self, run_context, run_values):
        if int(run_values.results) >= self._last_step:
            run_context.request_stop()


class LoggingTensorHook(SessionRunHook):
    """Log the values of `tensors` every `every_n_iter` steps or `every_n_secs` seconds (and at the end).

    Args:
        tensors: dict tag -> tensor (or tensor name), or a list of tensors / names.
        every_n_iter / every_n_secs: exactly one unless at_end is True.
        at_end: log once more when the loop ends.
        formatter: optional function dict tag -> value -> str.
    """

    def __init__(self, tensors, every_n_iter=None, every_n_secs=None, at_end=False, formatter=None):
        only_at_end = at_end and every_n_iter is None and every_n_secs is None
        if not only_at_end and (every_n_iter is None) == (every_n_secs is None):
            raise InvalidArgumentError("LoggingTensorHook: give exactly one of every_n_iter and every_n_secs "
                                       "(or only at_end=True)")
        if every_n_iter is not None and every_n_iter <= 0:
            raise InvalidArgumentError(f"LoggingTensorHook: every_n_iter must be > 0, got {every_n_iter}")
        if not isinstance(tensors, dict):
            tensors = {getattr(t, "name", str(t)): t for t in tensors}
        self._tensors = dict(tensors)
        self._tags = sorted(self._tensors)
        self._every_n_iter, self._every_n_secs = every_n_iter, every_n_secs
        self._at_end, self._formatter = at_end, formatter
        self.logged = []   # (step index, {tag: value}) of every log line, for inspection

    def begin(self):
        self._iter = 0
        self._last_time = None

    def _due(self):
        if self._every_n_iter is not None:
            return self._iter % self._every_n_iter == 0
        if self._every_n_secs is not None:
            return self._last_time is None or time.time() - self._last_time >= self._every_n_secs
        return False

    def before_run(self, run_context):
        self._should = self._due()
        return SessionRunArgs(self._tensors) if self._should else None

    def _log(self, values):
        self.logged.append((self._iter, dict(values)))
        if self._formatter is not None:
            logger.info(self._formatter(values))
        else:
            logger.info(", ".join(f"{tag} = {values[tag]}" for tag in self._tags))

    def after_run(self, run_context, run_values):
        if self._should:
            self._log(run_values.results)
            self._last_time = time.time()
        self._iter += 1

    def end(self, session):
        if self._at_end:
            self._log(session.run(self._tensors))


class NanTensorHook(SessionRunHook):
    """Stop (or raise NanLossDuringTrainingError) when `loss_tensor` is NaN or infinite."""

    def __init__(self, loss_tensor, fail_on_nan_loss=True):
        self._loss, self._fail = loss_tensor, fail_on_nan_loss

    def before_run(self, run_context):
        return SessionRunArgs(self._loss)

    def after_run(self, run_context, run_values):
        if not math.isfinite(float(np.asarray(run_values.results))):
            if self._fail:
                raise NanLossDuringTrainingError("model diverged with loss = NaN")
            logger.warning("model diverged with loss = NaN; stopping")
            run_context.request_stop()


class StepCounterHook(SessionRunHook):
    """Measure global steps per second every `every_n_steps` steps; `rates` keeps the measurements."""

    def __init__(self, every_n_steps=100, every_n_secs=None, output_dir=None, summary_writer=None):
        self._every = every_n_steps
        self.rates = []

    def begin(self):
        self._gs = _global_step_tensor()
        self._last = None

    def before_run(self, run_context):
        return SessionRunArgs(self._gs)

    def after_run(self, run_context, run_values):
        step, now = int(run_values.results), time.time()
        if self._last is None:
            self._last = (step, now)
        elif step - self._last[0] >= self._every:
            rate = (step - self._last[0]) / max(now - self._last[1], 1e-9)
            self.rates.append((step, rate))
            logger.info("global_step/sec: %g", rate)
            self._last = (step, now)


class FinalOpsHook(SessionRunHook):
    """Run `final_ops` when the loop ends; their values are in `final_ops_values`."""

    def __init__(self, final_ops, final_ops_feed_dict=None):
        self._ops, self._feed = final_ops, final_ops_feed_dict
        self.final_ops_values = None

    def end(self, session):
        if self._ops is not None:
            self.final_ops_values = session.run(self._ops, feed_dict=self._feed)


class FeedFnHook(SessionRunHook):
    """Feed the dict returned by `feed_fn()` into every step."""

    def __init__(self, feed_fn):
        self._feed_fn = feed_fn

    def before_run(self, run_context):
        return SessionRunArgs(fetches=None, feed_dict=self._feed_fn())


class CheckpointSaverListener:
    """Called around each checkpoint the Estimator writes during train(): begin, before_save(session,
    global_step), after_save(session, global_step) (return True to stop training), end(session, step)."""

    def begin(self):
        pass

    def before_save(self, session, global_step_value):
        pass

    def after_save(self, session, global_step_value):
        return False

    def end(self, session, global_step_value):
        pass
