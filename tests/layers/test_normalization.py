"""BatchNormalization and LayerNormalization: inference and training maths, moving-statistics updates,
freezing."""
import numpy as np
import pytest

import kestimator.layers as L
from kestimator import engine as ke

from .layer_test_helper import run_layer_test


def _set_stats(layer):
    rng = np.random.default_rng(5)
    n = layer.moving_mean.shape[0]
    layer.moving_mean.assign(rng.standard_normal(n))
    layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))
    layer.gamma.assign(rng.uniform(0.5, 1.5, n))
    layer.beta.assign(rng.standard_normal(n))


def _bn_inference(x, w, eps=1e-3, axis=-1):
    gamma, beta, mean, var = w
    shape = [1] * x.ndim
    shape[axis] = -1
    gamma, beta, mean, var = (v.reshape(shape) for v in (gamma, beta, mean, var))
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def test_batch_normalization_inference(tmp_path):
    run_layer_test(L.BatchNormalization, {}, input_shape=(6, 64), expected_output_shape=(None, 64),
                   expected_count_params=256, tmp_path=tmp_path, prepare=_set_stats,
                   numpy_reference=_bn_inference)
    layer = L.BatchNormalization()
    layer.build((None, 64))
    assert len(layer.trainable_weights) == 2 and sum(w.shape[0] for w in layer.trainable_weights) == 128


def test_batch_normalization_axis1_on_images(tmp_path):
    run_layer_test(L.BatchNormalization, {"axis": 1, "epsilon": 0.01}, input_shape=(3, 4, 5, 2), tmp_path=tmp_path,
                   prepare=_set_stats, numpy_reference=lambda x, w: _bn_inference(x, w, 0.01, axis=1))


def test_batch_normalization_training_and_moving_updates():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(32, 4, 4, 3)).astype(np.float32)
    layer = L.BatchNormalization(momentum=0.9, epsilon=1e-3)
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(ke.float32, [None, 4, 4, 3])
        y = layer(ph, training=True)
        updates = layer.graph_updates(g)
        assert len(updates) == 2
        y_inf = layer(ph, training=False)
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            for w in layer.weights:
                w._attach(sess, w.variable(g))
            out, _ = sess.run([y, updates], {ph: x})
            x64 = x.astype(np.float64)
            mean, var = x64.mean(axis=(0, 1, 2)), x64.var(axis=(0, 1, 2))
            # training normalizes with the batch's own statistics (gamma 1, beta 0)
            np.testing.assert_allclose(out, (x64 - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
            # moving = 0.9 * moving + 0.1 * batch, from mean 0 and variance 1
            np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * mean, rtol=1e-5)
            np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * var, rtol=1e-5)
            inf = sess.run(y_inf, {ph: x})
            np.testing.assert_allclose(inf, (x64 - 0.1 * mean) / np.sqrt(0.9 + 0.1 * var + 1e-3), rtol=1e-4,
                                       atol=1e-5)
            for w in layer.weights:
                w._detach()
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * mean, rtol=1e-5)


def test_frozen_batch_normalization_runs_in_inference_mode():
    layer = L.BatchNormalization()
    layer.build((None, 3))
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 4
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(ke.float32, [None, 3])
        y = layer(ph, training=True)
        assert layer.graph_updates(g) == []
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32)
            # moving mean 0, variance 1: y = x / sqrt(1 + 0.001)
            np.testing.assert_allclose(sess.run(y, {ph: x}), x / np.sqrt(1.001), rtol=1e-6)
        # its graph variables are not trainable either
        assert not layer.gamma.variable(g).trainable


def test_batch_normalization_eager_training_updates():
    layer = L.BatchNormalization(momentum=0.5)
    x = np.array([[0.0, 2.0], [2.0, 6.0]], np.float32)
    ke.enable_eager_execution()
    try:
        layer(x, training=True)
    finally:
        from kestimator.engine import eager
        eager.disable_eager_execution()
    # batch mean (1, 4), variance (1, 4): moving = 0.5 * init + 0.5 * batch
    np.testing.assert_allclose(layer.moving_mean.numpy(), [0.5, 2.0])
    np.testing.assert_allclose(layer.moving_variance.numpy(), [1.0, 2.5])


@pytest.mark.parametrize("axis", [-1, [1, 2]])
def test_layer_normalization(axis, tmp_path):
    def ref(x, w):
        axes = (2,) if axis == -1 else (1, 2)
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        return w[0] * (x - mean) / np.sqrt(var + 1e-3) + w[1]

    def prepare(layer):
        rng = np.random.default_rng(2)
        layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
        layer.beta.assign(rng.standard_normal(layer.beta.shape))
    run_layer_test(L.LayerNormalization, {"axis": axis}, input_shape=(3, 4, 5), expected_output_shape=(None, 4, 5),
                   tmp_path=tmp_path, prepare=prepare, numpy_reference=ref, rtol=1e-9)
