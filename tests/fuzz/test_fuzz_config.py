"""Fuzzing YAML configs: kestimator.cli.config_loader.load_config then schema.validate with the real
registries (kestimator.cli.registries).

Mutations: raw bytes of the YAML text; the parsed config with a wrong-typed value, a deep nest or a copy of
an ancestor at any node (re-dumped as YAML); YAML's own attacks (alias expansion "billion laughs", an
anchor that contains itself, nests deeper than the recursion limit, python/* tags, !!binary / !!set /
!!timestamp / !!omap values, merge keys, duplicate keys, huge numbers). And, deterministically, every field
of two valid configs set to every kind of wrong value.
"""
import copy

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from . import seeds
from .harness import Inputs, budget_spent, ci_share, contract, write
from .mutators import WRONG_VALUES, apply_byte_ops, apply_json_ops, byte_ops, json_ops

SLOW = settings.get_profile("slow")


def _registries():
    from kestimator.cli.registries import registries
    return registries()


def _load_and_validate(path):
    from kestimator.cli.config_loader import load_config
    from kestimator.cli.schema import validate
    resolved = validate(load_config(path), _registries())
    assert isinstance(resolved, dict) and resolved["data"] is not None
    return resolved


_ATTACKS = [
    # alias expansion: 9 levels of 9 references = 387 million leaves if anything expands them
    "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)),
    "data: &d {train: *d}\n",
    # the same expansion, reached through a layer argument the schema copies value by value
    "l0: &l0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"l{i + 1}: &l{i + 1} [{', '.join(['*l' + str(i)] * 9)}]\n" for i in range(7)) +
    "data: {train: {csv: a.csv}}\nmodel: {sequential: [{Dense: {units: 3, name: *l7}}]}\n",
    "model: &m\n  sequential: [*m]\n",
    "data:\n  train: " + "[" * 5000 + "]" * 5000 + "\n",
    "data:\n  train: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "seed: !!python/object/apply:os.system [echo pwned]\n",
    "seed: !!python/name:os.system\n",
    "data: !!binary aGVsbG8=\n",
    "data: !!set {a, b}\n",
    "seed: 2001-12-14t21:59:43.10-05:00\n",
    "compile: !!omap [{a: 1}, {b: 2}]\n",
    "base: &b {epochs: 1}\nfit:\n  <<: *b\n  epochs: x\n",
    "seed: 1\nseed: 2\n",
    "seed: 1e99999\n",
    "seed: 123456789012345678901234567890\n",
    "seed: .nan\n",
    "? [a, b]\n: 1\n",
    "\t- tab\n",
    "%YAML 1.1\n%TAG ! tag:yaml.org,2002:python/\n---\nseed: !object:os.system x\n",
    "--- 1\n--- 2\n",
    "data: {train: {csv: \"\\ud800\"}}\n",
    "data:\n  train: {csv: a.csv}\nmodel: {sequential: [{Dense: {units: !!float nan}}]}\n",
    "&x a: 1\n",
    "*unknown\n",
]


@pytest.fixture(scope="module")
def config_seed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("config_seed")
    out = {}
    for name, text in (("keras", seeds.CONFIG_TEXT), ("estimator", seeds.ESTIMATOR_CONFIG_TEXT)):
        path = write(str(folder), f"{name}.yaml", text.encode())
        resolved = _load_and_validate(path)   # warm-up; and the seed resolves as written
        if name == "keras":
            assert resolved["fit"]["epochs"] == 2 and resolved["compile"]["optimizer"] == {"Adam": {"learning_rate": 1e-3}}
        out[name] = (text, yaml.safe_load(text))
    return out


@pytest.fixture(scope="module")
def config_contract():
    return contract("YAML config (load_config + validate)")


def _run(c, seed, base, item):
    kind, which, ops = item
    text, doc = seed[which]
    if kind == "bytes":
        data = apply_byte_ops(text.encode(), ops)
    elif kind == "tree":
        mutated = apply_json_ops(doc, ops)
        try:
            data = yaml.safe_dump(mutated, allow_unicode=True).encode("utf-8", "surrogatepass")
        except (yaml.YAMLError, RecursionError, UnicodeError):
            assume(False)   # not expressible as YAML: not an input; hypothesis draws another in its place
    else:
        data = (_ATTACKS[(ops // 2) % len(_ATTACKS)] + (text if ops % 2 else "")).encode("utf-8", "surrogatepass")
    with Inputs(base) as folder:
        path = write(folder, "config.yaml", data)
        c.run(lambda: _load_and_validate(path), path, watch=[folder])


_inputs = st.one_of(
    st.tuples(st.just("bytes"), st.sampled_from(["keras", "estimator"]), byte_ops),
    st.tuples(st.just("tree"), st.sampled_from(["keras", "estimator"]), json_ops),
    st.tuples(st.just("attack"), st.just("keras"), st.integers(0, 2 * len(_ATTACKS))))


@settings(ci_share(1))
@given(item=_inputs)
def test_config(config_seed, config_contract, tmp_path, item):
    _run(config_contract, config_seed, tmp_path, item)


@pytest.mark.parametrize("attack", range(len(_ATTACKS)))
def test_yaml_attacks(config_seed, config_contract, tmp_path, attack):
    """Each attack alone, and in front of a valid config."""
    for ops in (2 * attack, 2 * attack + 1):   # _run: an even index alone, an odd one before the seed
        _run(config_contract, config_seed, tmp_path, ("attack", "keras", ops))


def _paths(node, prefix=()):
    """Every key path of a plain config tree (explicit stack)."""
    out, stack = [], [(node, prefix)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                out.append(at + (k,))
                stack.append((v, at + (k,)))
        elif isinstance(item, list):
            for i, v in enumerate(item):
                out.append(at + (i,))
                stack.append((v, at + (i,)))
    return out


_WRONG = [None, True, -1, 0, 10 ** 30, 1e308, float("nan"), "", "x", "../../etc/passwd", [], [None], {}, {"a": 1},
          {"Dense": {"units": -1}}]


@pytest.mark.parametrize("which", ["keras", "estimator"])
def test_every_field_with_every_wrong_type(config_seed, which):
    """Every field of a valid config set to every kind of wrong value: validation either accepts it or raises
    ConfigError naming the file (never another exception). Runs in-process (no fork): a few hundred checks."""
    from kestimator.cli.config_loader import load_config_text
    from kestimator.cli.schema import validate
    from kestimator.errors import ConfigError
    _, doc = config_seed[which]
    registries = _registries()
    checked = refused = 0
    for path in _paths(doc):
        for value in _WRONG:
            mutated = copy.deepcopy(doc)
            node = mutated
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            text = yaml.safe_dump(mutated)
            try:
                validate(load_config_text(text, source="wrong.yaml", base_dir="/tmp"), registries)
            except ConfigError as exc:
                assert "wrong.yaml" in str(exc), str(exc)
                refused += 1
            checked += 1
    assert checked > 200 and refused > checked // 2, (checked, refused)


@pytest.mark.slow
@settings(SLOW)
@given(item=_inputs)
def test_config_slow(config_seed, config_contract, tmp_path, item):
    if budget_spent(config_contract):
        return
    _run(config_contract, config_seed, tmp_path, item)


@pytest.mark.parametrize("char", ["\x0b", "\x00", "\x1b", "\ufffe"])
def test_control_character_is_a_config_error_naming_the_file(config_seed, tmp_path, char):
    """Regression (slow-tier fuzzing): PyYAML's reader refuses a control character while the loader is being
    built, before parsing starts; that ReaderError escaped as itself instead of a ConfigError."""
    from kestimator.cli.config_loader import load_config
    from kestimator.errors import ConfigError
    text = config_seed["keras"][0]
    path = write(str(tmp_path), "config.yaml", (text[:40] + char + text[40:]).encode("utf-8", "surrogatepass"))
    with pytest.raises(ConfigError, match="config.yaml.*invalid YAML"):
        load_config(path)
