"""Every config in configs/ trained through the `kestimator` command in a subprocess (small step budgets),
and the run directory checked: files, metrics.json against independently computed values, and the
evaluate / predict / export / inspect commands on the trained runs."""
import csv
import glob
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from kestimator.cli.main import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs")
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def kestimator(*args, timeout=120):
    """Run the command in a fresh interpreter, as a user would; returns the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "kestimator", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def config(name):
    return os.path.join(CONFIGS, name)


def assert_ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.json")) as f:
        return json.load(f)


def assert_common_run_files(run_dir, proc, curves=True):
    for name in ("config.resolved.yaml", "metrics.json", "train.log"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    assert os.path.isfile(os.path.join(run_dir, "curves.png")) == (curves and HAS_MATPLOTLIB)
    # the run ends with the table of final metrics, and the log holds what was printed
    assert "Final metrics" in proc.stdout and "metric" in proc.stdout.split("Final metrics", 1)[1]
    with open(os.path.join(run_dir, "train.log")) as f:
        log = f.read()
    assert "Final metrics" in log and f"run directory: {run_dir}" in log


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("mlp_digits"))
    proc = kestimator("train", config("mlp_digits.yaml"), "--output", run_dir, "--set", "fit.epochs=3",
                      "--set", "compile.optimizer.Adam.learning_rate=0.002")
    return run_dir, proc


@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("dnn_penguins"))
    proc = kestimator("train", config("dnn_penguins.yaml"), "--output", run_dir, "--set", "train.steps=200")
    return run_dir, proc


# ---- train: every config ------------------------------------------------------------------------------------

def test_mlp_digits_trains_and_writes_its_run_directory(mlp_run):
    run_dir, proc = mlp_run
    assert_ok(proc)
    assert_common_run_files(run_dir, proc)
    for name in ("model.h5", "history.jsonl", os.path.join("checkpoints", "best.h5")):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    assert not os.path.exists(os.path.join(run_dir, "backup"))      # a finished fit leaves no backup
    with open(os.path.join(run_dir, "config.resolved.yaml")) as f:
        resolved = yaml.safe_load(f)
    assert resolved["fit"]["epochs"] == 3                              # the --set overrides
    assert resolved["compile"]["optimizer"] == {"Adam": {"learning_rate": 0.002}}
    assert resolved["output"]["dir"] == run_dir                        # --output
    metrics = read_metrics(run_dir)
    assert metrics["kind"] == "keras" and metrics["epochs"] == 3 and metrics["eval_data"] == "validation"
    assert metrics["eval"]["accuracy"] > 0.8                           # 10 classes: chance is 0.1
    assert metrics["eval"]["loss"] < np.log(10)                        # below the loss of uniform guessing
    # the last epoch's validation logs and the final evaluation are the same model on the same data
    assert metrics["validation"]["accuracy"] == pytest.approx(metrics["eval"]["accuracy"], abs=1e-6)
    # no terminal: one plain line per epoch, no progress bar
    assert "\r" not in proc.stdout and "%|" not in proc.stdout
    assert [line.split(" - ")[:2] for line in proc.stdout.splitlines() if line.startswith("Epoch ")] == \
        [["Epoch 1/3", "47 steps"], ["Epoch 2/3", "47 steps"], ["Epoch 3/3", "47 steps"]]


def test_mlp_digits_metrics_match_the_saved_model_on_independently_loaded_data(mlp_run, capsys):
    """The saved model.h5, run by ks.models on scikit-learn's own arrays, gives metrics.json's accuracy."""
    from sklearn.datasets import load_digits

    from kestimator.models import load_model
    run_dir, proc = mlp_run
    assert_ok(proc)
    digits = load_digits()
    # the config's validation split: rows 1500: of the seed-0 permutation (sources shuffle by default)
    rows = np.random.default_rng(0).permutation(len(digits.target))[1500:]
    images = (digits.data[rows].reshape(-1, 8, 8) * 0.0625).astype(np.float32)
    model = load_model(os.path.join(run_dir, "model.h5"))
    accuracy = np.mean(np.argmax(model.predict(images, verbose=0), axis=1) == digits.target[rows])
    assert read_metrics(run_dir)["eval"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    # the --set learning rate reached the optimizer that trained the model
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.get_config()["learning_rate"] == pytest.approx(0.002)


def test_cnn_digits_functional_model(tmp_path):
    run_dir = str(tmp_path / "cnn")
    proc = kestimator("train", config("cnn_digits.yaml"), "--output", run_dir,
                      "--set", "fit.epochs=2", "--set", "fit.steps_per_epoch=25")
    assert_ok(proc)
    assert_common_run_files(run_dir, proc)
    metrics = read_metrics(run_dir)
    assert metrics["epochs"] == 2 and metrics["eval"]["accuracy"] > 0.5
    from kestimator.models import load_model
    model = load_model(os.path.join(run_dir, "model.h5"))
    assert model.input_names == ["pixels"]
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    assert kinds["conv1"] == "Conv2D" and kinds["joined"] == "Concatenate" and kinds["digit"] == "Dense"


def test_dnn_penguins_estimator_on_csv(penguins_run):
    run_dir, proc = penguins_run
    assert_ok(proc)
    assert_common_run_files(run_dir, proc)
    metrics = read_metrics(run_dir)
    assert metrics["kind"] == "estimator" and metrics["global_step"] == 200
    assert metrics["eval"]["global_step"] == 200
    # 3 species, the largest holds 44% of the penguins: a real classifier is far above that
    assert metrics["eval"]["accuracy"] > 0.85
    assert os.path.isfile(os.path.join(run_dir, "model.ckpt-200.h5"))
    assert os.path.isfile(os.path.join(run_dir, "checkpoint_index.json"))
    # standardize statistics: the mean / std of the training rows, computed here from the CSV itself
    with open(os.path.join(REPO, "configs", "data", "penguins.csv")) as f:
        rows = [r for r in csv.DictReader(f) if "NA" not in r.values()]
    order = np.random.default_rng(0).permutation(len(rows))[:int(0.8 * len(rows))]
    bill = np.array([float(rows[i]["bill_length_mm"]) for i in order])
    with open(os.path.join(run_dir, "feature_stats.json")) as f:
        stats = json.load(f)
    assert stats["bill_length_mm"]["mean"] == pytest.approx(bill.mean(), rel=1e-6)
    assert stats["bill_length_mm"]["std"] == pytest.approx(bill.std(), rel=1e-6)
    assert "year" not in stats


def test_linear_diabetes_beats_the_mean_predictor(tmp_path):
    from sklearn.datasets import load_diabetes
    run_dir = str(tmp_path / "linear")
    proc = kestimator("train", config("linear_diabetes.yaml"), "--output", run_dir, "--set", "train.steps=400")
    assert_ok(proc)
    assert_common_run_files(run_dir, proc)
    metrics = read_metrics(run_dir)
    target = load_diabetes().target
    rows = np.random.default_rng(0).permutation(len(target))[int(0.8 * len(target)):]
    # average_loss is the eval MSE; predicting the eval mean would give the eval variance
    assert metrics["global_step"] == 400
    assert metrics["eval"]["average_loss"] < 0.8 * np.var(target[rows])
    assert metrics["eval"]["label/mean"] == pytest.approx(target[rows].mean(), rel=1e-5)


def test_keras_to_estimator_continues_the_saved_mlp(mlp_run, tmp_path):
    mlp_dir, mlp_proc = mlp_run
    assert_ok(mlp_proc)
    run_dir = str(tmp_path / "k2e")
    proc = kestimator("train", config("keras_to_estimator.yaml"), "--output", run_dir, "--set", "train.steps=40",
                      "--set", f"estimator.from_keras.model={os.path.join(mlp_dir, 'model.h5')}")
    assert_ok(proc)
    assert_common_run_files(run_dir, proc)
    metrics = read_metrics(run_dir)
    assert metrics["global_step"] == 40 and metrics["eval"]["global_step"] == 40
    # it starts from the trained MLP (above 0.8), not from fresh weights
    assert metrics["eval"]["accuracy"] > 0.8
    assert os.path.isfile(os.path.join(run_dir, "model.ckpt-40.h5"))


def test_keras_to_estimator_without_the_keras_model_names_the_config_to_run_first(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    for name in ("mlp_digits.yaml", "keras_to_estimator.yaml"):
        (folder / name).write_text(open(config(name)).read())
    proc = kestimator("train", str(folder / "keras_to_estimator.yaml"))
    assert proc.returncode == 1
    missing = tmp_path / "runs" / "mlp_digits" / "model.h5"
    assert f"the Keras model file {missing} does not exist" in proc.stderr
    assert "kestimator train" in proc.stderr and "mlp_digits.yaml" in proc.stderr
    assert not (tmp_path / "runs").exists()          # nothing written before the check


def test_boosted_trees_cancer(tmp_path):
    """Trains when the lead's BoostedTreesClassifier is importable; until then the config is refused,
    naming the estimator and its line."""
    from kestimator.cli.registries import registries
    run_dir = str(tmp_path / "trees")
    proc = kestimator("train", config("boosted_trees_cancer.yaml"), "--output", run_dir,
                      "--set", "estimator.BoostedTreesClassifier.n_trees=20")
    if "BoostedTreesClassifier" not in registries()["estimator"]:
        assert proc.returncode == 1
        assert "boosted_trees_cancer.yaml, line 11: estimator.BoostedTreesClassifier: unknown estimator" in proc.stderr
        assert not os.path.exists(run_dir)
        return
    assert_ok(proc)
    assert_common_run_files(run_dir, proc, curves=False)     # trees write no loss summaries to plot
    metrics = read_metrics(run_dir)
    assert metrics["kind"] == "estimator" and metrics["eval"]["accuracy"] > 0.9   # majority class: 0.63
    assert metrics["eval"]["accuracy_baseline"] == pytest.approx(
        max(np.mean(labels := _cancer_eval_labels()), 1 - np.mean(labels)), abs=1e-6)


def _cancer_eval_labels():
    """The eval rows of boosted_trees_cancer.yaml (450: of the seed-0 permutation), from scikit-learn."""
    from sklearn.datasets import load_breast_cancer
    target = load_breast_cancer().target
    return target[np.random.default_rng(0).permutation(len(target))[450:]]


def test_the_same_config_and_seed_give_the_same_run(tmp_path, capsys):
    """Seeding covers weights, shuffling and the Dropout masks: two runs agree to the last bit."""
    results = []
    for name in ("a", "b"):
        assert main(["train", config("mlp_digits.yaml"), "--output", str(tmp_path / name),
                     "--set", "fit.epochs=2", "--set", "fit.steps_per_epoch=10", "--set", "callbacks=[]"]) == 0
        results.append(read_metrics(str(tmp_path / name)))
    assert results[0]["train"] == results[1]["train"] and results[0]["eval"] == results[1]["eval"]


# ---- evaluate / predict / export / inspect on trained runs ---------------------------------------------------

def test_evaluate_predict_export_a_keras_run(mlp_run, capsys):
    run_dir, proc = mlp_run
    assert_ok(proc)
    assert main(["evaluate", config("mlp_digits.yaml"), "--output", run_dir]) == 0
    out = capsys.readouterr().out
    assert "Evaluation on data.validation" in out and "accuracy" in out
    accuracy = read_metrics(run_dir)["eval"]["accuracy"]

    assert main(["predict", config("mlp_digits.yaml"), "--output", run_dir]) == 0
    with np.load(os.path.join(run_dir, "predictions.npz")) as saved:
        probs, class_ids, labels = saved["predictions"], saved["class_ids"], saved["label"]
    assert probs.shape == (297, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(class_ids, probs.argmax(axis=1))
    assert np.mean(class_ids == labels) == pytest.approx(accuracy, abs=1e-6)

    csv_path = os.path.join(run_dir, "p.csv")
    assert main(["predict", config("mlp_digits.yaml"), "--output", run_dir, "--out-file", csv_path]) == 0
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 297 and [int(r["class_ids"]) for r in rows] == class_ids.tolist()
    assert float(rows[0]["predictions_3"]) == pytest.approx(probs[0, 3], rel=1e-6)

    assert main(["export", config("mlp_digits.yaml"), "--output", run_dir]) == 0
    from kestimator.models import load_model
    exported = load_model(os.path.join(run_dir, "export", "model.h5"), compile=False)
    np.testing.assert_allclose(exported.predict(np.zeros((2, 8, 8), np.float32), verbose=0),
                               load_model(os.path.join(run_dir, "model.h5")).predict(
                                   np.zeros((2, 8, 8), np.float32), verbose=0), rtol=1e-6)
    with open(os.path.join(run_dir, "train.log")) as f:
        log = f.read()
    assert "kestimator evaluate" in log and "kestimator export" in log     # every command appends its output


def test_predict_and_export_an_estimator_run(penguins_run, capsys):
    import kestimator as ks
    run_dir, proc = penguins_run
    assert_ok(proc)
    assert main(["predict", config("dnn_penguins.yaml"), "--output", run_dir]) == 0
    with np.load(os.path.join(run_dir, "predictions.npz")) as saved:
        class_ids, labels, classes = saved["class_ids"].reshape(-1), saved["label"], saved["classes"].reshape(-1)
    assert len(class_ids) == len(labels) == 67
    vocabulary = np.array(["Adelie", "Chinstrap", "Gentoo"])
    assert np.array_equal(vocabulary[class_ids], classes)
    assert np.mean(classes == labels) == pytest.approx(read_metrics(run_dir)["eval"]["accuracy"], abs=1e-6)

    assert main(["export", config("dnn_penguins.yaml"), "--output", run_dir]) == 0
    exports = glob.glob(os.path.join(run_dir, "export", "*"))
    assert len(exports) == 1
    serve = ks.saved_model.load(exports[0]).signatures["serving_default"]
    # two penguins from the CSV (an Adelie and a Gentoo), raw values: the export normalizes them itself
    out = serve(bill_length_mm=np.array([39.1, 46.1], np.float32), bill_depth_mm=np.array([18.7, 13.2], np.float32),
                flipper_length_mm=np.array([181, 211], np.float32), body_mass_g=np.array([3750, 4500], np.float32),
                island=np.array(["Torgersen", "Biscoe"], object), sex=np.array(["male", "female"], object))
    scores = np.asarray(out["scores"] if "scores" in out else out["probabilities"])
    assert scores.shape == (2, 3) and list(scores.argmax(axis=1)) == [0, 2]


def test_inspect_a_keras_model_and_a_model_dir(mlp_run, penguins_run, capsys):
    mlp_dir, penguins_dir = mlp_run[0], penguins_run[0]
    assert main(["inspect", os.path.join(mlp_dir, "model.h5")]) == 0
    out = capsys.readouterr().out
    assert "Keras model file" in out and "model_weights/dense/dense/kernel:0" in out and "(64, 128)" in out
    assert main(["inspect", penguins_dir]) == 0
    out = capsys.readouterr().out
    assert f"model_dir {penguins_dir}: 3 checkpoint(s)" in out     # keep_checkpoint_max: 3
    assert "model.ckpt-200.h5" in out and "global_step" in out
