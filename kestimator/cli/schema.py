"""The schema of a ``kestimator`` YAML config: validate it completely before any work starts, then resolve it.

Usage::

    config = load_config("mlp_digits.yaml", overrides=["fit.epochs=2"])      # config_loader
    resolved = validate(config, registries)    # raises ConfigError naming key path, file and line
    dump_resolved(resolved, os.path.join(resolved["output"]["dir"], "config.resolved.yaml"))

``registries`` maps a kind (``layer``, ``optimizer``, ``loss``, ``metric``, ``callback``, ``estimator`` and,
when given, ``activation`` / ``initializer``) to ``{name: class_or_function}``; names in the config must come
from it and their arguments are checked against the signatures (see :mod:`.schema_registry`).

Top-level sections (every one optional except ``data`` and one of ``model`` / ``estimator``):

==================  =====================================================================================
``seed``            int (default 0): seeds training and the row shuffle of data sources
``device``          ``auto`` (default), ``cpu``, ``gpu``, ``/gpu:1`` ...
``distribute``      ``auto`` (default: data-parallel when an MPI launcher started several processes),
                    ``multi_worker_mirrored`` (always, tf.distribute's name) or ``none``
``data``            ``train`` / ``eval`` / ``validation`` / ``test`` sources (:mod:`.schema_data`)
``model``           ``sequential: [{Layer: {kwargs}}, ...]`` or ``functional: {inputs, layers, outputs}``
``compile``         ``optimizer`` (name or ``{Name: {kwargs}}``, default rmsprop), ``loss``, ``metrics``,
                    ``loss_weights``
``fit``             ``epochs``, ``batch_size``, ``validation_split``, ``shuffle``, ``steps_per_epoch``,
                    ``verbose``, ``initial_epoch``
``callbacks``       ``[{Name: {kwargs}}, ...]``; ``filepath`` / ``log_dir`` / ``filename`` / ``backup_dir``
                    relative to output.dir
``feature_columns`` ``all_numeric`` or a list of columns (:mod:`.schema_columns`)
``estimator``       ``{Name: {kwargs}}`` for a pre-made estimator, or ``from_keras: {model: path}``
``run_config``      RunConfig arguments; ``model_dir`` defaults to output.dir, ``tf_random_seed`` to seed
``train``           ``steps``, ``max_steps``, ``batch_size``, ``shuffle``, ``num_epochs``
``evaluate``        ``steps``, ``batch_size`` (default: the training batch size), ``name``
``output``          ``dir`` (default ``runs/<config name>``), ``save_model`` and ``plot`` (relative to dir)
==================  =====================================================================================

Paths are relative to the config file (outputs: to ``output.dir``) and resolve to absolute paths.
"""
import os
import tempfile

import yaml

from ..errors import InvalidArgumentError
from .config_loader import FLOAT_EXPONENT, load_config, to_plain
from .schema_columns import ALL_NUMERIC, FEATURE_COLUMNS
from .schema_core import (INVALID, REQUIRED, Any_, Bool, Choice, Context, Custom, Field, Float, Int, ListOf, MapOf,
                          Nullable, PathT, Str, Struct, listing, loc_of, suggest, type_name, shown)
from .schema_data import DATA
from .schema_registry import RegistryRef, lookup

REGISTRY_KINDS = ("layer", "optimizer", "loss", "metric", "callback", "estimator")
TOP_LEVEL_KEYS = ("seed", "device", "distribute", "data", "model", "compile", "fit", "callbacks", "feature_columns",
                  "estimator", "run_config", "train", "evaluate", "output")
KERAS_SECTIONS = ("compile", "fit", "callbacks")
ESTIMATOR_SECTIONS = ("feature_columns", "run_config", "train")

_NAME = Str(describe="a name")

# ---- model -----------------------------------------------------------------------------------------------
_INPUT = Struct({
    "name": Field(_NAME, REQUIRED),
    "shape": Field(ListOf(Nullable(Int(min=1)), min_len=1), REQUIRED),
    "dtype": Field(Str(choices=("float32", "float64", "int32", "int64", "string")), "float32"),
}, "a model input")
_NODE = Struct({
    "name": Field(_NAME, REQUIRED),
    "layer": Field(RegistryRef("layer"), REQUIRED),
    "inbound": Field(ListOf(_NAME, min_len=1, allow_single=True), REQUIRED),
}, "a functional model layer")


def _check_graph(out, value, path, loc, ctx):
    """Names unique; every inbound name defined above its use; outputs defined."""
    defined, ok = [], True
    for group in ("inputs", "layers"):
        items = value[group]
        for i, item in enumerate(out[group]):
            item_loc = loc_of(items, i, loc)
            name_loc = loc_of(items[i], "name", item_loc)
            if group == "layers":
                for j, source in enumerate(item["inbound"]):
                    if source not in defined:
                        ok = False
                        where = "defined below" if source in _names(out) else "not defined"
                        ctx.error(path + (group, i, "inbound") + ((j,) if len(item["inbound"]) > 1 else ()),
                                  loc_of(items[i], "inbound", item_loc),
                                  f"inbound {source!r} is {where} (a layer's inputs must be model inputs or "
                                  f"layers listed above it){suggest(source, defined)}")
            if item["name"] in defined:
                ok = False
                ctx.error(path + (group, i, "name"), name_loc, f"the name {item['name']!r} is used twice")
            defined.append(item["name"])
    for j, name in enumerate(out["outputs"]):
        if name not in defined:
            ok = False
            ctx.error(path + ("outputs",) + ((j,) if len(out["outputs"]) > 1 else ()),
                      loc_of(value, "outputs", loc),
                      f"output {name!r} is not an input or layer of the model{suggest(name, defined)}")
    return out if ok else INVALID


def _names(out):
    return [item["name"] for group in ("inputs", "layers") for item in out[group]]


_FUNCTIONAL = Struct({
    "inputs": Field(ListOf(_INPUT, min_len=1), REQUIRED),
    "layers": Field(ListOf(_NODE, min_len=1), REQUIRED),
    "outputs": Field(ListOf(_NAME, min_len=1, allow_single=True), REQUIRED),
}, "a functional model", post=_check_graph)
_SEQUENTIAL = ListOf(RegistryRef("layer"), min_len=1)


def _check_model(value, path, loc, ctx):
    out = Struct({"sequential": Field(Nullable(_SEQUENTIAL), None),
                  "functional": Field(Nullable(_FUNCTIONAL), None)}, "model").check(value, path, loc, ctx)
    if out is INVALID:
        return out
    given = [k for k in ("sequential", "functional") if out[k] is not None]
    if len(given) != 1:
        return ctx.error(path, loc, "model needs exactly one of sequential, functional" +
                         ("; found both" if given else ""))
    return {given[0]: out[given[0]]}


MODEL = Custom(_check_model, "a model")

# ---- compile / fit / callbacks ----------------------------------------------------------------------------


def _check_loss_mapping(value, path, loc, ctx):
    """``{Name: {kwargs}}`` (one loss), or ``{output_name: loss}`` (one loss per model output)."""
    if len(value) == 1:
        (key, args), = value.items()
        registry = (ctx.registries or {}).get("loss", {})
        is_ref = lookup(registry, key) is not None if ctx.registries is not None else isinstance(args, dict)
        if is_ref or args is None:
            return RegistryRef("loss").check(value, path, loc, ctx)
    return MapOf(RegistryRef("loss"), "a loss per output").check(value, path, loc, ctx)


_LOSS = Choice({str: RegistryRef("loss"), dict: Custom(_check_loss_mapping, "a loss"),
                list: ListOf(RegistryRef("loss"), min_len=1)},
               "a loss name, {Name: {arguments}}, a list of losses or {output: loss}")
_METRIC_LIST = ListOf(RegistryRef("metric"), allow_single=True)
_METRICS = Choice({str: _METRIC_LIST, list: _METRIC_LIST, dict: MapOf(_METRIC_LIST, "metrics per output")},
                  "a list of metrics or {output: [metrics]}")

COMPILE = Struct({
    "optimizer": Field(RegistryRef("optimizer"), "rmsprop", check_default=True),
    "loss": Field(_LOSS, REQUIRED),
    "metrics": Field(_METRICS, []),
    "loss_weights": Field(Nullable(Choice({list: ListOf(Float(min=0)), dict: MapOf(Float(min=0), "loss weights")},
                                          "a list of numbers or {output: number}")), None),
}, "compile")


def _check_fit(out, value, path, loc, ctx):
    if out["initial_epoch"] >= out["epochs"]:
        return ctx.error(path + ("initial_epoch",), loc_of(value, "initial_epoch", loc),
                         f"initial_epoch ({out['initial_epoch']}) must be below epochs ({out['epochs']})")
    return out


FIT = Struct({
    "epochs": Field(Int(min=1), 1),
    "batch_size": Field(Int(min=1), 32),
    "validation_split": Field(Float(min=0.0, max=1.0, max_exclusive=True), 0.0),
    "shuffle": Field(Bool(), True),
    "steps_per_epoch": Field(Nullable(Int(min=1)), None),
    "verbose": Field(Int(min=0, max=2), 1),
    "initial_epoch": Field(Int(min=0), 0),
}, "fit", post=_check_fit)
CALLBACKS = ListOf(RegistryRef("callback"))

# ---- estimator side ---------------------------------------------------------------------------------------
_FROM_KERAS = Struct({"model": Field(PathT(), REQUIRED)}, "from_keras")


def _check_estimator(value, path, loc, ctx):
    if isinstance(value, dict) and len(value) == 1 and "from_keras" in value:
        out = _FROM_KERAS.check(value["from_keras"], path + ("from_keras",), loc_of(value, "from_keras", loc), ctx)
        return INVALID if out is INVALID else {"from_keras": out}
    return RegistryRef("estimator").check(value, path, loc, ctx)


ESTIMATOR = Custom(_check_estimator, "an estimator")


def _check_run_config(out, value, path, loc, ctx):
    if out["save_checkpoints_steps"] is not None and out["save_checkpoints_secs"] is not None:
        return ctx.error(path + ("save_checkpoints_secs",), loc_of(value, "save_checkpoints_secs", loc),
                         "save_checkpoints_steps and save_checkpoints_secs exclude each other")
    if out["save_checkpoints_steps"] is None and "save_checkpoints_secs" not in value:
        out["save_checkpoints_secs"] = 600      # tf.estimator's rule: neither given -> every 10 minutes
    return out


RUN_CONFIG = Struct({
    "model_dir": Field(Nullable(PathT()), None),
    "tf_random_seed": Field(Nullable(Int(min=0)), None),
    "save_summary_steps": Field(Nullable(Int(min=1)), 100),
    "save_checkpoints_steps": Field(Nullable(Int(min=1)), None),
    "save_checkpoints_secs": Field(Nullable(Int(min=1)), None),
    "keep_checkpoint_max": Field(Nullable(Int(min=0)), 5),
    "keep_checkpoint_every_n_hours": Field(Float(min=0), 10000.0),
    "log_step_count_steps": Field(Nullable(Int(min=1)), 100),
}, "run_config", post=_check_run_config)


def _check_train(out, value, path, loc, ctx):
    if out["steps"] is not None and out["max_steps"] is not None:
        return ctx.error(path + ("max_steps",), loc_of(value, "max_steps", loc),
                         "steps and max_steps exclude each other (steps counts from now, max_steps from zero)")
    if out["steps"] is None and out["max_steps"] is None and out["num_epochs"] is None:
        out["num_epochs"] = 1                   # something must end training: one pass over the data
    return out


TRAIN = Struct({
    "steps": Field(Nullable(Int(min=1)), None),
    "max_steps": Field(Nullable(Int(min=1)), None),
    "batch_size": Field(Int(min=1), 32),
    "shuffle": Field(Bool(), True),
    "num_epochs": Field(Nullable(Int(min=1)), None),
}, "train", post=_check_train)
EVALUATE = Struct({
    "steps": Field(Nullable(Int(min=1)), None),
    "batch_size": Field(Nullable(Int(min=1)), None),
    "name": Field(Nullable(Str()), None),
}, "evaluate")

# ---- the rest ---------------------------------------------------------------------------------------------
SEED = Nullable(Int(min=0))
DEVICE = Str(pattern=r"(?i)auto|/?(device:)?(cpu|gpu)(:\d+)?",
             describe="a device: auto, cpu, gpu, /cpu:0, /gpu:1 ...")
DISTRIBUTE = Str(choices=("auto", "multi_worker_mirrored", "none"))


def _check_output(default_dir):
    """output.dir first, so that save_model and plot resolve relative to it."""
    rest = Struct({
        "dir": Field(Any_(), None),             # checked on its own, first
        "save_model": Field(Nullable(PathT(base="output")), None),
        "plot": Field(Nullable(PathT(base="output")), None),
    }, "output")

    def check(value, path, loc, ctx):
        value = {} if value is None else value
        resolved_dir = INVALID
        if isinstance(value, dict):
            resolved_dir = PathT().check(value.get("dir", default_dir), path + ("dir",),
                                         loc_of(value, "dir", loc), ctx)
            if resolved_dir is not INVALID:
                ctx.output_dir = resolved_dir
        out = rest.check(value, path, loc, ctx)
        if out is INVALID or resolved_dir is INVALID:
            return INVALID
        out["dir"] = resolved_dir
        return out

    return Custom(check, "output")


def _check_registries(registries):
    if registries is None:
        return None
    if not isinstance(registries, dict) or not all(isinstance(r, dict) for r in registries.values()):
        raise InvalidArgumentError("registries must map each kind to a dict {name: class_or_function}, got "
                                   f"{type(registries).__name__}")
    return registries


def _section(config, key, type_, ctx, default=None):
    loc = loc_of(config, key, getattr(config, "loc", None))
    if key not in config:
        return type_.check(default, (key,), getattr(config, "loc", loc), ctx) if default is not REQUIRED else \
            ctx.error((key,), loc, "missing required section")
    return type_.check(config[key], (key,), loc, ctx)


def _check_top(config, ctx, source):
    root_loc = getattr(config, "loc", source)
    for key in config:
        if key not in TOP_LEVEL_KEYS:
            ctx.error((key,), loc_of(config, key, root_loc),
                      f"unknown section{suggest(key, TOP_LEVEL_KEYS)} (allowed: {listing(TOP_LEVEL_KEYS)})")
    stem = os.path.splitext(os.path.basename(getattr(config, "source_path", None) or "run"))[0]
    out = dict.fromkeys(TOP_LEVEL_KEYS)
    out["output"] = _section(config, "output", _check_output(os.path.join("runs", stem)), ctx, {})
    out["seed"] = _section(config, "seed", SEED, ctx, 0) if "seed" in config else 0
    out["device"] = _section(config, "device", DEVICE, ctx, "auto") if "device" in config else "auto"
    out["distribute"] = _section(config, "distribute", DISTRIBUTE, ctx, "auto") if "distribute" in config else "auto"
    out["data"] = _section(config, "data", DATA, ctx, REQUIRED)

    has_model = config.get("model") is not None
    has_estimator = config.get("estimator") is not None
    if not (has_model or has_estimator):
        ctx.error((), root_loc, "the config needs a model section (a Keras model) or an estimator section")
    if has_model:
        out["model"] = _section(config, "model", MODEL, ctx)
        out["compile"] = _section(config, "compile", COMPILE, ctx, {})
        out["fit"] = _section(config, "fit", FIT, ctx, {})
        out["callbacks"] = _section(config, "callbacks", CALLBACKS, ctx, [])
    _refuse_unused(config, KERAS_SECTIONS, has_model, "a Keras model (the model section)", ctx, root_loc)

    if has_estimator:
        out["estimator"] = _section(config, "estimator", ESTIMATOR, ctx)
        from_keras = isinstance(out["estimator"], dict) and "from_keras" in out["estimator"]
        if has_model and not from_keras and out["estimator"] is not INVALID:
            ctx.error(("estimator",), loc_of(config, "estimator", root_loc),
                      "a pre-made estimator and a model section exclude each other (to turn the model into an "
                      "estimator use estimator: {from_keras: {model: path}})")
        if from_keras:
            _refuse_unused(config, ("feature_columns",), False, "a pre-made estimator", ctx, root_loc)
        else:
            out["feature_columns"] = _section(config, "feature_columns", FEATURE_COLUMNS, ctx, ALL_NUMERIC)
        out["run_config"] = _section(config, "run_config", RUN_CONFIG, ctx, {})
        out["train"] = _section(config, "train", TRAIN, ctx, {})
    _refuse_unused(config, ESTIMATOR_SECTIONS, has_estimator, "an estimator (the estimator section)", ctx,
                   root_loc)
    out["evaluate"] = _section(config, "evaluate", EVALUATE, ctx, {})
    if INVALID not in out.values():
        _fill_cross_section(out, config, ctx, root_loc)
    return out


def _refuse_unused(config, keys, used, what, ctx, root_loc):
    if used:
        return
    for key in keys:
        if config.get(key) is not None:       # `key: null` (as a resolved config writes it) is absent
            ctx.error((key,), loc_of(config, key, root_loc), f"this section applies to {what}, which this "
                                                             f"config does not have")


def _fill_cross_section(out, config, ctx, root_loc):
    """Defaults that depend on other sections; checks that span sections."""
    data = out["data"]
    if out["fit"] is not None and out["fit"]["validation_split"] > 0 and data["validation"] is not None:
        ctx.error(("fit", "validation_split"), loc_of(config.get("fit") or {}, "validation_split", root_loc),
                  "fit.validation_split and data.validation both give validation data; keep one")
    if out["run_config"] is not None:
        if out["run_config"]["model_dir"] is None:
            out["run_config"]["model_dir"] = out["output"]["dir"]
        if out["run_config"]["tf_random_seed"] is None:
            out["run_config"]["tf_random_seed"] = out["seed"]
    if out["evaluate"]["batch_size"] is None:
        training = out["train"] or out["fit"]
        out["evaluate"]["batch_size"] = training["batch_size"] if training else 32


def validate(config, registries):
    """Check a whole config before any work starts, and return it resolved.

    Every problem is collected; one :class:`~kestimator.errors.ConfigError` lists them all, each as
    ``file, line N: key.path: what is wrong`` (``--set key=value: ...`` for overrides), with the allowed
    keys and a "did you mean" suggestion where one fits. ``err.issues`` holds them as objects.

    Args:
        config: the root mapping from :func:`~kestimator.cli.config_loader.load_config` (a plain dict works
            too, without line numbers).
        registries: ``{kind: {name: class_or_function}}`` for the kinds in :data:`REGISTRY_KINDS` (a kind
            that is absent has no valid names); ``None`` skips the registry checks.

    Returns:
        The resolved config (see :func:`resolve`).

    Raises:
        ConfigError: anything in the config is wrong.
        InvalidArgumentError: ``registries`` is not a mapping of mappings.
    """
    registries = _check_registries(registries)
    source = getattr(config, "source_path", None) or getattr(getattr(config, "loc", None), "source", "<config>")
    ctx = Context(registries, base_dir=getattr(config, "base_dir", None))
    if not isinstance(config, dict):
        ctx.error((), source, f"the config must be a mapping of sections, got {type_name(config)} {shown(config)}")
        ctx.raise_if_any(source)
    out = _check_top(config, ctx, source)
    ctx.raise_if_any(source)
    return to_plain(out)


def resolve(config, registries=None):
    """The config as plain data with every default filled in and every path absolute.

    Registry references take one form, ``{RegisteredName: {arguments}}`` (``optimizer: adam`` becomes
    ``{Adam: {}}`` when registries are given); sections a config does not use are ``null``.

    Args:
        config: as for :func:`validate`.
        registries: as for :func:`validate`; without them names are kept as written and not checked.

    Returns:
        A ``dict`` of plain ``dict`` / ``list`` / scalars, ready for :func:`dump_resolved`.

    Raises:
        ConfigError: the config is invalid.
    """
    return validate(config, registries)


def load_and_resolve(path, overrides=(), registries=None):
    """:func:`load_config` then :func:`resolve`, the whole front half of ``kestimator train``."""
    return resolve(load_config(path, overrides), registries)


class ResolvedDumper(yaml.SafeDumper):
    """SafeDumper that quotes strings such as ``"1e5"``, which the config loader would read as numbers."""


ResolvedDumper.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_EXPONENT, list("-+0123456789"))


def dump_resolved(cfg, path):
    """Write a resolved config as YAML (atomically: a temporary file renamed into place).

    The file loads back (``load_config``) into a config that resolves to the same dict.

    Args:
        cfg: the dict from :func:`resolve`.
        path: the file to write (its folder is created when missing).

    Returns:
        The absolute path written.
    """
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = yaml.dump(to_plain(cfg), Dumper=ResolvedDumper, sort_keys=False, default_flow_style=None,
                     allow_unicode=True, width=100)
    header = "# kestimator config with every default filled in and every path made absolute\n"
    fd, tmp = tempfile.mkstemp(prefix=".resolved-", suffix=".yaml", dir=os.path.dirname(path))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)     # mkstemp makes a private file; the config is as readable as any other
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(header + text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
