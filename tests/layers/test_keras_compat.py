"""Every layer against tf.keras itself: config keys and default values, weight names, shapes, order and
trainability, and parameter counts, as recorded by tests/fixtures/make_keras_layer_configs.py (tf_keras 2.21)."""
import json
import os

import pytest

import kestimator.layers as L
from kestimator.layers import base, registry

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "keras_layers", "configs.json")
with open(FIXTURE) as _f:
    KERAS = json.load(_f)

CASES = {
    "Dense": lambda: L.Dense(128),
    "Dense_rank3": lambda: L.Dense(5, activation="relu", kernel_regularizer="l2"),
    "Activation": lambda: L.Activation("tanh"),
    "Flatten": lambda: L.Flatten(),
    "Reshape": lambda: L.Reshape((3, 2)),
    "Permute": lambda: L.Permute((2, 1)),
    "RepeatVector": lambda: L.RepeatVector(3),
    "Dropout": lambda: L.Dropout(0.3),
    "SpatialDropout2D": lambda: L.SpatialDropout2D(0.2),
    "Conv1D": lambda: L.Conv1D(4, 3),
    "Conv2D": lambda: L.Conv2D(32, 3),
    "Conv2DTranspose": lambda: L.Conv2DTranspose(4, 3, strides=2, padding="same"),
    "SeparableConv2D": lambda: L.SeparableConv2D(4, 3),
    "DepthwiseConv2D": lambda: L.DepthwiseConv2D(3, depth_multiplier=2),
    "MaxPooling1D": lambda: L.MaxPooling1D(),
    "AveragePooling1D": lambda: L.AveragePooling1D(),
    "MaxPooling2D": lambda: L.MaxPooling2D(),
    "AveragePooling2D": lambda: L.AveragePooling2D(),
    "GlobalAveragePooling1D": lambda: L.GlobalAveragePooling1D(),
    "GlobalMaxPooling1D": lambda: L.GlobalMaxPooling1D(),
    "GlobalAveragePooling2D": lambda: L.GlobalAveragePooling2D(),
    "GlobalMaxPooling2D": lambda: L.GlobalMaxPooling2D(),
    "ZeroPadding2D": lambda: L.ZeroPadding2D(),
    "Cropping2D": lambda: L.Cropping2D(1),
    "UpSampling2D": lambda: L.UpSampling2D(),
    "BatchNormalization": lambda: L.BatchNormalization(),
    "LayerNormalization": lambda: L.LayerNormalization(),
    "Embedding": lambda: L.Embedding(10, 4),
    "SimpleRNN": lambda: L.SimpleRNN(8),
    "LSTM": lambda: L.LSTM(32),
    "GRU": lambda: L.GRU(32),
    "GRU_v1": lambda: L.GRU(32, reset_after=False),
    "Bidirectional": lambda: L.Bidirectional(L.LSTM(4, return_sequences=True)),
    "LeakyReLU": lambda: L.LeakyReLU(),
    "ReLU": lambda: L.ReLU(),
    "Softmax": lambda: L.Softmax(),
    "ELU": lambda: L.ELU(),
    "PReLU": lambda: L.PReLU(),
    "Normalization": lambda: L.Normalization(),
    "Concatenate": lambda: L.Concatenate(), "Add": lambda: L.Add(), "Subtract": lambda: L.Subtract(),
    "Multiply": lambda: L.Multiply(), "Average": lambda: L.Average(), "Maximum": lambda: L.Maximum(),
    "Minimum": lambda: L.Minimum(), "Dot": lambda: L.Dot(axes=1),
}
MERGE = {"Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot"}


def _build(key):
    base.reset_uids()
    layer = CASES[key]()
    shape = KERAS[key]["input_shape"]
    if key in MERGE:
        layer([L.Input(shape), L.Input(shape)])
    else:
        layer(L.Input(shape, dtype="int32" if key == "Embedding" else "float32"))
    return layer


def test_fixture_covers_every_case():
    assert set(CASES) == set(KERAS)


@pytest.mark.parametrize("key", sorted(CASES))
def test_weights_match_keras(key):
    layer = _build(key)
    want = KERAS[key]
    got = [[w.name, list(w.shape), w.trainable] for w in layer.weights]
    assert got == want["weights"]
    assert layer.count_params() == want["count_params"]


@pytest.mark.parametrize("key", sorted(CASES))
def test_config_matches_keras(key):
    layer = _build(key)
    want = KERAS[key]["config"]
    got = json.loads(json.dumps(layer.get_config()))
    assert sorted(got) == sorted(want)
    assert got == want


@pytest.mark.parametrize("key", sorted(CASES))
def test_keras_config_loads(key):
    """tf.keras's own JSON config deserializes here into a layer with the same config."""
    want = KERAS[key]
    layer = registry.deserialize({"class_name": want["class_name"], "config": want["config"]})
    assert type(layer).__name__ == want["class_name"]
    assert json.loads(json.dumps(layer.get_config())) == want["config"]
