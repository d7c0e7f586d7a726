"""Normalization: feature-wise (x - mean) / sqrt(variance), with mean and variance from `adapt(data)`."""
import numpy as np

from ..engine import dtypes as _dt
from ..engine.ops import math_ops as _m
from ..errors import InvalidArgumentError
from .base import Layer

_EPSILON = 1e-7   # Keras's backend.epsilon(): floor of the standard deviation


class Normalization(Layer):
    """``norm = Normalization(); norm.adapt(x_train); y = norm(x)``.

    Args:
        axis: the axis (or axes) with separate statistics; default -1 (features). None: one mean and
            variance over everything.
        mean, variance: fixed statistics instead of `adapt` (broadcastable to the kept axes).
        invert: compute mean + x * std instead (undo a normalization).
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        self.axis = (axis,) if isinstance(axis, int) else tuple(axis)
        if (mean is None) != (variance is None):
            raise InvalidArgumentError(f"Normalization {self.name!r}: pass both mean and variance, or neither")
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)
        self._adapted = False

    def _kept(self, rank):
        kept = sorted(a % rank for a in self.axis)
        if any(a == 0 for a in kept):
            raise InvalidArgumentError(f"Normalization {self.name!r}: axis must not include the batch axis 0")
        return kept

    def build(self, input_shape):
        rank = input_shape.ndims
        kept = self._kept(rank)
        shape = []
        for a in kept:
            if input_shape[a] is None:
                raise InvalidArgumentError(f"Normalization {self.name!r}: axis {a} must have a known size, got "
                                           f"{tuple(input_shape)}")
            shape.append(input_shape[a])
        self._stat_shape = tuple(shape)
        # statistics broadcast against the inputs: size on the kept axes, 1 elsewhere
        self._broadcast_shape = tuple(input_shape[a] if a in kept else 1 for a in range(1, rank))
        if self.input_mean is None:
            self.adapt_mean = self.add_weight("mean", self._stat_shape, initializer="zeros", trainable=False)
            self.adapt_variance = self.add_weight("variance", self._stat_shape, initializer="ones", trainable=False)
            self.count = self.add_weight("count", (), dtype=_dt.int64, initializer="zeros", trainable=False)

    def adapt(self, data, batch_size=None, steps=None):
        """Set mean and variance from `data` (an array, or an iterable of batches) over the batch and the
        axes not kept.

        Raises:
            InvalidArgumentError: the layer was given fixed statistics.
        """
        if self.input_mean is not None:
            raise InvalidArgumentError(f"Normalization {self.name!r} has fixed mean and variance; adapt() is "
                                       "not available")
        batches = [data] if hasattr(data, "shape") else list(data)
        arrays = [np.asarray(getattr(b, "numpy", lambda b=b: b)(), dtype=np.float64) for b in batches]
        first = arrays[0]
        if not self.built:
            from ..engine.graph import TensorShape
            self._maybe_build_from_shape(TensorShape((None,) + first.shape[1:]))
        kept = self._kept(first.ndim)
        reduce_axes = tuple(a for a in range(first.ndim) if a not in kept)
        # Chan et al.'s parallel update: combine per-batch (count, mean, M2) exactly
        n, mean, m2 = 0, 0.0, 0.0
        for arr in arrays:
            k = int(np.prod([arr.shape[a] for a in reduce_axes]))
            b_mean = arr.mean(axis=reduce_axes)
            b_m2 = ((arr - np.expand_dims(b_mean, reduce_axes) if reduce_axes else arr - b_mean) ** 2).sum(
                axis=reduce_axes)
            delta = b_mean - mean
            total = n + k
            mean = mean + delta * (k / total)
            m2 = m2 + b_m2 + delta ** 2 * (n * k / total)
            n = total
        self.adapt_mean.assign(np.reshape(mean, self._stat_shape))
        self.adapt_variance.assign(np.reshape(m2 / n, self._stat_shape))
        self.count.assign(np.int64(n))
        self._adapted = True

    def _stats(self):
        if self.input_mean is not None:
            mean = np.broadcast_to(np.asarray(self.input_mean, np.float64), self._stat_shape)
            var = np.broadcast_to(np.asarray(self.input_variance, np.float64), self._stat_shape)
            dt = _dt.as_dtype(self.dtype).np
            return (np.reshape(mean, self._broadcast_shape).astype(dt),
                    np.reshape(var, self._broadcast_shape).astype(dt))
        from ..engine.ops import array_ops as _a
        return (_a.reshape(self.adapt_mean, self._broadcast_shape),
                _a.reshape(self.adapt_variance, self._broadcast_shape))

    def call(self, inputs):
        mean, var = self._stats()
        std = _m.maximum(_m.sqrt(var), _EPSILON)
        if self.invert:
            return _m.add(mean, _m.multiply(inputs, std))
        return _m.divide(_m.subtract(inputs, mean), std)

    def get_config(self):
        config = super().get_config()

        def plain(v):
            return np.asarray(v).tolist() if v is not None and not isinstance(v, (int, float)) else v
        config.update({"axis": list(self.axis), "invert": self.invert, "mean": plain(self.input_mean),
                       "variance": plain(self.input_variance)})
        return config
