"""Feature columns against NumPy: each column's output for a small batch, computed independently."""
import hashlib

import numpy as np
import pytest

from kestimator import engine as ke
from kestimator import feature_column as fc
from kestimator.errors import InvalidArgumentError, NotFoundError


def run_dense(features, columns, init=None):
    """input_layer(features, columns) evaluated on NumPy features (placeholders of their dtypes)."""
    g = ke.Graph()
    with g.as_default():
        phs, feed = {}, {}
        for k, v in features.items():
            arr = np.asarray(v)
            dt = ke.string if arr.dtype.kind in "OUS" else ke.as_dtype(arr.dtype)
            phs[k] = ke.placeholder(dt, (None,) + arr.shape[1:], name=k)
            feed[phs[k]] = arr.astype(object) if arr.dtype.kind in "US" else arr
        out = fc.input_layer(phs, columns)
        with ke.Session() as sess:
            sess.run(ke.global_variables_initializer())
            for name, value in (init or {}).items():
                var = next(v for v in ke.global_variables() if v.op.name.endswith(name))
                var.load(value, sess)
            return sess.run(out, feed)


def ref_hash(text, buckets):
    """The documented hash: first 8 bytes of BLAKE2b of the UTF-8 text, little-endian, mod buckets."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") % buckets


def test_numeric_column_flattens_and_normalizes():
    x = np.arange(12, dtype=np.float64).reshape(3, 2, 2)
    out = run_dense({"x": x}, [fc.numeric_column("x", shape=(2, 2), normalizer_fn=lambda t: (t - 3.0) / 2.0)])
    np.testing.assert_allclose(out, ((x - 3.0) / 2.0).reshape(3, 4).astype(np.float32))
    assert out.dtype == np.float32


def test_numeric_column_shape_mismatch_names_the_column():
    with pytest.raises(InvalidArgumentError, match="numeric_column 'x'.*shape"):
        run_dense({"x": np.zeros((2, 3), np.float32)}, [fc.numeric_column("x", shape=2)])


def test_numeric_column_rejects_strings_naming_the_column():
    with pytest.raises(InvalidArgumentError, match="numeric_column 'x'.*strings"):
        run_dense({"x": np.array(["a", "b"], object)}, [fc.numeric_column("x")])


def test_missing_key_is_an_error_naming_column_and_keys():
    with pytest.raises(InvalidArgumentError, match=r"column 'age'.*'age'.*available: \['x'\]"):
        run_dense({"x": np.zeros((2, 1), np.float32)}, [fc.numeric_column("age")])


def test_bucketized_dense_is_one_hot_of_searchsorted_right():
    x = np.array([[-5.0, 0.0], [1.0, 2.5], [3.0, 10.0]], np.float32)
    bounds = [0.0, 1.0, 3.0]
    out = run_dense({"x": x}, [fc.bucketized_column(fc.numeric_column("x", shape=2), bounds)])
    ids = np.searchsorted(bounds, x, side="right")          # -5 -> 0, 0 -> 1 (boundary goes right), 10 -> 3
    expected = np.zeros((3, 2, 4), np.float32)
    for i in range(3):
        for j in range(2):
            expected[i, j, ids[i, j]] = 1.0
    np.testing.assert_array_equal(out, expected.reshape(3, 8))


def test_vocabulary_list_indicator_with_oov_buckets_and_missing_values():
    col = fc.categorical_column_with_vocabulary_list("c", ["a", "b", "c"], num_oov_buckets=2)
    vals = np.array([["a", "zz"], ["", "c"], ["b", "b"]], object)
    out = run_dense({"c": vals}, [fc.indicator_column(col)])
    expected = np.zeros((3, 5), np.float32)
    expected[0, 0] = 1
    expected[0, 3 + ref_hash("zz", 2)] = 1            # OOV: 3 + hash % 2
    expected[1, 2] = 1                                 # "" is a missing value: no id
    expected[2, 1] = 2                                 # "b" twice: the indicator counts
    np.testing.assert_array_equal(out, expected)


def test_vocabulary_list_default_value_and_int_vocabulary():
    col = fc.categorical_column_with_vocabulary_list("n", [10, 20, 30], default_value=1)
    out = run_dense({"n": np.array([30, 99, -1, 10])}, [fc.indicator_column(col)])
    # 99 is out of vocabulary -> default id 1; -1 means "missing" -> no id
    np.testing.assert_array_equal(out, np.array([[0, 0, 1], [0, 1, 0], [0, 0, 0], [1, 0, 0]], np.float32))


def test_vocabulary_column_type_mismatch_names_the_column():
    col = fc.categorical_column_with_vocabulary_list("c", ["a", "b"])
    with pytest.raises(InvalidArgumentError, match="'c'.*strings.*int64"):
        run_dense({"c": np.array([1, 2])}, [fc.indicator_column(col)])


def test_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("red\ngreen\nblue\n")
    col = fc.categorical_column_with_vocabulary_file("color", str(path), vocabulary_size=2)
    out = run_dense({"color": np.array(["green", "blue", "red"], object)}, [fc.indicator_column(col)])
    # vocabulary_size=2 keeps "red", "green"; "blue" gets no id (default -1)
    np.testing.assert_array_equal(out, np.array([[0, 1], [0, 0], [1, 0]], np.float32))
    with pytest.raises(NotFoundError, match="missing.txt"):
        fc.categorical_column_with_vocabulary_file("color", str(tmp_path / "missing.txt"))
    with pytest.raises(InvalidArgumentError, match="vocabulary_size 5"):
        fc.categorical_column_with_vocabulary_file("color", str(path), vocabulary_size=5)


def test_identity_column_default_and_out_of_range_error():
    col = fc.categorical_column_with_identity("i", 4, default_value=3)
    out = run_dense({"i": np.array([0, 2, 9])}, [fc.indicator_column(col)])
    np.testing.assert_array_equal(out, np.eye(4, dtype=np.float32)[[0, 2, 3]])
    strict = fc.categorical_column_with_identity("i", 4)
    with pytest.raises(InvalidArgumentError, match="'i'.*id 9.*outside"):
        run_dense({"i": np.array([0, 9])}, [fc.indicator_column(strict)])


def test_hash_bucket_uses_the_documented_stable_hash():
    col = fc.categorical_column_with_hash_bucket("w", 7)
    words = ["apple", "pear", "apple", "kiwi"]
    out = run_dense({"w": np.array(words, object)}, [fc.indicator_column(col)])
    expected = np.zeros((4, 7), np.float32)
    for i, w in enumerate(words):
        expected[i, ref_hash(w, 7)] = 1
    np.testing.assert_array_equal(out, expected)
    ints = fc.categorical_column_with_hash_bucket("n", 5, dtype=ke.int64)
    out = run_dense({"n": np.array([12, 7])}, [fc.indicator_column(ints)])
    np.testing.assert_array_equal(out.argmax(1), [ref_hash("12", 5), ref_hash("7", 5)])   # ints hash as text


def test_crossed_column_hashes_the_joined_values():
    cross = fc.crossed_column(["a", "b"], 11)
    a = np.array(["x", "y"], object)
    b = np.array(["p", "q"], object)
    out = run_dense({"a": a, "b": b}, [fc.indicator_column(cross)])
    sep = "\x1f_X_\x1f"
    expected = np.zeros((2, 11), np.float32)
    for i in range(2):
        expected[i, ref_hash(a[i] + sep + b[i], 11)] = 1
    np.testing.assert_array_equal(out, expected)


def test_crossed_column_of_bucketized_and_multivalent_strings():
    age = fc.bucketized_column(fc.numeric_column("age"), [30.0])
    cross = fc.crossed_column([age, "tags"], 13, hash_key=5)
    ages = np.array([20.0, 40.0], np.float32)
    tags = np.array([["u", "v"], ["w", ""]], object)
    out = run_dense({"age": ages, "tags": tags}, [fc.indicator_column(cross)])
    sep = "\x1f_X_\x1f"
    salt = "5" + sep
    expected = np.zeros((2, 13), np.float32)
    # row 0: bucket 0 crossed with u and v; row 1: bucket 1 with w (the "" tag is missing)
    for r, bucket, ts in ((0, 0, ["u", "v"]), (1, 1, ["w"])):
        for t in ts:
            expected[r, ref_hash(salt + str(bucket) + sep + t, 13)] += 1
    np.testing.assert_array_equal(out, expected)


def test_weighted_categorical_indicator_sums_weights():
    col = fc.weighted_categorical_column(fc.categorical_column_with_vocabulary_list("t", ["a", "b"]), "tw")
    out = run_dense({"t": np.array([["a", "b"], ["b", "b"]], object),
                     "tw": np.array([[0.5, 2.0], [1.0, 3.0]], np.float32)}, [fc.indicator_column(col)])
    np.testing.assert_allclose(out, [[0.5, 2.0], [0.0, 4.0]])


@pytest.mark.parametrize("combiner", ["sum", "mean", "sqrtn"])
def test_embedding_column_combiners_against_numpy(combiner):
    table = np.arange(12, dtype=np.float32).reshape(4, 3) / 10.0
    col = fc.embedding_column(
        fc.weighted_categorical_column(fc.categorical_column_with_identity("i", 4), "w"), 3, combiner=combiner)
    ids = np.array([[0, 2], [3, -1], [-1, -1]])
    w = np.array([[1.0, 2.0], [0.5, 7.0], [1.0, 1.0]], np.float32)
    out = run_dense({"i": ids, "w": w}, [col], init={"embedding_weights": table})
    expected = np.zeros((3, 3), np.float32)
    for r in range(3):
        keep = ids[r] >= 0                      # -1 ids are ignored (their weight too)
        if not keep.any():
            continue                            # a row without ids gives zeros
        total = (table[ids[r][keep]] * w[r][keep][:, None]).sum(0)
        if combiner == "mean":
            total /= w[r][keep].sum()
        elif combiner == "sqrtn":
            total /= np.sqrt((w[r][keep] ** 2).sum())
        expected[r] = total
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_input_layer_sorts_columns_by_name():
    a = np.array([[1.0], [2.0]], np.float32)
    b = np.array([[10.0, 20.0], [30.0, 40.0]], np.float32)
    out1 = run_dense({"a": a, "b": b}, [fc.numeric_column("b", shape=2), fc.numeric_column("a")])
    out2 = run_dense({"a": a, "b": b}, [fc.numeric_column("a"), fc.numeric_column("b", shape=2)])
    np.testing.assert_array_equal(out1, np.concatenate([a, b], 1))
    np.testing.assert_array_equal(out2, out1)


def test_input_layer_rejects_categorical_columns():
    with pytest.raises(InvalidArgumentError, match="dense columns.*'c'.*embedding_column or indicator_column"):
        run_dense({"c": np.array(["a"], object)}, [fc.categorical_column_with_hash_bucket("c", 3)])


def test_linear_model_gathers_weights_per_id():
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 1], name="x")
        c = ke.placeholder(ke.string, [None], name="c")
        cols_to_vars = {}
        logits = fc.linear_model({"x": x, "c": c}, [fc.numeric_column("x"),
                                                    fc.categorical_column_with_vocabulary_list("c", ["a", "b"])],
                                 units=2, cols_to_vars=cols_to_vars)
        names = sorted(v.op.name for v in ke.global_variables())
        assert names == ["linear_model/bias_weights", "linear_model/c/weights", "linear_model/x/weights"]
        with ke.Session() as sess:
            sess.run(ke.global_variables_initializer())
            wx, wc, bias = (np.array([[2.0, -1.0]], np.float32), np.array([[1.0, 2.0], [3.0, 4.0]], np.float32),
                            np.array([0.5, 0.25], np.float32))
            by_name = {v.op.name: v for v in ke.global_variables()}
            by_name["linear_model/x/weights"].load(wx, sess)
            by_name["linear_model/c/weights"].load(wc, sess)
            by_name["linear_model/bias_weights"].load(bias, sess)
            got = sess.run(logits, {x: [[1.0], [3.0], [0.0]], c: np.array(["b", "a", "q"], object)})
    # x @ wx + wc[id] + bias; "q" is out of vocabulary: no weight row
    expected = np.array([[2 + 3 + .5, -1 + 4 + .25], [6 + 1 + .5, -3 + 2 + .25], [.5, .25]], np.float32)
    np.testing.assert_allclose(got, expected)


def test_column_argument_validation():
    with pytest.raises(InvalidArgumentError, match="strictly increasing"):
        fc.bucketized_column(fc.numeric_column("x"), [1.0, 1.0])
    with pytest.raises(InvalidArgumentError, match="duplicate"):
        fc.categorical_column_with_vocabulary_list("c", ["a", "a"])
    with pytest.raises(InvalidArgumentError, match="num_oov_buckets or default_value"):
        fc.categorical_column_with_vocabulary_list("c", ["a"], default_value=0, num_oov_buckets=1)
    with pytest.raises(InvalidArgumentError, match="combiner"):
        fc.embedding_column(fc.categorical_column_with_identity("i", 3), 2, combiner="max")
    with pytest.raises(InvalidArgumentError, match="hashed column"):
        fc.crossed_column([fc.categorical_column_with_hash_bucket("a", 3), "b"], 5)


def test_column_names_follow_tensorflow():
    num = fc.numeric_column("age")
    cat = fc.categorical_column_with_identity("id", 3)
    assert fc.bucketized_column(num, [1.0]).name == "age_bucketized"
    assert fc.indicator_column(cat).name == "id_indicator"
    assert fc.embedding_column(cat, 2).name == "id_embedding"
    assert fc.crossed_column(["b", "a"], 3).name == "a_X_b"
    assert fc.weighted_categorical_column(cat, "w").name == "id_weighted_by_w"


def test_serialization_round_trip():
    from kestimator.feature_column.serialization import deserialize_feature_column, serialize_feature_column
    cols = [fc.embedding_column(fc.categorical_column_with_vocabulary_list("c", ["a", "b"], num_oov_buckets=1), 4,
                                combiner="sqrtn"),
            fc.bucketized_column(fc.numeric_column("x", shape=2), [0.0, 1.0]),
            fc.indicator_column(fc.crossed_column(["c", fc.categorical_column_with_identity("i", 3)], 9))]
    for c in cols:
        back = deserialize_feature_column(serialize_feature_column(c))
        assert back == c and back.name == c.name
    with pytest.raises(InvalidArgumentError, match="unknown column class"):
        deserialize_feature_column({"column": "os.system", "config": {}})


def test_make_parse_example_spec():
    from kestimator.data import FixedLenFeature, VarLenFeature
    spec = fc.make_parse_example_spec([
        fc.numeric_column("x", shape=2),
        fc.embedding_column(fc.categorical_column_with_hash_bucket("w", 5), 2),
        fc.indicator_column(fc.weighted_categorical_column(fc.categorical_column_with_identity("i", 3), "iw"))])
    assert spec["x"] == FixedLenFeature((2,), ke.float32, None)
    assert spec["w"] == VarLenFeature(ke.string)
    assert spec["i"] == VarLenFeature(ke.int64)
    assert spec["iw"] == VarLenFeature(ke.float32)
