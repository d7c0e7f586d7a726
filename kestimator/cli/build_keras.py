"""Building a Keras model, its compile() arguments, its callbacks and its input arrays from a resolved config."""
import inspect
import json
import os

import numpy as np

from ..callbacks import Callback
from ..errors import InvalidArgumentError, KestimatorError, NotFoundError
from .build_objects import make, split_ref


def _layer_seed(ref, registries, seed, index):
    """``{"seed": ...}`` for a layer that draws random numbers (Dropout ...) and was given no seed.

    Keras models run in a graph of their own, which the global seed does not reach; an op-level seed
    derived from the config's seed and the layer's position makes the masks repeatable run after run.
    """
    if seed is None:
        return {}
    name, kwargs = split_ref(ref, "layer")
    cls = registries.get("layer", {}).get(name)
    try:
        takes_seed = cls is not None and "seed" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        takes_seed = False
    return {"seed": int(seed) * 1000 + index} if takes_seed and kwargs.get("seed") is None else {}


def build_model(model_cfg, registries, seed=None):
    """A ``keras.Sequential`` or functional ``keras.Model`` from the ``model`` section.

    Args:
        model_cfg: ``{"sequential": [layer refs]}`` or ``{"functional": {inputs, layers, outputs}}``.
        registries: the registries the config was validated against.
        seed: the config's seed (gives layers with random masks a seed of their own), or None.

    Returns:
        The (uncompiled) model.
    """
    from .. import keras

    if "sequential" in model_cfg:
        layers = [make("layer", ref, registries, extra=_layer_seed(ref, registries, seed, i),
                       what=f"model.sequential.{i}")
                  for i, ref in enumerate(model_cfg["sequential"])]
        return keras.Sequential(layers)
    graph = model_cfg["functional"]
    tensors, inputs = {}, []
    for spec in graph["inputs"]:
        tensor = keras.Input(shape=tuple(spec["shape"]), name=spec["name"], dtype=spec.get("dtype", "float32"))
        tensors[spec["name"]] = tensor
        inputs.append(tensor)
    for i, node in enumerate(graph["layers"]):
        extra = dict(_layer_seed(node["layer"], registries, seed, i), name=node["name"])
        layer = make("layer", node["layer"], registries, extra=extra,
                     what=f"model.functional.layers.{i} ({node['name']})")
        inbound = [tensors[name] for name in node["inbound"]]
        tensors[node["name"]] = layer(inbound[0] if len(inbound) == 1 else inbound)
    outputs = [tensors[name] for name in graph["outputs"]]
    return keras.Model(inputs=inputs if len(inputs) > 1 else inputs[0],
                       outputs=outputs if len(outputs) > 1 else outputs[0])


def _loss(value, registries):
    """The resolved loss: one reference, a list of references, or ``{output: reference}``."""
    if isinstance(value, list):
        return [make("loss", ref, registries, prefer_name=True) for ref in value]
    name, _ = split_ref(value, "compile.loss")
    if name in registries.get("loss", {}):
        return make("loss", value, registries, prefer_name=True)
    return {output: make("loss", ref, registries, prefer_name=True) for output, ref in value.items()}


def _metrics(value, registries):
    if isinstance(value, dict):
        return {output: _metrics(refs, registries) for output, refs in value.items()}
    return [make("metric", ref, registries, prefer_name=True) for ref in value or []]


def compile_kwargs(compile_cfg, registries):
    """The keyword arguments of ``model.compile`` from the ``compile`` section."""
    return {"optimizer": make("optimizer", compile_cfg["optimizer"], registries),
            "loss": _loss(compile_cfg["loss"], registries),
            "metrics": _metrics(compile_cfg.get("metrics"), registries),
            "loss_weights": compile_cfg.get("loss_weights")}


def build_callbacks(callbacks_cfg, registries):
    """The callback objects the ``callbacks`` section lists (paths were made absolute by the schema)."""
    return [make("callback", ref, registries, what=f"callbacks.{i}") for i, ref in enumerate(callbacks_cfg or [])]


def _stack_columns(features, where):
    from .sources import _single_array
    return _single_array(features, where, "a one-input Keras model")


def model_inputs(model, features, where):
    """The data of a source arranged for ``model``'s inputs.

    A dict keyed by the model's input names passes as it is; for a one-input model a one-key dict under
    another name, or numeric CSV columns (joined side by side), become the one input array.

    Raises:
        InvalidArgumentError: the names do not match the model's inputs.
    """
    names = list(model.input_names)
    if not isinstance(features, dict):
        if len(names) != 1:
            raise InvalidArgumentError(f"{where}: the model has inputs {names}; the data source must name them "
                                       f"(features: <input name>, or a CSV / npz with those columns)")
        return features
    if set(names) <= set(features):
        return features[names[0]] if len(names) == 1 else {n: features[n] for n in names}
    if len(names) == 1:
        return next(iter(features.values())) if len(features) == 1 else _stack_columns(features, where)
    raise InvalidArgumentError(f"{where}: the model's inputs are {names}, but the data holds "
                               f"{sorted(features)}")


def model_targets(labels, where):
    """Labels as Keras takes them (numbers), or an error naming the source."""
    if labels is None:
        return None
    if isinstance(labels, dict):
        return labels
    if labels.dtype.kind in "USO":
        raise InvalidArgumentError(f"{where}: the labels are strings; a Keras model needs numbers (integer class "
                                   f"ids for sparse_categorical_crossentropy). Encode them in the data, or use "
                                   f"an estimator with label_vocabulary")
    return labels


class EpochRecorder(Callback):
    """Appends each finished epoch's logs to history.jsonl, which outlives an interrupted run (the learning
    curves and metrics.json of a resumed run cover every epoch).

    Args:
        path: the history.jsonl file.
        fresh: start a new history (a run that does not resume) by removing an old file.
    """

    def __init__(self, path, fresh):
        super().__init__()
        self.path = path
        if fresh and os.path.exists(path):
            os.remove(path)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": int(epoch) + 1}
        for key, value in (logs or {}).items():
            if np.ndim(value) == 0:
                row[key] = float(value)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())


def check_model_file(path, config_path):
    """Raise a helpful NotFoundError when a Keras model file a config needs does not exist yet.

    When another config next to ``config_path`` writes that file (its ``output.save_model``), the message
    says to train that config first.
    """
    if os.path.isfile(path):
        return
    producer = _config_writing(path, os.path.dirname(config_path), exclude=config_path)
    hint = (f"; it is written by `kestimator train {os.path.relpath(producer)}`, run that first"
            if producer else "; train the Keras model that writes it first")
    raise NotFoundError(f"the Keras model file {path} does not exist{hint}")


def _config_writing(path, folder, exclude):
    """The config in ``folder`` whose Keras run saves its model to ``path``, or None."""
    from .schema import load_and_resolve
    target = os.path.abspath(path)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    for name in names:
        candidate = os.path.join(folder, name)
        if not name.endswith((".yaml", ".yml")) or os.path.abspath(candidate) == os.path.abspath(exclude):
            continue
        try:
            cfg = load_and_resolve(candidate)
        except KestimatorError:   # an unrelated broken or non-config YAML file: not the one we look for
            continue
        out = cfg.get("output") or {}
        saved = out.get("save_model") or (os.path.join(out["dir"], "model.h5") if cfg.get("model") and
                                          out.get("dir") else None)
        if saved and os.path.abspath(saved) == target:
            return candidate
    return None


def require_keras_run(run_dir, model_path):
    """Raise NotFoundError naming the run directory when it holds no trained Keras model."""
    if not os.path.isfile(model_path):
        raise NotFoundError(f"no trained Keras model at {model_path} (run directory {run_dir}); run "
                            f"`kestimator train` with this config first")



# ---- the commands ----------------------------------------------------------------------------------------
def _backup_epoch(backup_dir):
    """The epoch a BackupAndRestore backup in ``backup_dir`` resumes at, or None when there is none."""
    from ..callbacks import BackupAndRestore
    from ..engine import checkpoint
    path = os.path.join(backup_dir, BackupAndRestore._FILE)
    if not os.path.exists(path):
        return None
    try:
        return int(checkpoint.read_metadata(path).get("epoch", 0))
    except KestimatorError as e:
        print(f"the backup {path} is unreadable ({e}); starting a new run")
        os.remove(path)
        return None


def _remove_empty(folder):
    """Remove the backup folder once BackupAndRestore deleted its file after a completed fit."""
    try:
        os.rmdir(folder)
    except OSError:
        pass                    # not empty (delete_checkpoint=False, or another file) or already gone


def train_keras(run):
    """Build, compile and fit the run's Keras model (resuming an interrupted fit), save and evaluate it.

    Returns:
        The metrics dict for metrics.json, with the learning curves under ``"_curves"``.
    """
    from ..callbacks import BackupAndRestore
    cfg, regs = run.cfg, run.registries
    features, labels = run.need("train", "kestimator train needs training data")
    model = build_model(cfg["model"], regs, seed=cfg["seed"])
    model.compile(**compile_kwargs(cfg["compile"], regs))
    x, y = model_inputs(model, features, "data.train"), model_targets(labels, "data.train")
    if y is None:
        raise InvalidArgumentError("data.train: training a Keras model needs labels")
    validation = None
    if run.data("validation") is not None:
        vx, vy = run.data("validation")
        validation = (model_inputs(model, vx, "data.validation"), model_targets(vy, "data.validation"))

    callbacks = build_callbacks(cfg["callbacks"], regs)
    user_backup = next((c for c in callbacks if isinstance(c, BackupAndRestore)), None)
    backup_dir = user_backup.backup_dir if user_backup is not None else run.dir.backup
    resume_epoch = _backup_epoch(backup_dir)
    callbacks.append(EpochRecorder(run.dir.history, fresh=resume_epoch is None))
    if user_backup is None:
        callbacks.append(BackupAndRestore(backup_dir))   # last: it saves after the others saw the epoch
    fit = cfg["fit"]
    if resume_epoch is not None:
        print(f"resuming the interrupted run from its backup in {backup_dir}: epoch {resume_epoch + 1} of "
              f"{fit['epochs']}")
    else:
        model.summary()
    model.fit(x, y, batch_size=fit["batch_size"], epochs=fit["epochs"], verbose=fit["verbose"],
              callbacks=callbacks, validation_split=fit["validation_split"], validation_data=validation,
              shuffle=fit["shuffle"], steps_per_epoch=fit["steps_per_epoch"], initial_epoch=fit["initial_epoch"])
    model.save(run.model_file)
    print(f"saved the model to {run.model_file}")
    _remove_empty(backup_dir)

    curves = run.dir.read_history()
    last = {k: v[-1] for k, v in curves.items()}
    metrics = {"kind": "keras", "epochs": len(curves.get("loss", [])), "model_file": run.model_file,
               "train": {k: v for k, v in last.items() if not k.startswith("val_")},
               "validation": {k[4:]: v for k, v in last.items() if k.startswith("val_")}}
    section, data = run.first_data(("eval", "validation"))
    if data is not None:
        metrics["eval"] = _evaluate(model, data, section, run.cfg["evaluate"])
        metrics["eval_data"] = section
    metrics["_curves"] = curves
    return metrics


def _evaluate(model, data, section, ecfg):
    features, labels = data
    if labels is None:
        raise InvalidArgumentError(f"data.{section}: evaluation needs labels")
    x, y = model_inputs(model, features, f"data.{section}"), model_targets(labels, f"data.{section}")
    logs = model.evaluate(x, y, batch_size=ecfg["batch_size"], steps=ecfg.get("steps"), verbose=0,
                          return_dict=True)
    return {k: float(v) for k, v in logs.items() if np.ndim(v) == 0}


def _load(run, compile=True):
    from ..models import load_model
    require_keras_run(run.dir.path, run.model_file)
    return load_model(run.model_file, compile=compile)


def evaluate_keras(run, data, section):
    """Evaluate the run's saved model on ``data``; returns the metrics."""
    return _evaluate(_load(run), data, section, run.cfg["evaluate"])


def predict_keras(run, features):
    """``{output name: array}`` of the run's saved model for ``features``."""
    model = _load(run, compile=False)
    out = model.predict(model_inputs(model, features, "predict"), batch_size=run.cfg["evaluate"]["batch_size"],
                        verbose=0)
    if isinstance(out, dict):
        return out
    outs = out if isinstance(out, list) else [out]
    result = {}
    for name, value in zip(model.output_names, outs):
        result[name if len(outs) > 1 else "predictions"] = value
        if value.ndim == 2 and value.shape[1] > 1:      # class scores: the chosen class as well
            result[(name + "_" if len(outs) > 1 else "") + "class_ids"] = np.argmax(value, axis=1)
    return result


def export_keras(run, export_dir):
    """A serving copy of the run's model (no optimizer state) at ``export_dir/model.h5``; returns the path."""
    model = _load(run, compile=False)
    path = os.path.join(export_dir, "model.h5")
    os.makedirs(export_dir, exist_ok=True)
    model.save(path, include_optimizer=False)
    return path
