"""BoostedTrees export_saved_model: the served predictions against estimator.predict on held-out rows.

Reference: the estimator's own predict (the NumPy TreeEnsemble traversal) on the same rows; the export
serves through a different code path (graph ops over the ensemble arrays read back from variables.h5).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kestimator as ks
from kestimator import engine as ke
from kestimator.cli.main import main

fc = ks.feature_column
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLORS = np.array([b"red", b"green", b"blue", b"pink", b""], dtype=object)   # pink: OOV; "": missing


def _data(n, seed):
    """Numeric (3 wide), a bucketized source, a string vocabulary column and an identity column, with
    NaN in both float features so the learned default directions are used."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    size = rng.uniform(0, 10, n).astype(np.float32)
    color = rng.choice(COLORS, n, p=[0.3, 0.25, 0.25, 0.1, 0.1])
    k = rng.integers(-1, 5, n).astype(np.int64)                       # -1: missing id
    score = x[:, 0] + (size > 5) + 1.5 * (color == b"red") - (k == 2) + 0.3 * rng.normal(size=n)
    x[rng.random((n, 3)) < 0.15] = np.nan
    size[rng.random(n) < 0.15] = np.nan
    return {"x": x, "size": size, "color": color, "k": k}, score


def _columns():
    return [fc.numeric_column("x", shape=[3]),
            fc.bucketized_column(fc.numeric_column("size"), boundaries=[2.0, 4.0, 6.5, 8.0]),
            fc.indicator_column(fc.categorical_column_with_vocabulary_list("color", ["red", "green", "blue"])),
            fc.indicator_column(fc.categorical_column_with_identity("k", 5))]


def _receiver():
    phs = {"x": ke.placeholder(ke.float32, [None, 3], name="x"),
           "size": ke.placeholder(ke.float32, [None], name="size"),
           "color": ke.placeholder(ke.string, [None], name="color"), "k": ke.placeholder(ke.int64, [None], name="k")}
    return ks.estimators.export.ServingInputReceiver(phs, phs)


def _input(features, y=None):
    return ks.estimators.inputs.numpy_input_fn(features, y, batch_size=10_000, num_epochs=1, shuffle=False)


def _trained(tmp_path, kind):
    feats, score = _data(800, 0)
    if kind == "binary":
        est, y = ks.estimators.BoostedTreesClassifier(_columns(), model_dir=str(tmp_path / kind), n_trees=15,
                                                      max_depth=4, center_bias=True), (score > 1).astype(np.int64)
    elif kind == "multiclass":
        est = ks.estimators.BoostedTreesClassifier(_columns(), model_dir=str(tmp_path / kind), n_trees=8, max_depth=3,
                                                   n_classes=3, label_vocabulary=["low", "mid", "high"])
        y = np.array(["low", "mid", "high"], dtype=object)[np.digitize(score, [0.3, 1.5])]
    else:
        est, y = ks.estimators.BoostedTreesRegressor(_columns(), model_dir=str(tmp_path / kind), n_trees=15,
                                                     max_depth=4, l2_regularization=1.0), score.astype(np.float64)
    est.train(_input(feats, y))
    return est


@pytest.mark.parametrize("kind,keys", [
    ("binary", ["logits", "probabilities", "class_ids", "logistic", "classes"]),
    ("multiclass", ["logits", "probabilities", "class_ids", "classes"]),
    ("regression", ["predictions"])])
def test_exported_predictions_equal_estimator_predict(tmp_path, kind, keys):
    est = _trained(tmp_path, kind)
    held_out, _ = _data(300, 1)
    want = next(est.predict(_input(held_out), yield_single_examples=False))
    path = est.export_saved_model(str(tmp_path / "export"), _receiver)
    served = ks.saved_model.load(path).signatures["serving_default"](**held_out)
    assert sorted(served) == sorted(keys) == sorted(want)
    for key in keys:
        assert served[key].shape == want[key].shape and served[key].dtype == want[key].dtype, key
        if want[key].dtype == object:
            assert served[key].tolist() == want[key].tolist(), key
        else:
            np.testing.assert_allclose(served[key], want[key], rtol=1e-6, atol=1e-6, err_msg=key)
    if kind == "multiclass":
        assert set(served["classes"].ravel()) <= {b"low", b"mid", b"high"}
    # the rows exercise what they should: NaN features and missing / OOV categories, both directions taken
    assert np.isnan(held_out["x"]).any() and (held_out["color"] == b"pink").any() and (held_out["k"] < 0).any()
    if kind == "binary":
        assert 0 < served["class_ids"].mean() < 1


def test_the_ensemble_is_data_in_the_variables_file(tmp_path):
    """The graph holds one BoostedTreesEnsemblePredict op; the trees are the Variables it reads."""
    est = _trained(tmp_path, "binary")
    path = est.export_saved_model(str(tmp_path / "export"), _receiver)
    with open(os.path.join(path, "saved_model.json")) as f:
        doc = json.load(f)
    types = [op["type"] for op in doc["ops"]]
    assert types.count("BoostedTreesEnsemblePredict") == 1
    assert {"Bucketize", "VocabularyLookup", "IdentityCategorical"} <= set(types)
    var_ops = {v["op"] for v in doc["variables"]}
    assert {f"boosted_trees/{n}" for n in ("feature", "threshold", "left", "right", "default_left", "value",
                                           "roots", "tree_output", "baseline")} <= var_ops
    from kestimator.engine import checkpoint
    tensors = checkpoint.load_tensors(os.path.join(path, "variables", "variables.h5"))
    key = {v["op"]: v["tensor"] for v in doc["variables"]}
    n_nodes = est.get_variable_value("boosted_trees/node_value").size
    assert tensors[key["boosted_trees/value"]].shape == (n_nodes,)
    np.testing.assert_array_equal(tensors[key["boosted_trees/value"]],
                                  est.get_variable_value("boosted_trees/node_value"))


def test_export_loads_in_a_fresh_process(tmp_path):
    """Only ks.saved_model is imported: the loader's own op-module list must bring the tree ops, and the
    estimator classes stay unimported."""
    est = _trained(tmp_path, "binary")
    held_out, _ = _data(50, 2)
    want = next(est.predict(_input(held_out), yield_single_examples=False))["probabilities"]
    path = est.export_saved_model(str(tmp_path / "export"), _receiver)
    np.savez(tmp_path / "rows.npz", x=held_out["x"], size=held_out["size"], k=held_out["k"],
             color=held_out["color"].astype("S"), want=want)
    script = (
        "import sys, numpy as np\n"
        "import kestimator.saved_model as sm\n"
        f"z = np.load({str(tmp_path / 'rows.npz')!r})\n"
        f"m = sm.load({path!r})\n"
        "out = m.predict({'x': z['x'], 'size': z['size'], 'k': z['k'], 'color': z['color'].astype(object)})\n"
        "assert np.array_equal(out['probabilities'], z['want']), 'different predictions'\n"
        "assert 'kestimator.estimators.canned_boosted_trees' not in sys.modules\n"
        "assert 'kestimator.estimators.boosted_trees.graph_ops' in sys.modules\n"
        "print('served', out['probabilities'].shape)\n")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "served (50, 2)" in proc.stdout


def _tamper(path, op_name, new_value, edit_graph):
    """Rewrites one ensemble array in variables.h5 (and, with edit_graph, its declared shape in the graph)."""
    from kestimator.engine import checkpoint
    from kestimator.saved_model.graph_json import FORMAT
    graph_file = os.path.join(path, "saved_model.json")
    with open(graph_file) as f:
        doc = json.load(f)
    key = {v["op"]: v["tensor"] for v in doc["variables"]}[op_name]
    var_file = os.path.join(path, "variables", "variables.h5")
    tensors = checkpoint.load_tensors(var_file)
    tensors[key] = new_value
    os.remove(var_file)
    checkpoint.save_tensors(var_file, tensors, {"format": FORMAT})
    if edit_graph:
        for op in doc["ops"]:
            if op["name"] == op_name:
                op["attrs"]["shape"] = {"shape": [int(s) for s in new_value.shape]}
        with open(graph_file, "w") as f:
            json.dump(doc, f)
    return tensors[key]


@pytest.mark.parametrize("edit_graph", [False, True])
def test_a_tampered_ensemble_array_is_refused_naming_the_file(tmp_path, edit_graph):
    """Truncating the child array: the variable's declared shape disagrees (DataLossError naming
    saved_model.json); with the declaration edited too, the ensemble op's shape rule refuses it."""
    est = _trained(tmp_path, "binary")
    path = est.export_saved_model(str(tmp_path / "export"), _receiver)
    from kestimator.engine import checkpoint
    with open(os.path.join(path, "saved_model.json")) as f:
        doc = json.load(f)
    if edit_graph:
        assert any(op["name"] == "boosted_trees/left" and "shape" in op["attrs"] for op in doc["ops"])
    key = {v["op"]: v["tensor"] for v in doc["variables"]}["boosted_trees/left"]
    left = checkpoint.load_tensors(os.path.join(path, "variables", "variables.h5"))[key]
    _tamper(path, "boosted_trees/left", left[:-3].copy(), edit_graph)
    with pytest.raises(ks.errors.DataLossError) as info:
        ks.saved_model.load(path)
    message = str(info.value)
    assert os.path.join(path, "saved_model.json") in message
    assert "boosted_trees/left" in message
    if edit_graph:
        assert "'left' has" in message and "one entry per node" in message


def test_an_out_of_range_child_id_is_refused_at_serving(tmp_path):
    """Same shape, corrupt contents: the kernel checks index ranges before gathering with them."""
    est = _trained(tmp_path, "binary")
    path = est.export_saved_model(str(tmp_path / "export"), _receiver)
    from kestimator.engine import checkpoint
    with open(os.path.join(path, "saved_model.json")) as f:
        key = {v["op"]: v["tensor"] for v in json.load(f)["variables"]}["boosted_trees/right"]
    right = checkpoint.load_tensors(os.path.join(path, "variables", "variables.h5"))[key].copy()
    right[0] = 10 ** 6
    _tamper(path, "boosted_trees/right", right, edit_graph=False)
    serve = ks.saved_model.load(path).signatures["serving_default"]
    rows, _ = _data(5, 3)
    with pytest.raises(ks.errors.KestimatorError, match="'right' holds an index outside"):
        serve(**rows)


def test_kestimator_export_cli_on_the_boosted_trees_config(tmp_path, capsys):
    """`kestimator train` then `kestimator export` on configs/boosted_trees_cancer.yaml (20 trees): the export
    serves the predictions of `kestimator predict`'s estimator on the eval rows."""
    run_dir = str(tmp_path / "trees")
    cfg = os.path.join(REPO, "configs", "boosted_trees_cancer.yaml")
    over = ["--set", "estimator.BoostedTreesClassifier.n_trees=20", "--set", "train.max_steps=20"]
    assert main(["train", cfg, "--output", run_dir, *over]) == 0
    assert main(["export", cfg, "--output", run_dir, *over]) == 0
    exports = [os.path.join(run_dir, "export", d) for d in os.listdir(os.path.join(run_dir, "export"))]
    assert len(exports) == 1
    serve = ks.saved_model.load(exports[0]).signatures["serving_default"]
    from sklearn.datasets import load_breast_cancer
    X, _ = load_breast_cancer(return_X_y=True)
    X = X[np.random.default_rng(0).permutation(len(X))[450:]].astype(np.float32)
    (name,) = serve.inputs
    served = serve(**{name: X if serve.inputs[name].shape.ndims == 2 else X[:, 0]})
    est = ks.estimators.BoostedTreesClassifier([fc.numeric_column(name, shape=[30])],
                                               model_dir=run_dir, n_trees=20, max_depth=4,
                                               learning_rate=0.1, l2_regularization=1.0)
    want = next(est.predict(_input({name: X}), yield_single_examples=False))
    np.testing.assert_allclose(served["probabilities"], want["probabilities"], rtol=1e-6, atol=1e-6)
    assert (served["class_ids"].ravel() == want["class_ids"].ravel()).all()


def test_training_predict_and_serving_share_the_column_semantics(tmp_path):
    """One transform for all three paths (graph_ops.column_block_numpy runs the serving ops' kernels):
    "" is a missing category and "pink" (out of vocabulary) shares id 3 = len(vocabulary); an identity id
    outside [0, 5) without a default_value is an error naming the column, in predict as in serving."""
    from kestimator.estimators.boosted_trees.graph_ops import column_block_numpy
    vocab_col, ident_col = _columns()[2], _columns()[3]
    block = column_block_numpy("categorical", vocab_col, np.array([b"blue", b"", b"pink", b"red"], dtype=object))
    np.testing.assert_array_equal(block, [[2.0], [np.nan], [3.0], [0.0]])
    np.testing.assert_array_equal(column_block_numpy("categorical", ident_col, np.array([4, -1, 0])),
                                  [[4.0], [np.nan], [0.0]])
    est = _trained(tmp_path, "binary")
    rows, _ = _data(4, 5)
    rows["k"] = np.array([0, 1, 7, 2])
    with pytest.raises(ks.errors.InvalidArgumentError, match="'k'.*id 7 is outside"):
        next(est.predict(_input(rows)))
    serve = ks.saved_model.load(est.export_saved_model(str(tmp_path / "export"), _receiver)).signatures[
        "serving_default"]
    with pytest.raises(ks.errors.KestimatorError, match="id 7 is outside"):
        serve(**rows)
