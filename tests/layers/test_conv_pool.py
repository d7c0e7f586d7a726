"""Convolution and pooling layers through the layer contract, against NumPy references (numpy_refs)."""
import numpy as np
import pytest

import kestimator.layers as L
from kestimator.errors import InvalidArgumentError

from . import numpy_refs as R
from .layer_test_helper import run_layer_test

# float64 tolerance: sums of up to a few hundred products, accumulated in another order than the
# reference's; 1e-9 relative leaves ample room for that rounding.
TOL = dict(rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("padding,strides", [("valid", 1), ("same", 1), ("same", 2), ("valid", 2)])
def test_conv2d(padding, strides, tmp_path):
    run_layer_test(L.Conv2D, {"filters": 3, "kernel_size": 3, "padding": padding, "strides": strides,
                              "activation": "relu"}, input_shape=(2, 7, 6, 2), tmp_path=tmp_path,
                   numpy_reference=lambda x, w: np.maximum(R.conv2d(x, w[0], (strides, strides), padding) + w[1], 0),
                   **TOL)


def test_conv2d_keras_param_count_and_shape(tmp_path):
    # Keras: Conv2D(32, 3) on one channel = 3 * 3 * 1 * 32 + 32 = 320
    run_layer_test(L.Conv2D, {"filters": 32, "kernel_size": 3}, input_shape=(2, 28, 28, 1),
                   expected_output_shape=(None, 26, 26, 32), expected_count_params=320, tmp_path=tmp_path,
                   numpy_reference=lambda x, w: R.conv2d(x, w[0]) + w[1], **TOL)


def test_conv2d_dilation(tmp_path):
    run_layer_test(L.Conv2D, {"filters": 2, "kernel_size": (2, 3), "dilation_rate": 2}, input_shape=(2, 8, 9, 3),
                   expected_output_shape=(None, 6, 5, 2), tmp_path=tmp_path,
                   numpy_reference=lambda x, w: R.conv2d(x, w[0], dilation=(2, 2)) + w[1], **TOL)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv1d(padding, tmp_path):
    def ref(x, w):
        return R.conv2d(x[:, None], w[0][None], (1, 2), padding)[:, 0] + w[1]
    run_layer_test(L.Conv1D, {"filters": 4, "kernel_size": 3, "strides": 2, "padding": padding},
                   input_shape=(3, 11, 2), expected_count_params=28, tmp_path=tmp_path, numpy_reference=ref, **TOL)


@pytest.mark.parametrize("padding,strides,kernel", [("same", 2, 3), ("valid", 2, 3), ("valid", 1, 2),
                                                     ("valid", 3, 2), ("same", 2, 4)])
def test_conv2d_transpose(padding, strides, kernel, tmp_path):
    h, w = 4, 5
    s = strides
    if padding == "same":
        out_hw = (h * s, w * s)
    else:
        out_hw = (h * s + max(kernel - s, 0), w * s + max(kernel - s, 0))
    run_layer_test(L.Conv2DTranspose, {"filters": 3, "kernel_size": kernel, "strides": strides, "padding": padding},
                   input_shape=(2, h, w, 2), expected_output_shape=(None,) + out_hw + (3,), tmp_path=tmp_path,
                   numpy_reference=lambda x, wt: R.conv2d_transpose(x, wt[0], (s, s), padding, out_hw) + wt[1],
                   **TOL)


def test_depthwise_conv2d(tmp_path):
    run_layer_test(L.DepthwiseConv2D, {"kernel_size": 3, "depth_multiplier": 2, "padding": "same"},
                   input_shape=(2, 6, 6, 3), expected_output_shape=(None, 6, 6, 6), expected_count_params=60,
                   tmp_path=tmp_path, numpy_reference=lambda x, w: R.depthwise_conv2d(x, w[0], padding="same") + w[1],
                   **TOL)


def test_separable_conv2d(tmp_path):
    def ref(x, w):
        return R.conv2d(R.depthwise_conv2d(x, w[0]), w[1]) + w[2]
    run_layer_test(L.SeparableConv2D, {"filters": 4, "kernel_size": 3}, input_shape=(2, 8, 8, 3),
                   expected_output_shape=(None, 6, 6, 4), expected_count_params=43, tmp_path=tmp_path,
                   numpy_reference=ref, **TOL)


@pytest.mark.parametrize("cls,kind", [(L.MaxPooling2D, "max"), (L.AveragePooling2D, "mean")])
@pytest.mark.parametrize("padding,pool,strides", [("valid", 2, None), ("same", 3, 2), ("valid", 3, 1)])
def test_pool2d(cls, kind, padding, pool, strides, tmp_path):
    s = strides or pool
    run_layer_test(cls, {"pool_size": pool, "strides": strides, "padding": padding}, input_shape=(2, 7, 8, 3),
                   tmp_path=tmp_path, numpy_reference=lambda x, w: R.pool2d(x, (pool, pool), (s, s), padding, kind),
                   **TOL)


@pytest.mark.parametrize("cls,kind", [(L.MaxPooling1D, "max"), (L.AveragePooling1D, "mean")])
def test_pool1d(cls, kind, tmp_path):
    run_layer_test(cls, {"pool_size": 3, "strides": 2, "padding": "same"}, input_shape=(2, 9, 4),
                   expected_output_shape=(None, 5, 4), tmp_path=tmp_path,
                   numpy_reference=lambda x, w: R.pool2d(x[:, None], (1, 3), (1, 2), "same", kind)[:, 0], **TOL)


@pytest.mark.parametrize("cls,fn,shape", [
    (L.GlobalAveragePooling2D, lambda x: x.mean(axis=(1, 2)), (2, 5, 4, 3)),
    (L.GlobalMaxPooling2D, lambda x: x.max(axis=(1, 2)), (2, 5, 4, 3)),
    (L.GlobalAveragePooling1D, lambda x: x.mean(axis=1), (2, 6, 3)),
    (L.GlobalMaxPooling1D, lambda x: x.max(axis=1), (2, 6, 3))])
def test_global_pooling(cls, fn, shape, tmp_path):
    run_layer_test(cls, {}, input_shape=shape, expected_output_shape=(None, 3), tmp_path=tmp_path,
                   numpy_reference=lambda x, w: fn(x), **TOL)


def test_global_pooling_keepdims():
    layer = L.GlobalAveragePooling2D(keepdims=True)
    assert tuple(layer(L.Input((5, 4, 3))).shape) == (None, 1, 1, 3)


def test_conv_rejects_wrong_rank_and_channels():
    with pytest.raises(InvalidArgumentError, match=r"conv2d.*expected ndim=4, found ndim=3"):
        L.Conv2D(2, 3, name="conv2d")(L.Input((5, 5)))
    layer = L.Conv2D(2, 3)
    layer(L.Input((5, 5, 3)))
    with pytest.raises(InvalidArgumentError, match="axis -1 to have value 3"):
        layer(L.Input((5, 5, 4)))
    with pytest.raises(InvalidArgumentError, match="groups"):
        L.Conv2D(2, 3, groups=2)
