"""Merge layers: Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Dot, and their
functional forms (``add([x, y])``)."""
from functools import reduce

from ..engine.ops import array_ops as _a
from ..engine.ops import math_ops as _m
from ..engine.ops import reduce_ops as _r
from ..engine.ops import nn_ops as _nn
from ..engine.graph import TensorShape
from ..errors import InvalidArgumentError
from .base import Layer


class _Merge(Layer):
    """Base: a list of >= 2 tensors of compatible shapes in, one tensor out."""

    min_inputs = 2
    elementwise = True

    def _check_list(self, inputs):
        single = isinstance(inputs, TensorShape) or not isinstance(inputs, (list, tuple)) or \
            any(d is None or isinstance(d, int) for d in inputs)
        if single or len(inputs) < self.min_inputs:
            raise InvalidArgumentError(f"{type(self).__name__} layer {self.name!r} must be called on a list of at "
                                       f"least {self.min_inputs} inputs, got {inputs!r}")

    def build(self, input_shape):
        self._check_list(input_shape)
        shapes = [tuple(s) for s in input_shape]
        ranks = {len(s) for s in shapes}
        if self.elementwise and len(ranks) == 1:
            for i in range(1, ranks.pop()):
                dims = {s[i] for s in shapes if s[i] is not None and s[i] != 1}
                if len(dims) > 1:
                    raise InvalidArgumentError(f"{type(self).__name__} layer {self.name!r}: inputs have "
                                               f"incompatible shapes {shapes}")

    def call(self, inputs):
        self._check_list(inputs)
        return self._merge(list(inputs))


class Add(_Merge):
    """Elementwise sum."""

    def _merge(self, xs):
        return _m.add_n(xs) if len(xs) > 2 else _m.add(xs[0], xs[1])


class Subtract(_Merge):
    """inputs[0] - inputs[1] (exactly two inputs)."""

    def _merge(self, xs):
        if len(xs) != 2:
            raise InvalidArgumentError(f"Subtract layer {self.name!r} needs exactly 2 inputs, got {len(xs)}")
        return _m.subtract(xs[0], xs[1])


class Multiply(_Merge):
    """Elementwise product."""

    def _merge(self, xs):
        return reduce(_m.multiply, xs)


class Average(_Merge):
    """Elementwise mean."""

    def _merge(self, xs):
        return _m.multiply(reduce(_m.add, xs), 1.0 / len(xs))


class Maximum(_Merge):
    """Elementwise maximum."""

    def _merge(self, xs):
        return reduce(_m.maximum, xs)


class Minimum(_Merge):
    """Elementwise minimum."""

    def _merge(self, xs):
        return reduce(_m.minimum, xs)


class Concatenate(_Merge):
    """Concatenation along `axis` (default the last)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def build(self, input_shape):
        self._check_list(input_shape)
        shapes = [tuple(s) for s in input_shape]
        if len({len(s) for s in shapes}) != 1:
            raise InvalidArgumentError(f"Concatenate layer {self.name!r}: inputs must have the same rank, got "
                                       f"shapes {shapes}")
        rank = len(shapes[0])
        ax = self.axis % rank
        for i in range(rank):
            if i == ax:
                continue
            dims = {s[i] for s in shapes if s[i] is not None}
            if len(dims) > 1:
                raise InvalidArgumentError(f"Concatenate layer {self.name!r} requires inputs with matching shapes "
                                           f"except for the concatenation axis {self.axis}; got {shapes}")

    def _merge(self, xs):
        return _a.concat(xs, axis=self.axis)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


class Dot(_Merge):
    """Dot products between samples of two tensors along `axes` (optionally L2-normalized first)."""

    elementwise = False

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes = axes if isinstance(axes, int) else list(axes)
        self.normalize = bool(normalize)

    def _merge(self, xs):
        if len(xs) != 2:
            raise InvalidArgumentError(f"Dot layer {self.name!r} needs exactly 2 inputs, got {len(xs)}")
        x, y = xs
        rx, ry = x.shape.ndims, y.shape.ndims
        axes = [self.axes, self.axes] if isinstance(self.axes, int) else list(self.axes)
        axes = [a % r if a < 0 else a for a, r in zip(axes, (rx, ry))]
        if self.normalize:
            x = _nn.l2_normalize(x, axis=axes[0])
            y = _nn.l2_normalize(y, axis=axes[1])
        if rx == 2 and ry == 2:
            if axes[0] == axes[1] == 1:
                return _r.reduce_sum(_m.multiply(x, y), axis=1, keepdims=True)
        if rx == 3 and ry == 3:
            # batched matmul: contract axes[0] of x with axes[1] of y
            xa = x if axes[0] == 2 else _a.transpose(x, [0, 2, 1])
            yb = y if axes[1] == 1 else _a.transpose(y, [0, 2, 1])
            return _r.matmul(xa, yb)
        raise InvalidArgumentError(f"Dot layer {self.name!r}: supported are rank-2 inputs with axes=1 and rank-3 "
                                   f"inputs; got ranks {rx}, {ry} and axes {self.axes}")

    def get_config(self):
        config = super().get_config()
        config.update({"axes": self.axes, "normalize": self.normalize})
        return config


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes, normalize=False, **kwargs):
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
