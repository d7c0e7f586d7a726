"""What ``kestimator train | evaluate | predict | export CONFIG`` do.

Every command first loads the config, applies ``--set`` overrides and ``--output``, and validates it
against kestimator's registries: a config error ends the command (exit code 1) before anything is
read, built or written. Then:

``train``
    seeds everything with ``seed``, loads the data, builds the Keras model (``model`` + ``compile`` +
    ``fit`` + ``callbacks``) or the Estimator (``estimator`` + ``feature_columns`` + ``run_config`` +
    ``train``), trains, and evaluates on ``data.eval`` (else ``data.validation``). The run directory
    (see :mod:`.rundir`) gets the resolved config, the model / checkpoints, ``metrics.json``, the learning
    curves and ``train.log``; the command ends with a table of the final metrics.

    An interrupted run (Ctrl-C, a kill) started again with the same command resumes: a Keras fit from
    the BackupAndRestore backup in ``run_dir/backup`` (the epoch after the last finished one), an
    Estimator from its newest checkpoint in ``model_dir``, towards the step target the interrupted call
    had (``train_state.json``). Training a finished run again starts a Keras model over, while an
    Estimator continues from its checkpoints (``steps`` then counts from the newest one, as in
    tf.estimator).
``evaluate``
    evaluates the trained model of the run directory on ``data.eval`` (else ``validation``) and updates
    ``metrics.json``.
``predict``
    writes the predictions for ``data.test`` (else ``eval``, else ``validation``) to
    ``predictions.npz`` (or a ``.csv`` / ``.npz`` given by ``--out-file``).
``export``
    Keras: writes a serving copy of the model (``export/model.h5``, no optimizer state); Estimator:
    ``export_saved_model`` into ``run_dir/export/<timestamp>``.
"""
import contextlib
import json
import os
import sys
import time

import numpy as np

from ..errors import ConfigError, InvalidArgumentError, NotFoundError
from . import rundir as _rd
from .config_loader import load_config
from .schema import dump_resolved, validate

DEFAULT_MODEL_FILE = "model.h5"
DEFAULT_PLOT_FILE = "curves.png"
DEFAULT_PREDICTIONS = "predictions.npz"


class Run:
    """A validated config and the run directory it works in.

    Attributes:
        cfg: the resolved config (plain dicts).
        raw: the loaded config (with file and line of every key, for messages).
        registries: the registries it was validated against.
        config_path: the config file.
        dir: the :class:`~kestimator.cli.rundir.RunDir`.
    """

    def __init__(self, cfg, raw, registries, config_path):
        self.cfg, self.raw, self.registries = cfg, raw, registries
        self.config_path = os.path.abspath(config_path)
        self.base_dir = os.path.dirname(self.config_path)
        self.dir = _rd.RunDir(cfg["output"]["dir"])
        self.is_keras = cfg.get("model") is not None
        self._data = {}
        # the files the run writes by default, written into the resolved config as well
        output = cfg["output"]
        if self.is_keras and not output.get("save_model"):
            output["save_model"] = self.dir.file(DEFAULT_MODEL_FILE)
        if not output.get("plot"):
            output["plot"] = self.dir.file(DEFAULT_PLOT_FILE)

    # -- data --------------------------------------------------------------------------------------------
    def data(self, section):
        """``(features, labels)`` of ``data.<section>``, or ``None`` when the config has no such source."""
        if section not in self._data:
            spec = self.cfg["data"].get(section)
            if spec is None:
                self._data[section] = None
            else:
                from .sources import load_source
                self._data[section] = load_source(spec, self.base_dir, self.cfg["seed"])
        return self._data[section]

    def first_data(self, sections):
        """``(section, (features, labels))`` of the first of ``sections`` the config has, else ``(None, None)``."""
        for section in sections:
            if self.cfg["data"].get(section) is not None:
                return section, self.data(section)
        return None, None

    def need(self, section, why):
        """The data of ``section``, or a ConfigError naming the file and line of the data section."""
        found = self.data(section)
        if found is None:
            loc = self.raw.loc_of("data") if hasattr(self.raw, "loc_of") else self.config_path
            raise ConfigError(f"{loc}: data.{section}: {why}")
        return found

    # -- outputs -----------------------------------------------------------------------------------------
    @property
    def model_file(self):
        return self.cfg["output"]["save_model"]

    @property
    def plot_file(self):
        return self.cfg["output"]["plot"]

    @property
    def model_dir(self):
        return (self.cfg.get("run_config") or {}).get("model_dir") or self.dir.path


def prepare(config_path, overrides=(), output=None):
    """Load, override and validate a config (nothing else happens before it is valid).

    Args:
        config_path: the YAML file.
        overrides: ``key.path=value`` strings (``--set``).
        output: the run directory (``--output``), relative to the current directory; it replaces
            ``output.dir``.

    Returns:
        A :class:`Run`.

    Raises:
        ConfigError: an invalid config or override (naming key path, file and line).
        NotFoundError: no config file; or a Keras model file that ``from_keras`` needs does not exist.
    """
    from .build_keras import check_model_file
    from .registries import registries as _registries

    overrides = list(overrides or ())
    if output is not None:
        # a JSON string is a YAML double-quoted scalar: any path survives the override parser
        overrides.append("output.dir=" + json.dumps(os.path.abspath(os.fspath(output))))
    raw = load_config(config_path, overrides)
    regs = _registries()
    cfg = validate(raw, regs)
    estimator = cfg.get("estimator")
    if isinstance(estimator, dict) and "from_keras" in estimator:
        check_model_file(estimator["from_keras"]["model"], os.path.abspath(config_path))
    return Run(cfg, raw, regs, config_path)


def _seed_everything(seed):
    if seed is None:
        return
    from ..keras import set_random_seed
    set_random_seed(int(seed))


def _check_device(run):
    device = str(run.cfg.get("device") or "auto").lower()
    if "gpu" not in device:
        return
    from .. import config as ks_config
    if not ks_config.list_physical_devices("GPU"):
        loc = run.raw.loc_of("device") if hasattr(run.raw, "loc_of") else run.config_path
        raise NotFoundError(f"{loc}: device: {run.cfg['device']} asks for a GPU, but none is visible (CuPy and a "
                            f"CUDA device are needed); use device: auto or cpu")


def _finish(run, metrics, title):
    """Write metrics.json and print the table of final metrics."""
    metrics = dict(metrics)
    metrics["config"] = run.config_path
    metrics["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    _rd.write_json(run.dir.metrics, metrics)
    sections = {k: metrics.get(k) for k in ("train", "validation", "eval") if isinstance(metrics.get(k), dict)}
    table = _rd.metrics_table(sections)
    print(f"\n{title} (run directory {run.dir.path})")
    if table:
        print(table)
    sys.stdout.flush()


def _plot(run, curves):
    """Write the learning curves; returns the path, or None (no curves, or no matplotlib)."""
    from ..errors import MissingDependencyError
    from ..utils import plot_curves
    if not curves:
        return None
    try:
        return plot_curves(curves, run.plot_file, title=os.path.basename(run.config_path))
    except MissingDependencyError:
        print("learning curves not plotted: matplotlib is not installed (pip install kestimator[plot])")
    except Exception as e:   # noqa: BLE001 -- a failed plot must never fail a finished training run
        print(f"learning curves not plotted: {type(e).__name__}: {e}")
    return None


def _header(run, command):
    print(f"kestimator {command} {run.config_path}")
    print(f"run directory: {run.dir.path}")


# ---- train -----------------------------------------------------------------------------------------------
def train(config_path, overrides=(), output=None):
    """``kestimator train``: see the module docstring.

    Returns:
        The exit code (0).

    Raises:
        ConfigError, NotFoundError, InvalidArgumentError, ...: as the config, data or model dictate.
    """
    run = prepare(config_path, overrides, output)
    _check_device(run)
    strategy = _strategy(run)
    if strategy is not None and strategy.cluster_resolver.task_id != 0:
        return _train_worker(strategy, config_path, overrides, None if run.is_keras else run.model_dir)
    run.dir.create()
    with _rd.logging_to(run.dir.log):
        _header(run, "train")
        dump_resolved(run.cfg, run.dir.file(_rd.RESOLVED_CONFIG))
        _seed_everything(run.cfg["seed"])
        started = time.perf_counter()
        if strategy is not None:
            print(f"data-parallel on {strategy.num_replicas_in_sync} MPI ranks (MultiWorkerMirroredStrategy); "
                  f"{'fit' if run.is_keras else 'train'}.batch_size is the global batch")
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            metrics = _train_model(run)
        metrics["seconds"] = round(time.perf_counter() - started, 3)
        curves = metrics.pop("_curves", None)
        if _plot(run, curves):
            metrics["curves"] = run.plot_file
        _finish(run, metrics, "Final metrics")
    return 0


def _strategy(run):
    """The MultiWorkerMirroredStrategy a `train` runs under, or None.

    ``distribute: auto`` (the default) trains data-parallel when an MPI launcher (mpiexec, srun) started
    several processes; ``multi_worker_mirrored`` always uses the strategy; ``none`` never.
    """
    mode = run.cfg.get("distribute") or "auto"
    if mode == "none":
        return None
    from .. import distributed as kd
    if mode == "auto" and not (kd.launched_by_mpi() and kd.size() > 1):
        return None
    return kd.MultiWorkerMirroredStrategy()


def _train_model(run):
    if run.is_keras:
        from .build_keras import train_keras
        return train_keras(run)
    from .build_estimator import train_estimator
    return train_estimator(run)


def _train_worker(strategy, config_path, overrides, model_dir):
    """A non-chief rank of a data-parallel `train`: the same training (it takes part in every collective),
    with its outputs in a temporary folder that is deleted afterwards and its printing silenced; the chief
    writes the run directory. An estimator's model_dir stays the chief's (`model_dir`): checkpoints are
    written there by the chief alone and read by every rank on a restart."""
    import tempfile
    overrides = list(overrides or ())
    if model_dir is not None:
        overrides.append("run_config.model_dir=" + json.dumps(os.path.abspath(model_dir)))
    with tempfile.TemporaryDirectory(prefix="kestimator_rank_") as tmp, \
            open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        run = prepare(config_path, overrides, tmp)
        run.dir.create()
        _seed_everything(run.cfg["seed"])
        with strategy.scope():
            _train_model(run)
    return 0


# ---- evaluate / predict / export ------------------------------------------------------------------------
def evaluate(config_path, overrides=(), output=None):
    """``kestimator evaluate``: evaluate the run's trained model and update metrics.json.

    Returns:
        The exit code (0).

    Raises:
        NotFoundError: the run directory holds no trained model.
    """
    run = prepare(config_path, overrides, output)
    with _rd.logging_to(run.dir.log):
        _header(run, "evaluate")
        _seed_everything(run.cfg["seed"])
        section, data = run.first_data(("eval", "validation"))
        if data is None:
            run.need("eval", "kestimator evaluate needs eval (or validation) data")
        if run.is_keras:
            from .build_keras import evaluate_keras
            results = evaluate_keras(run, data, section)
        else:
            from .build_estimator import evaluate_estimator
            results = evaluate_estimator(run, data, section)
        previous = _rd.read_json(run.dir.metrics, {}) or {}
        previous["eval"] = results
        previous["eval_data"] = section
        _finish(run, previous, f"Evaluation on data.{section}")
    return 0


def predict(config_path, overrides=(), output=None, out_file=None):
    """``kestimator predict``: write predictions for data.test (else eval, else validation).

    Args:
        out_file: a ``.npz`` or ``.csv`` path (default ``run_dir/predictions.npz``).

    Returns:
        The exit code (0).
    """
    run = prepare(config_path, overrides, output)
    with _rd.logging_to(run.dir.log):
        _header(run, "predict")
        section, data = run.first_data(("test", "eval", "validation"))
        if data is None:
            run.need("test", "kestimator predict needs test (or eval, or validation) data")
        features, labels = data
        if run.is_keras:
            from .build_keras import predict_keras
            outputs = predict_keras(run, features)
        else:
            from .build_estimator import predict_estimator
            outputs = predict_estimator(run, features)
        path = os.path.abspath(out_file) if out_file else run.dir.file(DEFAULT_PREDICTIONS)
        write_predictions(path, outputs, labels)
        rows = len(next(iter(outputs.values())))
        print(f"wrote predictions for {rows} rows of data.{section} to {path}")
    return 0


def export(config_path, overrides=(), output=None):
    """``kestimator export``: a serving copy of the run's trained model in ``run_dir/export``.

    Returns:
        The exit code (0).
    """
    run = prepare(config_path, overrides, output)
    with _rd.logging_to(run.dir.log):
        _header(run, "export")
        target = run.dir.file(_rd.EXPORT_DIR)
        if run.is_keras:
            from .build_keras import export_keras
            path = export_keras(run, target)
        else:
            from .build_estimator import export_estimator
            path = export_estimator(run, target)
        print(f"exported to {path}")
    return 0


def write_predictions(path, outputs, labels=None):
    """Write ``{name: array}`` (one row per example) to a ``.npz`` or ``.csv`` file, atomically.

    A CSV gets one column per value: ``name`` for one value per row, ``name_0``, ``name_1`` ... for
    several; the labels (when known) come first as ``label``.

    Raises:
        InvalidArgumentError: another file extension.
    """
    import tempfile
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    columns = dict(outputs)
    if labels is not None and not isinstance(labels, dict):
        columns = {"label": np.asarray(labels), **columns}
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".csv"):
        raise InvalidArgumentError(f"predictions file {path}: use a .npz or .csv name")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=ext, dir=folder)
    os.chmod(tmp, _rd.file_mode())
    try:
        with os.fdopen(fd, "wb") as f:
            if ext == ".npz":
                np.savez(f, **{k: _plain_array(v) for k, v in columns.items()})
            else:
                f.write(_csv_text(columns).encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _plain_array(value):
    arr = np.asarray(value)
    if arr.dtype.kind == "O":     # strings from an estimator (bytes or str): a fixed-width unicode array
        arr = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                        for v in arr.reshape(-1)]).reshape(arr.shape)
    return arr


def _csv_text(columns):
    import csv
    import io
    names, blocks = [], []
    for name, value in columns.items():
        arr = _plain_array(value)
        flat = arr.reshape(len(arr), -1) if arr.ndim > 1 else arr.reshape(-1, 1)
        names += [name] if flat.shape[1] == 1 else [f"{name}_{i}" for i in range(flat.shape[1])]
        blocks.append(flat)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for i in range(len(blocks[0]) if blocks else 0):
        writer.writerow([_cell(v) for block in blocks for v in block[i]])
    return out.getvalue()


def _cell(v):
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return v.item() if isinstance(v, np.generic) else v
