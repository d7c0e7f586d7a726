"""The building blocks of the config schema: value types, mappings with known keys, and error collection.

Each schema type has one method, ``check(value, path, loc, ctx)``, which both validates and resolves: it
records every problem in ``ctx`` (with the key path and the file/line it came from) and returns the value
with defaults filled and paths made absolute, or :data:`INVALID` when the value could not be used. The
schema in :mod:`kestimator.cli.schema` is written with these types; validation and resolution therefore
can never disagree about what a key means.
"""
import difflib
import os
import re

from ..errors import ConfigError
from .config_loader import Location

REQUIRED = object()   # Field default: the key must be given
INVALID = object()    # check() result of a value that failed validation

_MAX_LISTED = 40      # names listed in an "allowed: ..." hint before it is cut short


class Issue:
    """One problem found in a config: the key path, where it was written, and what is wrong."""

    def __init__(self, path, loc, message):
        self.path, self.loc, self.message = tuple(path), loc, message

    @property
    def key(self):
        return dotted(self.path)

    def __str__(self):
        key = f"{self.key}: " if self.path else ""
        return f"{self.loc}: {key}{self.message}"

    def __repr__(self):
        return f"Issue({str(self)!r})"


class Context:
    """What a check needs besides the value: registries, folders for paths, and the issue list.

    Attributes:
        registries: ``{kind: {name: class_or_function}}``, or ``None`` to skip registry checks.
        base_dir: folder that relative paths in the config are relative to.
        output_dir: resolved ``output.dir`` (paths of outputs and callbacks are relative to it).
        issues: the :class:`Issue` list collected so far.
    """

    def __init__(self, registries=None, base_dir=None):
        self.registries = registries
        self.base_dir = os.path.abspath(base_dir or os.getcwd())
        self.output_dir = self.base_dir
        self.issues = []

    def error(self, path, loc, message):
        self.issues.append(Issue(path, loc, message))
        return INVALID

    def raise_if_any(self, source):
        """Raise one ConfigError listing every issue (the first issue leads the message)."""
        if not self.issues:
            return
        if len(self.issues) == 1:
            text = str(self.issues[0])
        else:
            lines = "\n".join(f"  {issue}" for issue in self.issues)
            text = f"{len(self.issues)} problems in {source}:\n{lines}"
        err = ConfigError(text)
        err.issues = list(self.issues)
        raise err


def dotted(path):
    """``("compile", "optimizer", "Adam")`` -> ``"compile.optimizer.Adam"`` (the ``--set`` spelling)."""
    return ".".join(str(p) for p in path)


def loc_of(container, key, default):
    """Location of ``container[key]`` when the container remembers it, else ``default``."""
    finder = getattr(container, "loc_of", None)
    return finder(key) if finder is not None else default


def suggest(word, names):
    """`` did you mean 'x'?`` for the closest of ``names`` (difflib), or an empty string."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [str(n) for n in names], n=1, cutoff=0.6)
    if not close:
        lowered = {str(n).lower(): str(n) for n in names}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"; did you mean '{close[0]}'?" if close else ""


def listing(names):
    """``"a, b, c"``, cut short after a few dozen names."""
    names = sorted(str(n) for n in names)
    if not names:
        return "(none)"
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")


def type_name(value):
    """How a YAML value's type is named in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def wrong_type(ctx, path, loc, expected, value):
    return ctx.error(path, loc, f"expected {expected}, got {type_name(value)} {shown(value)}")


class Type:
    """Base class: ``describe`` is how messages name what is expected."""

    describe = "a value"

    def check(self, value, path, loc, ctx):  # pragma: no cover - every schema type overrides it
        raise NotImplementedError


class Any_(Type):
    """Any plain YAML value (kept as written)."""

    describe = "any value"

    def check(self, value, path, loc, ctx):
        from .config_loader import to_plain
        return to_plain(value)


class Int(Type):
    def __init__(self, min=None, max=None):
        self.min, self.max = min, max
        bounds = [f">= {min}" if min is not None else "", f"<= {max}" if max is not None else ""]
        self.describe = " ".join(["an integer"] + [b for b in bounds if b])

    def check(self, value, path, loc, ctx):
        if isinstance(value, bool) or not isinstance(value, int):
            return wrong_type(ctx, path, loc, self.describe, value)
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            return ctx.error(path, loc, f"expected {self.describe}, got {value}")
        return value


class Float(Type):
    def __init__(self, min=None, max=None, max_exclusive=False):
        self.min, self.max, self.max_exclusive = min, max, max_exclusive
        upper = f"{'<' if max_exclusive else '<='} {max}" if max is not None else ""
        bounds = [f">= {min}" if min is not None else "", upper]
        self.describe = " ".join(["a number"] + [b for b in bounds if b])

    def check(self, value, path, loc, ctx):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return wrong_type(ctx, path, loc, self.describe, value)
        too_big = self.max is not None and (value >= self.max if self.max_exclusive else value > self.max)
        if (self.min is not None and value < self.min) or too_big:
            return ctx.error(path, loc, f"expected {self.describe}, got {value}")
        return float(value)


class Bool(Type):
    describe = "true or false"

    def check(self, value, path, loc, ctx):
        if not isinstance(value, bool):
            return wrong_type(ctx, path, loc, self.describe, value)
        return value


class Str(Type):
    def __init__(self, choices=None, pattern=None, describe=None, non_empty=True):
        self.choices = tuple(choices) if choices is not None else None
        self.pattern = re.compile(pattern) if pattern else None
        self.non_empty = non_empty
        if describe:
            self.describe = describe
        elif self.choices:
            self.describe = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            self.describe = "a string"

    def check(self, value, path, loc, ctx):
        if not isinstance(value, str):
            return wrong_type(ctx, path, loc, self.describe, value)
        if self.choices is not None and value not in self.choices:
            return ctx.error(path, loc, f"expected {self.describe}, got {value!r}{suggest(value, self.choices)}")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return ctx.error(path, loc, f"expected {self.describe}, got {value!r}")
        if self.non_empty and not value:
            return ctx.error(path, loc, f"expected {self.describe}, got an empty string")
        return value


class PathT(Str):
    """A file or folder path; resolved to an absolute path.

    Args:
        base: ``"config"`` (relative to the config file's folder) or ``"output"`` (relative to ``output.dir``).
    """

    def __init__(self, base="config"):
        super().__init__(describe="a path")
        self.base = base

    def check(self, value, path, loc, ctx):
        value = super().check(value, path, loc, ctx)
        if value is INVALID:
            return value
        base = ctx.output_dir if self.base == "output" else ctx.base_dir
        return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


class Nullable(Type):
    """``null`` or the inner type."""

    def __init__(self, inner):
        self.inner = inner
        self.describe = f"{inner.describe} or null"

    def check(self, value, path, loc, ctx):
        return None if value is None else self.inner.check(value, path, loc, ctx)


class ListOf(Type):
    """A list of ``item``; with ``allow_single`` a lone value stands for a one-item list."""

    def __init__(self, item, min_len=0, max_len=None, allow_single=False):
        self.item, self.min_len, self.max_len, self.allow_single = item, min_len, max_len, allow_single
        self.describe = f"a list of {item.describe}" + (" (or one such value)" if allow_single else "")

    def check(self, value, path, loc, ctx):
        if self.allow_single and not isinstance(value, (list, tuple)):
            value = [value]
            single = True
        else:
            single = False
        if not isinstance(value, (list, tuple)):
            return wrong_type(ctx, path, loc, self.describe, value)
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            count = f"at least {self.min_len}" if len(value) < self.min_len else f"at most {self.max_len}"
            return ctx.error(path, loc, f"expected {count} items, got {len(value)}")
        out, ok = [], True
        for i, item in enumerate(value):
            sub_path = path if single else path + (i,)
            sub_loc = loc if single else loc_of(value, i, loc)
            result = self.item.check(item, sub_path, sub_loc, ctx)
            ok = ok and result is not INVALID
            out.append(result)
        return out if ok else INVALID


class MapOf(Type):
    """A mapping from names (strings) to values of one type, e.g. ``{output_name: loss}``."""

    def __init__(self, value, what="a mapping", min_len=0):
        self.value, self.what, self.min_len = value, what, min_len
        self.describe = f"{what} {{name: {value.describe}}}"

    def check(self, value, path, loc, ctx):
        if not isinstance(value, dict):
            return wrong_type(ctx, path, loc, self.describe, value)
        if len(value) < self.min_len:
            return ctx.error(path, loc, f"expected at least {self.min_len} entries, got {len(value)}")
        out, ok = {}, True
        for key, item in value.items():
            key_loc = loc_of(value, key, loc)
            if not isinstance(key, str):
                ok = False
                ctx.error(path + (key,), key_loc, f"names in {self.what} must be strings, got {shown(key)}")
                continue
            result = self.value.check(item, path + (key,), key_loc, ctx)
            ok = ok and result is not INVALID
            out[key] = result
        return out if ok else INVALID


class Choice(Type):
    """Dispatch on the YAML kind of the value: ``{str: T1, dict: T2, list: T3, ...}``."""

    def __init__(self, by_kind, describe):
        self.by_kind, self.describe = by_kind, describe

    def check(self, value, path, loc, ctx):
        for kind, inner in self.by_kind.items():
            if kind is None and value is None:
                return inner.check(value, path, loc, ctx)
            if kind is not None and isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
                return inner.check(value, path, loc, ctx)
        return wrong_type(ctx, path, loc, self.describe, value)


class Custom(Type):
    """A check written as a function ``fn(value, path, loc, ctx) -> resolved``."""

    def __init__(self, fn, describe):
        self.fn, self.describe = fn, describe

    def check(self, value, path, loc, ctx):
        return self.fn(value, path, loc, ctx)


class Field:
    """One key of a :class:`Struct`: its type and default (:data:`REQUIRED` when it must be given).

    ``check_default`` runs the default through the type as well (a default path is made absolute, a
    default registry name is looked up and written in its registered spelling).
    """

    def __init__(self, type_, default=None, check_default=False):
        self.type, self.default = type_, default
        self.check_default = check_default or isinstance(type_, PathT)


class Struct(Type):
    """A mapping with a fixed set of keys.

    Args:
        fields: ``{key: Field}`` in the order the resolved config lists them.
        name: what the mapping is, for messages (``"fit"``, ``"a csv data source"``).
        post: optional ``fn(resolved, value, path, loc, ctx)`` for checks across keys; returns the
            (possibly adjusted) resolved mapping or :data:`INVALID`.
    """

    def __init__(self, fields, name, post=None):
        self.fields, self.name, self.post = fields, name, post
        self.describe = f"a mapping ({name})"

    def check(self, value, path, loc, ctx):
        if value is None:          # `fit:` with nothing under it means all defaults
            value = {}
        if not isinstance(value, dict):
            return ctx.error(path, loc, f"expected {self.describe} with keys {listing(self.fields)}, "
                                        f"got {type_name(value)} {shown(value)}")
        ok = True
        for key in value:
            if key not in self.fields:
                ok = False
                ctx.error(path + (key,), loc_of(value, key, loc),
                          f"unknown key in {self.name}{suggest(key, self.fields)} "
                          f"(allowed keys: {listing(self.fields)})")
        out = {}
        for key, field in self.fields.items():
            if key in value:
                result = field.type.check(value[key], path + (key,), loc_of(value, key, loc), ctx)
            elif field.default is REQUIRED:
                result = ctx.error(path + (key,), loc, f"missing required key in {self.name}")
            else:
                result = _copy_default(field.default)
                if field.check_default and result is not None:
                    result = field.type.check(result, path + (key,), loc, ctx)
            ok = ok and result is not INVALID
            out[key] = result
        if not ok:
            return INVALID
        return self.post(out, value, path, loc, ctx) if self.post else out


def _copy_default(default):
    if isinstance(default, list):
        return [_copy_default(d) for d in default]
    if isinstance(default, dict):
        return {k: _copy_default(v) for k, v in default.items()}
    return default


def require_one_of(keys, value, path, loc, ctx, what):
    """Exactly one of ``keys`` must be present in ``value``; returns it or :data:`INVALID`."""
    present = [k for k in keys if k in value]
    if len(present) == 1:
        return present[0]
    if not present:
        return ctx.error(path, loc, f"{what} needs exactly one of: {', '.join(keys)}")
    return ctx.error(path, loc_of(value, present[1], loc),
                     f"{what} takes only one of {', '.join(keys)}; found {', '.join(present)}")


def as_location(loc):
    return loc if isinstance(loc, Location) else Location(str(loc))
