"""Estimator: train / evaluate / predict / export a model described by a model_fn (tf.estimator.Estimator).

Each call builds its own graph once: the input_fn's first batch fixes one placeholder per feature (batch
dimension None), the model_fn adds the model, and the loop runs a compiled step (`Session.make_callable`,
one Plan per feed shape) per batch. Variables come from the newest good checkpoint in model_dir (see
`checkpoint_manager`), so a new Estimator on the same folder continues where the last one stopped.

Subclasses whose model is not a graph (boosted trees) can override `_train_model(input_fn, hooks, steps,
max_steps, saving_listeners)`, `_evaluate_model(input_fn, steps, hooks, checkpoint_path, name)` and
`_predict_model(input_fn, predict_keys, hooks, checkpoint_path, yield_single_examples)`; they get
`_input_batches(input_fn, mode)` (a `_feeding.Batches`: `iterator(resume)` of (features, labels) NumPy
batches, `position()`) and `_checkpoints` (the CheckpointManager: `save(step, tensors, metadata)`,
`load()`), so their state lives in the same checksummed, pruned checkpoints.
"""
import contextlib
import copy
import inspect
import logging
import os
import tempfile

from ..engine.graph import Graph
from ..engine.ops.random_ops import set_random_seed
from ..engine.session import Session
from ..engine.variables import global_variables_initializer, local_variables_initializer
from ..errors import InvalidArgumentError, NotFoundError
from ._feeding import Batches, FeedSpec
from ._global_step import get_or_create_global_step
from .checkpoint_manager import CheckpointManager
from .model_fn import EstimatorSpec, ModeKeys
from .run_config import RunConfig

__all__ = ["Estimator", "WarmStartSettings", "VocabInfo"]

logger = logging.getLogger("kestimator.estimators")

_MODEL_FN_ARGS = ("features", "labels", "mode", "params", "config")


class WarmStartSettings:
    """Where a fresh model's trainable variables start from (tf.estimator.WarmStartSettings).

    Args:
        ckpt_to_initialize_from: a checkpoint file or a model_dir (its newest checkpoint).
        vars_to_warm_start: a regex over variable names (default ".*": every trainable variable) or a list.
        var_name_to_vocab_info: not supported (must be None).
        var_name_to_prev_var_name: {new name: name in the source checkpoint}.
    """

    def __init__(self, ckpt_to_initialize_from, vars_to_warm_start=".*", var_name_to_vocab_info=None,
                 var_name_to_prev_var_name=None):
        if var_name_to_vocab_info:
            raise InvalidArgumentError("WarmStartSettings: var_name_to_vocab_info is not supported")
        self.ckpt_to_initialize_from = os.fspath(ckpt_to_initialize_from)
        self.vars_to_warm_start = vars_to_warm_start
        self.var_name_to_prev_var_name = dict(var_name_to_prev_var_name or {})


class VocabInfo:
    """tf.estimator.VocabInfo (vocabulary remapping on warm start) is not supported.

    Raises:
        InvalidArgumentError: always.
    """

    def __init__(self, *args, **kwargs):
        raise InvalidArgumentError("VocabInfo: remapping vocabularies on warm start is not supported; warm-start "
                                   "embedding tables whose vocabulary did not change")


def _accepted_args(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return set(), True
    names = set()
    var_kw = False
    for p in sig.parameters.values():
        if p.kind == p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
    return names, var_kw


class _Built:
    """A graph built for one mode: placeholders, the EstimatorSpec and the global step."""

    def __init__(self, graph, feed, spec, global_step):
        self.graph, self.feed, self.spec, self.global_step = graph, feed, spec, global_step


class Estimator:
    """Trains, evaluates and serves a model_fn.

    Args:
        model_fn: ``model_fn(features, labels, mode, params, config)`` (labels, mode, params and config are
            optional arguments) returning an EstimatorSpec.
        model_dir: folder for checkpoints and summaries (default: config.model_dir, else a new temporary
            folder).
        config: a RunConfig.
        params: dict handed to model_fn (copied).
        warm_start_from: a checkpoint path, model_dir or WarmStartSettings initializing a new model.

    Raises:
        InvalidArgumentError: model_fn lacks a `features` argument, or model_dir and config.model_dir differ.
    """

    def __init__(self, model_fn, model_dir=None, config=None, params=None, warm_start_from=None):
        if not callable(model_fn):
            raise InvalidArgumentError(f"Estimator: model_fn must be callable, got {model_fn!r}")
        names, var_kw = _accepted_args(model_fn)
        if "features" not in names and not var_kw:
            raise InvalidArgumentError(f"Estimator: model_fn {getattr(model_fn, '__name__', model_fn)} must take "
                                       f"a `features` argument; it takes {sorted(names)}")
        if params is not None and "params" not in names and not var_kw:
            raise InvalidArgumentError("Estimator: params were given but model_fn has no `params` argument")
        if config is None:
            config = RunConfig()
        elif not isinstance(config, RunConfig):
            raise InvalidArgumentError(f"Estimator: config must be a RunConfig, got {type(config).__name__}")
        if model_dir is not None and config.model_dir is not None and \
                os.path.abspath(os.fspath(model_dir)) != os.path.abspath(config.model_dir):
            raise InvalidArgumentError(f"Estimator: model_dir {model_dir!r} differs from config.model_dir "
                                       f"{config.model_dir!r}")
        model_dir = os.fspath(model_dir) if model_dir is not None else config.model_dir
        if model_dir is None:
            model_dir = tempfile.mkdtemp(prefix="kestimator_model_")
            logger.warning("Using temporary folder as model directory: %s", model_dir)
        self._model_dir = model_dir
        self._config = config.replace(model_dir=model_dir)
        self._params = copy.deepcopy(params) if params is not None else {}
        self._model_fn = model_fn
        self._model_fn_args = (names, var_kw)
        if warm_start_from is not None and not isinstance(warm_start_from, WarmStartSettings):
            warm_start_from = WarmStartSettings(warm_start_from)
        self._warm_start_settings = warm_start_from
        self._checkpoints = CheckpointManager(model_dir, self._config.keep_checkpoint_max,
                                              self._config.keep_checkpoint_every_n_hours)

    # -- properties ----------------------------------------------------------------------------------------
    model_dir = property(lambda self: self._model_dir)
    config = property(lambda self: self._config)
    params = property(lambda self: copy.deepcopy(self._params))
    model_fn = property(lambda self: self._model_fn)

    # -- building blocks shared by train / evaluate / predict / export --------------------------------------
    def _input_batches(self, input_fn, mode):
        """Call input_fn (with params / config / mode when it takes them) and wrap the result."""
        if not callable(input_fn):
            raise InvalidArgumentError(f"{mode}: input_fn must be callable, got {type(input_fn).__name__}")
        names, var_kw = _accepted_args(input_fn)
        kwargs = {}
        for key, value in (("params", self.params), ("config", self._config), ("mode", mode)):
            if key in names or var_kw:
                kwargs[key] = value
        what = {ModeKeys.TRAIN: "train", ModeKeys.EVAL: "eval"}.get(mode, "predict")
        strategy = self._strategy_for(mode)
        context = strategy.input_context() if strategy is not None else None
        if "input_context" in names:
            kwargs["input_context"] = context
        result = input_fn(**kwargs)
        if context is None or context.num_input_pipelines == 1:
            return Batches(result, what)
        from ..distributed import estimator_training as _dist
        if "input_context" not in names:   # no argument to shard by: a Dataset is sharded for it
            result = _dist.auto_shard(result, context, what)
        if mode != ModeKeys.TRAIN:   # evaluation reads every row of every shard; its metrics are summed at the end
            return Batches(result, what)
        return _dist.SyncedBatches(Batches(result, what))

    def _strategy_for(self, mode):
        """The strategy that distributes `mode` (RunConfig.train_distribute for TRAIN, eval_distribute for
        EVAL), or None. Subclasses with their own `_train_model` / `_evaluate_model` (boosted trees)
        distribute themselves."""
        if mode == ModeKeys.TRAIN and type(self)._train_model is Estimator._train_model:
            return self._config.train_distribute
        if mode == ModeKeys.EVAL and type(self)._evaluate_model is Estimator._evaluate_model:
            return self._config.eval_distribute
        return None

    def _call_model_fn(self, features, labels, mode):
        names, var_kw = self._model_fn_args
        kwargs = {}
        if "labels" in names or var_kw:
            kwargs["labels"] = labels
        elif labels is not None and mode != ModeKeys.PREDICT:
            raise InvalidArgumentError("model_fn does not take labels, but the input_fn provides them")
        if "mode" in names or var_kw:
            kwargs["mode"] = mode
        if "params" in names or var_kw:
            kwargs["params"] = self.params
        if "config" in names or var_kw:
            kwargs["config"] = self._config
        spec = self._model_fn(features=features, **kwargs)
        if not isinstance(spec, EstimatorSpec):
            raise InvalidArgumentError(f"model_fn must return an EstimatorSpec, got {type(spec).__name__}")
        if spec.mode != mode:
            raise InvalidArgumentError(f"model_fn returned an EstimatorSpec for mode {spec.mode!r} when called "
                                       f"in mode {mode!r}")
        return spec

    def _build(self, mode, first_features, first_labels, with_labels=True):
        """A new graph with placeholders shaped like the first batch, the global step and the model."""
        g = Graph()
        with g.as_default():
            if self._config.tf_random_seed is not None:
                set_random_seed(self._config.tf_random_seed)
            gs = get_or_create_global_step(g)
            feed = FeedSpec(first_features, first_labels, with_labels=with_labels)
            strategy = self._strategy_for(mode)
            with strategy.scope() if strategy is not None else contextlib.nullcontext():
                # inside the scope every optimizer's update averages its gradients over the ranks
                spec = self._call_model_fn(feed.features, feed.labels, mode)
            if mode == ModeKeys.TRAIN and strategy is not None and not strategy.extended.should_checkpoint:
                spec = spec._replace(training_chief_hooks=())   # as TF: chief hooks run on the chief only
        return _Built(g, feed, spec, gs)

    def _new_session(self, built):
        sess = Session(graph=built.graph, config=self._config.session_config)
        with built.graph.as_default():
            sess.run([global_variables_initializer(), local_variables_initializer()])
        return sess

    def _load_checkpoint(self, checkpoint_path=None):
        """(path, tensors, metadata) of `checkpoint_path` or the newest good checkpoint; None if none."""
        if checkpoint_path is not None:
            path = os.fspath(checkpoint_path)
            if os.path.isdir(path):
                return CheckpointManager(path).load()
            return self._checkpoints.load(path)
        return self._checkpoints.load()

    def _warm_start_loader(self, source):
        if os.path.isdir(source):
            found = CheckpointManager(source).load()
            if found is None:
                raise NotFoundError(f"warm start: no checkpoint in {source}")
            return found
        return CheckpointManager(os.path.dirname(source) or ".").load(source)

    # -- inspection -----------------------------------------------------------------------------------------
    def latest_checkpoint(self):
        """Path of the newest checkpoint in model_dir, or None."""
        return self._checkpoints.latest_path()

    def get_variable_names(self):
        """Names of the variables in the newest checkpoint.

        Raises:
            NotFoundError: model_dir has no checkpoint yet.
        """
        found = self._load_checkpoint()
        if found is None:
            raise NotFoundError(f"no checkpoint in {self._model_dir}: train the estimator first")
        return sorted(found[1])

    def get_variable_value(self, name):
        """The value of variable `name` in the newest checkpoint (a NumPy array; a scalar for global_step).

        Raises:
            NotFoundError: no checkpoint, or no variable `name` in it.
        """
        found = self._load_checkpoint()
        if found is None:
            raise NotFoundError(f"no checkpoint in {self._model_dir}: train the estimator first")
        path, tensors, _ = found
        if name not in tensors:
            raise NotFoundError(f"variable {name!r} is not in checkpoint {path}; it holds {sorted(tensors)[:20]}")
        return tensors[name]

    # -- train ------------------------------------------------------------------------------------------------
    def train(self, input_fn, hooks=None, steps=None, max_steps=None, saving_listeners=None):
        """Train for `steps` more steps, or until the global step reaches `max_steps`, or until the input
        ends.

        Args:
            input_fn: returns (features, labels) batches (see `_feeding`).
            hooks: SessionRunHooks.
            steps: number of steps to run in this call.
            max_steps: total global steps to reach (a second call with the same max_steps does nothing).
            saving_listeners: CheckpointSaverListeners.

        Returns:
            self.

        Raises:
            InvalidArgumentError: both steps and max_steps, or a non-positive one.
            FailedPreconditionError: another live process is training into model_dir (it holds
                model_dir/.kestimator.lock; see `model_dir_lock`).
        """
        if steps is not None and max_steps is not None:
            raise InvalidArgumentError("train: give steps or max_steps, not both")
        if steps is not None and steps <= 0:
            raise InvalidArgumentError(f"train: steps must be > 0, got {steps}")
        if max_steps is not None and max_steps <= 0:
            raise InvalidArgumentError(f"train: max_steps must be > 0, got {max_steps}")
        from .model_dir_lock import hold   # one trainer per model_dir (a second process fails at once)
        with hold(self._model_dir):
            self._train_model(input_fn, list(hooks or []), steps, max_steps, list(saving_listeners or []))
        return self

    def _train_model(self, input_fn, hooks, steps, max_steps, saving_listeners):
        from ._training import TrainLoop
        loop_class, strategy = TrainLoop, self._strategy_for(ModeKeys.TRAIN)
        if strategy is not None and strategy.num_replicas_in_sync > 1:
            from ..distributed.estimator_training import distributed_train_loop_class
            # chief-only checkpoints / summaries, and the broadcast after init / restore
            loop_class, hooks = distributed_train_loop_class(), list(hooks) + strategy.training_hooks()
        loop_class(self, input_fn, hooks, steps, max_steps, saving_listeners).run()

    # -- evaluate ---------------------------------------------------------------------------------------------
    def evaluate(self, input_fn, steps=None, hooks=None, checkpoint_path=None, name=None):
        """Evaluate the model on the batches of input_fn (all of them, or `steps`).

        Returns:
            dict of metric values: the model_fn's eval_metric_ops, "loss" (mean of the per-batch losses)
            and "global_step".

        Raises:
            InvalidArgumentError: steps <= 0, or the model_fn defines a metric named "loss".
        """
        if steps is not None and steps <= 0:
            raise InvalidArgumentError(f"evaluate: steps must be > 0, got {steps}")
        return self._evaluate_model(input_fn, steps, list(hooks or []), checkpoint_path, name)

    def _evaluate_model(self, input_fn, steps, hooks, checkpoint_path, name):
        from ._evaluation import evaluate
        strategy = self._strategy_for(ModeKeys.EVAL)
        if strategy is not None and strategy.num_replicas_in_sync > 1:   # shards, metrics summed over ranks
            from ..distributed.estimator_training import distributed_evaluate
            return distributed_evaluate(self, input_fn, steps, hooks, checkpoint_path, name)
        return evaluate(self, input_fn, steps, hooks, checkpoint_path, name)

    # -- predict ------------------------------------------------------------------------------------------------
    def predict(self, input_fn, predict_keys=None, hooks=None, checkpoint_path=None, yield_single_examples=True):
        """Yield predictions: one dict (or array) per example, or per batch with yield_single_examples=False.

        Raises:
            InvalidArgumentError: a predict_key the model does not predict (lists the available keys).
        """
        if isinstance(predict_keys, str):
            predict_keys = [predict_keys]
        return self._predict_model(input_fn, predict_keys, list(hooks or []), checkpoint_path, yield_single_examples)

    def _predict_model(self, input_fn, predict_keys, hooks, checkpoint_path, yield_single_examples):
        from ._evaluation import predict
        return predict(self, input_fn, predict_keys, hooks, checkpoint_path, yield_single_examples)

    # -- export -------------------------------------------------------------------------------------------------
    def export_saved_model(self, export_dir_base, serving_input_receiver_fn, assets_extra=None, as_text=False,
                           checkpoint_path=None, experimental_mode=ModeKeys.PREDICT):
        """Write the PREDICT graph and the newest checkpoint's variables to a new timestamped folder under
        `export_dir_base` that `ks.saved_model.load` serves without this model_fn's code.

        Returns:
            The path of the export folder.

        Raises:
            InvalidArgumentError: an op attribute that cannot be written safely (a Python callable or
                object), naming the op.
        """
        from .export import export_estimator
        strategy = self._strategy_for(ModeKeys.TRAIN)
        if strategy is not None and strategy.num_replicas_in_sync > 1:   # the chief writes, the others wait
            from ..distributed import on_chief
            return on_chief(export_estimator, self, export_dir_base, serving_input_receiver_fn, assets_extra,
                            checkpoint_path, experimental_mode, broadcast_result=True)
        return export_estimator(self, export_dir_base, serving_input_receiver_fn, assets_extra, checkpoint_path,
                                experimental_mode)

    export_savedmodel = export_saved_model

