"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector, ZeroPadding2D, Cropping2D, UpSampling2D."""
import numpy as np

from ..engine.ops import array_ops as _a
from ..engine.ops.core import shape as _shape
from ..errors import InvalidArgumentError
from .base import InputSpec, Layer


def _check_channels_last(layer, data_format):
    if data_format not in (None, "channels_last"):
        raise InvalidArgumentError(f"{type(layer).__name__} {layer.name!r}: only data_format='channels_last' "
                                   f"is supported, got {data_format!r}")
    return "channels_last"


def _batch_reshape(x, rest):
    """Reshape to (batch, *rest); a static reshape when the batch is the only unknown dimension."""
    if all(d is not None and d >= 0 for d in rest):
        return _a.reshape(x, [-1] + list(rest))
    from ..engine.ops.array_ops import stack
    dims = [_shape(x)[0]] + [np.int32(d) for d in rest]
    return _a.reshape(x, stack(dims))


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _check_channels_last(self, data_format)
        self.input_spec = InputSpec(min_ndim=1)

    def call(self, inputs):
        rest = inputs.shape[1:]
        if inputs.shape.ndims == 1:
            return _a.expand_dims(inputs, 1)
        if all(d is not None for d in rest):
            return _a.reshape(inputs, [-1, int(np.prod(rest, dtype=np.int64))])
        return _batch_reshape(inputs, [-1])

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Reshape(Layer):
    """Reshape each example to `target_shape` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(1 for d in self.target_shape if d == -1) > 1:
            raise InvalidArgumentError(f"Reshape {self.name!r}: at most one -1 in target_shape "
                                       f"{self.target_shape}")

    def _resolved(self, input_shape):
        target = list(self.target_shape)
        rest = input_shape[1:]
        if all(d is not None for d in rest):
            total = int(np.prod(rest, dtype=np.int64))
            known = int(np.prod([d for d in target if d != -1], dtype=np.int64))
            if -1 in target:
                if known == 0 or total % known:
                    raise InvalidArgumentError(f"Reshape {self.name!r}: cannot reshape input of shape "
                                               f"{tuple(input_shape)} to {self.target_shape}")
                target[target.index(-1)] = total // known
            elif known != total:
                raise InvalidArgumentError(f"Reshape {self.name!r}: total size of the input {tuple(input_shape)} "
                                           f"({total} per example) differs from target_shape {self.target_shape}")
        return target

    def call(self, inputs):
        return _batch_reshape(inputs, self._resolved(inputs.shape))

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config


class Permute(Layer):
    """Permute the non-batch axes: ``Permute((2, 1))`` swaps the two axes of (batch, a, b)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise InvalidArgumentError(f"Permute {self.name!r}: dims {self.dims} must be a permutation of "
                                       f"1..{len(self.dims)}")
        self.input_spec = InputSpec(ndim=len(self.dims) + 1)

    def call(self, inputs):
        return _a.transpose(inputs, (0,) + self.dims)

    def get_config(self):
        config = super().get_config()
        config["dims"] = list(self.dims)
        return config


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features)."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)
        self.input_spec = InputSpec(ndim=2)

    def call(self, inputs):
        return _a.tile(_a.expand_dims(inputs, 1), [1, self.n, 1])

    def get_config(self):
        config = super().get_config()
        config["n"] = self.n
        return config


def _pairs(value, what, layer):
    """Keras's ((top, bottom), (left, right)) from an int, a pair of ints or a pair of pairs."""
    if isinstance(value, int):
        return ((value, value), (value, value))
    value = tuple(value)
    if len(value) != 2:
        raise InvalidArgumentError(f"{type(layer).__name__} {layer.name!r}: {what} must be an int, 2 ints or "
                                   f"2 pairs of ints, got {value!r}")
    out = []
    for v in value:
        out.append((int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(x) for x in v))
    return tuple(out)


class ZeroPadding2D(Layer):
    """Pad rows and columns of (batch, rows, cols, channels) inputs with zeros."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _check_channels_last(self, data_format)
        self.padding = _pairs(padding, "padding", self)
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs):
        return _a.pad(inputs, [[0, 0], list(self.padding[0]), list(self.padding[1]), [0, 0]])

    def get_config(self):
        config = super().get_config()
        config.update({"padding": [list(p) for p in self.padding], "data_format": self.data_format})
        return config


class Cropping2D(Layer):
    """Remove rows and columns at the borders of (batch, rows, cols, channels) inputs."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _check_channels_last(self, data_format)
        self.cropping = _pairs(cropping, "cropping", self)
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs):
        (t, b), (left, r) = self.cropping
        h, w = inputs.shape[1], inputs.shape[2]
        if (h is not None and t + b >= h) or (w is not None and left + r >= w):
            raise InvalidArgumentError(f"Cropping2D {self.name!r}: cropping {self.cropping} removes all of an "
                                       f"input of shape {tuple(inputs.shape)}")
        return _a.strided_slice(inputs, (slice(None), slice(t, -b if b else None), slice(left, -r if r else None),
                                         slice(None)))

    def get_config(self):
        config = super().get_config()
        config.update({"cropping": [list(p) for p in self.cropping], "data_format": self.data_format})
        return config


class UpSampling2D(Layer):
    """Repeat each row `size[0]` times and each column `size[1]` times (nearest neighbour)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.data_format = _check_channels_last(self, data_format)
        self.size = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
        if interpolation != "nearest":
            raise InvalidArgumentError(f"UpSampling2D {self.name!r}: only interpolation='nearest' is supported, "
                                       f"got {interpolation!r}")
        self.interpolation = interpolation
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs):
        _, h, w, c = inputs.shape
        if h is None or w is None or c is None:
            raise InvalidArgumentError(f"UpSampling2D {self.name!r} needs known rows, cols and channels, got "
                                       f"{tuple(inputs.shape)}")
        sh, sw = self.size
        # (N, H, 1, W, 1, C) tiled to (N, H, sh, W, sw, C) then merged: each pixel repeated sh x sw times
        x = _a.reshape(inputs, [-1, h, 1, w, 1, c])
        x = _a.tile(x, [1, 1, sh, 1, sw, 1])
        return _a.reshape(x, [-1, h * sh, w * sw, c])

    def get_config(self):
        config = super().get_config()
        config.update({"size": list(self.size), "data_format": self.data_format,
                       "interpolation": self.interpolation})
        return config
