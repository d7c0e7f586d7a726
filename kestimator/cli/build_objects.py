"""Turning the registry references of a resolved config (``{Name: {arguments}}``) into objects.

The schema resolves every reference to ``{registered_name: {arguments}}`` and nested references (a
layer's ``activation``, an estimator's ``optimizer`` ...) the same way. Here they become what the Keras
and Estimator APIs take: a bare name when no argument is given (``"relu"``, ``"accuracy"``,
``"sparse_categorical_crossentropy"``: the APIs then apply their own rules, e.g. Keras's reading of
``"accuracy"`` from the loss, and saved files keep the short Keras names), else the registered class or
function called with the arguments.
"""
from ..errors import ConfigError
from .schema_registry import NESTED_REF_KWARGS


def split_ref(ref, what):
    """``(name, kwargs)`` of a resolved reference ``{name: {kwargs}}``.

    Raises:
        ConfigError: ``ref`` is not a one-key mapping (the config was not resolved by the schema).
    """
    if isinstance(ref, str):
        return ref, {}
    if not isinstance(ref, dict) or len(ref) != 1:
        raise ConfigError(f"{what}: expected {{Name: {{arguments}}}}, got {ref!r}")
    (name, kwargs), = ref.items()
    return name, dict(kwargs or {})


def nested_kwargs(kwargs, registries):
    """``kwargs`` with their nested references (see :data:`NESTED_REF_KWARGS`) turned into objects."""
    out = {}
    for key, value in kwargs.items():
        kind = NESTED_REF_KWARGS.get(key)
        if kind is not None and kind in registries and isinstance(value, dict) and len(value) == 1:
            name = next(iter(value))
            if name in registries[kind]:
                value = make(kind, value, registries, prefer_name=True)
        out[key] = value
    return out


def make(kind, ref, registries, prefer_name=False, extra=None, what=None):
    """The object a reference names.

    Args:
        kind: the registry kind (``"layer"``, ``"optimizer"`` ...).
        ref: ``{name: {kwargs}}`` (or a bare name).
        registries: from :func:`kestimator.cli.registries.registries`.
        prefer_name: return the bare name when there are no arguments.
        extra: keyword arguments added by the runner (``name=`` of a functional layer, ...); the
            config's own arguments win.
        what: how to name the reference in errors (default: the kind).

    Returns:
        The name, or the registered class / function called with the arguments.

    Raises:
        ConfigError: a name that is not in the registry.
        KestimatorError: whatever the constructor raises for bad argument values.
    """
    what = what or kind
    name, kwargs = split_ref(ref, what)
    registry = registries.get(kind, {})
    if name not in registry:
        raise ConfigError(f"{what}: unknown {kind} {name!r}")
    kwargs = nested_kwargs(kwargs, registries)
    if prefer_name and not kwargs and not extra:
        return name
    merged = dict(extra or {})
    merged.update(kwargs)
    try:
        return registry[name](**merged)
    except TypeError as e:   # an argument the signature check could not see (a **kwargs constructor)
        raise ConfigError(f"{what}: {kind} {name!r} refused its arguments {sorted(merged)}: {e}") from None
