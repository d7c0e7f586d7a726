"""Resolution: every default written out, paths made absolute, and the resolved file loading back the same."""
import os
import textwrap

import pytest
import yaml

from kestimator.cli.config_loader import load_config
from kestimator.cli.schema import dump_resolved, load_and_resolve, resolve, validate

# The four shapes of config the project ships (configs-examples), copied here so the tests stand alone.
MLP_DIGITS = """\
seed: 0
data:
  train: {dataset: sklearn.digits, split: "0:1500", image_shape: [8, 8], scale: 0.0625}
  validation: {dataset: sklearn.digits, split: "1500:"}
model:
  sequential:
    - Flatten: {input_shape: [8, 8]}
    - Dense: {units: 128, activation: relu}
    - Dropout: {rate: 0.1}
    - Dense: {units: 10, activation: softmax}
compile:
  optimizer: {Adam: {learning_rate: 0.001}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
fit: {epochs: 5, batch_size: 32}
callbacks:
  - EarlyStopping: {monitor: val_loss, patience: 2}
  - ModelCheckpoint: {filepath: "checkpoints/epoch-{epoch:02d}.h5", save_best_only: true}
output: {dir: runs/mlp_digits, save_model: model.h5, plot: curves.png}
"""
DNN_PENGUINS = """\
seed: 0
data:
  train: {csv: penguins.csv, label: species, split: "0:0.8", drop_missing: true}
  eval: {csv: penguins.csv, label: species, split: "0.8:", drop_missing: true}
feature_columns:
  - numeric: {key: bill_length_mm, normalizer: standardize}
  - indicator: {categorical_vocabulary: {key: island, vocabulary: [Biscoe, Dream, Torgersen]}}
  - embedding: {categorical_vocabulary: {key: sex, vocabulary: [male, female]}, dimension: 2}
estimator:
  DNNClassifier: {hidden_units: [32, 16], n_classes: 3, label_vocabulary: [Adelie, Chinstrap, Gentoo],
                  optimizer: {Adam: {learning_rate: 0.01}}}
run_config: {model_dir: runs/penguins, save_checkpoints_steps: 100, keep_checkpoint_max: 3}
train: {steps: 600, batch_size: 32}
"""
BOOSTED_TREES = """\
seed: 7
data:
  train: {dataset: sklearn.breast_cancer, split: "0:450"}
  eval: {dataset: sklearn.breast_cancer, split: "450:"}
feature_columns: all_numeric
estimator:
  BoostedTreesClassifier: {n_trees: 100, max_depth: 4, learning_rate: 0.1, l2_regularization: 1.0}
"""
KERAS_TO_ESTIMATOR = """\
data:
  train: {dataset: sklearn.digits, split: "0:1500", image_shape: [8, 8], scale: 0.0625, features: pixels}
estimator:
  from_keras: {model: runs/mlp_digits/model.h5}
run_config: {model_dir: runs/digits_estimator, save_checkpoints_steps: 50}
train: {steps: 200, batch_size: 32}
"""


def load(tmp_path, text, name="cfg.yaml", overrides=()):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_config(str(path), overrides)


def test_keras_config_resolves_with_every_default(tmp_path):
    out = resolve(load(tmp_path, MLP_DIGITS, "mlp_digits.yaml"))
    base = str(tmp_path)
    runs = os.path.join(base, "runs", "mlp_digits")
    assert out["seed"] == 0 and out["device"] == "auto"
    assert out["data"]["train"] == {"dataset": "sklearn.digits", "split": "0:1500", "shuffle": True,
                                    "image_shape": [8, 8], "scale": 0.0625, "features": None}
    assert out["data"]["validation"]["image_shape"] is None
    assert out["data"]["eval"] is None and out["data"]["test"] is None
    # without registries the names stay as written, in the one {Name: {arguments}} form
    assert out["model"] == {"sequential": [{"Flatten": {"input_shape": [8, 8]}},
                                           {"Dense": {"units": 128, "activation": "relu"}},
                                           {"Dropout": {"rate": 0.1}},
                                           {"Dense": {"units": 10, "activation": "softmax"}}]}
    assert out["compile"] == {"optimizer": {"Adam": {"learning_rate": 0.001}},
                              "loss": {"sparse_categorical_crossentropy": {}},
                              "metrics": [{"accuracy": {}}], "loss_weights": None}
    assert out["fit"] == {"epochs": 5, "batch_size": 32, "validation_split": 0.0, "shuffle": True,
                          "steps_per_epoch": None, "verbose": 1, "initial_epoch": 0}
    # callback paths, save_model and plot are relative to output.dir
    assert out["callbacks"][1] == {"ModelCheckpoint": {
        "filepath": os.path.join(runs, "checkpoints", "epoch-{epoch:02d}.h5"), "save_best_only": True}}
    assert out["output"] == {"dir": runs, "save_model": os.path.join(runs, "model.h5"),
                             "plot": os.path.join(runs, "curves.png")}
    assert out["evaluate"] == {"steps": None, "batch_size": 32, "name": None}   # batch size from fit
    for unused in ("feature_columns", "estimator", "run_config", "train"):
        assert out[unused] is None


def test_estimator_config_resolves_with_every_default(tmp_path):
    out = resolve(load(tmp_path, DNN_PENGUINS, "dnn_penguins.yaml"))
    base = str(tmp_path)
    assert out["data"]["train"] == {
        "csv": os.path.join(base, "penguins.csv"), "label": "species", "split": "0:0.8", "shuffle": True,
        "drop_missing": True, "fill_numeric": 0.0, "fill_string": "",
        "na_values": ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"], "delimiter": ",", "columns": None,
        "label_dtype": "auto", "image_shape": None, "scale": None, "features": None}
    assert out["feature_columns"] == [
        {"numeric": {"key": "bill_length_mm", "shape": [1], "default_value": None, "dtype": "float32",
                     "normalizer": "standardize"}},
        {"indicator": {"categorical_vocabulary": {"key": "island", "vocabulary": ["Biscoe", "Dream", "Torgersen"],
                                                  "vocabulary_file": None, "num_oov_buckets": 0,
                                                  "default_value": None, "dtype": "string"}}},
        {"embedding": {"categorical_vocabulary": {"key": "sex", "vocabulary": ["male", "female"],
                                                  "vocabulary_file": None, "num_oov_buckets": 0,
                                                  "default_value": None, "dtype": "string"},
                       "dimension": 2, "combiner": "mean", "max_norm": None, "trainable": True}}]
    assert out["estimator"] == {"DNNClassifier": {"hidden_units": [32, 16], "n_classes": 3,
                                                  "label_vocabulary": ["Adelie", "Chinstrap", "Gentoo"],
                                                  "optimizer": {"Adam": {"learning_rate": 0.01}}}}
    # steps given: no time rule (tf.estimator.RunConfig refuses both)
    assert out["run_config"] == {"model_dir": os.path.join(base, "runs", "penguins"), "tf_random_seed": 0,
                                 "save_summary_steps": 100, "save_checkpoints_steps": 100,
                                 "save_checkpoints_secs": None, "keep_checkpoint_max": 3,
                                 "keep_checkpoint_every_n_hours": 10000.0, "log_step_count_steps": 100}
    assert out["train"] == {"steps": 600, "max_steps": None, "batch_size": 32, "shuffle": True, "num_epochs": None}
    assert out["model"] is None and out["compile"] is None and out["callbacks"] is None


def test_defaults_that_come_from_other_sections(tmp_path):
    out = resolve(load(tmp_path, BOOSTED_TREES, "trees.yaml"))
    runs = os.path.join(str(tmp_path), "runs", "trees")
    assert out["output"] == {"dir": runs, "save_model": None, "plot": None}       # runs/<config name>
    assert out["run_config"]["model_dir"] == runs                                  # model_dir <- output.dir
    assert out["run_config"]["tf_random_seed"] == 7                                # <- seed
    assert out["run_config"]["save_checkpoints_secs"] == 600                       # neither rule given
    assert out["train"] == {"steps": None, "max_steps": None, "batch_size": 32, "shuffle": True,
                            "num_epochs": 1}                                       # something must end it
    assert out["feature_columns"] == "all_numeric"


def test_pre_made_estimator_without_feature_columns_uses_all_numeric(tmp_path):
    text = BOOSTED_TREES.replace("feature_columns: all_numeric\n", "")
    assert resolve(load(tmp_path, text))["feature_columns"] == "all_numeric"


def test_from_keras_model_path_is_relative_to_the_config(tmp_path):
    out = resolve(load(tmp_path, KERAS_TO_ESTIMATOR))
    assert out["estimator"] == {"from_keras": {"model": os.path.join(str(tmp_path), "runs", "mlp_digits",
                                                                     "model.h5")}}
    assert out["feature_columns"] is None
    assert out["seed"] == 0 and out["run_config"]["tf_random_seed"] == 0


def test_absolute_and_home_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = KERAS_TO_ESTIMATOR.replace("runs/mlp_digits/model.h5", "/data/m.h5").replace(
        "runs/digits_estimator", "~/est")
    out = resolve(load(tmp_path, text))
    assert out["estimator"]["from_keras"]["model"] == "/data/m.h5"
    assert out["run_config"]["model_dir"] == str(tmp_path / "home" / "est")


def test_paths_do_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    config = load(tmp_path, KERAS_TO_ESTIMATOR)
    monkeypatch.chdir(tmp_path / "a")
    assert resolve(config)["run_config"]["model_dir"] == str(tmp_path / "runs" / "digits_estimator")


def test_registries_turn_names_into_their_registered_spelling(tmp_path):
    class Adam:
        def __init__(self, learning_rate=0.001):
            pass

    def sparse_categorical_crossentropy(y_true, y_pred):
        pass

    text = "data:\n  train: {dataset: sklearn.iris}\nmodel: {sequential: [Flatten]}\n" \
           "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"
    registries = {"layer": {"Flatten": lambda **kw: None}, "optimizer": {"Adam": Adam},
                  "loss": {"sparse_categorical_crossentropy": sparse_categorical_crossentropy}}
    out = resolve(load(tmp_path, text), registries)
    assert out["compile"]["optimizer"] == {"Adam": {}} and out["model"]["sequential"] == [{"Flatten": {}}]


def test_overrides_reach_the_resolved_config(tmp_path):
    (tmp_path / "mlp.yaml").write_text(MLP_DIGITS)
    out = load_and_resolve(str(tmp_path / "mlp.yaml"),
                           ["fit.epochs=2", "compile.optimizer.learning_rate=0.01", "output.dir=/elsewhere"])
    assert out["fit"]["epochs"] == 2
    assert out["compile"]["optimizer"] == {"Adam": {"learning_rate": 0.01}}
    assert out["output"]["save_model"] == "/elsewhere/model.h5"


@pytest.mark.parametrize("text", [MLP_DIGITS, DNN_PENGUINS, BOOSTED_TREES, KERAS_TO_ESTIMATOR])
def test_the_resolved_file_loads_back_to_the_same_config(tmp_path, text):
    first = resolve(load(tmp_path, text))
    written = dump_resolved(first, tmp_path / "out" / "config.resolved.yaml")
    assert written == str(tmp_path / "out" / "config.resolved.yaml")
    assert open(written).readline().startswith("# kestimator config with every default filled in")
    again = resolve(load_config(written))
    assert again == first
    assert not [f for f in os.listdir(tmp_path / "out") if f != "config.resolved.yaml"]   # no temp file left


def test_strings_that_look_like_numbers_keep_their_type_through_a_dump(tmp_path):
    text = DNN_PENGUINS.replace("vocabulary: [male, female]", "vocabulary: ['1e5', '0x1F', 'yes', '3']")
    first = resolve(load(tmp_path, text))
    dump_resolved(first, tmp_path / "r.yaml")
    vocab = yaml.safe_load(open(tmp_path / "r.yaml"))["feature_columns"][2]["embedding"]["categorical_vocabulary"]
    assert vocab["vocabulary"] == ["1e5", "0x1F", "yes", "3"]
    assert resolve(load_config(str(tmp_path / "r.yaml"))) == first


def test_validate_returns_the_same_resolution(tmp_path):
    config = load(tmp_path, BOOSTED_TREES)
    registries = {"estimator": {"BoostedTreesClassifier": lambda feature_columns, n_trees=100, max_depth=6,
                                learning_rate=0.1, l2_regularization=0.0, config=None, model_dir=None: None}}
    assert validate(config, registries) == resolve(config)
