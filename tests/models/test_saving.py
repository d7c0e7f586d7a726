"""Keras .h5 files: written by tf_keras 2.21 / Keras 3.15 and loaded here, written here and loaded by
tf_keras (recorded in tf_keras_check.json by make_keras_fixtures.py), optimizer state, weights files,
and refusal of unsafe or damaged files.

Tolerance for predictions across frameworks: 1e-5 absolute (float32, different kernels; the largest
difference seen is 1.4e-6).
"""
import glob
import json
import os
import shutil

import numpy as np
import pytest

from kestimator import keras
from kestimator.errors import DataLossError, InvalidArgumentError, NotFoundError, UnsafeFileError

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "keras")
PEER_FILES = ["mlp_tf_keras", "functional_tf_keras", "bn_tf_keras", "cnn_tf_keras", "rnn_tf_keras",
              "mlp_keras3", "bn_keras3", "cnn_keras3"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _inputs(data):
    xs = [data["x"]] + ([data["x1"]] if "x1" in data.files else [])
    return xs if len(xs) > 1 else xs[0]


@pytest.mark.parametrize("name", PEER_FILES)
def test_files_written_by_keras_load_and_predict_the_same(name):
    data = np.load(os.path.join(FIXTURES, f"{name}.npz"))
    model = keras.models.load_model(os.path.join(FIXTURES, f"{name}.h5"))
    pred = model.predict(_inputs(data))
    pred = pred if isinstance(pred, list) else [pred]
    expected = [data[k] for k in sorted(k for k in data.files if k.startswith("y"))]
    assert len(pred) == len(expected)
    for p, e in zip(pred, expected):
        np.testing.assert_allclose(p, e, atol=1e-5)


def test_tf_keras_optimizer_state_is_restored():
    # tf_keras reloaded its own file and took one Adam step on this batch; with the saved slots and
    # iteration count restored the step lands on the same weights (a fresh Adam differs by ~0.08)
    data = np.load(os.path.join(FIXTURES, "mlp_tf_keras_after_step.npz"))
    model = keras.models.load_model(os.path.join(FIXTURES, "mlp_tf_keras.h5"))
    assert type(model.optimizer).__name__ == "Adam" and model.optimizer.learning_rate == pytest.approx(0.01)
    model.train_on_batch(data["x"], data["y"])
    np.testing.assert_allclose(model.predict(data["x"]), data["after"], atol=1e-5)


def test_files_written_here_load_in_tf_keras():
    with open(os.path.join(FIXTURES, "tf_keras_check.json")) as f:
        report = json.load(f)
    names = sorted(k for k in report if not k.startswith("_"))
    assert names == ["bn", "cnn", "functional", "mlp", "rnn"]
    for name in names:
        assert report[name]["loaded"] and report[name]["compiled"], report[name]
        assert report[name]["max_abs_diff"] < 1e-5, (name, report[name])
        # the files tf_keras checked are still read the same way here
        data = np.load(os.path.join(FIXTURES, f"ours_{name}.npz"))
        xs = [data[k] for k in sorted(k for k in data.files if k.startswith("x"))]
        pred = keras.models.load_model(os.path.join(FIXTURES, f"ours_{name}.h5")).predict(xs if len(xs) > 1 else xs[0])
        pred = pred if isinstance(pred, list) else [pred]
        for p, k in zip(pred, sorted(k for k in data.files if k.startswith("y"))):
            np.testing.assert_allclose(p, data[k], atol=1e-6)


def _mlp():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_save_load_continues_training_exactly(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 6), dtype=np.float32), rng.integers(0, 3, 64)
    straight = _mlp()
    resumed = _mlp()
    resumed.set_weights(straight.get_weights())
    straight.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    resumed.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    resumed.save(str(tmp_path / "m.h5"))
    loaded = keras.models.load_model(str(tmp_path / "m.h5"))
    assert loaded.optimizer.get_config()["learning_rate"] == pytest.approx(0.01)
    loaded.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert loaded.evaluate(x, y, verbose=0)[1] == pytest.approx(straight.evaluate(x, y, verbose=0)[1])


@pytest.mark.parametrize("path", ["w.h5", "w_ckpt"])
def test_save_weights_and_load_weights(tmp_path, path):
    rng = np.random.default_rng(1)
    x, y = rng.random((32, 6), dtype=np.float32), rng.integers(0, 3, 32)
    model = _mlp()
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(str(tmp_path / path))
    other = _mlp()
    other.load_weights(str(tmp_path / path))
    np.testing.assert_allclose(other.predict(x), model.predict(x), rtol=1e-6)
    # optimizer state travels too: one more identical step on both
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    other.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_h5_layout_is_keras(tmp_path):
    import h5py
    model = _mlp()
    model.fit(np.zeros((4, 6), np.float32), np.zeros(4), verbose=0)
    model.save(str(tmp_path / "m.h5"))
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert json.loads(f.attrs["model_config"])["class_name"] == "Sequential"
        assert json.loads(f.attrs["training_config"])["loss"] == "sparse_categorical_crossentropy"
        names = [n.decode() for n in f["model_weights"].attrs["layer_names"]]
        first = model.layers[0].name
        assert names == [l.name for l in model.layers]
        assert [n.decode() for n in f["model_weights"][first].attrs["weight_names"]] == \
            [f"{first}/kernel:0", f"{first}/bias:0"]
        assert f["model_weights"][first][first]["kernel:0"].shape == (6, 8)
        opt = [n.decode() for n in f["optimizer_weights"].attrs["weight_names"]]
        assert opt[0] == "iteration:0" and opt[1] == f"Adam/m/{first}/kernel:0"


def test_lambda_bytecode_is_refused_unless_the_caller_provides_the_function():
    path = os.path.join(FIXTURES, "lambda_tf_keras.h5")
    with pytest.raises(UnsafeFileError, match="double"):
        keras.models.load_model(path)
    with pytest.raises(UnsafeFileError, match="safe_mode=False"):
        keras.models.load_model(path, custom_objects={"double": lambda t: t * 2.0})
    triple = keras.models.load_model(path, custom_objects={"double": lambda t: t * 3.0}, safe_mode=False)
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(triple.predict(x), 3 * x)   # the given function, never the stored bytecode


def _copy(tmp_path, name="mlp_tf_keras.h5"):
    dst = tmp_path / name
    shutil.copy(os.path.join(FIXTURES, name), dst)
    return str(dst)


def test_external_links_virtual_and_external_storage_are_refused(tmp_path):
    import h5py
    path = _copy(tmp_path)
    with h5py.File(path, "a") as f:
        f["model_weights/extra"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(UnsafeFileError, match="external link"):
        keras.models.load_model(path)
    path = _copy(tmp_path)
    with h5py.File(tmp_path / "other.h5", "w") as o:
        o["data"] = np.zeros(4, np.float32)
    with h5py.File(path, "a") as f:
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "data", shape=(4,))
        f.create_virtual_dataset("virtual", layout)
    with pytest.raises(UnsafeFileError, match="virtual"):
        keras.models.load_model(path)
    path = _copy(tmp_path)
    (tmp_path / "raw.bin").write_bytes(b"\0" * 16)
    with h5py.File(path, "a") as f:
        f.create_dataset("ext", shape=(4,), dtype="f4", external=[(str(tmp_path / "raw.bin"), 0, 16)])
    with pytest.raises(UnsafeFileError, match="external"):
        keras.models.load_model(path)


def test_damaged_files_raise_data_loss_naming_the_file(tmp_path):
    path = _copy(tmp_path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DataLossError, match="mlp_tf_keras.h5"):
        keras.models.load_model(path)
    bad = tmp_path / "text.h5"
    bad.write_text("not hdf5")
    with pytest.raises(DataLossError, match="text.h5"):
        keras.models.load_model(str(bad))
    with pytest.raises(NotFoundError):
        keras.models.load_model(str(tmp_path / "missing.h5"))


def test_stored_shape_is_checked_before_reading(tmp_path):
    import h5py
    path = _copy(tmp_path)
    with h5py.File(path, "a") as f:
        g = f["model_weights/dense_1/dense_1"]
        del g["kernel:0"]
        g.create_dataset("kernel:0", data=np.zeros((5, 5), np.float32))
    with pytest.raises(InvalidArgumentError, match=r"dense_1.*\(5, 5\)"):
        keras.models.load_model(path)


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path):
    model = _mlp()
    model.save(str(tmp_path / "m.h5"))
    before = open(tmp_path / "m.h5", "rb").read()

    class Sub(keras.Model):
        def call(self, x):
            return x
    with pytest.raises(InvalidArgumentError):
        Sub().save(str(tmp_path / "m.h5"))
    assert open(tmp_path / "m.h5", "rb").read() == before
    assert glob.glob(str(tmp_path / ".*tmp")) == []
    with pytest.raises(InvalidArgumentError, match="exists"):
        model.save(str(tmp_path / "m.h5"), overwrite=False)


def test_tf_keras_weights_only_file_loads_by_layer_order():
    # tf_keras's save_weights("w.h5"): the model_weights layout at the file's root
    data = np.load(os.path.join(FIXTURES, "functional_tf_keras.npz"))
    reference = keras.models.load_model(os.path.join(FIXTURES, "functional_tf_keras.h5"), compile=False)
    rebuilt = keras.Model.from_config(reference.get_config())
    assert not np.allclose(rebuilt.predict(_inputs(data))[1], data["y1"], atol=1e-3)   # fresh weights first
    rebuilt.load_weights(os.path.join(FIXTURES, "functional_tf_keras.weights_only.h5"))
    for p, k in zip(rebuilt.predict(_inputs(data)), ("y0", "y1")):
        np.testing.assert_allclose(p, data[k], atol=1e-5)
