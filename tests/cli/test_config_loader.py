"""The YAML loader: safe tags only, line numbers kept, and --set overrides."""
import os
import sys
import textwrap

import pytest

from kestimator.cli.config_loader import (ConfigList, ConfigMap, Location, apply_overrides, load_config,
                                          load_config_text, parse_override, parse_yaml_text, to_plain)
from kestimator.errors import ConfigError, NotFoundError


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_values_and_the_line_of_every_key_and_item(tmp_path):
    path = write(tmp_path, """\
        seed: 3
        compile:
          optimizer: {Adam: {learning_rate: 0.01}}
          metrics:
            - accuracy
            - {top_k: {k: 5}}
        """)
    config = load_config(path)
    assert to_plain(config) == {"seed": 3, "compile": {"optimizer": {"Adam": {"learning_rate": 0.01}},
                                                      "metrics": ["accuracy", {"top_k": {"k": 5}}]}}
    assert config.source_path == path and config.base_dir == str(tmp_path)
    assert config.key_locs["seed"] == Location(path, 1)
    assert config["compile"].key_locs == {"optimizer": Location(path, 3), "metrics": Location(path, 4)}
    assert config["compile"]["optimizer"]["Adam"].key_locs["learning_rate"] == Location(path, 3)
    metrics = config["compile"]["metrics"]
    assert isinstance(metrics, ConfigList) and metrics.item_locs == [Location(path, 5), Location(path, 6)]
    assert isinstance(metrics[1], ConfigMap) and metrics[1].loc == Location(path, 6)


def test_exponent_floats_without_a_dot_are_numbers():
    # YAML 1.1 (PyYAML's default) reads 1e-3 as the string "1e-3"; configs follow YAML 1.2 here.
    data = parse_yaml_text("a: 1e-3\nb: 5E+2\nc: -2.5e1\nd: '1e-3'\ne: 1.0\nf: 12\ng: e5\n")
    assert data == {"a": 0.001, "b": 500.0, "c": -25.0, "d": "1e-3", "e": 1.0, "f": 12, "g": "e5"}
    assert isinstance(data["a"], float) and isinstance(data["f"], int)


def test_merge_keys_expand_and_a_local_key_wins_with_its_own_line():
    data = parse_yaml_text("base: &b {units: 3, activation: relu}\nlayer:\n  <<: *b\n  units: 5\n", "f.yaml")
    assert data["layer"] == {"units": 5, "activation": "relu"}
    assert data["layer"].key_locs["units"] == Location("f.yaml", 4)
    assert data["layer"].key_locs["activation"] == Location("f.yaml", 1)


def test_duplicate_key_is_refused_with_both_lines():
    with pytest.raises(ConfigError, match=r"f\.yaml, line 3: .*duplicate key 'epochs' \(first written on line 1\)"):
        parse_yaml_text("epochs: 1\nbatch_size: 2\nepochs: 3\n", "f.yaml")


def test_unhashable_key_is_refused():
    with pytest.raises(ConfigError, match="line 1: .*unhashable key"):
        parse_yaml_text("? [1, 2]\n: 3\n", "f.yaml")


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/object:kestimator_never_imported_module.Thing {{a: 1}}",
    "!!python/name:kestimator_never_imported_module.thing ''",
    "!!python/module:kestimator_never_imported_module ''",
    "!!python/tuple [1, 2]",
    "!custom_tag 3",
])
def test_python_tags_are_refused_and_leave_no_trace(tmp_path, tag):
    marker = tmp_path / "pwned"
    path = write(tmp_path, "seed: 0\ndata:\n  train: " + tag.format(marker=marker) + "\n")
    before = set(sys.modules)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}, line 3:" in message and "refused" in message and "safe loader" in message
    assert not marker.exists()                                  # nothing ran
    assert "kestimator_never_imported_module" not in sys.modules  # nothing was imported
    assert set(sys.modules) - before <= {m for m in sys.modules if m.startswith(("yaml", "kestimator"))}


def test_a_refused_tag_inside_an_override_value_names_the_override():
    with pytest.raises(ConfigError, match=r"^--set seed=!!python/object/apply:os\.getcwd \[\]: the tag "
                                          r"!!python/object/apply:os\.getcwd is refused"):
        apply_overrides(load_config_text("seed: 0\n"), ["seed=!!python/object/apply:os.getcwd []"])


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "seed: 0\nfit: {epochs: 2\ncompile: {}\n")
    with pytest.raises(ConfigError, match=rf"{path}, line \d: invalid YAML"):
        load_config(path)


def test_empty_and_non_mapping_documents(tmp_path):
    with pytest.raises(ConfigError, match="the config is empty"):
        load_config(write(tmp_path, "# nothing\n"))
    with pytest.raises(ConfigError, match="line 1: the config must be a mapping of sections, found ConfigList"):
        load_config(write(tmp_path, "- a\n- b\n", "list.yaml"))


def test_missing_file_big_file_and_non_utf8(tmp_path, monkeypatch):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_config(str(tmp_path / "nope.yaml"))
    path = write(tmp_path, "seed: 0\n" + "# padding\n" * 20)
    monkeypatch.setattr("kestimator.cli.config_loader.MAX_CONFIG_BYTES", 100)
    with pytest.raises(ConfigError, match="too big for a config"):
        load_config(path)
    monkeypatch.undo()
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 9\)"):
        load_config(str(bad))


# ---- --set overrides ----------------------------------------------------------------------------------

BASE = """\
seed: 0
compile:
  optimizer: {Adam: {learning_rate: 0.001}}
  loss: mse
fit: {epochs: 5}
callbacks:
  - EarlyStopping: {patience: 2}
"""


def test_parse_override_reads_the_value_as_safe_yaml():
    assert parse_override("fit.epochs=2")[:2] == (["fit", "epochs"], 2)
    assert parse_override("a.b=[64, 32]")[:2] == (["a", "b"], [64, 32])
    assert parse_override("a={Adam: {lr: 0.1}}")[:2] == (["a"], {"Adam": {"lr": 0.1}})
    assert parse_override("a=1e-4")[1] == 0.0001
    assert parse_override("a=")[1] is None
    assert parse_override("a=x=y")[1] == "x=y"          # only the first '=' splits
    segments, value, loc = parse_override("output.plot=null")
    assert value is None and loc == Location("--set output.plot=null")


@pytest.mark.parametrize("text, message", [
    ("fit.epochs", "expected key.path=value"),
    ("=3", "expected key.path=value"),
    ("fit..epochs=3", "empty or padded segment"),
    ("fit.epochs=[1, 2", "invalid YAML"),
])
def test_malformed_overrides(text, message):
    with pytest.raises(ConfigError, match=rf"^--set {__import__('re').escape(text)}: .*{message}"):
        parse_override(text)


def test_overrides_replace_values_and_record_their_origin():
    root = load_config_text(BASE, source="base.yaml")
    out = apply_overrides(root, ["fit.epochs=2", "fit.batch_size=64", "data.train.csv=x.csv"])
    assert out["fit"] == {"epochs": 2, "batch_size": 64}
    assert out["data"] == {"train": {"csv": "x.csv"}}
    assert out["fit"].key_locs["epochs"] == Location("--set fit.epochs=2")
    assert out["data"].key_locs["train"] == Location("--set data.train.csv=x.csv")
    assert out["compile"].key_locs["loss"] == Location("base.yaml", 4)   # untouched keys keep their line
    assert root["fit"] == {"epochs": 5}                                   # the input is not modified


def test_override_shorthand_reaches_into_named_arguments():
    root = load_config_text(BASE)
    out = apply_overrides(root, ["compile.optimizer.learning_rate=0.01", "compile.optimizer.beta_1=0.8"])
    assert out["compile"]["optimizer"] == {"Adam": {"learning_rate": 0.01, "beta_1": 0.8}}
    loc = out["compile"]["optimizer"]["Adam"].key_locs["learning_rate"]
    assert loc == Location("--set compile.optimizer.learning_rate=0.01")


def test_override_on_a_name_string_turns_it_into_name_and_arguments():
    out = apply_overrides(load_config_text(BASE), ["compile.loss.reduction=sum"])
    assert out["compile"]["loss"] == {"mse": {"reduction": "sum"}}


def test_override_list_items_by_index():
    out = apply_overrides(load_config_text(BASE), ["callbacks.0.EarlyStopping.patience=7",
                                                   "callbacks.-1.monitor=loss"])
    assert out["callbacks"] == [{"EarlyStopping": {"patience": 7, "monitor": "loss"}}]
    out = apply_overrides(load_config_text(BASE), ["callbacks.0={TerminateOnNaN: {}}"])
    assert out["callbacks"] == [{"TerminateOnNaN": {}}]
    assert out["callbacks"].item_locs[0] == Location("--set callbacks.0={TerminateOnNaN: {}}")


@pytest.mark.parametrize("text, message", [
    ("callbacks.3.EarlyStopping.patience=1", "index 3 is out of range for a list of 1 items"),
    ("callbacks.first=1", "'first' must be a list index"),
    ("fit.epochs.value=1", "cannot set below 'fit.epochs', which holds the value 5"),
    ("seed.x.y=1", "cannot set below 'seed', which holds the value 0"),
])
def test_override_paths_that_cannot_be_followed(text, message):
    with pytest.raises(ConfigError, match=rf"^--set .*: {__import__('re').escape(message)}"):
        apply_overrides(load_config_text(BASE), [text])


def test_load_config_applies_overrides(tmp_path):
    path = write(tmp_path, BASE)
    config = load_config(path, ["seed=42"])
    assert config["seed"] == 42 and config.source_path == path and config.base_dir == str(tmp_path)
    assert os.path.isabs(config.base_dir)
