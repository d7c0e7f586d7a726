"""Functional and Sequential models: graph structure, configs (tf.keras 2's layout, checked against a
config tf_keras wrote), JSON round trips, summary parameter counts."""
import json
import os

import numpy as np
import pytest

from kestimator import keras
from kestimator.errors import InvalidArgumentError, UnsafeFileError

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "keras")


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _two_heads():
    """The architecture of functional_tf_keras.h5: two inputs, a shared layer, a nested model, two outputs."""
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = keras.layers.Dense(5, activation="relu", name="shared")
    ha, hb = shared(a), shared(b)
    inner_in = keras.Input((10,), name="inner_in")
    inner = keras.Model(inner_in, keras.layers.Dense(3, activation="tanh", name="inner_dense")(inner_in), name="inner")
    cat = keras.layers.Concatenate(name="cat")([ha, hb])
    out1 = keras.layers.Dense(2, activation="softmax", name="cls")(inner(cat))
    seq = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="seq_dense")], name="seq")
    out2 = keras.layers.Dense(1, name="reg")(seq(keras.layers.Add(name="add")([ha, hb])))
    return keras.Model([a, b], [out1, out2], name="two_heads")


def _numpy_two_heads(model, xa, xb):
    sk, sb = model.get_layer("shared").get_weights()
    ik, ib = model.get_layer("inner").get_weights()
    ck, cb = model.get_layer("cls").get_weights()
    qk, qb = model.get_layer("seq").get_weights()
    rk, rb = model.get_layer("reg").get_weights()
    ha, hb = np.maximum(xa @ sk + sb, 0), np.maximum(xb @ sk + sb, 0)
    logits = np.tanh(np.concatenate([ha, hb], 1) @ ik + ib) @ ck + cb
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True), ((ha + hb) @ qk + qb) @ rk + rb


def test_shared_layer_and_nested_model_compute_the_numpy_reference():
    model = _two_heads()
    rng = np.random.default_rng(0)
    xa, xb = rng.random((5, 4), dtype=np.float32), rng.random((5, 4), dtype=np.float32)
    p1, p2 = model.predict([xa, xb])
    e1, e2 = _numpy_two_heads(model, xa, xb)
    np.testing.assert_allclose(p1, e1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p2, e2, rtol=1e-5, atol=1e-6)
    assert model.get_layer("shared").count_params() == 25 and model.count_params() == 25 + 33 + 8 + 18 + 4   # shared, inner, cls, seq, reg


def test_config_layout_matches_tf_keras():
    import h5py
    with h5py.File(os.path.join(FIXTURES, "functional_tf_keras.h5"), "r") as f:
        theirs = json.loads(f.attrs["model_config"])["config"]
    mine = _two_heads().get_config()
    assert [(l["name"], l["class_name"], l["inbound_nodes"]) for l in mine["layers"]] == \
        [(l["name"], l["class_name"], l["inbound_nodes"]) for l in theirs["layers"]]
    assert mine["input_layers"] == theirs["input_layers"] and mine["output_layers"] == theirs["output_layers"]


def test_from_config_and_json_round_trip():
    model = _two_heads()
    rng = np.random.default_rng(1)
    x = [rng.random((3, 4), dtype=np.float32), rng.random((3, 4), dtype=np.float32)]
    for clone in (keras.Model.from_config(model.get_config()), keras.models.model_from_json(model.to_json())):
        clone.set_weights(model.get_weights())
        for a, b in zip(clone.predict(x), model.predict(x)):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        assert [l.name for l in clone.layers] == [l.name for l in model.layers]


def test_sequential_build_paths_and_config():
    x = np.random.default_rng(2).random((4, 6), dtype=np.float32)
    deferred = keras.Sequential([keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
    with pytest.raises(InvalidArgumentError, match="not been built"):
        deferred.summary()
    out = deferred.predict(x)                                   # builds from the data
    with_input = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
    with_shape = keras.Sequential([keras.layers.Dense(3, activation="relu", input_shape=(6,)), keras.layers.Dense(2)])
    for m in (with_input, with_shape):
        m.set_weights(deferred.get_weights())
        np.testing.assert_allclose(m.predict(x), out, rtol=1e-6)
        assert [w.name.split("/")[1] for w in m.weights] == ["kernel:0", "bias:0", "kernel:0", "bias:0"]
    clone = keras.models.model_from_json(with_input.to_json())
    assert isinstance(clone, keras.Sequential) and len(clone.layers) == 2
    cfg = with_input.get_config()
    assert cfg["layers"][0]["class_name"] == "InputLayer" and cfg["layers"][0]["config"]["batch_input_shape"] == [None, 6]


def test_sequential_add_and_pop():
    model = keras.Sequential()
    model.add(keras.Input((3,)))
    model.add(keras.layers.Dense(4))
    model.add(keras.layers.Dense(2))
    assert model.output_shape == (None, 2) and model.input_shape == (None, 3)
    assert model.predict(np.zeros((1, 3), np.float32)).shape == (1, 2)
    model.pop()
    assert model.predict(np.zeros((1, 3), np.float32)).shape == (1, 4) and len(model.layers) == 1
    with pytest.raises(InvalidArgumentError):
        model.add("not a layer")


def test_summary_parameter_counts(capsys):
    model = keras.Sequential([keras.layers.Flatten(input_shape=(8, 8)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.summary()
    out = capsys.readouterr().out
    # Keras's numbers: 64*128 + 128 = 8320, 128*10 + 10 = 1290, total 9610 (4 bytes each: 37.54 KB)
    assert "8320" in out and "1290" in out and "Total params: 9610 (37.54 KB)" in out
    bn = keras.Sequential([keras.Input((5,)), keras.layers.BatchNormalization()])
    bn.summary()
    out = capsys.readouterr().out
    assert "Trainable params: 10" in out and "Non-trainable params: 10" in out


def test_graph_errors():
    a = keras.Input((3,))
    stray = keras.Input((3,))
    y = keras.layers.Add()([a, stray])
    with pytest.raises(InvalidArgumentError, match="disconnected"):
        keras.Model(a, y)
    with pytest.raises(InvalidArgumentError):
        keras.Model(a, np.zeros(3))
    model = keras.Model(a, keras.layers.Dense(2, name="d")(a))
    assert model.get_layer("d").name == "d"
    with pytest.raises(InvalidArgumentError, match="no layer named"):
        model.get_layer("missing")


def test_config_refuses_unknown_and_module_path_classes():
    cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 2], "name": "i"}},
        {"class_name": "os.system", "config": {"name": "evil"}}]}}
    with pytest.raises(UnsafeFileError, match="evil"):
        keras.models.model_from_config(cfg)
    cfg["config"]["layers"][1]["class_name"] = "NotALayer"
    with pytest.raises(UnsafeFileError, match="NotALayer"):
        keras.models.model_from_json(json.dumps(cfg))
