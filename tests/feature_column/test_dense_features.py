"""DenseFeatures: the same columns in a Keras model give what input_layer gives, and train."""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator import feature_column as fc
from kestimator import keras
from kestimator.errors import InvalidArgumentError


def _columns():
    city = fc.categorical_column_with_vocabulary_list("city", ["paris", "rome", "oslo"], num_oov_buckets=1)
    return [fc.embedding_column(city, 2), fc.bucketized_column(fc.numeric_column("age"), [20.0, 40.0]),
            fc.numeric_column("age")]


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    city = rng.choice(["paris", "rome", "oslo", "lima"], (n, 1)).astype(object)
    age = rng.uniform(10, 60, (n, 1)).astype(np.float32)
    return {"city": city, "age": age}


def test_dense_features_matches_input_layer_with_the_same_table():
    cols = _columns()
    layer = fc.DenseFeatures(cols)
    inputs = {"city": keras.Input((1,), dtype="string", name="city"), "age": keras.Input((1,), name="age")}
    model = keras.Model(inputs, layer(inputs))
    assert [w.name for w in layer.weights] == ["dense_features/city_embedding/embedding_weights:0"]
    table = layer.get_weights()[0]
    data = _data()
    got = model.predict(data, verbose=0)
    # the same columns through input_layer in a plain graph, with the embedding table set to the layer's
    g = ke.Graph()
    with g.as_default():
        phs = {"city": ke.placeholder(ke.string, [None, 1]), "age": ke.placeholder(ke.float32, [None, 1])}
        out = fc.input_layer(phs, cols)
        with ke.Session() as sess:
            sess.run(ke.global_variables_initializer())
            ke.global_variables()[0].load(table, sess)
            ref = sess.run(out, {phs["city"]: data["city"], phs["age"]: data["age"]})
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # and by hand: [age, age buckets one-hot, embedding of the city id]
    ids = [{"paris": 0, "rome": 1, "oslo": 2}.get(c, 3) for c in data["city"][:, 0]]
    assert ids.count(3) > 0   # "lima" is the OOV bucket
    buckets = np.searchsorted([20.0, 40.0], data["age"][:, 0], side="right")
    by_hand = np.concatenate([data["age"], np.eye(3, dtype=np.float32)[buckets], table[ids]], axis=1)
    np.testing.assert_allclose(got, by_hand, rtol=1e-6)


def test_dense_features_trains_in_a_keras_model():
    data = _data(256, seed=1)
    y = ((data["city"][:, 0] == "paris") | (data["age"][:, 0] > 40)).astype(np.float32)
    inputs = {"city": keras.Input((1,), dtype="string", name="city"), "age": keras.Input((1,), name="age")}
    x = fc.DenseFeatures(_columns())(inputs)
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(8, activation="relu")(x))
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    before = model.evaluate(data, y, verbose=0)[1]
    model.fit(data, y, epochs=30, batch_size=32, verbose=0)
    after = model.evaluate(data, y, verbose=0)[1]
    assert after >= 0.9 and after > before


def test_dense_features_config_round_trip_and_errors():
    layer = fc.DenseFeatures(_columns(), name="df")
    clone = fc.DenseFeatures.from_config(layer.get_config())
    assert clone.feature_columns == layer.feature_columns and clone.name == "df"
    with pytest.raises(InvalidArgumentError, match="wrap categorical"):
        fc.DenseFeatures([fc.categorical_column_with_identity("i", 3)])
