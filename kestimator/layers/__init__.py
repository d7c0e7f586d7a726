"""Keras layers (``ks.layers.Dense``, ``keras.layers.LSTM`` ...) and the TF1 functional helpers
(``ks.layers.dense``) used inside estimator model_fns.

The base classes live in `base` (Layer, Weight, KerasTensor, Node, InputSpec); `registry` resolves class
names in configs.
"""
import importlib

from .base import InputSpec, KerasTensor, Layer, Node, Weight  # noqa: F401
from .input_layer import Input, InputLayer  # noqa: F401
from .core import Activation, Dense, Dropout, SpatialDropout1D, SpatialDropout2D  # noqa: F401
from .reshaping import (Cropping2D, Flatten, Permute, RepeatVector, Reshape, UpSampling2D,  # noqa: F401
                        ZeroPadding2D)
from .activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax  # noqa: F401
from .lambda_layer import Lambda, TFOpLambda  # noqa: F401
from .merge import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add,  # noqa: F401
                    average, concatenate, dot, maximum, minimum, multiply, subtract)
from .functional import dense, dropout, flatten  # noqa: F401
from .registry import deserialize, get_layer_class, serialize  # noqa: F401

# Layer families in their own modules, loaded on first use (they are larger).
_LAZY = {
    "Conv1D": "conv", "Conv2D": "conv", "Conv2DTranspose": "conv", "SeparableConv2D": "conv",
    "DepthwiseConv2D": "conv", "Convolution1D": "conv", "Convolution2D": "conv",
    "MaxPooling1D": "pooling", "MaxPooling2D": "pooling", "AveragePooling1D": "pooling",
    "AveragePooling2D": "pooling", "GlobalAveragePooling1D": "pooling", "GlobalAveragePooling2D": "pooling",
    "GlobalMaxPooling1D": "pooling", "GlobalMaxPooling2D": "pooling", "MaxPool1D": "pooling",
    "MaxPool2D": "pooling", "AvgPool1D": "pooling", "AvgPool2D": "pooling", "GlobalAvgPool1D": "pooling",
    "GlobalAvgPool2D": "pooling", "GlobalMaxPool1D": "pooling", "GlobalMaxPool2D": "pooling",
    "BatchNormalization": "normalization", "LayerNormalization": "normalization",
    "Normalization": "preprocessing",
    "Embedding": "embedding",
    "RNN": "recurrent", "SimpleRNN": "recurrent", "LSTM": "recurrent", "GRU": "recurrent",
    "SimpleRNNCell": "rnn_cells", "LSTMCell": "rnn_cells", "GRUCell": "rnn_cells",
    "Bidirectional": "wrappers", "TimeDistributed": "wrappers",
}


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'kestimator.layers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
