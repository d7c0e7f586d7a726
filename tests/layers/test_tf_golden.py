"""Layers loaded from tf.keras's own configs and weights compute what tf.keras computed (fixture written
by tests/fixtures/make_keras_layer_outputs.py with tf_keras 2.21).

Tolerance: float32 throughout on both sides, different summation orders (oneDNN vs NumPy/BLAS) and
tanh/sigmoid implementations: 2e-5 absolute / 1e-4 relative.
"""
import json
import os

import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.layers import KerasTensor, registry

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "keras_layers", "outputs.h5")


def _cases():
    import h5py
    with h5py.File(FIXTURE, "r") as f:
        return sorted(f)


def _load(name):
    import h5py
    with h5py.File(FIXTURE, "r") as f:
        grp = f[name]
        weights = [np.asarray(grp[f"weight_{i}"]) for i in range(int(grp.attrs["num_weights"]))]
        extra = {k: np.asarray(grp[k]) for k in grp if k.startswith("output")}
        return (str(grp.attrs["class_name"]), json.loads(grp.attrs["config"]), np.asarray(grp["input"]), weights,
                extra)


def _run(layer, x, training):
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(ke.float32, [None] + list(x.shape[1:]))
        y = layer(ph, training=training)
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            return sess.run(y, {ph: x})


@pytest.mark.parametrize("name", _cases())
def test_matches_tf_keras(name):
    class_name, config, x, weights, outputs = _load(name)
    layer = registry.deserialize({"class_name": class_name, "config": config})
    layer(KerasTensor((None,) + x.shape[1:], "float32"))
    layer.set_weights(weights)
    np.testing.assert_allclose(_run(layer, x, False), outputs["output"], rtol=1e-4, atol=2e-5)
    if "output_training" in outputs:
        np.testing.assert_allclose(_run(layer, x, True), outputs["output_training"], rtol=1e-4, atol=2e-5)
