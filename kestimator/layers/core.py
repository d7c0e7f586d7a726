"""Core layers: Dense, Activation, Dropout, SpatialDropout1D/2D."""
from ..engine.ops import array_ops as _a
from ..engine.ops import math_ops as _m
from ..engine.ops import reduce_ops as _r
from ..engine.ops.core import ones_like
from ..engine.ops.random_ops import dropout as _dropout
from ..errors import InvalidArgumentError
from . import _serialize as S
from ._context import draw_op_seed
from .base import InputSpec, Layer


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` over the last axis of inputs of rank >= 2.

    Args:
        units: output size.
        activation: name or function (default linear).
        use_bias: add a bias vector.
        kernel_initializer / bias_initializer: default "glorot_uniform" / "zeros".
        kernel_regularizer / bias_regularizer / activity_regularizer: optional regularizers.
        kernel_constraint / bias_constraint: optional constraints.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = int(units)
        if self.units <= 0:
            raise InvalidArgumentError(f"Dense {self.name!r}: units must be positive, got {units}")
        self.activation = S.get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = S.get_initializer(kernel_initializer)
        self.bias_initializer = S.get_initializer(bias_initializer)
        self.kernel_regularizer = S.get_regularizer(kernel_regularizer)
        self.bias_regularizer = S.get_regularizer(bias_regularizer)
        self.kernel_constraint = S.get_constraint(kernel_constraint)
        self.bias_constraint = S.get_constraint(bias_constraint)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        last = input_shape[-1]
        if last is None:
            raise InvalidArgumentError(f"Dense {self.name!r}: the last dimension of the inputs must be known, "
                                       f"got shape {tuple(input_shape)}")
        self.kernel = self.add_weight("kernel", (last, self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.units,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint) \
            if self.use_bias else None
        self.input_spec = InputSpec(min_ndim=2, axes={-1: last})
        self.built = True

    def call(self, inputs):
        rank = inputs.shape.ndims
        if rank == 2 or rank is None:
            y = _r.matmul(inputs, self.kernel)
        elif all(d is not None for d in inputs.shape[1:]):
            # (batch, ..., in) -> one 2-D matmul on (-1, in): one BLAS call instead of a batched one
            flat = _a.reshape(inputs, [-1, inputs.shape[-1]])
            y = _a.reshape(_r.matmul(flat, self.kernel), [-1] + list(inputs.shape[1:-1]) + [self.units])
        else:
            y = _r.matmul(inputs, self.kernel)
        if self.use_bias:
            y = _m.add(y, self.bias)
        return self.activation(y)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "activation": S.serialize_activation(self.activation),
                       "use_bias": self.use_bias, **S.weights_config(self, "kernel", "bias", activity=True)})
        return config


class Activation(Layer):
    """Applies an activation function: ``Activation("relu")``."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = S.get_activation(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        config = super().get_config()
        config["activation"] = S.serialize_activation(self.activation)
        return config


def _noise_dropout(x, rate, noise_axes_keep, seed):
    """Dropout with one mask value shared along the axes not in `noise_axes_keep` (SpatialDropout): the
    mask is dropout applied to a ones tensor of the noise shape, then broadcast over x."""
    key = tuple(slice(None) if keep else slice(0, 1) for keep in noise_axes_keep)
    mask = _dropout(ones_like(_a.strided_slice(x, key)), rate=rate, seed=seed)
    return _m.multiply(x, mask)


class Dropout(Layer):
    """Zero a fraction `rate` of the inputs during training, scaling the rest by 1 / (1 - rate).

    Args:
        rate: fraction dropped, in [0, 1).
        noise_shape: shape of the binary mask (1 = shared along that axis; None = the input's size).
        seed: seed of the mask stream.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= float(rate) < 1:
            raise InvalidArgumentError(f"Dropout {self.name!r}: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.noise_shape = list(noise_shape) if noise_shape is not None else None
        self.seed = seed
        # without a seed, one drawn now from the layers' seeded stream: two models built after the same
        # set_random_seed(s) drop the same units (the config keeps seed=None, as Keras's)
        self._op_seed = draw_op_seed() if seed is None else seed
        self.supports_masking = True

    def _keep_axes(self, x):
        if self.noise_shape is None:
            return None
        return [d is None or d != 1 for d in self.noise_shape]

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        keep = self._keep_axes(inputs)
        if keep is None or all(keep):
            return _dropout(inputs, rate=self.rate, seed=self._op_seed)
        return _noise_dropout(inputs, self.rate, keep, self._op_seed)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed})
        return config


class SpatialDropout1D(Dropout):
    """Dropout of whole channels of (batch, steps, channels) inputs."""

    def __init__(self, rate, **kwargs):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, **kwargs)
        self.input_spec = InputSpec(ndim=3)

    def _keep_axes(self, x):
        return [True, False, True]


class SpatialDropout2D(Dropout):
    """Dropout of whole feature maps of (batch, rows, cols, channels) inputs."""

    def __init__(self, rate, data_format=None, **kwargs):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, **kwargs)
        if data_format not in (None, "channels_last"):
            raise InvalidArgumentError(f"SpatialDropout2D {self.name!r}: only data_format='channels_last' is "
                                       "supported")
        self.data_format = "channels_last"
        self.input_spec = InputSpec(ndim=4)

    def _keep_axes(self, x):
        return [True, False, False, True]
