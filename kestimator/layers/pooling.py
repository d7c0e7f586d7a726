"""Pooling layers (channels_last): max / average over windows, and global pooling."""
from ..engine import nn as _knn
from ..engine.ops import reduce_ops as _r
from ..errors import InvalidArgumentError
from .base import InputSpec, Layer
from .conv import _tuple


class _Pooling(Layer):
    rank = 2
    fn_name = "max_pool"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        r = self.rank
        self.pool_size = _tuple(pool_size, r, "pool_size", self.name)
        self.strides = _tuple(strides, r, "strides", self.name) if strides is not None else self.pool_size
        self.padding = str(padding).lower()
        if self.padding not in ("valid", "same"):
            raise InvalidArgumentError(f"layer {self.name!r}: padding must be 'valid' or 'same', got {padding!r}")
        if data_format not in (None, "channels_last"):
            raise InvalidArgumentError(f"layer {self.name!r}: only data_format='channels_last' is supported")
        self.data_format = "channels_last"
        self.input_spec = InputSpec(ndim=r + 2)

    def call(self, inputs):
        pad = self.padding.upper()
        if self.rank == 1:
            fn = _knn.max_pool1d if self.fn_name == "max_pool" else _knn.avg_pool1d
            return fn(inputs, self.pool_size[0], self.strides[0], pad)
        fn = _knn.max_pool if self.fn_name == "max_pool" else _knn.avg_pool
        return fn(inputs, self.pool_size, self.strides, pad)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": list(self.pool_size), "padding": self.padding, "strides": list(self.strides),
                       "data_format": self.data_format})
        return config


class MaxPooling1D(_Pooling):
    """Max over windows of `pool_size` steps of (batch, steps, channels) inputs."""
    rank, fn_name = 1, "max_pool"


class AveragePooling1D(_Pooling):
    """Mean over windows of `pool_size` steps ('same' padding averages only the real values)."""
    rank, fn_name = 1, "avg_pool"


class MaxPooling2D(_Pooling):
    """Max over `pool_size` windows of (batch, rows, cols, channels) inputs."""
    rank, fn_name = 2, "max_pool"


class AveragePooling2D(_Pooling):
    """Mean over `pool_size` windows ('same' padding averages only the real values)."""
    rank, fn_name = 2, "avg_pool"


MaxPool1D, AvgPool1D, MaxPool2D, AvgPool2D = MaxPooling1D, AveragePooling1D, MaxPooling2D, AveragePooling2D


class _GlobalPooling(Layer):
    rank = 2
    reduce = "mean"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise InvalidArgumentError(f"layer {self.name!r}: only data_format='channels_last' is supported")
        self.data_format = "channels_last"
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def call(self, inputs):
        axes = list(range(1, self.rank + 1))
        fn = _r.reduce_mean if self.reduce == "mean" else _r.reduce_max
        return fn(inputs, axis=axes, keepdims=self.keepdims)

    def get_config(self):
        config = super().get_config()
        config.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return config


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the steps: (batch, steps, channels) -> (batch, channels)."""
    rank, reduce = 1, "mean"


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over the steps: (batch, steps, channels) -> (batch, channels)."""
    rank, reduce = 1, "max"


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over rows and cols: (batch, rows, cols, channels) -> (batch, channels)."""
    rank, reduce = 2, "mean"


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over rows and cols: (batch, rows, cols, channels) -> (batch, channels)."""
    rank, reduce = 2, "max"


GlobalAvgPool1D, GlobalMaxPool1D = GlobalAveragePooling1D, GlobalMaxPooling1D
GlobalAvgPool2D, GlobalMaxPool2D = GlobalAveragePooling2D, GlobalMaxPooling2D
