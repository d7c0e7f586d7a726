"""Convolution layers (channels_last): Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D."""
from ..engine import nn as _knn
from ..engine.ops import math_ops as _m
from ..errors import InvalidArgumentError
from . import _serialize as S
from .base import InputSpec, Layer


def _tuple(value, rank, what, layer_name):
    if isinstance(value, int):
        return (value,) * rank
    value = tuple(int(v) for v in value)
    if len(value) != rank:
        raise InvalidArgumentError(f"layer {layer_name!r}: {what} must be an int or {rank} ints, got {value}")
    return value


def _deconv_length(size, k, padding, output_padding, stride, dilation):
    """Keras's output length of a transposed convolution along one axis."""
    if size is None:
        return None
    k = (k - 1) * dilation + 1
    if output_padding is None:
        if padding == "valid":
            return size * stride + max(k - stride, 0)
        return size * stride
    pad = 0 if padding == "valid" else k // 2
    return (size - 1) * stride + k - 2 * pad + output_padding


class _Conv(Layer):
    """Shared arguments, weights and config of the convolution layers."""

    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        r = self.rank
        self.filters = int(filters) if filters is not None else None
        self.kernel_size = _tuple(kernel_size, r, "kernel_size", self.name)
        self.strides = _tuple(strides, r, "strides", self.name)
        self.padding = str(padding).lower()
        if self.padding not in ("valid", "same"):
            raise InvalidArgumentError(f"layer {self.name!r}: padding must be 'valid' or 'same', got {padding!r}")
        if data_format not in (None, "channels_last"):
            raise InvalidArgumentError(f"layer {self.name!r}: only data_format='channels_last' is supported")
        self.data_format = "channels_last"
        self.dilation_rate = _tuple(dilation_rate, r, "dilation_rate", self.name)
        if int(groups) != 1:
            raise InvalidArgumentError(f"layer {self.name!r}: grouped convolution (groups={groups}) is not "
                                       "supported")
        self.groups = 1
        self.activation = S.get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = S.get_initializer(kernel_initializer)
        self.bias_initializer = S.get_initializer(bias_initializer)
        self.kernel_regularizer = S.get_regularizer(kernel_regularizer)
        self.bias_regularizer = S.get_regularizer(bias_regularizer)
        self.kernel_constraint = S.get_constraint(kernel_constraint)
        self.bias_constraint = S.get_constraint(bias_constraint)
        self.input_spec = InputSpec(ndim=r + 2)

    def _channels(self, input_shape):
        c = input_shape[-1]
        if c is None:
            raise InvalidArgumentError(f"layer {self.name!r}: the channel dimension of the inputs must be known, "
                                       f"got {tuple(input_shape)}")
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={-1: c})
        return c

    def _add_bias(self, n):
        if not self.use_bias:
            self.bias = None
            return
        self.bias = self.add_weight("bias", (n,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def build(self, input_shape):
        c = self._channels(input_shape)
        self.kernel = self.add_weight("kernel", self.kernel_size + (c, self.filters),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self._add_bias(self.filters)

    def _finish(self, y):
        if self.use_bias:
            y = _m.add(y, self.bias)
        return self.activation(y)

    def call(self, inputs):
        pad = self.padding.upper()
        if self.rank == 1:
            y = _knn.conv1d(inputs, self.kernel, stride=self.strides[0], padding=pad,
                            dilations=self.dilation_rate[0])
        else:
            y = _knn.conv2d(inputs, self.kernel, strides=self.strides, padding=pad, dilations=self.dilation_rate)
        return self._finish(y)

    def _base_config(self):
        config = Layer.get_config(self)
        config.update({"kernel_size": list(self.kernel_size), "strides": list(self.strides),
                       "padding": self.padding, "data_format": self.data_format,
                       "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                       "activation": S.serialize_activation(self.activation), "use_bias": self.use_bias})
        return config

    def get_config(self):
        config = self._base_config()
        config = {"filters": self.filters, **config}
        config.update(S.weights_config(self, "kernel", "bias", activity=True))
        return config


class Conv1D(_Conv):
    """1-D convolution over (batch, steps, channels): kernel (k, in, filters)."""

    rank = 1


class Conv2D(_Conv):
    """2-D convolution over (batch, rows, cols, channels): kernel (kh, kw, in, filters)."""

    rank = 2


Convolution1D, Convolution2D = Conv1D, Conv2D


class Conv2DTranspose(_Conv):
    """Transposed 2-D convolution (the gradient of Conv2D): kernel (kh, kw, filters, in)."""

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1), **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, **kwargs)
        self.output_padding = None if output_padding is None else _tuple(output_padding, 2, "output_padding",
                                                                         self.name)
        if self.output_padding is not None:
            for p, s in zip(self.output_padding, self.strides):
                if p >= s:
                    raise InvalidArgumentError(f"layer {self.name!r}: output_padding {self.output_padding} must be "
                                               f"smaller than strides {self.strides}")

    def build(self, input_shape):
        c = self._channels(input_shape)
        self.kernel = self.add_weight("kernel", self.kernel_size + (self.filters, c),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self._add_bias(self.filters)

    def call(self, inputs):
        _, h, w, _ = inputs.shape
        if h is None or w is None:
            raise InvalidArgumentError(f"Conv2DTranspose {self.name!r} needs known rows and cols, got "
                                       f"{tuple(inputs.shape)}")
        op = self.output_padding or (None, None)
        oh = _deconv_length(h, self.kernel_size[0], self.padding, op[0], self.strides[0], self.dilation_rate[0])
        ow = _deconv_length(w, self.kernel_size[1], self.padding, op[1], self.strides[1], self.dilation_rate[1])
        y = _knn.conv2d_transpose(inputs, self.kernel, [0, oh, ow, self.filters], strides=self.strides,
                                  padding=self.padding.upper(), dilations=self.dilation_rate)
        return self._finish(y)

    def get_config(self):
        config = super().get_config()
        config["output_padding"] = list(self.output_padding) if self.output_padding is not None else None
        return config


class DepthwiseConv2D(_Conv):
    """Per-channel 2-D convolution: kernel (kh, kw, in, depth_multiplier) -> in * depth_multiplier channels."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(None, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, bias_constraint=bias_constraint, **kwargs)
        self.depth_multiplier = int(depth_multiplier)
        self.depthwise_initializer = S.get_initializer(depthwise_initializer)
        self.depthwise_regularizer = S.get_regularizer(depthwise_regularizer)
        self.depthwise_constraint = S.get_constraint(depthwise_constraint)

    def build(self, input_shape):
        c = self._channels(input_shape)
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", self.kernel_size + (c, self.depth_multiplier),
            initializer=self.depthwise_initializer, regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint)
        self._add_bias(c * self.depth_multiplier)

    def call(self, inputs):
        y = _knn.depthwise_conv2d(inputs, self.depthwise_kernel, strides=self.strides,
                                  padding=self.padding.upper(), dilations=self.dilation_rate)
        return self._finish(y)

    def get_config(self):
        config = self._base_config()
        config.update({
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": S.serialize_initializer(self.depthwise_initializer),
            "bias_initializer": S.serialize_initializer(self.bias_initializer),
            "depthwise_regularizer": S.serialize_regularizer(self.depthwise_regularizer),
            "bias_regularizer": S.serialize_regularizer(self.bias_regularizer),
            "activity_regularizer": S.serialize_regularizer(self.activity_regularizer),
            "depthwise_constraint": S.serialize_constraint(self.depthwise_constraint),
            "bias_constraint": S.serialize_constraint(self.bias_constraint)})
        return config


class SeparableConv2D(_Conv):
    """Depthwise convolution then a 1x1 convolution: depthwise (kh, kw, in, m), pointwise (1, 1, in*m, filters)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, bias_constraint=bias_constraint, **kwargs)
        self.depth_multiplier = int(depth_multiplier)
        self.depthwise_initializer = S.get_initializer(depthwise_initializer)
        self.pointwise_initializer = S.get_initializer(pointwise_initializer)
        self.depthwise_regularizer = S.get_regularizer(depthwise_regularizer)
        self.pointwise_regularizer = S.get_regularizer(pointwise_regularizer)
        self.depthwise_constraint = S.get_constraint(depthwise_constraint)
        self.pointwise_constraint = S.get_constraint(pointwise_constraint)

    def build(self, input_shape):
        c = self._channels(input_shape)
        m = self.depth_multiplier
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", self.kernel_size + (c, m), initializer=self.depthwise_initializer,
            regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint)
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (1, 1, c * m, self.filters), initializer=self.pointwise_initializer,
            regularizer=self.pointwise_regularizer, constraint=self.pointwise_constraint)
        self._add_bias(self.filters)

    def call(self, inputs):
        y = _knn.separable_conv2d(inputs, self.depthwise_kernel, self.pointwise_kernel, strides=self.strides,
                                  padding=self.padding.upper(), dilations=self.dilation_rate)
        return self._finish(y)

    def get_config(self):
        config = super().get_config()
        config.update({
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": S.serialize_initializer(self.depthwise_initializer),
            "pointwise_initializer": S.serialize_initializer(self.pointwise_initializer),
            "depthwise_regularizer": S.serialize_regularizer(self.depthwise_regularizer),
            "pointwise_regularizer": S.serialize_regularizer(self.pointwise_regularizer),
            "depthwise_constraint": S.serialize_constraint(self.depthwise_constraint),
            "pointwise_constraint": S.serialize_constraint(self.pointwise_constraint)})
        return config
