"""Estimator.evaluate and Estimator.predict: build the EVAL / PREDICT graph once, run a compiled step per batch."""
import logging
import os

import numpy as np

from ..engine.ops.core import group
from ..errors import InvalidArgumentError
from ..metrics.tf_metrics import mean as _metric_mean
from . import _state
from .hooks import SessionRunContext, SessionRunValues
from .model_fn import ModeKeys

logger = logging.getLogger("kestimator.estimators")

LOSS_KEY = "loss"


def _restore_or_warn(est, sess, built, checkpoint_path, what):
    found = est._load_checkpoint(checkpoint_path)
    if found is None:
        logger.info("%s: could not find a trained model in %s; running with the initial values", what,
                    est.model_dir)
        return 0
    path, tensors, meta = found
    _state.restore(sess, built.graph, tensors, meta, path)
    return int(meta["global_step"])


def evaluate(est, input_fn, steps, hooks, checkpoint_path, name):
    """See Estimator.evaluate."""
    batches = est._input_batches(input_fn, ModeKeys.EVAL)
    it = batches.iterator()
    try:
        first = next(it)
    except StopIteration:
        raise InvalidArgumentError("evaluate: the input_fn produced no batches") from None
    if first[1] is None:
        raise InvalidArgumentError("evaluate: the input_fn provides no labels")
    built = est._build(ModeKeys.EVAL, first[0], first[1])
    spec, g = built.spec, built.graph
    metric_ops = dict(spec.eval_metric_ops)
    if LOSS_KEY in metric_ops:
        raise InvalidArgumentError('evaluate: a metric named "loss" is not allowed; the Estimator already '
                                   "reports the mean loss under that name")
    with g.as_default():
        metric_ops[LOSS_KEY] = _metric_mean(spec.loss, name="mean_loss")
        update = group(*[m[1] for m in metric_ops.values()])
        all_hooks = list(hooks) + list(spec.evaluation_hooks)
        for h in all_hooks:
            h.begin()
    sess = est._new_session(built)
    global_step = _restore_or_warn(est, sess, built, checkpoint_path, "evaluate")
    g.finalize()
    names = sorted(metric_ops)
    try:
        with g.as_default():   # hooks see the evaluation graph as the default
            _run_eval(sess, built, update, all_hooks, first, it, steps)
            values = sess.run([metric_ops[k][0] for k in names])
            for h in all_hooks:
                h.end(sess)
    finally:
        sess.close()
        batches.close()
    result = {k: _scalar(v) for k, v in zip(names, values)}
    result["global_step"] = np.int64(global_step)
    logger.info("Saving dict for global step %d: %s", global_step,
                ", ".join(f"{k} = {result[k]}" for k in sorted(result)))
    _write_eval_summaries(est.model_dir, name, result, global_step)
    return result


def _run_eval(sess, built, update, all_hooks, first, it, steps):
    """Run the metric updates over the batches (all, or `steps`)."""
    for h in all_hooks:
        h.after_create_session(sess, None)
    feed = built.feed
    step_fn = sess.make_callable([update], feed.tensors)
    batch, n = first, 0
    while True:
        arrays = feed.flatten(batch[0], batch[1])
        if all_hooks:
            ctx = SessionRunContext(None, sess)
            reqs = [h.before_run(ctx) for h in all_hooks]
            fetch = [r.fetches if r is not None and r.fetches is not None else [] for r in reqs]
            fd = dict(zip(feed.tensors, arrays))
            for r in reqs:
                if r is not None and r.feed_dict:
                    fd.update(r.feed_dict)
            _, results = sess.run([update, fetch], feed_dict=fd)
            for h, r, res in zip(all_hooks, reqs, results):
                h.after_run(ctx, SessionRunValues(res if r is not None and r.fetches is not None else None,
                                                  None, None))
            stop = ctx.stop_requested
        else:
            step_fn(*arrays)
            stop = False
        n += 1
        if stop or (steps is not None and n >= steps):
            break
        try:
            batch = next(it)
        except StopIteration:
            break


def _scalar(v):
    arr = np.asarray(v)
    return arr[()] if arr.ndim == 0 else arr


def _write_eval_summaries(model_dir, name, result, step):
    from ..io.events import EventFileWriter
    folder = os.path.join(model_dir, "eval" if not name else f"eval_{name}")
    os.makedirs(folder, exist_ok=True)
    with EventFileWriter(folder) as w:
        for k, v in result.items():
            if k == "global_step":
                continue
            arr = np.asarray(v)
            if arr.ndim == 0 and arr.dtype.kind in "biuf":
                w.add_scalar(k, float(arr), step)


def predict(est, input_fn, predict_keys, hooks, checkpoint_path, yield_single_examples):
    """See Estimator.predict: a generator; the graph is built when iteration starts."""
    batches = est._input_batches(input_fn, ModeKeys.PREDICT)
    it = batches.iterator()
    try:
        first = next(it)
    except StopIteration:
        return
    built = est._build(ModeKeys.PREDICT, first[0], None, with_labels=False)
    spec, g = built.spec, built.graph
    preds = spec.predictions
    single = not isinstance(preds, dict)
    if predict_keys is not None:
        if single:
            raise InvalidArgumentError("predict: predict_keys were given but the model's predictions are one "
                                       "tensor, not a dict")
        unknown = [k for k in predict_keys if k not in preds]
        if unknown:
            raise InvalidArgumentError(f"predict: predict_keys {unknown} are not predictions of the model; "
                                       f"available: {sorted(preds)}")
        preds = {k: preds[k] for k in predict_keys}
    keys = None if single else list(preds)
    fetches = [preds] if single else [preds[k] for k in keys]
    all_hooks = list(hooks) + list(spec.prediction_hooks)
    with g.as_default():
        for h in all_hooks:
            h.begin()
    sess = est._new_session(built)
    _restore_or_warn(est, sess, built, checkpoint_path, "predict")
    g.finalize()
    with g.as_default():   # not around the yields: the caller's default graph must stay its own
        for h in all_hooks:
            h.after_create_session(sess, None)
    feed = built.feed
    step_fn = sess.make_callable(fetches, feed.tensors)
    batch = first
    try:
        while True:
            arrays = feed.flatten(batch[0], None)
            ctx = None
            if all_hooks:
                ctx = SessionRunContext(None, sess)
                with g.as_default():
                    reqs = [h.before_run(ctx) for h in all_hooks]
                    extra = [r.fetches if r is not None and r.fetches is not None else [] for r in reqs]
                    out, results = sess.run([fetches, extra], feed_dict=dict(zip(feed.tensors, arrays)))
                    for h, r, res in zip(all_hooks, reqs, results):
                        h.after_run(ctx, SessionRunValues(res if r is not None and r.fetches is not None
                                                          else None, None, None))
            else:
                out = step_fn(*arrays)
            yield from _split_predictions(out, keys, yield_single_examples)
            if ctx is not None and ctx.stop_requested:
                break
            try:
                batch = next(it)
            except StopIteration:
                break
        with g.as_default():
            for h in all_hooks:
                h.end(sess)
    finally:
        sess.close()
        batches.close()


def _split_predictions(out, keys, single_examples):
    if keys is None:
        value = out[0]
        if not single_examples:
            yield value
            return
        for row in value:
            yield row
        return
    if not single_examples:
        yield dict(zip(keys, out))
        return
    sizes = {k: (np.shape(v)[0] if np.ndim(v) else None) for k, v in zip(keys, out)}
    n = {s for s in sizes.values()}
    if len(n) != 1 or None in n:
        raise InvalidArgumentError(f"predict: with yield_single_examples=True every prediction needs the same "
                                   f"batch dimension; got {sizes}")
    count = n.pop()
    for i in range(count):
        yield {k: v[i] for k, v in zip(keys, out)}
