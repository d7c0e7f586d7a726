"""Format versions of Keras .h5 files kestimator writes (model and weights-only): a newer format is refused
naming the writer and the versions; a file without kestimator's attributes (tf.keras wrote it, or an older
kestimator) loads."""
import os
import shutil

import h5py
import numpy as np
import pytest

import kestimator
import kestimator as ks
from kestimator.errors import InvalidArgumentError

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "compat", "v1",
                        "keras")


def _copy(tmp_path, name, **attrs):
    path = tmp_path / name
    shutil.copyfile(os.path.join(FIXTURES, name), path)
    with h5py.File(path, "a") as f:
        for k, v in attrs.items():
            if v is None:
                del f.attrs[k]
            else:
                f.attrs[k] = v
    return str(path)


def _expected():
    with np.load(os.path.join(FIXTURES, "expected.npz")) as d:
        return d["predict_x"], d["predictions"]


def _fresh_model():
    return ks.models.Sequential([ks.layers.Dense(4, activation="relu", input_shape=(3,)), ks.layers.Dense(2)])


def test_written_files_carry_format_and_writer(tmp_path):
    model = _fresh_model()
    model.save(str(tmp_path / "m.h5"))
    model.save_weights(str(tmp_path / "w.h5"))
    for name in ("m.h5", "w.h5"):
        with h5py.File(tmp_path / name, "r") as f:
            assert int(f.attrs["kestimator_format"]) == 1
            value = f.attrs["kestimator_version"]
            assert (value.decode() if isinstance(value, bytes) else value) == kestimator.__version__


def test_a_newer_model_file_is_refused(tmp_path):
    path = _copy(tmp_path, "model.h5", kestimator_format=np.int64(2), kestimator_version=b"2.0.1")
    with pytest.raises(InvalidArgumentError) as info:
        ks.models.load_model(path)
    assert str(info.value) == (f"{path} was written by kestimator 2.0.1 in Keras .h5 format 2; this kestimator "
                               f"({kestimator.__version__}) reads up to format 1: upgrade kestimator to load this "
                               "newer format")


def test_a_newer_weights_file_is_refused(tmp_path):
    path = _copy(tmp_path, "weights.h5", kestimator_format=np.int64(3))
    with pytest.raises(InvalidArgumentError, match=r"weights\.h5 was written by .* format 3; .*reads up to format 1"):
        _fresh_model().load_weights(path)


def test_files_without_kestimator_attributes_load(tmp_path):
    x, want = _expected()
    path = _copy(tmp_path, "model.h5", kestimator_format=None, kestimator_version=None)
    np.testing.assert_allclose(ks.models.load_model(path).predict(x, verbose=0), want, rtol=1e-6, atol=1e-7)
    path = _copy(tmp_path, "weights.h5", kestimator_format=None, kestimator_version=None)
    model = _fresh_model()
    model.load_weights(path)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-6, atol=1e-7)
