"""model_to_estimator: Sequential, functional, multi-input / multi-output models; weights, loss, optimizer."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

import kestimator as ks
from kestimator import keras
from kestimator.errors import InvalidArgumentError
from kestimator.estimators.inputs import numpy_input_fn
from kestimator.estimators.keras_conversion import model_to_estimator


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[:600], d.target.astype(np.int32)[:600]


def _mlp():
    inputs = keras.Input(shape=(8, 8), name="pixels")
    h = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_evaluate_before_training_matches_keras_and_training_improves(digits, tmp_path):
    x, y = digits
    model = _mlp()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    keras_weights = [w.copy() for w in model.get_weights()]
    est = model_to_estimator(keras_model=model, model_dir=str(tmp_path))
    eval_fn = numpy_input_fn({"pixels": x}, y, batch_size=600, shuffle=False)
    before = est.evaluate(eval_fn)
    k_loss, k_acc = model.evaluate(x, y, batch_size=600, verbose=0)
    np.testing.assert_allclose(before["accuracy"], k_acc, atol=1e-6)
    np.testing.assert_allclose(before["loss"], k_loss, rtol=1e-5)      # one batch: the same mean loss
    out = model.output_names[0]
    preds = np.array([p[out] for p in est.predict(numpy_input_fn({"pixels": x[:20]}, shuffle=False))])
    np.testing.assert_allclose(preds, model.predict(x[:20], verbose=0), rtol=1e-5, atol=1e-7)
    est.train(numpy_input_fn({"pixels": x}, y, batch_size=32, num_epochs=3, shuffle=True))
    after = est.evaluate(eval_fn)
    assert after["loss"] < before["loss"] and after["accuracy"] >= before["accuracy"]
    for w, k in zip(model.get_weights(), keras_weights):   # the Keras model keeps its own weights
        np.testing.assert_array_equal(w, k)
    assert {w.name[:-2] for w in model.weights} <= set(est.get_variable_names())   # "dense/kernel:0" -> "dense/kernel"


def test_optimizer_state_is_carried_over(digits, tmp_path):
    x, y = digits
    model = _mlp()
    model.fit(x, y, epochs=1, batch_size=100, verbose=0)   # 6 Adam steps
    state = model._optimizer_state()
    est = model_to_estimator(keras_model=model, model_dir=str(tmp_path),
                             config=ks.estimators.RunConfig(save_checkpoints_secs=None))
    # lr 0 would change the update; instead train 1 step and check the slots started from Keras's:
    # Adam's m after one more step = 0.9 * m_keras + 0.1 * g, so m_est != 0.1 * g alone
    est.train(numpy_input_fn({"pixels": x[:100]}, y[:100], batch_size=100, shuffle=False), steps=1)
    assert est.get_variable_value("Adam/iterations") == state["iterations"] + 1
    first = ks.estimators.list_checkpoints(str(tmp_path))[0]
    from kestimator.estimators.checkpoint_manager import CheckpointManager
    step0 = CheckpointManager(str(tmp_path)).load(first)[1]
    kernel = model.trainable_weights[0].name                  # e.g. "dense_4/kernel:0"
    np.testing.assert_allclose(step0[kernel[:-2] + "/m"], state["slots"][(kernel, "m")], rtol=1e-6)
    assert np.abs(state["slots"][(kernel, "m")]).max() > 0


def test_multi_input_multi_output_model(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 3)).astype(np.float32), rng.normal(size=(200, 2)).astype(np.float32)
    y_reg = (a.sum(1, keepdims=True) - b[:, :1]).astype(np.float32)
    y_cls = (a[:, 0] > 0).astype(np.float32)[:, None]
    in_a, in_b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([in_a, in_b]))
    out_r = keras.layers.Dense(1, name="reg")(h)
    out_c = keras.layers.Dense(1, activation="sigmoid", name="cls")(h)
    model = keras.Model([in_a, in_b], [out_r, out_c])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss={"reg": "mse", "cls": "binary_crossentropy"},
                  loss_weights={"reg": 1.0, "cls": 0.5}, metrics={"cls": ["accuracy"]})
    est = model_to_estimator(keras_model=model, model_dir=str(tmp_path))
    feats, labels = {"a": a, "b": b}, {"reg": y_reg, "cls": y_cls}
    eval_fn = numpy_input_fn(feats, labels, batch_size=200, shuffle=False)
    before = est.evaluate(eval_fn)
    k = model.evaluate(feats, labels, batch_size=200, verbose=0, return_dict=True)
    np.testing.assert_allclose(before["loss"], k["loss"], rtol=1e-5)
    np.testing.assert_allclose(before["cls_accuracy"], k["cls_accuracy"], atol=1e-6)
    est.train(numpy_input_fn(feats, labels, batch_size=20, num_epochs=5, shuffle=True))
    assert est.evaluate(eval_fn)["loss"] < before["loss"]
    pred = next(est.predict(numpy_input_fn(feats, shuffle=False)))
    assert set(pred) == {"reg", "cls"}
    with pytest.raises(InvalidArgumentError, match=r"features have keys \['a'\].*expects \['a', 'b'\]"):
        est.evaluate(numpy_input_fn({"a": a}, labels, shuffle=False))


def test_conversion_errors_name_the_problem(tmp_path):
    inputs = keras.Input((2,), name="x")
    uncompiled = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    with pytest.raises(InvalidArgumentError, match="must be compiled"):
        model_to_estimator(keras_model=uncompiled)
    with pytest.raises(InvalidArgumentError, match="exactly one of keras_model and keras_model_path"):
        model_to_estimator()

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(InvalidArgumentError, match="subclassed"):
        model_to_estimator(keras_model=Sub())


def test_from_a_saved_h5_file(digits, tmp_path):
    x, y = digits
    model = _mlp()
    path = str(tmp_path / "m.h5")
    model.save(path)
    est = ks.keras.estimator.model_to_estimator(keras_model_path=path, model_dir=str(tmp_path / "est"))
    res = est.evaluate(numpy_input_fn({"pixels": x}, y, batch_size=600, shuffle=False))
    np.testing.assert_allclose(res["accuracy"], model.evaluate(x, y, batch_size=600, verbose=0)[1], atol=1e-6)
