"""Schema validation: every problem is a ConfigError naming the key path, the file and the line.

The registries are small fakes with Keras- and Estimator-like signatures, so that the checks that
introspect signatures (unknown arguments, types from annotations and defaults, required arguments) are
tested against known answers.
"""
import re
import textwrap
from typing import Optional

import pytest

from kestimator.cli.config_loader import load_config
from kestimator.cli.schema import validate
from kestimator.errors import ConfigError, InvalidArgumentError


class Layer:
    def __init__(self, trainable=True, name=None, dtype=None, **kwargs):
        pass


class Dense(Layer):
    def __init__(self, units: int, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)


class Flatten(Layer):
    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)


class Dropout(Layer):
    def __init__(self, rate: float, seed: "int | None" = None, **kwargs):
        super().__init__(**kwargs)


class Concatenate(Layer):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)


class Optimizer:
    def __init__(self, name, clipnorm=None, **kwargs):
        pass


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, name="Adam",
                 **kwargs):
        super().__init__(name, **kwargs)


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(name, **kwargs)


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, name="RMSprop", **kwargs):
        super().__init__(name, **kwargs)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    pass


class MeanSquaredError:
    def __init__(self, reduction="auto", name="mean_squared_error"):
        pass


def accuracy(y_true, y_pred):
    pass


class EarlyStopping:
    def __init__(self, monitor="val_loss", min_delta=0, patience=0, restore_best_weights=False):
        pass


class ModelCheckpoint:
    def __init__(self, filepath, monitor="val_loss", save_best_only=False, save_freq="epoch"):
        pass


class DNNClassifier:
    def __init__(self, hidden_units, feature_columns, model_dir=None, n_classes=2, optimizer="Adagrad",
                 dropout: Optional[float] = None, config=None):
        pass


def relu(x):
    pass


def softmax(x):
    pass


REGISTRIES = {
    "layer": {"Dense": Dense, "Flatten": Flatten, "Dropout": Dropout, "Concatenate": Concatenate},
    "optimizer": {"Adam": Adam, "SGD": SGD, "RMSprop": RMSprop},
    "loss": {"sparse_categorical_crossentropy": sparse_categorical_crossentropy,
             "MeanSquaredError": MeanSquaredError},
    "metric": {"accuracy": accuracy},
    "callback": {"EarlyStopping": EarlyStopping, "ModelCheckpoint": ModelCheckpoint},
    "estimator": {"DNNClassifier": DNNClassifier},
    "activation": {"relu": relu, "softmax": softmax},
}

KERAS = """\
seed: 0
data:
  train: {dataset: sklearn.iris}
model:
  sequential:
    - Dense: {units: 3}
compile:
  loss: sparse_categorical_crossentropy
"""
ESTIMATOR = """\
data:
  train: {dataset: sklearn.iris}
estimator:
  DNNClassifier: {hidden_units: [8], n_classes: 3}
"""


def write(tmp_path, text):
    path = tmp_path / "cfg.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def problems(tmp_path, text, overrides=(), registries=REGISTRIES):
    """The ConfigError message for a config that must fail, and the file's path."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        validate(load_config(path, overrides), registries)
    return str(info.value), path, info.value.issues


def test_the_base_configs_are_valid(tmp_path):
    assert validate(load_config(write(tmp_path, KERAS)), REGISTRIES)["model"] == {
        "sequential": [{"Dense": {"units": 3}}]}
    assert validate(load_config(write(tmp_path, ESTIMATOR)), REGISTRIES)["estimator"] == {
        "DNNClassifier": {"hidden_units": [8], "n_classes": 3}}


# ---- keys and types ---------------------------------------------------------------------------------------

def test_unknown_section_suggests_the_close_one(tmp_path):
    message, path, _ = problems(tmp_path, KERAS + "fitt: {epochs: 2}\n")
    assert message.startswith(f"{path}, line 9: fitt: unknown section; did you mean 'fit'? (allowed: callbacks, ")


def test_unknown_key_names_path_line_allowed_keys_and_suggestion(tmp_path):
    message, path, _ = problems(tmp_path, KERAS + "fit:\n  epochs: 2\n  batchsize: 64\n")
    assert message == (f"{path}, line 11: fit.batchsize: unknown key in fit; did you mean 'batch_size'? "
                       f"(allowed keys: batch_size, epochs, initial_epoch, shuffle, steps_per_epoch, "
                       f"validation_split, verbose)")


@pytest.mark.parametrize("line, expected", [
    ("fit: {epochs: two}", "fit.epochs: expected an integer >= 1, got a string 'two'"),
    ("fit: {epochs: 0}", "fit.epochs: expected an integer >= 1, got 0"),
    ("fit: {epochs: 2.5}", "fit.epochs: expected an integer >= 1, got a number 2.5"),
    ("fit: {shuffle: 1}", "fit.shuffle: expected true or false, got an integer 1"),
    ("fit: {validation_split: 1.0}", "fit.validation_split: expected a number >= 0.0 < 1.0, got 1.0"),
    ("fit: {verbose: 3}", "fit.verbose: expected an integer >= 0 <= 2, got 3"),
    ("fit: [1, 2]", "fit: expected a mapping (fit) with keys"),
    ("seed: -1", "seed: expected an integer >= 0, got -1"),
    ("device: tpu", "device: expected a device: auto, cpu, gpu, /cpu:0, /gpu:1 ..., got 'tpu'"),
    ("output: {dir: 3}", "output.dir: expected a path, got an integer 3"),
])
def test_wrong_types_and_ranges(tmp_path, line, expected):
    text = KERAS.replace("seed: 0\n", "") + line + "\n"
    message, path, _ = problems(tmp_path, text)
    assert message.startswith(f"{path}, line 8: {expected}")


def test_missing_required_key_is_reported_at_its_mapping(tmp_path):
    message, path, _ = problems(tmp_path, KERAS.replace("  loss: sparse_categorical_crossentropy\n",
                                                        "  metrics: [accuracy]\n"))
    assert message == f"{path}, line 7: compile.loss: missing required key in compile"


def test_missing_data_section(tmp_path):
    message, path, _ = problems(tmp_path, KERAS.replace("data:\n  train: {dataset: sklearn.iris}\n", ""))
    assert message == f"{path}, line 1: data: missing required section"


def test_all_problems_are_reported_together(tmp_path):
    message, path, issues = problems(tmp_path, KERAS + "fit: {epochs: 0, batch_size: x}\nfitt: 1\n")
    assert message.splitlines()[0] == f"3 problems in {path}:"
    assert [(i.key, i.loc.line) for i in issues] == [("fitt", 10), ("fit.epochs", 9), ("fit.batch_size", 9)]


def test_a_plain_dict_without_lines_still_names_the_key():
    config = {"data": {"train": {"dataset": "sklearn.iris"}}, "model": {"sequential": [{"Dense": {"units": 3}}]},
              "compile": {"loss": "sparse_categorical_crossentropy"}, "fit": {"epochs": "x"}}
    with pytest.raises(ConfigError, match=r"fit\.epochs: expected an integer >= 1, got a string 'x'"):
        validate(config, REGISTRIES)


def test_registries_must_be_a_mapping_of_mappings(tmp_path):
    with pytest.raises(InvalidArgumentError, match="registries must map each kind"):
        validate(load_config(write(tmp_path, KERAS)), {"layer": [Dense]})


# ---- --set overrides are validated the same way ------------------------------------------------------------

def test_override_errors_name_the_override(tmp_path):
    message, _, _ = problems(tmp_path, KERAS, overrides=["fit.epochs=0"])
    assert message == "--set fit.epochs=0: fit.epochs: expected an integer >= 1, got 0"


def test_override_shorthand_error_names_the_full_key_path(tmp_path):
    text = KERAS.replace("compile:\n", "compile:\n  optimizer: {Adam: {learning_rate: 0.001}}\n")
    message, _, _ = problems(tmp_path, text, overrides=["compile.optimizer.learnin_rate=0.01"])
    assert message.startswith("--set compile.optimizer.learnin_rate=0.01: compile.optimizer.Adam.learnin_rate: "
                              "unknown argument of optimizer 'Adam'; did you mean 'learning_rate'?")


# ---- registry names and their arguments --------------------------------------------------------------------

def test_unknown_registry_name_suggests_and_lists_the_known_ones(tmp_path):
    message, path, _ = problems(tmp_path, KERAS.replace("- Dense: {units: 3}", "- Dnse: {units: 3}"))
    assert message == (f"{path}, line 6: model.sequential.0.Dnse: unknown layer 'Dnse'; did you mean 'Dense'? "
                       f"(known layers: Concatenate, Dense, Dropout, Flatten)")


def test_names_are_found_ignoring_case_and_underscores_and_resolve_to_the_registered_one(tmp_path):
    text = KERAS.replace("compile:\n", "compile:\n  optimizer: adam\n  metrics: [Accuracy]\n") \
                .replace("sparse_categorical_crossentropy", "mean_squared_error")
    out = validate(load_config(write(tmp_path, text)), REGISTRIES)
    assert out["compile"]["optimizer"] == {"Adam": {}}
    assert out["compile"]["loss"] == {"MeanSquaredError": {}}
    assert out["compile"]["metrics"] == [{"accuracy": {}}]


def test_unknown_argument_with_suggestion_and_file_line(tmp_path):
    text = KERAS.replace("compile:\n", "compile:\n  optimizer:\n    Adam:\n      learnin_rate: 0.01\n")
    message, path, _ = problems(tmp_path, text)
    assert message == (f"{path}, line 10: compile.optimizer.Adam.learnin_rate: unknown argument of optimizer "
                       f"'Adam'; did you mean 'learning_rate'? (allowed: amsgrad, beta_1, beta_2, clipnorm, "
                       f"clipvalue, epsilon, global_clipnorm, learning_rate, lr, name)")


def test_base_class_arguments_and_pass_through_keywords_are_allowed(tmp_path):
    # Dense(**kwargs) -> Layer(trainable, name, dtype, **kwargs): input_shape passes through to the base.
    text = KERAS.replace("- Dense: {units: 3}",
                         "- Flatten: {input_shape: [4], name: flat}\n    - Dense: {units: 3, trainable: false}")
    assert validate(load_config(write(tmp_path, text)), REGISTRIES)["model"]["sequential"][0] == {
        "Flatten": {"input_shape": [4], "name": "flat"}}


def test_closed_signature_refuses_pass_through_names(tmp_path):
    text = KERAS + "callbacks:\n  - EarlyStopping: {patience: 2, name: es}\n"
    message, path, _ = problems(tmp_path, text)
    assert message.startswith(f"{path}, line 10: callbacks.0.EarlyStopping.name: unknown argument of callback "
                              f"'EarlyStopping' (allowed: min_delta, monitor, patience, restore_best_weights)")


@pytest.mark.parametrize("layer, expected", [
    # annotation `units: int`
    ("Dense: {units: many}", "model.sequential.0.Dense.units: argument 'units' of layer 'Dense' expects an "
                             "integer, got a string 'many'"),
    ("Dense: {units: 2.5}", "argument 'units' of layer 'Dense' expects an integer, got a number 2.5"),
    # default True -> boolean
    ("Dense: {units: 3, use_bias: 'yes'}", "argument 'use_bias' of layer 'Dense' expects true or false, got a "
                                           "string 'yes'"),
    # string annotation "int | None"
    ("Dropout: {rate: 0.5, seed: 1.5}", "argument 'seed' of layer 'Dropout' expects an integer or null, got a "
                                        "number 1.5"),
    # annotation float accepts an integer but not a list
    ("Dropout: {rate: [0.5]}", "argument 'rate' of layer 'Dropout' expects a number, got a list [0.5]"),
])
def test_argument_types_from_annotations_and_defaults(tmp_path, layer, expected):
    message, path, _ = problems(tmp_path, KERAS.replace("Dense: {units: 3}", layer))
    assert message.startswith(f"{path}, line 6: model.sequential.0.")
    assert expected in message


def test_number_default_takes_int_or_float_but_not_a_string(tmp_path):
    ok = KERAS + "callbacks:\n  - EarlyStopping: {min_delta: 0.01, patience: 2}\n"
    validate(load_config(write(tmp_path, ok)), REGISTRIES)
    message, path, _ = problems(tmp_path, KERAS + "callbacks:\n  - EarlyStopping: {patience: '2'}\n")
    assert message == (f"{path}, line 10: callbacks.0.EarlyStopping.patience: argument 'patience' of callback "
                       f"'EarlyStopping' expects a number, got a string '2'")


def test_string_default_also_takes_a_number(tmp_path):
    # save_freq='epoch' also takes a step count, so a string default cannot refuse numbers.
    text = KERAS + "callbacks:\n  - ModelCheckpoint: {filepath: m.h5, save_freq: 100}\n"
    validate(load_config(write(tmp_path, text)), REGISTRIES)


def test_missing_required_argument(tmp_path):
    message, path, _ = problems(tmp_path, KERAS + "callbacks:\n  - ModelCheckpoint: {monitor: loss}\n")
    assert message == (f"{path}, line 10: callbacks.0.ModelCheckpoint.filepath: missing required argument of "
                       f"callback 'ModelCheckpoint'")
    message, path, _ = problems(tmp_path, KERAS.replace("Dense: {units: 3}", "Dense: {activation: relu}"))
    assert message == f"{path}, line 6: model.sequential.0.Dense.units: missing required argument of layer 'Dense'"


def test_arguments_kestimator_fills_in_are_refused_with_their_source(tmp_path):
    text = ESTIMATOR.replace("n_classes: 3}", "n_classes: 3, model_dir: /tmp/x}")
    message, path, _ = problems(tmp_path, text)
    assert message == (f"{path}, line 4: estimator.DNNClassifier.model_dir: 'model_dir' of estimator "
                       f"'DNNClassifier' is set by kestimator from run_config.model_dir; remove it here")


def test_nested_references_are_checked_against_their_own_registry(tmp_path):
    text = ESTIMATOR.replace("n_classes: 3}", "n_classes: 3,\n                  optimizer: {Adamm: {}}}")
    message, path, _ = problems(tmp_path, text)
    assert message.startswith(f"{path}, line 5: estimator.DNNClassifier.optimizer.Adamm: unknown optimizer "
                              f"'Adamm'; did you mean 'Adam'?")
    text = KERAS.replace("Dense: {units: 3}", "Dense: {units: 3, activation: relux}")
    message, path, _ = problems(tmp_path, text)
    assert message.startswith(f"{path}, line 6: model.sequential.0.Dense.activation: unknown activation 'relux'; "
                              f"did you mean 'relu'?")


def test_a_kind_missing_from_the_registries_has_no_valid_names(tmp_path):
    registries = {k: v for k, v in REGISTRIES.items() if k != "callback"}
    message, path, _ = problems(tmp_path, KERAS + "callbacks: [EarlyStopping]\n", registries=registries)
    assert message == (f"{path}, line 9: callbacks.0: unknown callback 'EarlyStopping' "
                       f"(known callbacks: (none))")


def test_reference_with_several_names_or_bad_arguments(tmp_path):
    message, path, _ = problems(tmp_path, KERAS.replace("Dense: {units: 3}", "Dense: {units: 3}\n      Flatten: {}"))
    assert message.startswith(f"{path}, line 6: model.sequential.0: expected a layer name or a mapping "
                              f"{{LayerName: {{arguments}}}}, got a mapping")
    message, path, _ = problems(tmp_path, KERAS.replace("Dense: {units: 3}", "Dense: [3]"))
    assert message == (f"{path}, line 6: model.sequential.0.Dense: the arguments of layer 'Dense' must be a "
                       f"mapping {{argument: value}}, got a list [3]")


# ---- model shapes ------------------------------------------------------------------------------------------

FUNCTIONAL = """\
data:
  train: {dataset: sklearn.iris}
model:
  functional:
    inputs:
      - {name: a, shape: [4]}
      - {name: b, shape: [null, 2]}
    layers:
      - {name: h, layer: {Dense: {units: 8}}, inbound: a}
      - {name: joined, layer: Concatenate, inbound: [h, b]}
      - {name: out, layer: {Dense: {units: 3}}, inbound: joined}
    outputs: out
compile: {loss: sparse_categorical_crossentropy}
"""


def test_functional_model_resolves(tmp_path):
    out = validate(load_config(write(tmp_path, FUNCTIONAL)), REGISTRIES)["model"]["functional"]
    assert out["inputs"][1] == {"name": "b", "shape": [None, 2], "dtype": "float32"}
    assert out["layers"][0] == {"name": "h", "layer": {"Dense": {"units": 8}}, "inbound": ["a"]}
    assert out["layers"][1]["layer"] == {"Concatenate": {}} and out["outputs"] == ["out"]


@pytest.mark.parametrize("old, new, expected", [
    ("inbound: [h, b]", "inbound: [h, bb]", "line 10: model.functional.layers.1.inbound.1: inbound 'bb' is not "
                                            "defined (a layer's inputs must be model inputs or layers listed "
                                            "above it); did you mean 'b'?"),
    ("inbound: a}", "inbound: joined}", "line 9: model.functional.layers.0.inbound: inbound 'joined' is defined "
                                        "below"),
    ("{name: out,", "{name: h,", "line 11: model.functional.layers.2.name: the name 'h' is used twice"),
    ("outputs: out", "outputs: [out, ou]", "line 12: model.functional.outputs.1: output 'ou' is not an input or "
                                           "layer of the model; did you mean 'out'?"),
    ("shape: [4]", "shape: []", "line 6: model.functional.inputs.0.shape: expected at least 1 items, got 0"),
])
def test_functional_graph_errors(tmp_path, old, new, expected):
    message, path, _ = problems(tmp_path, FUNCTIONAL.replace(old, new))
    assert f"{path}, {expected}" in message


def test_model_takes_exactly_one_form(tmp_path):
    message, path, _ = problems(tmp_path, KERAS.replace("model:\n", "model:\n  functional: null\n  sequence: []\n"))
    assert message.startswith(f"{path}, line 6: model.sequence: unknown key in model; did you mean 'sequential'?")
    message, path, _ = problems(tmp_path, KERAS.replace("  sequential:\n    - Dense: {units: 3}\n", "  {}\n"))
    assert message == f"{path}, line 4: model: model needs exactly one of sequential, functional"


# ---- data sources ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, expected", [
    ("{dataset: sklearn.digitz}", "data.train.dataset: expected one of 'sklearn.digits', 'sklearn.iris', "
                                  "'sklearn.wine', 'sklearn.breast_cancer', 'sklearn.diabetes', got 'sklearn.digitz';"
                                  " did you mean 'sklearn.digits'?"),
    ("{split: '0:10'}", "data.train: a data source needs one of: dataset, csv, npz, h5, records"),
    ("{csv: a.csv, npz: b.npz}", "data.train.npz: a data source takes only one of dataset, csv, npz, h5, records; "
                                 "found csv, npz"),
    ("{csv: a.csv, split: '0:abc'}", "data.train.split: split '0:abc': 'abc' is not a number"),
    ("{csv: a.csv, split: '0.5:1.5'}", "data.train.split: split '0.5:1.5': fractions must lie in [0, 1], got 1.5"),
    ("{csv: a.csv, split: 1500}", "data.train.split: expected a split string such as '0:1500' or '0.8:', got an "
                                  "integer 1500"),
    ("{npz: a.npz, label: y}", "data.train.label: 'label' applies to csv and records sources, not to this npz "
                               "source"),
    ("{csv: a.csv, x: feats}", "data.train.x: 'x' applies to npz and h5 sources, not to this csv source"),
    ("{records: a.tfrecord}", "data.train.feature_spec: a records source needs feature_spec"),
    ("{records: a.tfrecord, feature_spec: {x: {dtype: float32}}, label: y}",
     "data.train.label: the label 'y' is not in feature_spec (x)"),
    ("{records: a.tfrecord, feature_spec: {x: {dtype: float16}}}",
     "data.train.feature_spec.x.dtype: expected one of 'float32', 'int64', 'string', got 'float16'"),
    ("{csv: a.csv, image_shape: [8, 0]}", "data.train.image_shape.1: expected an integer >= 1, got 0"),
    ("{csv: a.csv, delimiter: ';;'}", "data.train.delimiter: expected one character, got ';;'"),
    ("{csv: a.csv, labl: y}", "data.train.labl: unknown key in a data source; did you mean 'label'?"),
])
def test_data_source_errors(tmp_path, source, expected):
    message, path, _ = problems(tmp_path, KERAS.replace("{dataset: sklearn.iris}", source))
    assert message.startswith(f"{path}, line 3: {expected}")


def test_data_needs_a_source(tmp_path):
    message, path, _ = problems(tmp_path, KERAS.replace("  train: {dataset: sklearn.iris}\n", "  train: null\n"))
    assert message == f"{path}, line 2: data: data needs at least one source: train, eval, validation, test"


# ---- feature columns ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("column, expected", [
    ("numerc: {key: a}", "feature_columns.0.numerc: unknown column kind; did you mean 'numeric'?"),
    ("numeric: {key: a, normalizer: zscore}", "feature_columns.0.numeric.normalizer: expected one of "
                                              "'standardize', 'min_max', got 'zscore'"),
    ("bucketized: {key: a, boundaries: [3, 1]}", "feature_columns.0.bucketized.boundaries: boundaries must be "
                                                 "strictly increasing, got [3.0, 1.0]"),
    ("categorical_vocabulary: {key: a, vocabulary: [x, y, x]}",
     "feature_columns.0.categorical_vocabulary.vocabulary.2: vocabulary entry 'x' is repeated"),
    ("categorical_vocabulary: {key: a}", "feature_columns.0.categorical_vocabulary: categorical_vocabulary needs "
                                         "exactly one of vocabulary, vocabulary_file"),
    ("indicator: {numeric: {key: a}}", "feature_columns.0.indicator: indicator wraps exactly one categorical "
                                       "column (categorical_vocabulary, identity, hash_bucket, bucketized, "
                                       "crossed); found 0"),
    ("embedding: {identity: {key: a, num_buckets: 4}}", "feature_columns.0.embedding.dimension: missing "
                                                        "required key in an embedding column"),
    ("embedding: {identity: {key: a, num_buckets: 4}, dimension: 2, combine: sum}",
     "feature_columns.0.embedding.combine: unknown key in an embedding column (besides its categorical column); "
     "did you mean 'combiner'?"),
    ("crossed: {keys: [a], hash_bucket_size: 10}", "feature_columns.0.crossed.keys: expected at least 2 items, "
                                                   "got 1"),
    ("hash_bucket: {key: a}", "feature_columns.0.hash_bucket.hash_bucket_size: missing required key in a "
                              "hash_bucket column"),
])
def test_feature_column_errors(tmp_path, column, expected):
    text = ESTIMATOR + f"feature_columns:\n  - {column}\n"
    message, path, _ = problems(tmp_path, text)
    assert message.startswith(f"{path}, line 6: {expected}")


def test_feature_columns_must_be_all_numeric_or_a_list(tmp_path):
    message, path, _ = problems(tmp_path, ESTIMATOR + "feature_columns: numeric\n")
    assert message == (f"{path}, line 5: feature_columns: expected one of 'all_numeric', got 'numeric'; "
                       f"did you mean 'all_numeric'?")


# ---- sections that go together -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    (ESTIMATOR + "compile: {loss: mse}\n", "line 5: compile: this section applies to a Keras model (the model "
                                           "section), which this config does not have"),
    (KERAS + "train: {steps: 10}\n", "line 9: train: this section applies to an estimator (the estimator "
                                     "section), which this config does not have"),
    ("data:\n  train: {dataset: sklearn.iris}\n", "line 1: the config needs a model section (a Keras model) or "
                                                  "an estimator section"),
    (KERAS + ESTIMATOR.split("\n", 2)[2], "line 9: estimator: a pre-made estimator and a model section exclude "
                                          "each other"),
    (KERAS + "fit: {validation_split: 0.2}\ndata:\n", None),
    (ESTIMATOR + "run_config: {save_checkpoints_steps: 10, save_checkpoints_secs: 60}\n",
     "line 5: run_config.save_checkpoints_secs: save_checkpoints_steps and save_checkpoints_secs exclude each "
     "other"),
    (ESTIMATOR + "train: {steps: 10, max_steps: 100}\n", "line 5: train.max_steps: steps and max_steps exclude "
                                                         "each other"),
    (KERAS + "fit: {epochs: 2, initial_epoch: 2}\n", "line 9: fit.initial_epoch: initial_epoch (2) must be below "
                                                     "epochs (2)"),
    ("data:\n  train: {dataset: sklearn.iris}\nestimator: {from_keras: {model: m.h5}}\nfeature_columns: all_numeric\n",
     "line 4: feature_columns: this section applies to a pre-made estimator, which this config does not have"),
    ("data:\n  train: {dataset: sklearn.iris}\nestimator: {from_keras: {}}\n",
     "line 3: estimator.from_keras.model: missing required key in from_keras"),
])
def test_cross_section_rules(tmp_path, text, expected):
    if expected is None:     # duplicate `data` key: caught by the loader with both lines
        with pytest.raises(ConfigError, match=re.escape("duplicate key 'data' (first written on line 2)")):
            load_config(write(tmp_path, text))
        return
    message, path, _ = problems(tmp_path, text)
    assert message.startswith(f"{path}, {expected}")


def test_validation_split_and_validation_data_exclude_each_other(tmp_path):
    text = KERAS.replace("  train: {dataset: sklearn.iris}\n",
                         "  train: {dataset: sklearn.iris}\n  validation: {dataset: sklearn.iris}\n")
    message, path, _ = problems(tmp_path, text + "fit: {validation_split: 0.2}\n")
    assert message == (f"{path}, line 10: fit.validation_split: fit.validation_split and data.validation both "
                       f"give validation data; keep one")
