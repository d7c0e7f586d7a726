"""Reshaping and merge layers, Embedding, Lambda and Normalization through the layer contract."""
import numpy as np
import pytest

import kestimator.layers as L
from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError, UnsafeFileError

from .layer_test_helper import run_layer_test


def test_flatten(tmp_path):
    run_layer_test(L.Flatten, {}, input_shape=(3, 2, 3, 4), expected_output_shape=(None, 24), tmp_path=tmp_path,
                   numpy_reference=lambda x, w: x.reshape(3, 24))


def test_reshape_with_minus_one(tmp_path):
    run_layer_test(L.Reshape, {"target_shape": (-1, 2)}, input_shape=(3, 6), expected_output_shape=(None, 3, 2),
                   tmp_path=tmp_path, numpy_reference=lambda x, w: x.reshape(3, 3, 2))
    with pytest.raises(InvalidArgumentError, match=r"reshape.*\(None, 5\)"):
        L.Reshape((2, 2))(L.Input((5,)))


def test_permute_and_repeat(tmp_path):
    run_layer_test(L.Permute, {"dims": (2, 1)}, input_shape=(2, 3, 4), expected_output_shape=(None, 4, 3),
                   tmp_path=tmp_path, numpy_reference=lambda x, w: x.transpose(0, 2, 1))
    run_layer_test(L.RepeatVector, {"n": 3}, input_shape=(2, 4), expected_output_shape=(None, 3, 4),
                   tmp_path=tmp_path, numpy_reference=lambda x, w: np.repeat(x[:, None, :], 3, axis=1))


def test_padding_cropping_upsampling(tmp_path):
    run_layer_test(L.ZeroPadding2D, {"padding": ((1, 2), (0, 3))}, input_shape=(2, 3, 4, 2),
                   expected_output_shape=(None, 6, 7, 2), tmp_path=tmp_path,
                   numpy_reference=lambda x, w: np.pad(x, [(0, 0), (1, 2), (0, 3), (0, 0)]))
    run_layer_test(L.Cropping2D, {"cropping": ((1, 0), (2, 1))}, input_shape=(2, 5, 6, 2),
                   expected_output_shape=(None, 4, 3, 2), tmp_path=tmp_path,
                   numpy_reference=lambda x, w: x[:, 1:, 2:5])
    run_layer_test(L.UpSampling2D, {"size": (2, 3)}, input_shape=(2, 3, 4, 2), expected_output_shape=(None, 6, 12, 2),
                   tmp_path=tmp_path, numpy_reference=lambda x, w: x.repeat(2, axis=1).repeat(3, axis=2))


@pytest.mark.parametrize("cls,fn", [(L.Add, lambda a, b: a + b), (L.Subtract, lambda a, b: a - b),
                                    (L.Multiply, lambda a, b: a * b), (L.Average, lambda a, b: (a + b) / 2),
                                    (L.Maximum, np.maximum), (L.Minimum, np.minimum)])
def test_elementwise_merge(cls, fn):
    layer = cls()
    a, b = L.Input((4,)), L.Input((4,))
    out = layer([a, b])
    assert tuple(out.shape) == (None, 4)
    x, y = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    g = ke.Graph()
    with g.as_default():
        pa, pb = ke.placeholder(ke.float32, [None, 4]), ke.placeholder(ke.float32, [None, 4])
        with ke.Session(graph=g) as sess:
            np.testing.assert_allclose(sess.run(layer([pa, pb]), {pa: x, pb: y}), fn(x, y), rtol=1e-6)


def test_add_three_inputs_and_functional_forms():
    xs = [np.full((2, 3), v, np.float32) for v in (1.0, 2.0, 4.0)]
    ke.enable_eager_execution()
    try:
        np.testing.assert_array_equal(L.add(xs).numpy(), np.full((2, 3), 7.0))
        np.testing.assert_array_equal(L.concatenate(xs[:2], axis=0).numpy().shape, (4, 3))
        np.testing.assert_array_equal(L.maximum(xs).numpy(), np.full((2, 3), 4.0))
    finally:
        from kestimator.engine import eager
        eager.disable_eager_execution()


def test_concatenate_and_errors():
    out = L.Concatenate()([L.Input((3,)), L.Input((5,))])
    assert tuple(out.shape) == (None, 8)
    assert tuple(L.Concatenate(axis=1)([L.Input((2, 3)), L.Input((4, 3))]).shape) == (None, 6, 3)
    with pytest.raises(InvalidArgumentError, match="matching shapes except for the concatenation axis"):
        L.Concatenate()([L.Input((2, 3)), L.Input((4, 3))])
    with pytest.raises(InvalidArgumentError, match="list of at least 2 inputs"):
        L.Add()(L.Input((3,)))
    with pytest.raises(InvalidArgumentError, match="incompatible shapes"):
        L.Add()([L.Input((3,)), L.Input((4,))])


def test_dot():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    ke.enable_eager_execution()
    try:
        # axes (2, 2) on (b, 3, 4) and (b, 5, 4): out[b, i, j] = sum_k x[b, i, k] y[b, j, k]
        np.testing.assert_allclose(L.Dot(axes=(2, 2), dtype="float64")([x, y]).numpy(),
                                   np.einsum("bik,bjk->bij", x, y), rtol=1e-12)
        a, b = rng.standard_normal((2, 3, 4))
        np.testing.assert_allclose(L.Dot(axes=1, dtype="float64")([a, b]).numpy(), (a * b).sum(1, keepdims=True),
                                   rtol=1e-12)
        na = a / np.linalg.norm(a, axis=1, keepdims=True)
        nb = b / np.linalg.norm(b, axis=1, keepdims=True)
        np.testing.assert_allclose(L.Dot(axes=1, normalize=True, dtype="float64")([a, b]).numpy(),
                                   (na * nb).sum(1, keepdims=True), rtol=1e-12)
    finally:
        from kestimator.engine import eager
        eager.disable_eager_execution()


def test_embedding(tmp_path):
    ids = np.array([[0, 3, 9], [2, 2, 1]], np.int32)
    run_layer_test(L.Embedding, {"input_dim": 10, "output_dim": 4}, input_data=ids,
                   expected_output_shape=(None, 3, 4), expected_count_params=40, tmp_path=tmp_path,
                   numpy_reference=lambda x, w: w[0][x], rtol=0, atol=0)


def test_embedding_float_ids_and_initializer_range():
    layer = L.Embedding(5, 2)
    layer.build((None, 3))
    # "uniform" is RandomUniform(-0.05, 0.05)
    assert np.abs(layer.embeddings.numpy()).max() <= 0.05
    ke.enable_eager_execution()
    try:
        out = layer(np.array([[1.0, 4.0]], np.float32)).numpy()
    finally:
        from kestimator.engine import eager
        eager.disable_eager_execution()
    np.testing.assert_array_equal(out, layer.embeddings.numpy()[[[1, 4]]])


def square_plus(x, offset=0.0):
    return x * x + offset


def test_lambda_config_names_the_function():
    layer = L.Lambda(square_plus, arguments={"offset": 1.5})
    cfg = layer.get_config()
    assert cfg["function"] == "square_plus" and cfg["function_type"] == "function"
    assert tuple(layer(L.Input((4,))).shape) == (None, 4)
    from kestimator.layers import registry
    with pytest.raises(UnsafeFileError, match="square_plus"):
        registry.deserialize({"class_name": "Lambda", "config": cfg})
    clone = registry.deserialize({"class_name": "Lambda", "config": cfg}, custom_objects={"square_plus": square_plus})
    ke.enable_eager_execution()
    try:
        np.testing.assert_allclose(clone(np.array([[2.0]], np.float32)).numpy(), [[5.5]])
    finally:
        from kestimator.engine import eager
        eager.disable_eager_execution()


def test_lambda_with_bytecode_is_never_unmarshalled():
    # what tf.keras writes for `Lambda(lambda x: x * 2)`: base64 marshal bytes
    cfg = {"name": "lambda", "trainable": True, "dtype": "float32",
           "function": ["4wEAAAAAAAAAAAAAAAIAAAADAAAA8wwAAACXAHwAZAF6BQAAUwA=\n", None, None],
           "function_type": "lambda", "module": "__main__", "output_shape": None, "output_shape_type": "raw",
           "output_shape_module": None, "arguments": {}}
    from kestimator.layers import registry
    with pytest.raises(UnsafeFileError, match="'lambda'.*bytecode"):
        registry.deserialize({"class_name": "Lambda", "config": cfg})
    layer = registry.deserialize({"class_name": "Lambda", "config": cfg}, custom_objects={"lambda": square_plus})
    assert layer.function is square_plus


def test_lambda_contract(tmp_path):
    run_layer_test(L.Lambda, {"function": square_plus, "arguments": {"offset": 1.5}}, input_shape=(3, 4),
                   expected_output_shape=(None, 4), tmp_path=tmp_path, custom_objects={"square_plus": square_plus},
                   numpy_reference=lambda x, w: x * x + 1.5)


def test_normalization_adapt(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(500, 3)).astype(np.float32)
    layer = L.Normalization()
    layer.adapt(data)
    np.testing.assert_allclose(layer.adapt_mean.numpy(), data.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(layer.adapt_variance.numpy(), data.astype(np.float64).var(0), rtol=1e-6)
    assert int(layer.count.numpy()) == 500
    # adapting from batches combines them exactly (Chan's update)
    batched = L.Normalization()
    batched.adapt([data[:123], data[123:]])
    np.testing.assert_allclose(batched.adapt_variance.numpy(), layer.adapt_variance.numpy(), rtol=1e-6)
    x = data[:5]
    ke.enable_eager_execution()
    try:
        out = layer(x).numpy()
    finally:
        from kestimator.engine import eager
        eager.disable_eager_execution()
    np.testing.assert_allclose(out, (x - data.mean(0)) / data.std(0), rtol=1e-4, atol=1e-5)


def test_normalization_fixed_stats(tmp_path):
    run_layer_test(L.Normalization, {"mean": [1.0, 2.0], "variance": [4.0, 0.25]}, input_shape=(3, 2),
                   expected_output_shape=(None, 2), tmp_path=tmp_path, train=False,
                   numpy_reference=lambda x, w: (x - [1.0, 2.0]) / [2.0, 0.5])
    run_layer_test(L.Normalization, {"mean": 1.0, "variance": 4.0, "invert": True}, input_shape=(3, 2),
                   tmp_path=tmp_path, train=False, numpy_reference=lambda x, w: 1.0 + x * 2.0)
