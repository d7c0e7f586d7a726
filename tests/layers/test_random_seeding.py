"""Random layers inside a Keras model's graph (Dropout, SpatialDropout2D, RNN dropout) are seeded by
`keras.utils.set_random_seed` / `ks.utils.set_random_seed`: the same seed gives bit-identical training,
another seed other dropout masks.

Each model starts from the same fixed initial weights (set_weights), so any difference between two fits
comes from the dropout masks alone.
"""
import numpy as np
import pytest

import kestimator as ks
from kestimator import keras

L = keras.layers


def _model(kind):
    if kind == "dropout":
        return keras.Sequential([keras.Input((6,)), L.Dense(16, activation="relu"), L.Dropout(0.5), L.Dense(1)])
    if kind == "spatial":
        return keras.Sequential([keras.Input((4, 4, 3)), L.SpatialDropout2D(0.5), L.Flatten(), L.Dense(1)])
    return keras.Sequential([keras.Input((5, 3)), L.LSTM(4, dropout=0.3, recurrent_dropout=0.3), L.Dense(1)])


_INPUT = {"dropout": (6,), "spatial": (4, 4, 3), "lstm": (5, 3)}


def _fit(kind, seed, setter, start):
    setter(seed)
    model = _model(kind)
    model.set_weights(start)
    rng = np.random.default_rng(0)
    x = rng.random((64,) + _INPUT[kind], dtype=np.float32)
    y = rng.random((64, 1), dtype=np.float32)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    return model.get_weights(), history.history["loss"]


@pytest.mark.parametrize("kind", ["dropout", "spatial", "lstm"])
@pytest.mark.parametrize("setter", [keras.utils.set_random_seed, ks.utils.set_random_seed], ids=["keras", "ks"])
def test_same_seed_same_masks_other_seed_other_masks(kind, setter):
    keras.utils.set_random_seed(123)
    start = _model(kind).get_weights()
    w1, loss1 = _fit(kind, 7, setter, start)
    w2, loss2 = _fit(kind, 7, setter, start)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert loss1 == loss2
    w3, loss3 = _fit(kind, 8, setter, start)
    assert any(not np.array_equal(a, b) for a, b in zip(w1, w3)) and loss1 != loss3


def test_drawn_seed_stays_out_of_the_config_and_weights_stream():
    keras.utils.set_random_seed(3)
    plain = keras.Sequential([keras.Input((4,)), L.Dense(3), L.Dense(2)]).get_weights()
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), L.Dropout(0.2), L.Dense(2)])
    # the op seeds come from their own stream: the Dense after the Dropout gets the same initial weights
    for a, b in zip(plain, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.layers[1].get_config()["seed"] is None
    assert L.Dropout(0.2, seed=5).get_config()["seed"] == 5


def test_explicit_layer_seed_is_used_whatever_the_global_seed():
    x = np.ones((200, 10), np.float32)
    masks = []
    for global_seed in (1, 2):
        keras.utils.set_random_seed(global_seed)
        inp = keras.Input((10,))
        model = keras.Model(inp, L.Dropout(0.5, seed=42)(inp, training=True))
        masks.append(model.predict(x, verbose=0) != 0)
    np.testing.assert_array_equal(masks[0], masks[1])
    # rate 0.5 over 2,000 units: the kept fraction is 0.5 within 5 standard deviations (0.011 each)
    assert abs(masks[0].mean() - 0.5) < 0.056
