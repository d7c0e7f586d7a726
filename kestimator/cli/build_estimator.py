"""Building and running an Estimator from a resolved config: the estimator, its RunConfig, input
functions, training towards a resumable step target, evaluation, prediction and export."""
import math
import os
import sys

import numpy as np

from ..errors import ConfigError, InvalidArgumentError
from ..estimators.hooks import SessionRunHook
from . import rundir as _rd
from .build_columns import as_feature_dict, build_feature_columns, load_or_compute_stats, prepare_features
from .build_objects import nested_kwargs, split_ref


# ---- the estimator ---------------------------------------------------------------------------------------
def run_config(run_cfg):
    """``RunConfig`` from the resolved ``run_config`` section; inside an active MultiWorkerMirroredStrategy
    scope (a data-parallel ``kestimator train``) with train_distribute and eval_distribute set to it."""
    from ..estimators import RunConfig
    strategy = _active_strategy()
    if strategy is not None:
        return RunConfig(**run_cfg, train_distribute=strategy, eval_distribute=strategy)
    return RunConfig(**run_cfg)


def _active_strategy():
    module = sys.modules.get("kestimator.distributed.strategy")   # loaded only when a strategy exists
    return module.get_strategy() if module is not None else None


def _rows_of_this_pipeline(features, labels, input_context, batch_size):
    """(features, labels, batch size) of input pipeline ``input_context`` (rows id::n, batch / n: together
    the pipelines' i-th batches hold the rows of one global batch), or all of them without a context."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return features, labels, batch_size
    rows = slice(input_context.input_pipeline_id, None, input_context.num_input_pipelines)
    features = {k: v[rows] for k, v in features.items()}
    labels = labels[rows] if labels is not None else None
    return features, labels, input_context.get_per_replica_batch_size(batch_size)


def _accepts(obj, name):
    import inspect
    try:
        return name in inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False


def build_estimator(estimator_cfg, registries, columns, config):
    """The Estimator a config describes.

    Args:
        estimator_cfg: ``{Name: {kwargs}}`` or ``{"from_keras": {"model": path}}``.
        registries: the registries the config was validated against.
        columns: the feature columns (ignored by ``from_keras`` and estimators without columns).
        config: the RunConfig.

    Returns:
        ``(estimator, keras_model)``; the Keras model is ``None`` for a pre-made estimator.

    Raises:
        ConfigError: the estimator refuses its arguments.
    """
    if "from_keras" in estimator_cfg:
        from ..estimators.keras_conversion import model_to_estimator
        from ..models import load_model
        model = load_model(estimator_cfg["from_keras"]["model"])
        return model_to_estimator(keras_model=model, config=config), model
    name, kwargs = split_ref(estimator_cfg, "estimator")
    cls = registries["estimator"][name]
    kwargs = nested_kwargs(kwargs, registries)
    for key in ("feature_columns", "linear_feature_columns", "dnn_feature_columns"):
        if _accepts(cls, key):
            kwargs[key] = list(columns)
    if _accepts(cls, "config"):
        kwargs["config"] = config
    try:
        return cls(**kwargs), None
    except TypeError as e:   # an argument the schema's signature check could not see
        raise ConfigError(f"estimator: {name} refused its arguments {sorted(kwargs)}: {e}") from None


def keras_features(model, features, where):
    """Features keyed by the Keras model's input names (a one-input model takes any one-key dict)."""
    names = list(model.input_names)
    features = as_feature_dict(features)
    if set(names) == set(features):
        return features
    if len(names) == 1 and len(features) == 1:
        (key, value), = features.items()
        print(f"{where}: feeding feature {key!r} to the model's only input {names[0]!r}")
        return {names[0]: value}
    raise InvalidArgumentError(f"{where}: the Keras model's inputs are {names}, but the data holds features "
                               f"{sorted(features)}; name them alike (data source key features: <input name>)")


# ---- input functions --------------------------------------------------------------------------------------
def train_input_fn(features, labels, train_cfg):
    """The training input_fn of the ``train`` section (shuffled with RunConfig.tf_random_seed, so a
    resumed call skips exactly the batches the interrupted one had used)."""
    from ..estimators.inputs import numpy_input_fn
    epochs = train_cfg.get("num_epochs")

    def input_fn(config=None, input_context=None):   # data-parallel train: this rank's rows, batch_size global
        x, y, batch = _rows_of_this_pipeline(features, labels, input_context, train_cfg["batch_size"])
        shuffle = bool(train_cfg.get("shuffle", True))
        return numpy_input_fn(x, y, batch_size=batch, num_epochs=epochs, shuffle=shuffle)(config)
    return input_fn


def eval_input_fn(features, labels, batch_size):
    """One ordered pass over ``features`` (and ``labels``, None for predict)."""
    from ..estimators.inputs import numpy_input_fn

    def input_fn(config=None, input_context=None):   # eval_distribute: this rank's rows, metrics summed
        x, y = features, labels
        if input_context is not None and input_context.num_input_pipelines > 1:
            rows = slice(input_context.input_pipeline_id, None, input_context.num_input_pipelines)
            x, y = {k: v[rows] for k, v in features.items()}, labels[rows] if labels is not None else None
        return numpy_input_fn(x, y, batch_size=batch_size, num_epochs=1, shuffle=False)(config)
    return input_fn


def steps_for_epochs(n_rows, num_epochs, batch_size):
    """Batches in ``num_epochs`` passes over ``n_rows`` (numpy_input_fn's batches straddle epochs)."""
    return int(math.ceil(n_rows * num_epochs / batch_size))


class ProgressHook(SessionRunHook):
    """A tqdm bar over the steps of one train() call (used only when stdout is a terminal).

    Args:
        start_step: the global step training starts from.
        target: the global step it stops at.
    """

    def __init__(self, start_step, target):
        self.total = max(int(target) - int(start_step), 0)
        self.bar = None

    def begin(self):
        from tqdm import tqdm
        self.bar = tqdm(total=self.total, file=sys.stdout, unit="step", desc="Train", dynamic_ncols=True,
                        mininterval=0.1)

    def after_run(self, run_context, run_values):
        if self.bar is not None:
            self.bar.update(1)

    def end(self, session):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---- the commands ----------------------------------------------------------------------------------------
class _Setup:
    """The estimator of a run and the function that arranges feature arrays for it."""

    def __init__(self, run, fallback_features):
        cfg = run.cfg
        self.run = run
        self.columns_cfg = cfg.get("feature_columns")
        est_cfg = cfg["estimator"]
        columns = []
        if "from_keras" not in est_cfg:
            train = run.data("train")
            train_features = prepare_features(train[0], self.columns_cfg, "data.train") if train else None
            stats = load_or_compute_stats(run.dir.path, train_features, self.columns_cfg,
                                          reuse=_has_checkpoint(run.model_dir))
            base = train_features if train_features is not None else \
                prepare_features(fallback_features, self.columns_cfg, "data")
            columns = build_feature_columns(self.columns_cfg, base, stats)
        self.name = next(iter(est_cfg)) if "from_keras" not in est_cfg else "from_keras"
        self.estimator, self.keras_model = build_estimator(est_cfg, run.registries, columns,
                                                           run_config(cfg["run_config"]))

    def features(self, features, where):
        if self.keras_model is not None:
            return keras_features(self.keras_model, features, where)
        return prepare_features(features, self.columns_cfg, where)


def global_step(model_dir):
    """The global step of the newest checkpoint in ``model_dir`` (0 when there is none)."""
    from ..estimators.checkpoint_manager import CheckpointManager
    entries = CheckpointManager(model_dir).checkpoints() if os.path.isdir(model_dir) else []
    return int(entries[-1]["step"]) if entries else 0


def train_target(run, start, n_rows):
    """The global step this train call stops at, and whether it completes an interrupted call.

    An unfinished call recorded in train_state.json with the same train section is completed (its
    target is kept); otherwise ``max_steps``, or ``steps`` / ``num_epochs`` counted from ``start``.
    """
    tcfg = run.cfg["train"]
    request = {k: tcfg.get(k) for k in ("steps", "max_steps", "num_epochs", "batch_size")}
    state = _rd.read_json(run.dir.train_state)
    if isinstance(state, dict) and state.get("finished") is False and state.get("request") == request \
            and state.get("model_dir") == run.model_dir and isinstance(state.get("target"), int):
        return state["target"], True
    if tcfg.get("max_steps"):
        target = int(tcfg["max_steps"])
    elif tcfg.get("steps"):
        target = start + int(tcfg["steps"])
    else:
        target = start + steps_for_epochs(n_rows, tcfg["num_epochs"], tcfg["batch_size"])
    _rd.write_json(run.dir.train_state, {"request": request, "model_dir": run.model_dir, "start_step": start,
                                         "target": target, "finished": False})
    return target, False


def _scalars(values):
    """Plain Python numbers of the scalar entries of an evaluate() result."""
    return {key: np.asarray(value).item() for key, value in values.items() if np.ndim(value) == 0}


def loss_curve(model_dir):
    """``{"loss": [...]}`` from the training summaries in ``model_dir`` (one value per summary step)."""
    from ..errors import KestimatorError
    from ..utils import read_event_scalars
    try:
        series = read_event_scalars(model_dir).get("loss", [])
    except KestimatorError:     # no event file yet, or one torn by a kill: no curve, never a failed run
        return {}
    by_step = dict(series)      # a resumed run repeats steps: the later value wins
    return {"loss": [by_step[s] for s in sorted(by_step)]} if by_step else {}


def train_estimator(run):
    """Train the run's estimator (resuming an interrupted call) and evaluate it.

    Returns:
        The metrics dict for metrics.json, with the loss curve under ``"_curves"``.
    """
    features, labels = run.need("train", "kestimator train needs training data")
    setup = _Setup(run, features)
    x = setup.features(features, "data.train")
    n_rows = len(next(iter(x.values())))
    start = global_step(run.model_dir)
    target, resumed = train_target(run, start, n_rows)
    strategy = _active_strategy()
    if strategy is not None and strategy.num_replicas_in_sync > 1:   # the chief's run directory decides
        from ..distributed import broadcast
        target, resumed = broadcast([target, resumed], root=0, name="train target")
    if resumed:
        print(f"resuming the interrupted training in {run.model_dir}: global step {start} of {target}")
    elif start:
        print(f"continuing from the checkpoint at global step {start} in {run.model_dir}; training to step "
              f"{target}")
    else:
        print(f"training {setup.name} to global step {target} (checkpoints in {run.model_dir})")
    hooks = [ProgressHook(start, target)] if sys.stdout.isatty() else []
    setup.estimator.train(train_input_fn(x, labels, run.cfg["train"]), hooks=hooks, max_steps=target)
    state = _rd.read_json(run.dir.train_state, {}) or {}
    _rd.write_json(run.dir.train_state, dict(state, finished=True))
    final = global_step(run.model_dir)
    metrics = {"kind": "estimator", "estimator": setup.name, "global_step": final}
    curve = loss_curve(run.model_dir)
    if curve:
        metrics["train"] = {"loss": curve["loss"][-1]}
    section, data = run.first_data(("eval", "validation"))
    if data is not None:
        metrics["eval"] = _evaluate(run, setup, data, section)
        metrics["eval_data"] = section
    metrics["_curves"] = curve
    return metrics


def _evaluate(run, setup, data, section):
    features, labels = data
    if labels is None:
        raise InvalidArgumentError(f"data.{section}: evaluation needs labels")
    ecfg = run.cfg["evaluate"]
    x = setup.features(features, f"data.{section}")
    results = setup.estimator.evaluate(eval_input_fn(x, labels, ecfg["batch_size"]), steps=ecfg.get("steps"),
                                       name=ecfg.get("name"))
    return _scalars(results)


def _require_checkpoint(run):
    from ..errors import NotFoundError
    if not _has_checkpoint(run.model_dir):
        raise NotFoundError(f"no trained estimator in {run.model_dir}: run `kestimator train {run.config_path}` "
                            f"first")


def _has_checkpoint(model_dir):
    from ..estimators.checkpoint_manager import CheckpointManager
    return os.path.isdir(model_dir) and bool(CheckpointManager(model_dir).checkpoints())


def evaluate_estimator(run, data, section):
    """Evaluate the newest checkpoint on ``data``; returns the metrics."""
    _require_checkpoint(run)
    return _evaluate(run, _Setup(run, data[0]), data, section)


def predict_estimator(run, features):
    """``{prediction key: array}`` for ``features`` from the newest checkpoint."""
    _require_checkpoint(run)
    setup = _Setup(run, features)
    x = setup.features(features, "predict")
    batches = setup.estimator.predict(eval_input_fn(x, None, run.cfg["evaluate"]["batch_size"]),
                                      yield_single_examples=False)
    parts = {}
    for batch in batches:
        for key, value in (batch if isinstance(batch, dict) else {"predictions": batch}).items():
            parts.setdefault(key, []).append(np.asarray(value))
    if not parts:
        raise InvalidArgumentError("predict: the data has no rows")
    return {key: np.concatenate(values, axis=0) for key, values in parts.items()}


def export_estimator(run, export_base):
    """``export_saved_model`` of the newest checkpoint into ``export_base/<timestamp>``; returns the path."""
    from ..estimators.export import build_raw_serving_input_receiver_fn
    _require_checkpoint(run)
    section, data = run.first_data(("train", "eval", "validation", "test"))
    if data is None:
        raise ConfigError(f"{run.config_path}: data: export needs a data source to take the feature shapes from")
    setup = _Setup(run, data[0])
    x = setup.features(data[0], f"data.{section}")
    receiver_fn = build_raw_serving_input_receiver_fn({k: v[:1] for k, v in x.items()})
    path = setup.estimator.export_saved_model(export_base, receiver_fn)
    return path.decode() if isinstance(path, bytes) else path
