"""export_saved_model writes a self-contained folder; ks.saved_model.load serves it without the model_fn."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kestimator as ks
from kestimator import engine as ke
from kestimator.errors import DataLossError, InvalidArgumentError, NotFoundError, UnsafeFileError
from kestimator.estimators.inputs import numpy_input_fn

fc = ks.feature_column
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    city = rng.choice(["paris", "rome", "oslo", "lima"], n).astype(object)
    age = rng.uniform(10, 80, n).astype(np.float32)
    y = ((city == "paris") | (age > 50)).astype(np.int64)
    return {"city": city, "age": age}, y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    feats, y = _data()
    cols = [fc.embedding_column(fc.categorical_column_with_vocabulary_list("city", ["paris", "rome", "oslo"],
                                                                           num_oov_buckets=1), 3),
            fc.bucketized_column(fc.numeric_column("age"), [20.0, 40.0, 60.0])]
    est = ks.estimators.DNNClassifier([8], cols, model_dir=str(tmp_path_factory.mktemp("model")),
                                      config=ks.estimators.RunConfig(tf_random_seed=0, save_checkpoints_secs=None))
    est.train(numpy_input_fn(feats, y, batch_size=32, num_epochs=None, shuffle=True), steps=100)
    path = est.export_saved_model(str(tmp_path_factory.mktemp("exports")),
                                  ks.estimators.export.build_raw_serving_input_receiver_fn(feats))
    return est, path


def test_export_layout_and_signatures(trained):
    est, path = trained
    assert os.path.basename(path).isdigit()
    assert sorted(os.listdir(path)) == ["saved_model.json", "variables"]
    loaded = ks.saved_model.load(path)
    assert {"serving_default", "classification", "regression", "predict"} == set(loaded.signatures)
    assert set(loaded.signatures["serving_default"].inputs) == {"age", "city"}
    assert loaded.signatures["serving_default"].method_name == "classify"


def test_loaded_model_predicts_like_the_estimator_with_raw_strings(trained):
    est, path = trained
    feats, _ = _data(7, seed=3)
    feats["city"][0] = "unknown-town"            # out of vocabulary: the OOV bucket, inside the graph
    want = [p["probabilities"] for p in est.predict(numpy_input_fn(feats, shuffle=False))]
    got = ks.saved_model.load(path).signatures["predict"](**feats)
    np.testing.assert_allclose(got["probabilities"], np.array(want), rtol=1e-6)
    scores = ks.saved_model.load(path).predict(feats)["scores"]
    np.testing.assert_allclose(scores, np.array(want), rtol=1e-6)


def test_load_in_a_fresh_process_without_the_model_code(trained):
    _, path = trained
    code = ("import numpy as np, kestimator as ks\n"
            f"m = ks.saved_model.load({path!r})\n"
            "out = m.signatures['serving_default'](city=np.array(['rome', 'paris'], object),"
            " age=np.array([30.0, 70.0], np.float32))\n"
            "print(out['classes'].tolist(), np.round(out['scores'].sum(1), 5).tolist())\n")
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[[b'0', b'1'], [b'0', b'1']] [1.0, 1.0]"


def _tamper(path, tmp_path, edit):
    import shutil
    dst = tmp_path / "tampered"
    shutil.copytree(path, dst)
    with open(dst / "saved_model.json") as f:
        doc = json.load(f)
    edit(doc)
    with open(dst / "saved_model.json", "w") as f:
        json.dump(doc, f)
    return str(dst)


def test_loading_refuses_unknown_ops_and_attributes(trained, tmp_path):
    _, path = trained

    def unknown_type(doc):
        doc["ops"][-1]["type"] = "os.system"
    with pytest.raises(UnsafeFileError, match="'os.system' is not registered"):
        ks.saved_model.load(_tamper(path, tmp_path / "a", unknown_type))

    def bad_attr(doc):
        op = next(o for o in doc["ops"] if o["attrs"])
        op["attrs"][next(iter(op["attrs"]))] = {"pickle": "gASV"}
    with pytest.raises(UnsafeFileError, match="unknown attribute tag 'pickle'"):
        ks.saved_model.load(_tamper(path, tmp_path / "b", bad_attr))

    def assign(doc):
        doc["ops"][-1]["type"] = "Assign"
    with pytest.raises(UnsafeFileError, match="'Assign' is not allowed"):
        ks.saved_model.load(_tamper(path, tmp_path / "c", assign))


def test_export_refuses_callable_attributes_naming_the_op(tmp_path):
    def model_fn(features, mode):
        noise = ke.glorot_uniform_initializer()([1])      # an "Initializer" op: its attribute is a function
        return ks.estimators.EstimatorSpec(mode, predictions={"y": features["x"] + noise},
                                           loss=ke.constant(0.0), train_op=ke.no_op())
    est = ks.estimators.Estimator(model_fn, model_dir=str(tmp_path / "m"))
    ks.estimators.checkpoint_manager.CheckpointManager(str(tmp_path / "m")).save(0, {"global_step": np.int64(0)})
    fn = ks.estimators.export.build_raw_serving_input_receiver_fn({"x": np.zeros((1, 1), np.float32)})
    with pytest.raises(InvalidArgumentError, match=r"op .*Initializer.* attribute 'sample' is a Python callable"):
        est.export_saved_model(str(tmp_path / "out"), fn)
    assert not os.path.exists(tmp_path / "out") or not os.listdir(tmp_path / "out")


def test_export_needs_a_checkpoint_and_receiver_placeholders(tmp_path):
    def model_fn(features, mode):
        hidden = ke.placeholder(ke.float32, [None, 1], name="not_a_receiver")
        return ks.estimators.EstimatorSpec(mode, predictions={"y": features["x"] + hidden},
                                           loss=ke.constant(0.0), train_op=ke.no_op())
    est = ks.estimators.Estimator(model_fn, model_dir=str(tmp_path / "m"))
    fn = ks.estimators.export.build_raw_serving_input_receiver_fn({"x": np.zeros((1, 1), np.float32)})
    with pytest.raises(NotFoundError, match="no trained model"):
        est.export_saved_model(str(tmp_path / "out"), fn)
    ks.estimators.checkpoint_manager.CheckpointManager(str(tmp_path / "m")).save(0, {"global_step": np.int64(0)})
    with pytest.raises(InvalidArgumentError, match="placeholder not_a_receiver"):
        est.export_saved_model(str(tmp_path / "out"), fn)


def test_attribute_encoding_round_trip():
    from kestimator.engine.graph import TensorShape
    from kestimator.saved_model.graph_json import AttrEncoder, decode_attr
    enc = AttrEncoder()
    value = {"k": (1, 2.5, None, slice(1, None, 2), Ellipsis), "d": ke.float32, "s": TensorShape([None, 3]),
             "b": b"\x00\xff", "f": float("inf"), "n": np.int64(7), "a": np.arange(3), "l": ["x", True]}
    back = decode_attr(json.loads(json.dumps(enc.encode(value, "test"))), enc.arrays, "test")
    assert back["k"] == value["k"] and back["d"] == ke.float32 and back["s"] == TensorShape([None, 3])
    assert back["b"] == b"\x00\xff" and back["f"] == float("inf") and back["n"] == 7 and back["l"] == ["x", True]
    np.testing.assert_array_equal(back["a"], np.arange(3))


def test_a_constant_without_a_dtype_is_data_loss_at_load(trained, tmp_path):
    # found by the slow fuzz tier: '"dtype": null' on a Const loaded, then the first call died with
    # AttributeError inside the graph passes
    _, path = trained

    def null_dtype(doc):
        const = next(o for o in doc["ops"] if o["type"] == "Const")
        const["attrs"]["dtype"] = None
    with pytest.raises(DataLossError, match=r"saved_model\.json: op '.*' \(Const\) needs an array 'value' and a 'dtype'"):
        ks.saved_model.load(_tamper(path, tmp_path / "d", null_dtype))
