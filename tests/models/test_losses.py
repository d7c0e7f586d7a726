"""Keras losses against tf_keras 2.21's values (tests/fixtures/keras/losses_metrics.npz, written by
make_keras_fixtures.py) and hand-computed cases.

Tolerance: float32 on both sides with different summation orders: 1e-5 relative, 1e-6 absolute.
"""
import os

import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError
from kestimator.losses import keras_losses as L

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "keras", "losses_metrics.npz")


@pytest.fixture(scope="module")
def data():
    return dict(np.load(FIXTURE))


CASES = {
    "mse": (lambda: L.MeanSquaredError(), "yr", "pr"), "mae": (lambda: L.MeanAbsoluteError(), "yr", "pr"),
    "mape": (lambda: L.MeanAbsolutePercentageError(), "yr", "pr"),
    "huber": (lambda: L.Huber(delta=0.7), "yr", "pr"), "log_cosh": (lambda: L.LogCosh(), "yr", "pr"),
    "bce": (lambda: L.BinaryCrossentropy(), "yb", "pb"),
    "bce_smooth": (lambda: L.BinaryCrossentropy(label_smoothing=0.1), "yb", "pb"),
    "cce": (lambda: L.CategoricalCrossentropy(), "yc", "pc"),
    "cce_smooth": (lambda: L.CategoricalCrossentropy(label_smoothing=0.2), "yc", "pc"),
    "scce": (lambda: L.SparseCategoricalCrossentropy(), "ys", "pc"),
    "categorical_hinge": (lambda: L.CategoricalHinge(), "yc", "pc"), "kld": (lambda: L.KLDivergence(), "yc", "pc"),
    "cosine": (lambda: L.CosineSimilarity(), "yr", "pr"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_tf_keras(data, name):
    make, t, p = CASES[name]
    loss = make()
    np.testing.assert_allclose(loss(data[t], data[p]), data[f"loss_{name}"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss(data[t], data[p], sample_weight=data["sw"]), data[f"loss_{name}_weighted"],
                               rtol=1e-5, atol=1e-6)


def test_losses_with_derived_inputs_match_tf_keras(data):
    pos = data["pos"]
    np.testing.assert_allclose(L.MeanSquaredLogarithmicError()(pos, pos[::-1]), data["loss_msle"], rtol=1e-5)
    np.testing.assert_allclose(L.Poisson()(pos, pos[::-1]), data["loss_poisson"], rtol=1e-5)
    np.testing.assert_allclose(L.BinaryCrossentropy(from_logits=True)(data["yb"], data["pr"][:, :1]),
                               data["loss_bce_logits"], rtol=1e-5)
    logits = data["pr"][:, :3].repeat(2, axis=1)[:, :4]
    np.testing.assert_allclose(L.CategoricalCrossentropy(from_logits=True)(data["yc"], logits),
                               data["loss_cce_logits"], rtol=1e-5)
    np.testing.assert_allclose(L.Hinge()(data["yb"], data["pr"][:, :1]), data["loss_hinge"], rtol=1e-5)
    np.testing.assert_allclose(L.SquaredHinge()(data["yb"], data["pr"][:, :1]), data["loss_squared_hinge"],
                               rtol=1e-5)


def test_hand_computed_values():
    # mse of [[0, 1], [1, 0]] vs [[0.2, 0.8], [0.6, 0.4]]: per-sample means (0.04+0.04)/2=0.04 and
    # (0.16+0.16)/2=0.16 -> batch mean 0.1
    yt = np.array([[0, 1], [1, 0]], np.float32)
    yp = np.array([[0.2, 0.8], [0.6, 0.4]], np.float32)
    np.testing.assert_allclose(L.MeanSquaredError()(yt, yp), 0.1, rtol=1e-6)
    # sparse CE of labels [1, 0] on those probabilities: -(log 0.8 + log 0.6) / 2 = 0.366985
    np.testing.assert_allclose(L.SparseCategoricalCrossentropy()(np.array([1, 0]), yp), 0.3669846, rtol=1e-6)
    # reduction "sum": 0.04 + 0.16 = 0.2; "none": the per-sample values
    np.testing.assert_allclose(L.MeanSquaredError(reduction="sum")(yt, yp), 0.2, rtol=1e-6)
    np.testing.assert_allclose(L.MeanSquaredError(reduction="none")(yt, yp), [0.04, 0.16], rtol=1e-5)
    # huber, delta 1: errors 0.5 and 2 -> 0.5*0.25 = 0.125 and 1*(2 - 0.5) = 1.5 -> mean 0.8125
    np.testing.assert_allclose(L.Huber()(np.array([[0.0], [0.0]]), np.array([[0.5], [2.0]])), 0.8125, rtol=1e-6)


def test_softmax_output_uses_fused_logits_path():
    # From softmax outputs the loss reads the logits: exact even where the probability underflows to 0
    g = ke.Graph()
    with g.as_default():
        logits = ke.placeholder(ke.float32, [None, 3])
        probs = ke.nn.softmax(logits)
        loss = L.SparseCategoricalCrossentropy()(ke.constant(np.array([0, 1], np.int64)), probs)
        assert any(op.type == "SparseSoftmaxCrossEntropyWithLogits" for op in g.get_operations())
        with ke.Session(graph=g) as sess:
            value = sess.run(loss, {logits: np.array([[0.0, 200.0, 0.0], [0.0, 0.0, 0.0]], np.float32)})
    # sample 0: -log softmax = 200 (logsumexp ~ 200); sample 1: log 3
    np.testing.assert_allclose(value, (200.0 + np.log(3.0)) / 2, rtol=1e-5)


def test_get_serialize_round_trip_and_errors():
    assert L.get("mse") is L.get("mean_squared_error")
    obj = L.get({"class_name": "Huber", "config": {"delta": 2.0, "reduction": "sum"}})
    assert isinstance(obj, L.Huber) and obj._fn_kwargs["delta"] == 2.0 and obj.reduction == "sum"
    again = L.deserialize(L.serialize(obj))
    assert isinstance(again, L.Huber) and again.get_config() == obj.get_config()
    with pytest.raises(InvalidArgumentError, match="unknown loss"):
        L.get("no_such_loss")
    with pytest.raises(InvalidArgumentError, match="unknown loss class"):
        L.deserialize({"class_name": "os.system", "config": {}})


def test_tf1_names_left_to_tf_losses():
    # mean_squared_error / huber_loss are the TF1 functions' names (tf_losses); keras_losses must not export them
    assert "mean_squared_error" not in L.__all__ and "huber_loss" not in L.__all__
