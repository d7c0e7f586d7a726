"""Dense, Activation, Dropout, SpatialDropout1D/2D and the activation layers through the layer contract."""
import numpy as np
import pytest

import kestimator.layers as L
from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError

from .layer_test_helper import run_layer_test


def _np_activation(name, x):
    return {"linear": lambda v: v, "relu": lambda v: np.maximum(v, 0), "tanh": np.tanh,
            "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
            "softmax": lambda v: np.exp(v - v.max(-1, keepdims=True)) / np.exp(v - v.max(-1, keepdims=True)).sum(
                -1, keepdims=True)}[name](x)


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "softmax"])
def test_dense(activation, tmp_path):
    run_layer_test(L.Dense, {"units": 128, "activation": activation}, input_shape=(5, 784),
                   expected_output_shape=(None, 128), expected_count_params=100480, tmp_path=tmp_path,
                   numpy_reference=lambda x, w: _np_activation(activation, x @ w[0] + w[1]))


def test_dense_rank3_and_no_bias(tmp_path):
    # (batch, time, features) is contracted on the last axis: y[b, t] = x[b, t] @ kernel
    run_layer_test(L.Dense, {"units": 4, "use_bias": False}, input_shape=(3, 5, 6),
                   expected_output_shape=(None, 5, 4), expected_count_params=24, tmp_path=tmp_path,
                   numpy_reference=lambda x, w: np.einsum("btf,fu->btu", x, w[0]))


def test_dense_weight_names_and_initial_values():
    layer = L.Dense(3, bias_initializer="ones", name="head")
    layer.build((None, 2))
    assert [w.name for w in layer.weights] == ["head/kernel:0", "head/bias:0"]
    np.testing.assert_array_equal(layer.bias.numpy(), np.ones(3, np.float32))
    # glorot_uniform: limit sqrt(6 / (fan_in + fan_out)) = sqrt(6 / 5)
    assert np.all(np.abs(layer.kernel.numpy()) <= np.sqrt(6 / 5))


def test_dense_rejects_wrong_input_width():
    layer = L.Dense(3)
    layer(L.Input((4,)))
    with pytest.raises(InvalidArgumentError, match=r"dense.*axis -1.*value 4.*\(None, 5\)"):
        layer(L.Input((5,)))


def test_dense_kernel_regularizer_loss_and_constraint():
    layer = L.Dense(2, kernel_regularizer=ke.initializers and "l2", kernel_constraint="non_neg")
    layer.build((None, 3))
    layer.kernel.assign(np.array([[1., -2.], [0.5, 3.], [-1., 0.]], np.float32))
    g = ke.Graph()
    with g.as_default():
        losses = layer.graph_losses(g)
        assert len(losses) == 1
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            # 0.01 (float32) * sum of squares = 0.01 * (1 + 4 + 0.25 + 9 + 1 + 0) = 0.1525
            np.testing.assert_allclose(sess.run(losses[0]), 0.1525, rtol=1e-6)
    # the variable carries the projection the optimizer applies after each update
    var = layer.kernel.variable(g)
    np.testing.assert_array_equal(var.constraint(np.array([[-1., 2.]], np.float32)), [[0., 2.]])


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation(name, tmp_path):
    run_layer_test(L.Activation, {"activation": name}, input_shape=(4, 3, 2), expected_output_shape=(None, 3, 2),
                   tmp_path=tmp_path, numpy_reference=lambda x, w: _np_activation(name, x))


def test_leaky_relu(tmp_path):
    run_layer_test(L.LeakyReLU, {"alpha": 0.25}, input_shape=(4, 6), expected_output_shape=(None, 6),
                   numpy_reference=lambda x, w: np.where(x > 0, x, 0.25 * x), tmp_path=tmp_path)


def test_relu_with_cap_and_threshold(tmp_path):
    # max_value caps, negative_slope applies below the threshold: f(x) = x if x > 0.5 else 0.1 (x - 0.5)
    run_layer_test(L.ReLU, {"max_value": 1.0, "negative_slope": 0.1, "threshold": 0.5}, input_shape=(4, 6),
                   expected_output_shape=(None, 6), tmp_path=tmp_path,
                   numpy_reference=lambda x, w: np.minimum(np.where(x > 0.5, x, np.float32(0.1) * (x - 0.5)), 1.0),
                   rtol=1e-7)


def test_elu_softmax_prelu(tmp_path):
    run_layer_test(L.ELU, {"alpha": 0.5}, input_shape=(4, 6), tmp_path=tmp_path,
                   numpy_reference=lambda x, w: np.where(x > 0, x, 0.5 * np.expm1(x)))
    run_layer_test(L.Softmax, {"axis": 1}, input_shape=(2, 3, 4), tmp_path=tmp_path,
                   numpy_reference=lambda x, w: np.exp(x) / np.exp(x).sum(1, keepdims=True))
    run_layer_test(L.PReLU, {"alpha_initializer": "ones", "shared_axes": [1]}, input_shape=(2, 3, 4),
                   expected_count_params=4, tmp_path=tmp_path,
                   numpy_reference=lambda x, w: np.where(x > 0, x, w[0] * x))


def test_dropout_inference_is_identity(tmp_path):
    run_layer_test(L.Dropout, {"rate": 0.5}, input_shape=(4, 5), expected_output_shape=(None, 5),
                   numpy_reference=lambda x, w: x, tmp_path=tmp_path)


def _train_output(layer, x, seed=1):
    g = ke.Graph()
    with g.as_default():
        ke.set_random_seed(seed)
        ph = ke.placeholder(ke.float32, [None] + list(x.shape[1:]))
        y = layer(ph, training=True)
        with ke.Session(graph=g) as sess:
            return sess.run(y, {ph: x})


def test_dropout_training_zeroes_and_rescales():
    x = np.ones((200, 50), np.float32)
    y = _train_output(L.Dropout(0.3, seed=3), x)
    kept = y != 0
    # survivors are scaled by 1 / (1 - 0.3); the kept fraction is ~0.7 (10,000 draws: sd ~0.005)
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs(kept.mean() - 0.7) < 0.03


def test_spatial_dropout_drops_whole_channels():
    x = np.ones((8, 5, 5, 16), np.float32)
    y = _train_output(L.SpatialDropout2D(0.5, seed=2), x)
    per_channel = y.reshape(8, 25, 16)
    # within one (example, channel) every pixel is either dropped or kept: one mask value per map
    assert np.all(per_channel.min(axis=1) == per_channel.max(axis=1))
    assert 0 < (per_channel[:, 0, :] == 0).mean() < 1
    y1 = _train_output(L.SpatialDropout1D(0.5, seed=2), np.ones((8, 7, 16), np.float32))
    assert np.all(y1.min(axis=1) == y1.max(axis=1))


def test_dropout_noise_shape_shares_mask():
    y = _train_output(L.Dropout(0.5, noise_shape=(None, 1, 6), seed=4), np.ones((4, 3, 6), np.float32))
    assert np.all(y.min(axis=1) == y.max(axis=1))


def test_unknown_keyword_is_rejected():
    with pytest.raises(InvalidArgumentError, match="unknown keyword arguments.*unitz"):
        L.Dense(3, unitz=4)
