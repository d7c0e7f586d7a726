"""Files an earlier kestimator wrote keep loading: every folder under tests/fixtures/compat/ (one per set of
format versions, written once by tests/fixtures/make_compat_fixtures.py and never regenerated) is loaded with
today's code and must give the outputs recorded when it was written.

A new folder (compat/v2 ...) is picked up by every test here automatically.
"""
import glob
import json
import os
import shutil

import numpy as np
import pytest

import kestimator as ks
from kestimator import _formats
from kestimator import engine as ke
from kestimator.engine import checkpoint as ckpt

fc = ks.feature_column
COMPAT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "compat")
VERSIONS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(COMPAT, "v*")))


def test_fixture_folders_exist_and_are_small():
    assert VERSIONS, f"no compat fixtures in {COMPAT}"
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(COMPAT) for f in fs)
    assert total < 300 * 1024, total
    newest = json.load(open(os.path.join(COMPAT, VERSIONS[-1], "formats.json")))["formats"]
    # The newest folder holds files in the formats this kestimator writes: if a format constant moved on,
    # a new folder must be added (make_compat_fixtures.py) and the old one kept.
    assert newest == {"checkpoint": _formats.CHECKPOINT_FORMAT, "estimator_index": _formats.ESTIMATOR_INDEX_FORMAT,
                      "keras_h5": _formats.KERAS_H5_FORMAT, "saved_model": _formats.SAVED_MODEL_FORMAT,
                      "data_cache": _formats.DATA_CACHE_FORMAT}


@pytest.fixture(params=VERSIONS)
def fixtures(request, tmp_path):
    """A writable copy of one version's fixtures (loading an estimator may write into its model_dir)."""
    dst = tmp_path / request.param
    shutil.copytree(os.path.join(COMPAT, request.param), dst)
    return dst


def _npz(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _input(x):
    return ks.estimators.inputs.numpy_input_fn({"x": x}, batch_size=16, num_epochs=1, shuffle=False)


def _assert_checkpoints_hold(model_dir, expected):
    """Every checkpoint the index lists loads (checksum verified) and holds the recorded variables."""
    from kestimator.estimators.checkpoint_manager import CheckpointManager
    manager = CheckpointManager(str(model_dir))
    entries = manager.checkpoints()
    files = sorted({k.split("::")[0] for k in expected if "::" in k})
    assert sorted(os.path.basename(e["path"]) for e in entries) == files
    assert len(files) >= 2
    for e in entries:
        _, values, meta = manager.load(e["path"])
        name = os.path.basename(e["path"])
        want = {k.split("::", 1)[1]: v for k, v in expected.items() if k.startswith(name + "::")}
        assert sorted(values) == sorted(want)
        for k, v in want.items():
            np.testing.assert_array_equal(values[k], v, err_msg=f"{name}: {k}")
        assert meta["global_step"] == e["step"] == int(values["global_step"])


def test_checkpoint_file(fixtures):
    path = str(fixtures / "checkpoint" / "tensors.ckpt")
    numeric = _npz(fixtures / "checkpoint" / "expected.npz")
    info = json.load(open(fixtures / "checkpoint" / "expected.json"))
    values = ckpt.load_tensors(path)
    assert sorted(values) == sorted(info["dtypes"])
    for name, want in numeric.items():
        assert values[name].dtype == want.dtype and values[name].shape == want.shape, name
        np.testing.assert_array_equal(values[name], want)
    assert [v.decode("utf-8") for v in values["vocab"].tolist()] == info["strings"]["vocab"]
    assert ckpt.read_metadata(path) == info["metadata"]
    assert {n: d for n, _, d in ckpt.list_tensors(path)} == info["dtypes"]


def test_saver_folder(fixtures):
    folder = str(fixtures / "saver")
    want = _npz(fixtures / "saver" / "expected.npz")
    latest = ke.train.latest_checkpoint(folder)
    assert latest == os.path.join(folder, "model.ckpt-7")
    g = ke.Graph()
    with g.as_default():
        w = ke.Variable(np.zeros((2, 2), np.float32), name="w")
        b = ke.Variable(np.zeros(2, np.float32), name="b")
        step = ke.train.get_or_create_global_step()
        with ke.Session(graph=g) as sess:
            ke.train.Saver().restore(sess, latest)
            np.testing.assert_array_equal(sess.run(w), want["w"])
            np.testing.assert_array_equal(sess.run(b), want["b"])
            assert sess.run(step) == want["global_step"] == 7


def test_linear_estimator_model_dir(fixtures):
    model_dir = fixtures / "estimator_linear"
    want = _npz(fixtures / "estimator_linear.expected.npz")
    _assert_checkpoints_hold(model_dir, want)
    est = ks.estimators.LinearRegressor([fc.numeric_column("x", shape=[2])], model_dir=str(model_dir))
    preds = np.array([p["predictions"] for p in est.predict(_input(want["predict_x"]))])
    np.testing.assert_allclose(preds, want["predictions"], rtol=1e-6, atol=1e-7)


def test_dnn_estimator_model_dir(fixtures):
    model_dir = fixtures / "estimator_dnn"
    want = _npz(fixtures / "estimator_dnn.expected.npz")
    _assert_checkpoints_hold(model_dir, want)
    est = ks.estimators.DNNClassifier([4], [fc.numeric_column("x", shape=[3])], model_dir=str(model_dir))
    probs = np.array([p["probabilities"] for p in est.predict(_input(want["predict_x"]))])
    np.testing.assert_allclose(probs, want["probabilities"], rtol=1e-6, atol=1e-7)


def test_saved_model_export(fixtures):
    want = _npz(fixtures / "saved_model.expected.npz")
    loaded = ks.saved_model.load(str(fixtures / "saved_model"))
    out = loaded.signatures["predict"](x=want["predict_x"])
    compared = [k for k in want if k != "predict_x"]
    assert "probabilities" in compared
    for k in compared:
        np.testing.assert_allclose(out[k], want[k], rtol=1e-6, atol=1e-7, err_msg=k)
    # the export holds the same numbers as the model_dir it came from
    dnn = _npz(fixtures / "estimator_dnn.expected.npz")
    np.testing.assert_allclose(out["probabilities"], dnn["probabilities"], rtol=1e-6, atol=1e-7)


def test_keras_model_and_weights_h5(fixtures):
    want = _npz(fixtures / "keras" / "expected.npz")
    model = ks.models.load_model(str(fixtures / "keras" / "model.h5"))
    np.testing.assert_allclose(model.predict(want["predict_x"], verbose=0), want["predictions"], rtol=1e-6,
                               atol=1e-7)
    weights = {f"weight::{w.name}": w.numpy() for w in model.weights}
    assert sorted(weights) == sorted(k for k in want if k.startswith("weight::"))
    for k, v in weights.items():
        np.testing.assert_array_equal(v, want[k], err_msg=k)
    fresh = ks.models.Sequential([ks.layers.Dense(4, activation="relu", input_shape=(3,)), ks.layers.Dense(2)])
    fresh.load_weights(str(fixtures / "keras" / "weights.h5"))
    np.testing.assert_allclose(fresh.predict(want["predict_x"], verbose=0), want["predictions"], rtol=1e-6,
                               atol=1e-7)


def _cache_pipeline(filename):
    # the pipeline make_compat_fixtures.py cached (its fingerprint must match to replay the file)
    elements = {"x": np.arange(10, dtype=np.float32).reshape(5, 2), "y": np.arange(5, dtype=np.int64) * 3,
                "s": np.array([b"a", b"bb", b"", b"dddd", b"e"], dtype=object)}
    return ks.data.Dataset.from_tensor_slices(elements).cache(filename)


def _as_json(e):
    return {"x": np.asarray(e["x"]).tolist(), "y": int(e["y"]), "s": bytes(e["s"]).decode("ascii")}


def test_data_cache_file(fixtures):
    from kestimator.data.cachefile import CacheFileReader
    path = str(fixtures / "data_cache" / "cache.kscache")
    info = json.load(open(fixtures / "data_cache" / "expected.json"))
    reader = CacheFileReader(path, info["fingerprint"])
    got = []
    try:
        while True:
            try:
                got.append(reader.read())
            except StopIteration:
                break
    finally:
        reader.close()
    assert got[0]["x"].dtype == np.float32 and got[0]["y"].dtype == np.int64
    assert [_as_json(e) for e in got] == info["elements"]
    # the same pipeline replays the file (not its input) in a later program
    before = open(path, "rb").read()
    replayed = list(_cache_pipeline(path).as_numpy_iterator())
    assert [_as_json(e) for e in replayed] == info["elements"]
    assert open(path, "rb").read() == before


def test_boosted_trees_model_dir(fixtures):
    want = _npz(fixtures / "boosted_trees.expected.npz")
    est = ks.estimators.BoostedTreesRegressor([fc.numeric_column("x", shape=[2])],
                                              model_dir=str(fixtures / "boosted_trees"), n_trees=3, max_depth=2,
                                              learning_rate=0.5)
    preds = np.array([p["predictions"] for p in est.predict(_input(want["predict_x"]))])
    np.testing.assert_allclose(preds, want["predictions"], rtol=1e-6, atol=1e-7)
    assert est.get_variable_value("global_step") == 3
