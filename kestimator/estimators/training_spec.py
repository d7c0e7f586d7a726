"""train_and_evaluate(estimator, TrainSpec, EvalSpec): train, evaluating after checkpoints (tf.estimator).

Local run (as TF's local mode): `estimator.train(train_spec.input_fn, max_steps=train_spec.max_steps)`
with a saving listener that evaluates after a checkpoint is written, at most once per `throttle_secs` and
not before `start_delay_secs` have passed since training began; then one final evaluation of the last
checkpoint (unless the last evaluation already saw it), after which every exporter runs. The training hooks,
evaluation hooks and exporters are the specs'.

Under mpiexec with `RunConfig(train_distribute=MultiWorkerMirroredStrategy())`: every rank trains; the
evaluations and exports run on the chief alone (TF's evaluator task), inside its checkpoint save, while the
other ranks wait for it (keep an evaluation shorter than KESTIMATOR_COLLECTIVE_TIMEOUT, 300 s by default);
the final result is broadcast, so every rank returns the chief's (eval_result, export_results).
"""
import os
import time

import numpy as np

from ..errors import InvalidArgumentError
from .hooks import CheckpointSaverListener

__all__ = ["TrainSpec", "EvalSpec", "train_and_evaluate"]


def _check_hooks(hooks, where):
    hooks = tuple(hooks or ())
    for h in hooks:
        if not all(hasattr(h, m) for m in ("begin", "before_run", "after_run", "end")):
            raise InvalidArgumentError(f"{where}: hooks must be SessionRunHooks, got {type(h).__name__}")
    return hooks


class TrainSpec:
    """What train_and_evaluate trains on (tf.estimator.TrainSpec).

    Args:
        input_fn: the training input_fn.
        max_steps: the global step to train to (None: until the input ends).
        hooks: SessionRunHooks for training.

    Raises:
        InvalidArgumentError: input_fn not callable, max_steps not a positive int, a hook that is not one.
    """

    def __init__(self, input_fn, max_steps=None, hooks=None, saving_listeners=None):
        if not callable(input_fn):
            raise InvalidArgumentError(f"TrainSpec: input_fn must be callable, got {type(input_fn).__name__}")
        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer))
                                      or max_steps <= 0):
            raise InvalidArgumentError(f"TrainSpec: max_steps must be a positive int or None, got {max_steps!r}")
        self.input_fn, self.max_steps = input_fn, None if max_steps is None else int(max_steps)
        self.hooks = _check_hooks(hooks, "TrainSpec")
        self.saving_listeners = tuple(saving_listeners or ())


class EvalSpec:
    """How and when train_and_evaluate evaluates (tf.estimator.EvalSpec).

    Args:
        input_fn: the evaluation input_fn.
        steps: batches per evaluation (None: the whole input).
        name: evaluation name (results go to model_dir/eval_<name>).
        hooks: SessionRunHooks for evaluation.
        exporters: objects with `name` and `export(estimator, export_path, checkpoint_path, eval_result,
            is_the_final_export)` (tf.estimator.Exporter's interface); each writes under
            model_dir/export/<name>.
        start_delay_secs: no evaluation before this many seconds of training.
        throttle_secs: at least this many seconds between evaluations (0: after every checkpoint).

    Raises:
        InvalidArgumentError: a bad value, or exporters with duplicate names.
    """

    def __init__(self, input_fn, steps=100, name=None, hooks=None, exporters=None, start_delay_secs=120,
                 throttle_secs=600):
        if not callable(input_fn):
            raise InvalidArgumentError(f"EvalSpec: input_fn must be callable, got {type(input_fn).__name__}")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0):
            raise InvalidArgumentError(f"EvalSpec: steps must be a positive int or None, got {steps!r}")
        for nm, v in (("start_delay_secs", start_delay_secs), ("throttle_secs", throttle_secs)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise InvalidArgumentError(f"EvalSpec: {nm} must be a number >= 0, got {v!r}")
        if exporters is not None and not isinstance(exporters, (list, tuple)):
            exporters = [exporters]
        exporters = tuple(exporters or ())
        names = [getattr(e, "name", None) for e in exporters]
        for e, n in zip(exporters, names):
            if not callable(getattr(e, "export", None)) or not isinstance(n, str) or not n:
                raise InvalidArgumentError(f"EvalSpec: exporter {e!r} needs a non-empty `name` and an `export` method")
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"EvalSpec: exporter names must be unique, got {names}")
        self.input_fn, self.steps, self.name = input_fn, None if steps is None else int(steps), name
        self.hooks = _check_hooks(hooks, "EvalSpec")
        self.exporters = exporters
        self.start_delay_secs, self.throttle_secs = float(start_delay_secs), float(throttle_secs)


class _Evaluator:
    """Evaluates the newest checkpoint and runs the exporters; remembers the last result."""

    def __init__(self, estimator, eval_spec):
        self.est, self.spec = estimator, eval_spec
        self.result, self.exports, self.last_step = None, [], None

    def __call__(self, final):
        path = self.est.latest_checkpoint()
        result = self.est.evaluate(self.spec.input_fn, steps=self.spec.steps, hooks=list(self.spec.hooks),
                                   checkpoint_path=path, name=self.spec.name)
        self.result, self.last_step = result, int(result["global_step"])
        self.exports = []
        for exporter in self.spec.exporters:
            base = os.path.join(self.est.model_dir, "export", exporter.name)
            self.exports.append(exporter.export(self.est, base, path, result, final))
        return result


class _EvaluateAfterSave(CheckpointSaverListener):
    """Evaluate after a checkpoint is written, throttled (runs where checkpoints are written: the chief)."""

    def __init__(self, evaluator, spec):
        self.evaluator, self.spec = evaluator, spec
        self.start = self.last = None

    def begin(self):
        self.start = time.monotonic()

    def after_save(self, session, global_step_value):
        now = time.monotonic()
        if now - self.start < self.spec.start_delay_secs:
            return False
        if self.last is not None and now - self.last < self.spec.throttle_secs:
            return False
        if self.evaluator.last_step == int(global_step_value):
            return False
        self.last = now
        self.evaluator(final=False)
        return False


def _jsonable(value):
    arr = np.asarray(value)
    if arr.dtype.kind in "biu":
        return arr.tolist()
    if arr.dtype.kind == "f":
        return arr.astype(np.float64).tolist()
    if arr.dtype.kind in "SUO":
        return [x.decode("latin-1") if isinstance(x, bytes) else str(x) for x in arr.reshape(-1)]
    return str(value)


def train_and_evaluate(estimator, train_spec, eval_spec):
    """Train `estimator` per `train_spec`, evaluating per `eval_spec` (see the module docstring).

    Args:
        estimator: an Estimator (model_fn or canned).
        train_spec: a TrainSpec.
        eval_spec: an EvalSpec.

    Returns:
        (eval_result, export_results): the final evaluation's dict and the exporters' return values. Under
        several MPI ranks every rank returns the chief's, as plain Python numbers / lists.

    Raises:
        InvalidArgumentError: wrong argument types.
    """
    from .estimator import Estimator
    for arg, value, cls in (("estimator", estimator, Estimator), ("train_spec", train_spec, TrainSpec),
                            ("eval_spec", eval_spec, EvalSpec)):
        if not isinstance(value, cls):
            raise InvalidArgumentError(f"train_and_evaluate: {arg} must be a {cls.__name__}, got {type(value).__name__}")
    evaluator = _Evaluator(estimator, eval_spec)
    listener = _EvaluateAfterSave(evaluator, eval_spec)
    estimator.train(train_spec.input_fn, hooks=list(train_spec.hooks), max_steps=train_spec.max_steps,
                    saving_listeners=list(train_spec.saving_listeners) + [listener])
    strategy = estimator.config.train_distribute
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return _final(estimator, evaluator)
    from ..distributed import on_chief

    def chief_final():
        result, exports = _final(estimator, evaluator)
        return [{k: _jsonable(v) for k, v in result.items()}, [_jsonable(e) for e in exports]]

    result, exports = on_chief(chief_final, broadcast_result=True)
    return result, exports


def _final(estimator, evaluator):
    """The final evaluation (unless the newest checkpoint was just evaluated) and the final exports."""
    latest = estimator.latest_checkpoint()
    step = None
    if latest is not None:
        found = estimator._load_checkpoint(latest)
        step = int(found[2]["global_step"]) if found is not None else None
    if evaluator.result is None or evaluator.last_step != step or evaluator.spec.exporters:
        evaluator(final=True)
    return evaluator.result, evaluator.exports
