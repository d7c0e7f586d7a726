"""SimpleRNN, LSTM, GRU and Bidirectional against NumPy implementations of Keras's equations."""
import numpy as np
import pytest

import kestimator.layers as L
from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError

from . import numpy_refs as R
from .layer_test_helper import run_layer_test

# float64: a handful of steps of tanh/sigmoid arithmetic; 1e-9 relative covers summation order.
TOL = dict(rtol=1e-9, atol=1e-11)


def _randomize_bias(layer):
    rng = np.random.default_rng(3)
    layer.cell.bias.assign(rng.standard_normal(layer.cell.bias.shape) * 0.5)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_simple_rnn(return_sequences, tmp_path):
    def ref(x, w):
        seq, h = R.simple_rnn(x, *w)
        return seq if return_sequences else h
    run_layer_test(L.SimpleRNN, {"units": 8, "return_sequences": return_sequences}, input_shape=(3, 5, 16),
                   expected_output_shape=(None, 5, 8) if return_sequences else (None, 8),
                   expected_count_params=200, tmp_path=tmp_path, prepare=_randomize_bias, numpy_reference=ref, **TOL)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_lstm(go_backwards, tmp_path):
    # Keras: LSTM(32) on 16 features = 4 * (16 * 32 + 32 * 32 + 32) = 6,272
    run_layer_test(L.LSTM, {"units": 32, "go_backwards": go_backwards}, input_shape=(3, 6, 16),
                   expected_output_shape=(None, 32), expected_count_params=6272, tmp_path=tmp_path,
                   prepare=_randomize_bias,
                   numpy_reference=lambda x, w: R.lstm(x, *w, go_backwards=go_backwards)[1], **TOL)


def test_lstm_sequences_and_states(tmp_path):
    layer = run_layer_test(L.LSTM, {"units": 4, "return_sequences": True}, input_shape=(2, 5, 3),
                           expected_output_shape=(None, 5, 4), tmp_path=tmp_path, prepare=_randomize_bias,
                           numpy_reference=lambda x, w: R.lstm(x, *w)[0], **TOL)
    assert [w.name for w in layer.weights] == [f"{layer.name}/lstm_cell/{n}:0"
                                               for n in ("kernel", "recurrent_kernel", "bias")]


def test_lstm_unit_forget_bias_initial_value():
    layer = L.LSTM(3)
    layer(L.Input((4, 2)))
    np.testing.assert_array_equal(layer.cell.bias.numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_lstm_return_state_and_initial_state():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 3))
    h0, c0 = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    layer = L.LSTM(5, return_state=True, dtype="float64")
    inp = L.Input((4, 3), dtype="float64")
    outs = layer(inp)
    assert [tuple(o.shape) for o in outs] == [(None, 5)] * 3
    _randomize_bias(layer)
    w = layer.get_weights()
    g = ke.Graph()
    with g.as_default():
        px = ke.placeholder(ke.float64, [None, 4, 3])
        ph, pc = ke.placeholder(ke.float64, [None, 5]), ke.placeholder(ke.float64, [None, 5])
        out, h, c = layer(px, initial_state=[ph, pc])
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            got = sess.run([out, h, c], {px: x, ph: h0, pc: c0})
    _, rh, rc = R.lstm(x, *w, h=h0, c=c0)
    np.testing.assert_allclose(got[0], rh, **TOL)
    np.testing.assert_allclose(got[1], rh, **TOL)
    np.testing.assert_allclose(got[2], rc, **TOL)


@pytest.mark.parametrize("reset_after,count", [(True, 4800), (False, 4704)])
def test_gru(reset_after, count, tmp_path):
    # Keras: GRU(32, reset_after=True) on 16 = 3 * (16 * 32 + 32 * 32) + 2 * 3 * 32 = 4,800; without: 4,704
    run_layer_test(L.GRU, {"units": 32, "reset_after": reset_after, "return_sequences": True},
                   input_shape=(3, 5, 16), expected_output_shape=(None, 5, 32), expected_count_params=count,
                   tmp_path=tmp_path, prepare=_randomize_bias,
                   numpy_reference=lambda x, w: R.gru(x, *w, reset_after=reset_after)[0], **TOL)


def test_rnn_needs_known_time_steps():
    with pytest.raises(InvalidArgumentError, match="number of time steps must be known"):
        L.LSTM(3)(L.Input((None, 4)))


def test_rnn_dropout_only_in_training():
    layer = L.GRU(4, dropout=0.5, recurrent_dropout=0.5)
    x = np.random.default_rng(1).standard_normal((3, 5, 2)).astype(np.float32)
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(ke.float32, [None, 5, 2])
        y_train, y_test = layer(ph, training=True), layer(ph, training=False)
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            a, b = sess.run([y_train, y_test], {ph: x})
    ref = R.gru(x.astype(np.float64), *[w.astype(np.float64) for w in layer.get_weights()])[1]
    np.testing.assert_allclose(b, ref, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a, b)


def test_generic_rnn_with_cell(tmp_path):
    run_layer_test(L.RNN, {"cell": L.SimpleRNNCell(3), "return_sequences": True}, input_shape=(2, 4, 5),
                   expected_output_shape=(None, 4, 3), tmp_path=tmp_path, float64=False,
                   numpy_reference=lambda x, w: R.simple_rnn(x, *w)[0])


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
def test_bidirectional(merge_mode, tmp_path):
    merge = {"concat": lambda a, b: np.concatenate([a, b], -1), "sum": np.add, "mul": np.multiply,
             "ave": lambda a, b: (a + b) / 2}[merge_mode]

    def ref(x, w):
        fwd, _, _ = R.lstm(x, *w[:3])
        bwd, _, _ = R.lstm(x, *w[3:], go_backwards=True)
        return merge(fwd, bwd[:, ::-1])      # the backward sequence is returned in forward time order
    layer = run_layer_test(L.Bidirectional, {"layer": L.LSTM(4, return_sequences=True), "merge_mode": merge_mode},
                           input_shape=(2, 5, 3), tmp_path=tmp_path, numpy_reference=ref, float64=False,
                           expected_output_shape=(None, 5, 8 if merge_mode == "concat" else 4),
                           expected_count_params=2 * 4 * (3 * 4 + 4 * 4 + 4))
    assert layer.weights[0].name.startswith(layer.name + "/forward_lstm")
    assert layer.weights[3].name.startswith(layer.name + "/backward_lstm")


def test_bidirectional_last_output_and_states():
    layer = L.Bidirectional(L.GRU(3, return_state=True))
    outs = layer(L.Input((4, 2)))
    assert [tuple(o.shape) for o in outs] == [(None, 6), (None, 3), (None, 3)]


def test_time_distributed(tmp_path):
    layer = run_layer_test(L.TimeDistributed, {"layer": L.Dense(3)}, input_shape=(2, 4, 5),
                           expected_output_shape=(None, 4, 3), tmp_path=tmp_path, float64=False,
                           numpy_reference=lambda x, w: x @ w[0] + w[1])
    # as tf.keras names them: the wrapper's name, not the wrapped layer's
    assert [w.name for w in layer.weights] == [f"{layer.name}/kernel:0", f"{layer.name}/bias:0"]


def test_generic_rnn_weight_names():
    layer = L.RNN(L.LSTMCell(3, name="lstm_cell"), name="rnn")
    layer(L.Input((4, 5)))
    assert [w.name for w in layer.weights] == ["rnn/lstm_cell/kernel:0", "rnn/lstm_cell/recurrent_kernel:0",
                                               "rnn/lstm_cell/bias:0"]
