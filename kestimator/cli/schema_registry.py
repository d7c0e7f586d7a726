"""Checking registry names and their arguments: ``{Adam: {learning_rate: 0.01}}``, ``- Dense: {units: 10}``.

A config may only name layers, optimizers, losses, metrics, callbacks and estimators that kestimator's
registries hold. The registries are an *input* (``{kind: {name: class_or_function}}``), so this module
works with whatever the packages register, and tests can pass small fake registries.

Arguments are checked against the registered object's signature (``inspect.signature``):

* unknown keywords are errors, with the closest known name suggested. A class whose ``__init__`` takes
  ``**kwargs`` contributes the named parameters of every base class ``__init__`` it forwards to; where the
  chain never closes, the kind's well-known pass-through keywords (:data:`PASS_THROUGH_KWARGS`, e.g. a
  layer's ``input_shape``) are accepted as well;
* types come from annotations when they are simple (``int``, ``float | None``, ``list[int]`` ...), else
  from the default value (a ``True`` default asks for a boolean, a number default for a number);
* parameters without a default must be given (classes only: a loss *function* gets ``y_true`` and
  ``y_pred`` when it is called), except the ones kestimator fills in itself (:data:`INJECTED_KWARGS`).
"""
import inspect
import types
import typing
from collections import abc

from .config_loader import to_plain
from .schema_core import INVALID, PathT, Type, listing, loc_of, shown, suggest, type_name

# Keywords a base class usually takes through **kwargs (Keras's Layer takes input_shape this way).
PASS_THROUGH_KWARGS = {
    "layer": {"input_shape", "batch_input_shape", "batch_size", "input_dim", "name", "dtype", "trainable"},
    "optimizer": {"name", "lr", "clipnorm", "clipvalue", "global_clipnorm"},
    "loss": {"name", "reduction"},
    "metric": {"name", "dtype"},
}

# Arguments kestimator passes itself; a config that sets them is told where they come from.
INJECTED_KWARGS = {
    "estimator": {
        "feature_columns": "the top-level feature_columns section",
        "linear_feature_columns": "the top-level feature_columns section",
        "dnn_feature_columns": "the top-level feature_columns section",
        "model_dir": "run_config.model_dir",
        "config": "the run_config section",
    },
}

# Arguments whose value is itself a registry reference (a name, or {Name: {kwargs}}).
NESTED_REF_KWARGS = {
    "optimizer": "optimizer", "dnn_optimizer": "optimizer", "linear_optimizer": "optimizer",
    "loss": "loss", "activation": "activation", "recurrent_activation": "activation",
    "kernel_initializer": "initializer", "bias_initializer": "initializer",
}

# Arguments that are paths; for callbacks they are relative to output.dir.
PATH_KWARGS = {"callback": {"filepath", "log_dir", "filename", "backup_dir"}}

_KIND_DESCRIBE = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                  "list": "a list", "dict": "a mapping", "none": "null"}
_ANNOTATION_KINDS = {int: "int", float: "float", bool: "bool", str: "str", list: "list", tuple: "list",
                     dict: "dict", type(None): "none"}
_TEXT_KINDS = {"int": "int", "float": "float", "bool": "bool", "str": "str", "list": "list",
               "tuple": "list", "dict": "dict", "None": "none"}


def _plural(kind):
    return kind + ("es" if kind.endswith("s") else "s")      # losses, metrics


def _normalized(name):
    return str(name).replace("_", "").lower()


def lookup(registry, name):
    """Find ``name`` in a registry: exact, else the one entry equal ignoring case and underscores.

    ``"adam"`` finds ``Adam``; ``"sparse_categorical_crossentropy"`` finds ``SparseCategoricalCrossentropy``
    when only the class is registered.

    Args:
        registry: ``{name: class_or_function}``.
        name: the name written in the config.

    Returns:
        ``(registered_name, obj)``, or ``None`` when no entry (or more than one loose match) fits.
    """
    if not isinstance(name, str):
        return None
    if name in registry:
        return name, registry[name]
    loose = [key for key in registry if _normalized(key) == _normalized(name)]
    return (loose[0], registry[loose[0]]) if len(loose) == 1 else None


class SignatureInfo:
    """What a registered object accepts: named parameters, whether more may pass, whether it is a class."""

    def __init__(self, params, open_, is_class):
        self.params, self.open, self.is_class = params, open_, is_class


# Default given to a base class's required parameter: the subclass forwarding **kwargs supplies it (LSTM
# passes its own cell to RNN.__init__), so a config need not.
_SUPPLIED_BY_SUBCLASS = object()


def _take(signature, params, base=False):
    """Add the keyword-capable parameters of ``signature`` to ``params``; True when it has **kwargs."""
    var_keyword = False
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_keyword = True
        elif p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY) or p.name in ("self", "cls"):
            continue
        else:
            if base and p.default is p.empty:
                p = p.replace(default=_SUPPLIED_BY_SUBCLASS)
            params.setdefault(p.name, p)
    return var_keyword


def signature_info(obj):
    """Introspect a registered class or function (see the module docstring); ``None`` when impossible."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = {}
    open_ = _take(signature, params)
    is_class = inspect.isclass(obj)
    if open_ and is_class:
        for base in obj.__mro__[1:]:
            init = base.__dict__.get("__init__")
            if base is object:
                break
            if init is None:
                continue
            try:
                base_signature = inspect.signature(init)
            except (TypeError, ValueError):
                break
            if not _take(base_signature, params, base=True):
                open_ = False
                break
    if not is_class:
        # A function's leading parameters without defaults (y_true, y_pred) are supplied at call time.
        params = {k: p for k, p in params.items() if p.default is not p.empty or p.kind is p.KEYWORD_ONLY}
    return SignatureInfo(params, open_, is_class)


def _annotation_kinds(annotation):
    if isinstance(annotation, str):
        text = annotation.strip()
        if text.startswith("Optional[") and text.endswith("]"):
            text = text[len("Optional["):-1] + " | None"
        kinds = set()
        for part in (p.strip() for p in text.split("|")):
            head = part.split("[", 1)[0].strip().split(".")[-1]
            if head in _TEXT_KINDS:
                kinds.add(_TEXT_KINDS[head])
            elif head in ("List", "Tuple", "Sequence"):
                kinds.add("list")
            elif head in ("Dict", "Mapping"):
                kinds.add("dict")
            else:
                return None
        return kinds
    if annotation in _ANNOTATION_KINDS:
        return {_ANNOTATION_KINDS[annotation]}
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = set()
        for arg in typing.get_args(annotation):
            sub = _annotation_kinds(arg)
            if sub is None:
                return None
            kinds |= sub
        return kinds
    if origin in (list, tuple, abc.Sequence):
        return {"list"}
    if origin in (dict, abc.Mapping):
        return {"dict"}
    return None


def expected_kinds(param):
    """The YAML kinds a parameter accepts, or ``None`` when nothing reliable is known."""
    if param.annotation is not param.empty:
        kinds = _annotation_kinds(param.annotation)
        if kinds is not None:
            if "float" in kinds:
                kinds.add("int")   # an integer is a fine float
            return kinds
    default = param.default
    if default is param.empty or default is None:
        return None
    if isinstance(default, bool):
        return {"bool"}
    if isinstance(default, (int, float)):
        return {"int", "float"}
    # A string default is often a mode that also takes a number (save_freq='epoch' or 100), a tuple
    # default (strides=(1, 1)) usually takes a single number too.
    if isinstance(default, str):
        return {"str", "int", "float"}
    if isinstance(default, (list, tuple)):
        return {"list", "int", "float"}
    return None


def _matches(value, kinds):
    if value is None:
        return "none" in kinds
    if isinstance(value, bool):
        return "bool" in kinds
    if isinstance(value, int):
        return "int" in kinds or "float" in kinds
    if isinstance(value, float):
        return "float" in kinds
    if isinstance(value, str):
        return "str" in kinds
    if isinstance(value, (list, tuple)):
        return "list" in kinds
    if isinstance(value, dict):
        return "dict" in kinds
    return False


def _describe_kinds(kinds):
    order = ["int", "float", "bool", "str", "list", "dict", "none"]
    if "float" in kinds:
        kinds = kinds - {"int"}
    return " or ".join(_KIND_DESCRIBE[k] for k in order if k in kinds)


class RegistryRef(Type):
    """A registry name, as ``name`` or ``{Name: {arguments}}``; resolves to ``{registered_name: {args}}``.

    Args:
        kind: the registry kind (``"optimizer"``, ``"layer"`` ...).
        allow_string: accept a bare name (``optimizer: adam``) as well as the mapping form.
    """

    def __init__(self, kind, allow_string=True):
        self.kind, self.allow_string = kind, allow_string
        mapping = f"a mapping {{{kind.capitalize()}Name: {{arguments}}}}"
        self.describe = f"a {kind} name or {mapping}" if allow_string else mapping

    def check(self, value, path, loc, ctx):
        if isinstance(value, str) and self.allow_string:
            name, kwargs, name_path, kw_loc = value, {}, path, loc
        elif isinstance(value, dict) and len(value) == 1:
            (name, kwargs), = value.items()
            name_path, kw_loc = path + (name,), loc_of(value, name, loc)
            if kwargs is None:
                kwargs = {}
            if not isinstance(kwargs, dict):
                return ctx.error(name_path, kw_loc, f"the arguments of {self.kind} '{name}' must be a mapping "
                                                    f"{{argument: value}}, got {type_name(kwargs)} {shown(kwargs)}")
        else:
            extra = f" (a mapping of {len(value)} keys: {listing(value)})" if isinstance(value, dict) else ""
            return ctx.error(path, loc, f"expected {self.describe}, got {type_name(value)} {shown(value)}{extra}")
        if ctx.registries is None:          # names not checked here (validate() checks them)
            return {name: check_kwargs(None, self.kind, name, kwargs, name_path, kw_loc, ctx)}
        registry = ctx.registries.get(self.kind, {})
        found = lookup(registry, name)
        if found is None:
            return ctx.error(name_path, kw_loc, f"unknown {self.kind} '{name}'{suggest(name, registry)} "
                                                f"(known {_plural(self.kind)}: {listing(registry)})")
        registered, obj = found
        resolved = check_kwargs(obj, self.kind, registered, kwargs, name_path, kw_loc, ctx)
        return INVALID if resolved is INVALID else {registered: resolved}


def check_kwargs(obj, kind, name, kwargs, path, loc, ctx):
    """Check ``kwargs`` against ``obj``'s signature; returns the plain kwargs or :data:`INVALID`."""
    info = signature_info(obj) if obj is not None else None
    injected = INJECTED_KWARGS.get(kind, {})
    path_kwargs = PATH_KWARGS.get(kind, set())
    out, ok = {}, True
    for key, value in kwargs.items():
        key_path, key_loc = path + (key,), loc_of(kwargs, key, loc)
        result = _check_one(info, kind, name, key, value, key_path, key_loc, ctx, injected)
        if result is not INVALID and key in path_kwargs and isinstance(result, str):
            result = PathT(base="output").check(result, key_path, key_loc, ctx)
        ok = ok and result is not INVALID
        out[key] = result
    if info is not None and info.is_class:
        for pname, param in info.params.items():
            if param.default is param.empty and pname not in kwargs and pname not in injected:
                ok = False
                ctx.error(path + (pname,), loc, f"missing required argument of {kind} '{name}'")
    return out if ok else INVALID


def _check_one(info, kind, name, key, value, path, loc, ctx, injected):
    if key in injected:
        return ctx.error(path, loc, f"'{key}' of {kind} '{name}' is set by kestimator from {injected[key]}; "
                                    f"remove it here")
    nested = NESTED_REF_KWARGS.get(key)
    if nested and ctx.registries is not None and nested in ctx.registries and isinstance(value, (str, dict)):
        return RegistryRef(nested).check(value, path, loc, ctx)
    if info is None:
        return to_plain(value)
    param = info.params.get(key)
    if param is None:
        allowed = set(info.params) - set(injected)
        if info.open:
            passing = PASS_THROUGH_KWARGS.get(kind, set())
            if key in passing:
                return to_plain(value)
            allowed |= passing
        return ctx.error(path, loc, f"unknown argument of {kind} '{name}'{suggest(key, allowed)} "
                                    f"(allowed: {listing(allowed)})")
    kinds = None if nested else expected_kinds(param)
    if kinds is not None and not _matches(value, kinds):
        return ctx.error(path, loc, f"argument '{key}' of {kind} '{name}' expects {_describe_kinds(kinds)}, "
                                    f"got {type_name(value)} {shown(value)}")
    return to_plain(value)
