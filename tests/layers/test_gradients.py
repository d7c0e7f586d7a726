"""Gradients through layers (and the two ops in kestimator/layers/_ops.py) against float64 central
differences: d/dw of sum(layer(x) * r) for a fixed random r, at 12 random entries of every trainable
weight and of the input. Tolerance: step 1e-6 in float64 leaves ~1e-8 truncation + rounding error;
we require 1e-6 relative / 1e-8 absolute."""
import numpy as np
import pytest

import kestimator.layers as L
from kestimator import engine as ke
from kestimator.layers import _ops


def _numeric_vs_analytic(build_output, params, rng, n_checks=12, eps=1e-6):
    """build_output(tensors) -> output tensor, for placeholders of `params` (list of float64 arrays)."""
    g = ke.Graph()
    with g.as_default():
        phs = [ke.placeholder(ke.float64, p.shape) for p in params]
        y = build_output(phs)
        r = rng.standard_normal(tuple(y.shape))
        loss = ke.reduce_sum(y * r)
        grads = ke.gradients(loss, phs)
        with ke.Session(graph=g) as sess:
            feed = dict(zip(phs, params))
            analytic = sess.run(grads, feed)
            for i, p in enumerate(params):
                flat = p.reshape(-1)
                for j in rng.choice(flat.size, size=min(n_checks, flat.size), replace=False):
                    orig = flat[j]
                    flat[j] = orig + eps
                    up = sess.run(loss, feed)
                    flat[j] = orig - eps
                    down = sess.run(loss, feed)
                    flat[j] = orig
                    numeric = (up - down) / (2 * eps)
                    np.testing.assert_allclose(analytic[i].reshape(-1)[j], numeric, rtol=1e-6, atol=1e-8,
                                               err_msg=f"parameter {i}, entry {j}")


def test_unstack_and_split_ops_gradients():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6))

    def out(ts):
        steps = _ops.unstack(ts[0], 1)
        blocks = _ops.split(steps[1] * steps[3], [1, 2, 3], axis=1)
        return ke.concat([blocks[2] * 2.0, blocks[0] - blocks[1][:, :1], steps[0][:, :2]], axis=1)
    _numeric_vs_analytic(out, [x], rng)


def _layer_fn(layer, n_weights):
    """A function of (x, *weights) placeholders computing `layer` with those weights."""
    def fn(ts):
        x, ws = ts[0], ts[1:]
        originals = [w._as_tensor for w in layer.trainable_weights]
        for w, t in zip(layer.trainable_weights, ws):
            w._as_tensor = (lambda t=t: t)
        try:
            return layer(x, training=True)
        finally:
            for w, orig in zip(layer.trainable_weights, originals):
                w._as_tensor = orig
    return fn


@pytest.mark.parametrize("make,shape", [
    (lambda: L.LSTM(3, return_sequences=True, dtype="float64"), (2, 4, 3)),
    (lambda: L.GRU(3, dtype="float64"), (2, 4, 3)),
    (lambda: L.GRU(3, reset_after=False, go_backwards=True, dtype="float64"), (2, 3, 2)),
    (lambda: L.SimpleRNN(2, return_sequences=True, dtype="float64"), (2, 3, 2)),
    (lambda: L.Conv2D(2, 3, strides=2, padding="same", dtype="float64"), (2, 5, 5, 2)),
    (lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same", dtype="float64"), (1, 3, 3, 2)),
    (lambda: L.SeparableConv2D(2, 2, dtype="float64"), (1, 4, 4, 2)),
    (lambda: L.BatchNormalization(dtype="float64"), (5, 3)),
    (lambda: L.LayerNormalization(dtype="float64"), (2, 5)),
    (lambda: L.Dense(3, activation="softmax", dtype="float64"), (2, 4)),
    (lambda: L.PReLU(alpha_initializer="random_normal", dtype="float64"), (3, 4)),
])
def test_layer_gradients(make, shape):
    rng = np.random.default_rng(1)
    layer = make()
    layer.build(shape)
    for w in layer.trainable_weights:     # move off the initial values (zeros biases, ones gammas)
        w.assign(w.numpy() + rng.standard_normal(w.shape) * 0.3)
    x = rng.standard_normal(shape)
    params = [x] + [w.numpy().astype(np.float64) for w in layer.trainable_weights]
    _numeric_vs_analytic(_layer_fn(layer, len(params) - 1), params, rng)
