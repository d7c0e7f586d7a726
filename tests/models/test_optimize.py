"""Post-training int8 quantization (ks.optimize): per-channel scales, the converted model, its .h5 file."""
import os

import numpy as np
import pytest

import kestimator as ks
from kestimator import keras
from kestimator.optimize import quantize_per_channel


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def test_per_channel_quantization_error_is_within_half_a_step():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(20, 6)).astype(np.float32) * np.array([0.01, 0.1, 1, 10, 100, 0], np.float32)
    q, scales = quantize_per_channel(w)
    assert q.dtype == np.int8 and scales.shape == (6,)
    # scale = max|column| / 127; a zero column gets scale 1 and values 0
    np.testing.assert_allclose(scales[:5], np.abs(w[:, :5]).max(0) / 127, rtol=1e-6)
    assert scales[5] == 1.0 and not q[:, 5].any()
    assert np.all(np.abs(q.astype(np.float32) * scales - w) <= scales / 2 + 1e-7)
    assert np.abs(q).max() == 127


def test_converter_keeps_predictions_and_shrinks_the_file(tmp_path):
    from sklearn.datasets import load_digits
    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=3, verbose=0)
    converter = ks.optimize.Converter.from_keras_model(model)
    converter.post_training_quantize = True
    quantized = converter.convert()
    k = quantized.layers[0].kernel.numpy()
    assert k.dtype == np.int8
    # each output is the float model's with kernels perturbed by at most half a quantization step
    np.testing.assert_allclose(quantized.predict(x), model.predict(x), atol=0.05)
    float_path, q_path = str(tmp_path / "f.h5"), str(tmp_path / "q.h5")
    model.save(float_path)
    quantized.save(q_path)
    assert os.path.getsize(q_path) < 0.4 * os.path.getsize(float_path)
    loaded = ks.models.load_model(q_path)
    np.testing.assert_allclose(loaded.predict(x), quantized.predict(x), rtol=1e-6)
    assert loaded.evaluate(x, y, verbose=0)[1] > model.evaluate(x, y, verbose=0)[1] - 0.01
    import h5py
    with h5py.File(q_path, "r") as f:
        name = quantized.layers[0].name
        assert f["model_weights"][name][name]["kernel:0"].dtype == np.int8
