"""The `from kestimator import keras` namespace: the names Keras code uses resolve, and the utilities
compute what Keras's do."""
import numpy as np
import pytest

from kestimator import keras
from kestimator.errors import InvalidArgumentError


def test_names_resolve():
    for name in ("Sequential", "Model", "Input", "layers", "optimizers", "losses", "metrics", "callbacks",
                 "models", "initializers", "regularizers", "activations", "utils", "backend"):
        assert getattr(keras, name) is not None
    assert keras.models.load_model and keras.models.model_from_json and keras.models.save_model
    assert keras.callbacks.ModelCheckpoint and keras.callbacks.BackupAndRestore and keras.callbacks.TensorBoard
    assert keras.losses.SparseCategoricalCrossentropy and keras.metrics.AUC
    assert callable(keras.estimator.model_to_estimator)


def test_to_categorical_and_normalize():
    np.testing.assert_array_equal(keras.utils.to_categorical([[1], [0], [2]], 3),
                                  [[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    with pytest.raises(InvalidArgumentError):
        keras.utils.to_categorical([3], 3)
    np.testing.assert_allclose(keras.utils.normalize(np.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0, 0]])


def test_clear_session_restarts_layer_names():
    keras.backend.clear_session()
    first = keras.layers.Dense(1).name
    keras.backend.clear_session()
    assert keras.layers.Dense(1).name == first == "dense"


def test_load_weights_by_name_and_skip_mismatch(tmp_path):
    keras.utils.set_random_seed(0)
    src = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(2, name="b")])
    src.save_weights(str(tmp_path / "w.h5"))
    dst = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(5, name="b")])
    with pytest.raises(InvalidArgumentError, match="b"):
        dst.load_weights(str(tmp_path / "w.h5"), by_name=True)
    with pytest.warns(RuntimeWarning, match="skipping"):
        dst.load_weights(str(tmp_path / "w.h5"), by_name=True, skip_mismatch=True)
    for a, b in zip(dst.get_layer("a").get_weights(), src.get_layer("a").get_weights()):
        np.testing.assert_array_equal(a, b)
