"""Reading YAML configs safely, with the file and line of every key kept for error messages.

The loader is PyYAML's ``SafeLoader`` with two additions and nothing else:

* mappings and sequences are built as :class:`ConfigMap` / :class:`ConfigList`, plain ``dict`` / ``list``
  subclasses that remember where each key or item was written (file and line), so that the schema can say
  ``mlp_digits.yaml, line 14: compile.optimizer.Adam.learnin_rate: unknown argument ...``;
* numbers written in exponent form without a dot (``1e-3``) are read as floats, as YAML 1.2 does
  (PyYAML's YAML 1.1 rules would make them strings, a classic trap for learning rates).

Only the safe constructors exist: a tag such as ``!!python/object`` is refused with :class:`ConfigError`
before anything is imported or called. Duplicate keys in one mapping are refused too (PyYAML would keep
the last one silently).

``--set key.path=value`` overrides are parsed with the same loader and remember that they came from the
command line, so the schema reports them as ``--set compile.optimizer.Adam.learning_rate=x``.
"""
import copy
import os
import re

import yaml

from ..errors import ConfigError

# A config is a small hand-written file; anything far bigger is a mistake (or an attack on the parser).
MAX_CONFIG_BYTES = 1024 * 1024   # PyYAML parses ~1 MB/s: a bigger file would take seconds (fuzzing: 4 MB took > 10 s)

_MERGE_TAG = "tag:yaml.org,2002:merge"


class Location:
    """Where a value was written: a file (or ``--set ...`` for an override) and a 1-based line."""

    __slots__ = ("source", "line")

    def __init__(self, source, line=None):
        self.source = source
        self.line = line

    def __str__(self):
        return f"{self.source}, line {self.line}" if self.line else str(self.source)

    def __repr__(self):
        return f"Location({self.source!r}, {self.line!r})"

    def __eq__(self, other):
        return isinstance(other, Location) and (self.source, self.line) == (other.source, other.line)

    def __hash__(self):
        return hash((self.source, self.line))


class ConfigMap(dict):
    """A ``dict`` read from YAML that remembers its own location and the location of each key.

    Attributes:
        loc: :class:`Location` of the mapping itself.
        key_locs: ``{key: Location}`` of the line each key was written on.
        source_path: absolute path of the config file (root mapping only, else ``None``).
        base_dir: folder that relative paths in the config are relative to (root mapping only).
    """

    def __init__(self, *args, loc=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.loc = loc or Location("<unknown>")
        self.key_locs = {}
        self.source_path = None
        self.base_dir = None

    def loc_of(self, key):
        """Location of ``key`` (the mapping's own location when the key was never written)."""
        return self.key_locs.get(key, self.loc)

    def __deepcopy__(self, memo):
        new = ConfigMap(loc=self.loc)
        memo[id(self)] = new
        for key, value in self.items():
            new[key] = copy.deepcopy(value, memo)
        new.key_locs = dict(self.key_locs)
        new.source_path, new.base_dir = self.source_path, self.base_dir
        return new


class ConfigList(list):
    """A ``list`` read from YAML that remembers its own location and the location of each item."""

    def __init__(self, *args, loc=None):
        super().__init__(*args)
        self.loc = loc or Location("<unknown>")
        self.item_locs = []

    def loc_of(self, index):
        """Location of item ``index`` (the list's own location when unknown)."""
        if 0 <= index < len(self.item_locs):
            return self.item_locs[index]
        return self.loc

    def __deepcopy__(self, memo):
        new = ConfigList(loc=self.loc)
        memo[id(self)] = new
        for item in self:
            new.append(copy.deepcopy(item, memo))
        new.item_locs = list(self.item_locs)
        return new


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences record the line of every key and item."""

    def __init__(self, stream, source, track_lines=True):
        super().__init__(stream)
        self.source = source
        self.track_lines = track_lines

    def location(self, node):
        return Location(self.source, node.start_mark.line + 1 if self.track_lines else None)


def _construct_map(loader, node):
    data = ConfigMap(loc=loader.location(node))
    yield data  # yielded first so that anchors referring back to this mapping resolve, as PyYAML does
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found an unhashable key (a list or mapping used as a key)", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first written on line {seen[key]})", key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    # SafeConstructor.construct_mapping expands merge keys (<<) and builds the plain dict.
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    data.update(mapping)
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        # Merged (<<) pairs come first after flattening; a key written here again wins, as in the dict.
        data.key_locs[key] = loader.location(key_node)


def _construct_seq(loader, node):
    data = ConfigList(loc=loader.location(node))
    yield data
    data.extend(loader.construct_sequence(node, deep=True))
    data.item_locs = [loader.location(child) for child in node.value]


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
# YAML 1.2 floats such as 1e-3 and 5E+2 (YAML 1.1 requires a dot and PyYAML reads them as strings).
FLOAT_EXPONENT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_LineLoader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_EXPONENT, list("-+0123456789"))


def _yaml_error(exc, source, track_lines=True):
    """Turn a PyYAML error into a ConfigError naming the file and line."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = Location(source, mark.line + 1 if mark is not None and track_lines else None)
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.constructor.ConstructorError) and "could not determine a constructor" in problem:
        tag = problem.split("tag", 1)[-1].strip().strip("'").replace("tag:yaml.org,2002:", "!!")
        return ConfigError(
            f"{where}: the tag {tag} is refused: configs are read with YAML's safe loader, which builds "
            f"only plain data (mappings, lists, strings, numbers, booleans, null) and never creates "
            f"Python objects")
    context = getattr(exc, "context", None)
    detail = f"{context}: {problem}" if context and context not in problem else problem
    return ConfigError(f"{where}: invalid YAML: {detail}")


def parse_yaml_text(text, source="<string>", track_lines=True):
    """Parse YAML text with the line-recording safe loader.

    Args:
        text: the YAML document (``str``).
        source: name used in error messages and locations (a file path or ``--set ...``).
        track_lines: record line numbers (``False`` for override values, whose lines mean nothing).

    Returns:
        The document: a :class:`ConfigMap`, :class:`ConfigList` or a scalar.

    Raises:
        ConfigError: the text is not valid YAML, holds a non-safe tag, an unhashable or duplicate key.
    """
    _check_flow_depth(text, source)
    try:   # PyYAML's reader checks the characters here: a control character raises ReaderError (fuzzing found it)
        loader = _LineLoader(text, source, track_lines)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source, track_lines) from None
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source, track_lines) from None
    except RecursionError:   # block nesting deeper than the parser's recursion can follow
        raise ConfigError(f"{source}: the YAML nests too deeply (a config needs a few levels)") from None
    finally:
        loader.dispose()
    _check_expanded_size(data, source)
    return data


# Limits no hand-written config comes near; they keep the parser and the schema's walks linear and bounded.
MAX_FLOW_DEPTH = 64          # nested [ ] / { }: PyYAML's scanner is quadratic in this depth
MAX_NODES = 200_000          # values in the config with every alias expanded ("billion laughs")
_FLOW_CHARS = re.compile(r"[\[\]{}\"'#\n]")


def _check_flow_depth(text, source):
    """Refuse flow collections nested deeper than MAX_FLOW_DEPTH, before PyYAML spends quadratic time on them.

    Brackets inside quoted scalars and comments do not count.
    """
    depth, quote, comment = 0, None, False
    for m in _FLOW_CHARS.finditer(text):
        ch, at = m.group(), m.start()
        if comment:
            comment = ch != "\n"
        elif quote is not None:
            if ch == quote and not (quote == '"' and _escaped(text, at)):
                quote = None
        elif ch in "\"'":
            quote = ch if at == 0 or text[at - 1] in " \t\n[{,:" else None
        elif ch == "#":
            comment = at == 0 or text[at - 1] in " \t\n"
        elif ch in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                line = text.count("\n", 0, at) + 1
                raise ConfigError(f"{source}, line {line}: lists / mappings nested more than {MAX_FLOW_DEPTH} "
                                  "levels deep; a config needs a few")
        elif ch in "]}":
            depth = max(depth - 1, 0)


def _escaped(text, at):
    """True when the character at `at` follows an odd number of backslashes."""
    n = 0
    while at - n - 1 >= 0 and text[at - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def _check_expanded_size(data, source):
    """Refuse a document that refers to itself (an anchor inside its own alias) or that expands, alias by
    alias, past MAX_NODES values: the schema walks the tree with aliases expanded."""
    count, stack, on_path = 0, [(data, False)], set()
    while stack:
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        count += 1
        if count > MAX_NODES:
            raise ConfigError(f"{source}: the config expands to more than {MAX_NODES} values (aliases of aliases?)")
        if isinstance(node, (dict, list)):
            if id(node) in on_path:
                loc = getattr(node, "loc", source)
                raise ConfigError(f"{loc}: this value contains itself (an alias inside its own anchor)")
            on_path.add(id(node))
            stack.append((node, True))
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, False) for child in children)


def load_config(path, overrides=()):
    """Read a YAML config file and apply ``--set`` overrides.

    Args:
        path: the config file.
        overrides: ``"key.path=value"`` strings, applied in order (see :func:`apply_overrides`).

    Returns:
        The root :class:`ConfigMap`, with ``source_path`` (absolute) and ``base_dir`` (its folder: relative
        paths in the config are relative to it) set.

    Raises:
        NotFoundError: no such file.
        ConfigError: the file is too big, not YAML, not a mapping at the top, or an override is invalid.
    """
    from ..errors import NotFoundError

    abspath = os.path.abspath(os.fspath(path))
    if not os.path.isfile(abspath):
        raise NotFoundError(f"config file {abspath} does not exist")
    size = os.path.getsize(abspath)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{abspath}: {size} bytes is too big for a config (limit {MAX_CONFIG_BYTES})")
    with open(abspath, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{abspath}: not UTF-8 text (byte {exc.start})") from None
    root = load_config_text(text, source=abspath, base_dir=os.path.dirname(abspath))
    root.source_path = abspath
    return apply_overrides(root, overrides)


def load_config_text(text, source="<string>", base_dir=None):
    """Parse a config given as text (tests, programs that build configs in memory).

    Args:
        text: the YAML document.
        source: name used in messages.
        base_dir: folder relative paths are relative to (default: the current directory).

    Returns:
        The root :class:`ConfigMap`.

    Raises:
        ConfigError: invalid YAML, or the document is not a mapping.
    """
    root = parse_yaml_text(text, source)
    if root is None:
        raise ConfigError(f"{source}: the config is empty; it must be a mapping of sections "
                          f"(data, model, compile, fit, ...)")
    if not isinstance(root, ConfigMap):
        raise ConfigError(f"{source}, line 1: the config must be a mapping of sections, "
                          f"found {type(root).__name__}")
    root.base_dir = os.path.abspath(base_dir if base_dir is not None else os.getcwd())
    return root


def parse_override(text):
    """Split one ``--set`` argument into its key path and its value.

    Args:
        text: ``"key.path=value"``; the value is read as YAML (a scalar or a flow collection such as
            ``[64, 32]`` or ``{Adam: {learning_rate: 0.01}}``) with the safe loader. A path segment that
            is a number indexes a list (``callbacks.0.EarlyStopping.patience=3``).

    Returns:
        ``(segments, value, location)``: the list of path segments, the parsed value and the
        :class:`Location` (``--set text``) that the value will carry.

    Raises:
        ConfigError: no ``=``, an empty path segment, or a value that is not safe YAML.
    """
    source = f"--set {text}"
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{source}: expected key.path=value (for example --set fit.epochs=2)")
    segments = key.split(".")
    if any(not s.strip() or s != s.strip() for s in segments):
        raise ConfigError(f"{source}: empty or padded segment in the key path {key!r}")
    value = parse_yaml_text(raw, source=source, track_lines=False)
    return segments, value, Location(source)


def _relocate(value, loc):
    """Give every node of an override value the override's location."""
    if isinstance(value, ConfigMap):
        value.loc = loc
        for key in value:
            value.key_locs[key] = loc
            _relocate(value[key], loc)
    elif isinstance(value, ConfigList):
        value.loc = loc
        value.item_locs = [loc] * len(value)
        for item in value:
            _relocate(item, loc)
    return value


def _is_named_ref(node):
    """True for a ``{Name: {kwargs}}`` mapping, where ``Name`` is a registry name such as ``Adam``."""
    if not isinstance(node, ConfigMap) or len(node) != 1:
        return False
    if getattr(node, "named_ref", False):
        return True
    (name, kwargs), = node.items()
    return isinstance(name, str) and name[:1].isupper() and (kwargs is None or isinstance(kwargs, ConfigMap))


def _child(node, seg, loc, shown):
    """The container one step below ``node`` along ``seg``, created as a mapping when absent."""
    if isinstance(node, ConfigList):
        index = _list_index(node, seg, shown)
        child = node[index]
        if child is None or isinstance(child, str):
            child = node[index] = _promote(child, loc)
            node.item_locs[index] = loc
        return child
    if seg not in node and _is_named_ref(node):
        # Shorthand: compile.optimizer.learning_rate reaches into {Adam: {learning_rate: ...}}.
        node = _named_kwargs(node, loc)
    if seg not in node or node[seg] is None or isinstance(node[seg], str):
        node[seg] = _promote(node.get(seg), loc)
        node.key_locs[seg] = loc
    return node[seg]


def _named_kwargs(node, loc):
    (name, kwargs), = node.items()
    if kwargs is None:
        kwargs = node[name] = ConfigMap(loc=loc)
    return kwargs


def _promote(value, loc):
    """A missing/null node becomes ``{}``; a name string ``adam`` becomes ``{adam: {}}`` so kwargs fit in."""
    if isinstance(value, str):
        outer = ConfigMap(loc=loc)
        outer[value] = ConfigMap(loc=loc)
        outer.key_locs[value] = loc
        outer.named_ref = True
        return outer
    return ConfigMap(loc=loc)


def _list_index(node, seg, shown):
    try:
        index = int(seg)
    except ValueError:
        raise ConfigError(f"{shown}: '{seg}' must be a list index (the value there is a list of "
                          f"{len(node)} items)") from None
    if not -len(node) <= index < len(node):
        raise ConfigError(f"{shown}: index {index} is out of range for a list of {len(node)} items")
    return index % len(node)


def apply_overrides(root, overrides):
    """Apply ``--set key.path=value`` overrides to a loaded config.

    Missing mappings along the path are created. Where the path meets a ``{Name: {kwargs}}`` mapping
    (``optimizer: {Adam: {...}}``) and the next segment is not ``Name``, the segment is looked up in the
    kwargs, so ``compile.optimizer.learning_rate=0.01`` sets ``compile.optimizer.Adam.learning_rate``; where
    it meets a name string (``optimizer: adam``) it becomes ``{adam: {learning_rate: 0.01}}``.

    Args:
        root: the :class:`ConfigMap` from :func:`load_config` (left unchanged).
        overrides: iterable of ``"key.path=value"`` strings.

    Returns:
        A new root :class:`ConfigMap` with the overrides applied; overridden values carry the location
        ``--set key.path=value``.

    Raises:
        ConfigError: a malformed override, or a path that runs through a scalar or past a list's end.
    """
    overrides = list(overrides or ())
    if not overrides:
        return root
    result = copy.deepcopy(root)
    for text in overrides:
        segments, value, loc = parse_override(text)
        value = _relocate(value, loc)
        shown = loc.source
        node = result
        for depth, seg in enumerate(segments[:-1]):
            if not isinstance(node, (ConfigMap, ConfigList)):
                raise ConfigError(f"{shown}: cannot set below '{'.'.join(segments[:depth])}', "
                                  f"which holds the value {node!r}, not a mapping")
            node = _child(node, seg, loc, shown)
        last = segments[-1]
        if isinstance(node, ConfigList):
            index = _list_index(node, last, shown)
            node[index] = value
            node.item_locs[index] = loc
        elif isinstance(node, ConfigMap):
            if last not in node and _is_named_ref(node):
                node = _named_kwargs(node, loc)
            node[last] = value
            node.key_locs[last] = loc
        else:
            raise ConfigError(f"{shown}: cannot set below '{'.'.join(segments[:-1])}', which holds the "
                              f"value {node!r}, not a mapping")
    return result


def to_plain(value):
    """A deep copy of a config tree made only of ``dict``, ``list`` and scalars."""
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    return value
