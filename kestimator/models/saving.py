"""Saving and loading models: Keras .h5 files (config + weights + optimizer state), JSON configs, and
weights alone (.h5 in Keras's layout, or a kestimator checkpoint file for other paths).

Loading never runs code from a file: classes come from kestimator's registry or `custom_objects`, a Lambda
stored as bytecode is refused (its function must be passed in `custom_objects` with safe_mode=False), and
the HDF5 checks of `h5_format` apply.
"""
import json
import os
import warnings

import numpy as np

from .. import _formats
from ..errors import DataLossError, InvalidArgumentError, NotFoundError, UnsafeFileError
from . import h5_format as _h5
from .model import KERAS_VERSION   # the tf.keras dialect of the files written here


def _is_h5_path(path):
    return str(path).lower().endswith((".h5", ".hdf5", ".keras.h5"))


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(path):
        raise InvalidArgumentError(f"{path} exists and overwrite=False")


# -- configs ----------------------------------------------------------------------------------------------
def _refuse_unsafe_lambdas(config, safe_mode, custom_objects):
    """With safe_mode, a Lambda layer whose function is stored as bytecode is refused before anything
    is built (even when custom_objects names it: safe_mode=False is the explicit opt-in)."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") == "Lambda" and isinstance(item.get("config"), dict):
                cfg = item["config"]
                fn = cfg.get("function")
                if cfg.get("function_type") == "lambda" or not isinstance(fn, (str, type(None))):
                    name = cfg.get("name", "?")
                    if safe_mode:
                        raise UnsafeFileError(
                            f"Lambda layer {name!r} stores its function as Python bytecode; kestimator never "
                            f"runs code from a file. To load it, pass the function as custom_objects="
                            f"{{{name!r}: fn}} and safe_mode=False (the stored bytecode is ignored)")
                    if name not in (custom_objects or {}):
                        raise UnsafeFileError(f"Lambda layer {name!r} stores its function as Python bytecode; "
                                              f"pass it as custom_objects={{{name!r}: fn}}")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _default_objects():
    from ..optimize import QuantizedDense
    from .model import Model
    from .sequential import Sequential
    return {"Functional": Model, "Model": Model, "Sequential": Sequential, "QuantizedDense": QuantizedDense}


def model_from_config(config, custom_objects=None, safe_mode=True):
    """A model from {"class_name": "Functional" | "Sequential" | ..., "config": {...}}.

    Raises:
        UnsafeFileError: unknown or module-path classes, or a Lambda stored as bytecode.
        InvalidArgumentError: a malformed config.
    """
    from ..layers import _serialize, registry
    if not isinstance(config, dict) or "class_name" not in config:
        raise InvalidArgumentError(f"a model config needs class_name and config, got {str(config)[:200]!r}")
    _refuse_unsafe_lambdas(config, safe_mode, custom_objects)
    objects = _default_objects()
    for name, cls in objects.items():
        if name != "Model":
            registry.register(name, cls)
    user = dict(custom_objects or {})
    cls_name = config["class_name"]
    with _serialize.custom_object_scope(user, loading=True):
        cls = user.get(cls_name) or objects.get(cls_name)
        if cls is None:
            if not isinstance(cls_name, str) or "." in cls_name:
                raise UnsafeFileError(f"model class {cls_name!r} is a module path; only registered classes or "
                                      "custom_objects are loaded")
            raise UnsafeFileError(f"unknown model class {cls_name!r} (pass it in custom_objects)")
        inner = config.get("config") or {}
        import inspect
        if "custom_objects" in inspect.signature(cls.from_config).parameters:
            return cls.from_config(inner, custom_objects=user)
        return cls.from_config(inner)


def model_from_json(json_string, custom_objects=None, safe_mode=True):
    """A model (without weights) from `model.to_json()` output.

    Raises:
        InvalidArgumentError: not valid JSON.
        UnsafeFileError: see model_from_config.
    """
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"model_from_json: not valid JSON: {e}") from None
    return model_from_config(config, custom_objects=custom_objects, safe_mode=safe_mode)


# -- training config ---------------------------------------------------------------------------------------
def _serialize_compile_arg(value):
    from ..losses import keras_losses
    from ..metrics import keras_metrics
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, dict):
        return {k: _serialize_compile_arg(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serialize_compile_arg(v) for v in value]
    if isinstance(value, keras_losses.Loss):
        return keras_losses.serialize(value)
    if isinstance(value, keras_metrics.Metric):
        return keras_metrics.serialize(value)
    name = getattr(value, "__name__", None)
    if name:
        return name.lstrip("_")
    raise InvalidArgumentError(f"cannot save compile argument {value!r}")


def training_config(model):
    from .. import optimizers
    cc = model._compile_config or {}
    opt = optimizers.serialize(model.optimizer) if model.optimizer is not None else None
    if opt is not None and model._runtime is not None and model._runtime.optimizer is model.optimizer:
        try:
            opt["config"]["learning_rate"] = float(model._get_learning_rate())
        except (InvalidArgumentError, TypeError):
            pass
    return {"loss": _serialize_compile_arg(cc.get("loss")), "metrics": _serialize_compile_arg(cc.get("metrics")),
            "weighted_metrics": _serialize_compile_arg(cc.get("weighted_metrics")),
            "loss_weights": _serialize_compile_arg(cc.get("loss_weights")), "optimizer_config": opt}


def _optimizer_from_config(cfg):
    import inspect
    from .. import optimizers
    from ..optimizers.base import Optimizer
    name = cfg.get("class_name", "")
    if name.startswith("Custom>"):
        name = name[len("Custom>"):]
    cls = optimizers._BY_NAME.get(name.lower())
    if cls is None:
        raise InvalidArgumentError(f"unknown optimizer {name!r} in the file's training_config")
    inner = dict(cfg.get("config") or {})
    accepted = set(inspect.signature(cls.__init__).parameters) | set(inspect.signature(Optimizer.__init__).parameters)
    if "lr" in inner and "learning_rate" not in inner:
        inner["learning_rate"] = inner.pop("lr")
    inner = {k: v for k, v in inner.items() if k in accepted and k not in ("self", "kwargs")}
    for k in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"):
        if inner.get(k) is None:
            inner.pop(k, None)
    if isinstance(inner.get("learning_rate"), dict):
        from ..optimizers import schedules
        lr = inner["learning_rate"]
        try:
            inner["learning_rate"] = schedules.deserialize(lr)
        except Exception:   # a schedule class we do not have: fall back to its initial rate
            inner["learning_rate"] = float(lr.get("config", {}).get("initial_learning_rate", 0.001))
    inner.pop("name", None)
    return cls(**inner)


def _flatten_metric_spec(spec):
    """tf.keras 2 saves metrics as nested lists of MeanMetricWrapper dicts; compile() takes names/objects."""
    from ..metrics import keras_metrics
    if spec is None:
        return None
    if isinstance(spec, dict) and "class_name" in spec:
        cfg = spec.get("config") or {}
        if spec["class_name"] == "MeanMetricWrapper" and cfg.get("fn") and cfg.get("name") in (
                "accuracy", "acc", "crossentropy", "ce"):
            return cfg["name"]
        return keras_metrics.deserialize(spec)
    if isinstance(spec, dict):
        return {k: _flatten_metric_spec(v) for k, v in spec.items()}
    if isinstance(spec, list):
        out = [_flatten_metric_spec(v) for v in spec]
        if len(out) == 1 and isinstance(out[0], list):
            return out[0]
        return out
    return spec


def _compile_from_training_config(model, cfg, custom_objects):
    from ..losses import keras_losses
    opt_cfg = cfg.get("optimizer_config")
    optimizer = _optimizer_from_config(opt_cfg) if opt_cfg else "rmsprop"

    def loss_of(spec):
        if isinstance(spec, dict) and "class_name" in spec:
            return keras_losses.deserialize(spec, custom_objects)
        if isinstance(spec, dict):
            return {k: loss_of(v) for k, v in spec.items()}
        if isinstance(spec, list):
            return [loss_of(v) for v in spec]
        if isinstance(spec, str) and custom_objects and spec in custom_objects:
            return custom_objects[spec]
        return spec
    model.compile(optimizer=optimizer, loss=loss_of(cfg.get("loss")),
                  metrics=_flatten_metric_spec(cfg.get("metrics")), loss_weights=cfg.get("loss_weights"),
                  weighted_metrics=_flatten_metric_spec(cfg.get("weighted_metrics")))


# -- whole models -------------------------------------------------------------------------------------------
def save_model(model, filepath, overwrite=True, include_optimizer=True, save_format=None):
    """Write `model` to a Keras .h5 file: config, weights and (when compiled) training config and optimizer
    state. The file is written to a temporary name, fsynced and renamed.

    Raises:
        InvalidArgumentError: a subclassed model (no config), or overwrite=False and the file exists.
    """
    filepath = os.fspath(filepath)
    if save_format not in (None, "h5", "keras") and not _is_h5_path(filepath):
        raise InvalidArgumentError(f"save_format {save_format!r} is not supported; use a .h5 path")
    _check_overwrite(filepath, overwrite)
    config = {"class_name": model._keras_class_name(), "config": model.get_config()}
    train_cfg = training_config(model) if model._compiled is not None else None
    state = model._optimizer_state() if include_optimizer and model.optimizer is not None else None
    layers = _saved_layers(model)

    def write(f):
        _h5.write_format_attrs(f)
        f.attrs["keras_version"] = KERAS_VERSION.encode()
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode()
        if train_cfg is not None:
            f.attrs["training_config"] = json.dumps(train_cfg).encode()
        g = f.create_group("model_weights")
        _h5.write_layer_weights(g, layers, KERAS_VERSION)
        top = g.create_group("top_level_model_weights")
        top.attrs["weight_names"] = np.array([], dtype="S1")
        if state is not None:
            _h5.write_optimizer_weights(f, model, state, model.optimizer)
    _h5.atomic_h5(filepath, write)


def _saved_layers(model):
    from .sequential import Sequential
    if isinstance(model, Sequential):
        return list(model.layers)
    return list(model._layers)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True, options=None):
    """Load a model saved by `model.save` here, by tf.keras 2 (`model.save("m.h5")`) or Keras 3 (legacy h5).

    Args:
        filepath: the .h5 file.
        custom_objects: {name: class or function} for user layers, losses, metrics, Lambda functions.
        compile: compile the model with the saved training config (and restore the optimizer state).
        safe_mode: refuse Lambda layers stored as bytecode (even if custom_objects names them).

    Raises:
        NotFoundError: no such file.
        DataLossError: a truncated or corrupt file, or not a Keras model file.
        UnsafeFileError: anything that would run code or read outside the file.
        InvalidArgumentError: a stored weight whose shape does not match the layer.
    """
    filepath = os.fspath(filepath)
    # reading(): every error names the file; the budget: the config cannot declare more weight bytes than
    # the file stores (they are created before their values are read)
    with _formats.reading(filepath, "Keras model file"), _h5.SafeH5(filepath) as h5, \
            _formats.allocation_budget(filepath, _h5.weight_budget(filepath)):
        _h5.check_format_version(h5)
        config = h5.json_attr("model_config")
        if config is None:
            raise DataLossError(f"{filepath} has no model_config attribute: it is not a Keras model file "
                                "(a weights-only file loads with model.load_weights)")
        model = model_from_config(config, custom_objects=custom_objects, safe_mode=safe_mode)
        root = h5.group("model_weights")
        if root is None:
            raise DataLossError(f"{filepath} has no model_weights group")
        name_map = _load_weights_from_group(model, h5, root, by_name=False, skip_mismatch=False)
        train_cfg = h5.json_attr("training_config") if compile else None
        if train_cfg is not None:
            _compile_from_training_config(model, train_cfg, custom_objects)
            state = _h5.read_optimizer_weights(h5, model, model.optimizer, name_map)
            if state is not None and (state.get("slots") or state.get("iterations")):
                model._set_optimizer_state(state)
    return model


def _weighted(layers):
    return [l for l in layers if l.weights]


def _load_weights_from_group(model, h5, root, by_name, skip_mismatch):
    saved = _h5.layer_weight_groups(h5, root)
    layers = _saved_layers(model)
    if by_name:
        index = {l.name: l for l in _all_layers(model)}
        pairs = []
        for lname, weights in saved:
            layer = index.get(lname)
            if layer is not None and weights:
                pairs.append((layer, lname, weights))
    else:
        saved = [(n, w) for n, w in saved if w]
        mine = _weighted(layers)
        names_mine = {l.name for l in mine}
        if all(n in names_mine for n, _ in saved) and len(saved) == len(mine):
            by = {l.name: l for l in mine}
            pairs = [(by[n], n, w) for n, w in saved]
        else:
            if len(saved) != len(mine):
                raise InvalidArgumentError(
                    f"{h5.path} holds weights for {len(saved)} layers ({[n for n, _ in saved]}), but the model has "
                    f"{len(mine)} layers with weights ({[l.name for l in mine]})")
            pairs = [(l, n, w) for l, (n, w) in zip(mine, saved)]
    updates, name_map = [], {}
    for layer, lname, weights in pairs:
        targets = layer.weights
        if len(targets) != len(weights):
            if skip_mismatch:
                warnings.warn(f"skipping layer {layer.name!r}: {len(weights)} saved weights, {len(targets)} in "
                              "the layer", RuntimeWarning, stacklevel=3)
                continue
            raise InvalidArgumentError(f"{h5.path}: layer {lname!r} has {len(weights)} weights in the file, but "
                                       f"layer {layer.name!r} has {len(targets)} ({[w.name for w in targets]})")
        values = []
        for w, (wname, ds) in zip(targets, weights):
            if skip_mismatch and tuple(ds.shape) != tuple(w.shape):
                warnings.warn(f"skipping weight {w.name}: shape {tuple(ds.shape)} in the file, "
                              f"{tuple(w.shape)} in the layer", RuntimeWarning, stacklevel=3)
                values = None
                break
            values.append(h5.read(ds, expected_shape=tuple(w.shape),
                                  what=f"weight {wname!r} of layer {lname!r}"))
        if values is not None:
            updates.append((targets, values))
            for w, (wname, _) in zip(targets, weights):
                name_map[wname[:-2] if wname.endswith(":0") else wname] = w
    for targets, values in updates:   # all read and checked before anything changes
        for w, v in zip(targets, values):
            w.assign(v.astype(w.dtype.np, copy=False))
    return name_map


def _all_layers(model):
    out = []
    stack = list(reversed(model._layers))
    while stack:
        layer = stack.pop()
        out.append(layer)
        if hasattr(layer, "_network") or hasattr(layer, "_stack"):
            stack.extend(reversed(layer._layers))
    return out


# -- weights -------------------------------------------------------------------------------------------------
def save_weights(model, filepath, overwrite=True, save_format=None):
    """Save the weights: Keras's h5 layout for ".h5" paths (or save_format="h5"), else a kestimator
    checkpoint holding the weights and the optimizer state (so training resumes where it stopped)."""
    filepath = os.fspath(filepath)
    _check_overwrite(filepath, overwrite)
    if _is_h5_path(filepath) or save_format == "h5":
        layers = _saved_layers(model)
        state = model._optimizer_state() if model.optimizer is not None else None

        def write(f):
            _h5.write_format_attrs(f)
            _h5.write_layer_weights(f, layers, KERAS_VERSION)
            if state is not None and state.get("slots"):
                _h5.write_optimizer_weights(f, model, state, model.optimizer)
        _h5.atomic_h5(filepath, write)
        return
    from ..engine import checkpoint
    folder = os.path.dirname(os.path.abspath(filepath))
    if not os.path.isdir(folder):
        raise NotFoundError(f"cannot write {filepath}: folder {folder} does not exist")
    tensors, meta = checkpoint_payload(model)
    checkpoint.save_tensors(filepath, tensors, meta)


def checkpoint_payload(model):
    """(tensors, metadata) of a weights checkpoint: every weight and the optimizer state."""
    tensors, meta = {}, {"format": "kestimator.keras_weights", "weights": []}
    for i, w in enumerate(model.weights):
        key = f"weights/{i:05d}"
        tensors[key] = w.numpy()
        meta["weights"].append([key, w.name, list(w.shape)])
    state = model._optimizer_state() if model.optimizer is not None else None
    if state is not None:
        meta["iterations"] = int(state.get("iterations") or 0)
        meta["learning_rate"] = float(state.get("learning_rate")) if state.get("learning_rate") is not None else None
        meta["slots"] = []
        # slots are stored by the position of their weight among the trainable weights, so they load into
        # a model whose layers got other names (a new process numbers "dense_3" differently)
        position = {w.name: i for i, w in enumerate(model.trainable_weights)}
        for j, ((wname, slot), value) in enumerate(sorted(state.get("slots", {}).items())):
            key = f"optimizer/{j:05d}"
            tensors[key] = value
            meta["slots"].append([key, position.get(wname, -1), slot])
    return tensors, meta


def load_weights(model, filepath, by_name=False, skip_mismatch=False):
    """Load weights written by save_weights (either format), or the weights of a Keras .h5 model file.

    Raises:
        NotFoundError / DataLossError / UnsafeFileError: as load_model.
        InvalidArgumentError: the file's weights do not fit the model (names the layer and weight).
    """
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise NotFoundError(f"no such weights file: {filepath}")
    model._ensure_built()
    with _formats.reading(filepath, "weights file"):
        if _looks_like_checkpoint(filepath):
            return _load_checkpoint_weights(model, filepath)
        return _load_h5_weights(model, filepath, by_name, skip_mismatch)


def _load_h5_weights(model, filepath, by_name, skip_mismatch):
    with _h5.SafeH5(filepath) as h5:
        _h5.check_format_version(h5)
        root = h5.group("model_weights") if h5.group("model_weights") is not None else h5.file
        if h5.attr(root, "layer_names") is None and h5.group("layers") is not None:
            raise InvalidArgumentError(f"{filepath} is a Keras 3 '.weights.h5' file; that layout is not supported "
                                       "(save with model.save('m.h5') or save_weights('w.h5') in legacy format)")
        name_map = _load_weights_from_group(model, h5, root, by_name=by_name, skip_mismatch=skip_mismatch)
        if model.optimizer is not None and h5.group("optimizer_weights") is not None:
            state = _h5.read_optimizer_weights(h5, model, model.optimizer, name_map)
            if state is not None and state.get("slots"):
                model._set_optimizer_state(state)
    return None


def _looks_like_checkpoint(path):
    import h5py
    try:
        with h5py.File(path, "r") as f:   # checkpoints carry metadata; .h5 weights files written here do not
            return "kestimator_metadata" in f.attrs and "layer_names" not in f.attrs
    # RuntimeError: h5py's attribute lookup on a damaged attribute table ("attribute name has different length
    # than stored length"; found by fuzzing)
    except (OSError, RuntimeError, KeyError, ValueError) as e:
        raise DataLossError(f"{path} is truncated, corrupt or not an HDF5 file: {e}") from None


def _load_checkpoint_weights(model, filepath):
    from ..engine import checkpoint
    meta = checkpoint.read_metadata(filepath)
    if meta.get("format") != "kestimator.keras_weights":
        raise InvalidArgumentError(f"{filepath} is a kestimator checkpoint but not one written by "
                                   "Model.save_weights")
    entries = meta.get("weights") or []
    weights = model.weights
    if len(entries) != len(weights):
        raise InvalidArgumentError(f"{filepath} holds {len(entries)} weights; model {model.name!r} has "
                                   f"{len(weights)}")
    expected = {}
    for (key, wname, shape), w in zip(entries, weights):
        if tuple(shape) != tuple(w.shape):
            raise InvalidArgumentError(f"{filepath}: weight {wname} has shape {tuple(shape)}; the model's "
                                       f"{w.name} has {tuple(w.shape)}")
        expected[key] = (tuple(w.shape), None)
    values = checkpoint.load_tensors(filepath, names=list(expected), expected=expected)
    for (key, _, _), w in zip(entries, weights):
        w.assign(values[key])
    if meta.get("slots") is not None and model.optimizer is not None:
        slot_keys = [k for k, _, _ in meta["slots"]]
        svals = checkpoint.load_tensors(filepath, names=slot_keys) if slot_keys else {}
        trainable = model.trainable_weights
        slots = {}
        for key, index, slot in meta["slots"]:
            if not isinstance(index, int) or not 0 <= index < len(trainable):
                raise InvalidArgumentError(f"{filepath}: optimizer slot {key} belongs to trainable weight #{index}; "
                                           f"model {model.name!r} has {len(trainable)} trainable weights")
            slots[(trainable[index].name, slot)] = svals[key]
        state = {"iterations": meta.get("iterations"), "learning_rate": meta.get("learning_rate"), "slots": slots}
        model._set_optimizer_state(state)
    return None
