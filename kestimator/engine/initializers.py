"""Variable initializers (TF1 and Keras names).

Each initializer samples NumPy values with its own seeded generator inside one "Initializer" op, so a
large weight matrix is created once, at initialization time, and never stored in the graph.
"""
import math

import numpy as np

from ..errors import InvalidArgumentError
from . import dtypes as _dt
from .registry import apply_op, register

register("Initializer", infer=lambda i, a: [(a["shape"], a["dtype"])], stateful=True, differentiable=False,
         kernel=lambda xp, a: (lambda: xp.asarray(a["sample"](a["_rng"], a["shape"], a["dtype"].np))))


class Initializer:
    """Base class: ``init(shape, dtype) -> Tensor``; subclasses implement ``sample(rng, shape, np_dtype)``."""

    random = False

    def __call__(self, shape, dtype=None, partition_info=None):
        from .ops.random_ops import get_seed
        dtype = _dt.as_dtype(dtype or getattr(self, "dtype", None) or _dt.float32)
        shape = tuple(int(d) for d in shape)
        seeds = get_seed(getattr(self, "seed", None)) if self.random else (0, 0)
        from . import eager
        if eager.executing_eagerly():
            from .ops.random_ops import make_rng
            rng = eager.next_rng() if seeds[0] is None else make_rng(seeds)
            return eager.EagerTensor(np.asarray(self.sample(rng, shape, dtype.np)), dtype)
        return apply_op("Initializer", [], {"shape": shape, "dtype": dtype, "seeds": seeds, "sample": self.sample},
                        name=type(self).__name__)

    def sample(self, rng, shape, dtype):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Zeros(Initializer):
    def __init__(self, dtype=None):
        self.dtype = dtype

    def sample(self, rng, shape, dtype):
        return np.zeros(shape, dtype)


class Ones(Initializer):
    def __init__(self, dtype=None):
        self.dtype = dtype

    def sample(self, rng, shape, dtype):
        return np.ones(shape, dtype)


class Constant(Initializer):
    def __init__(self, value=0, dtype=None, verify_shape=False):
        self.value, self.dtype = value, dtype

    def sample(self, rng, shape, dtype):
        v = np.asarray(self.value, dtype)
        if v.size == 1:
            return np.full(shape, v.reshape(()), dtype)
        if v.size != int(np.prod(shape)):
            raise InvalidArgumentError(f"constant initializer has {v.size} values for shape {shape}")
        return v.reshape(shape)

    def get_config(self):
        v = self.value
        return {"value": v.tolist() if isinstance(v, np.ndarray) else v}


class RandomUniform(Initializer):
    random = True

    def __init__(self, minval=-0.05, maxval=0.05, seed=None, dtype=None):
        self.minval, self.maxval, self.seed, self.dtype = minval, maxval, seed, dtype

    def sample(self, rng, shape, dtype):
        return (rng.random(shape) * (self.maxval - self.minval) + self.minval).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    random = True

    def __init__(self, mean=0.0, stddev=0.05, seed=None, dtype=None):
        self.mean, self.stddev, self.seed, self.dtype = mean, stddev, seed, dtype

    def sample(self, rng, shape, dtype):
        return (rng.standard_normal(shape) * self.stddev + self.mean).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated(rng, shape):
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out


class TruncatedNormal(RandomNormal):
    def sample(self, rng, shape, dtype):
        return (_truncated(rng, shape) * self.stddev + self.mean).astype(dtype)


def _fans(shape):
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class VarianceScaling(Initializer):
    random = True

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, dtype=None):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise InvalidArgumentError(f"mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise InvalidArgumentError(f"unknown distribution {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed, self.dtype = scale, mode, distribution, seed, dtype

    def sample(self, rng, shape, dtype):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        s = self.scale / max(1.0, n)
        if self.distribution == "truncated_normal":
            return (_truncated(rng, shape) * math.sqrt(s) / 0.87962566103423978).astype(dtype)
        if self.distribution == "untruncated_normal":
            return (rng.standard_normal(shape) * math.sqrt(s)).astype(dtype)
        lim = math.sqrt(3.0 * s)
        return (rng.random(shape) * 2 * lim - lim).astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _vs(name, scale, mode, dist):
    class _Init(VarianceScaling):
        def __init__(self, seed=None, dtype=None):
            super().__init__(scale, mode, dist, seed, dtype)

        def get_config(self):
            return {"seed": self.seed}
    _Init.__name__ = _Init.__qualname__ = name
    return _Init


GlorotUniform = _vs("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _vs("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeNormal = _vs("HeNormal", 2.0, "fan_in", "truncated_normal")
HeUniform = _vs("HeUniform", 2.0, "fan_in", "uniform")
LecunNormal = _vs("LecunNormal", 1.0, "fan_in", "truncated_normal")
LecunUniform = _vs("LecunUniform", 1.0, "fan_in", "uniform")


class Orthogonal(Initializer):
    random = True

    def __init__(self, gain=1.0, seed=None, dtype=None):
        self.gain, self.seed, self.dtype = gain, seed, dtype

    def sample(self, rng, shape, dtype):
        if len(shape) < 2:
            raise InvalidArgumentError("orthogonal initializer needs a shape of rank >= 2")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols].reshape(shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    def __init__(self, gain=1.0, dtype=None):
        self.gain, self.dtype = gain, dtype

    def sample(self, rng, shape, dtype):
        if len(shape) != 2:
            raise InvalidArgumentError("identity initializer needs a 2-D shape")
        return (self.gain * np.eye(*shape)).astype(dtype)


# TF1 spellings
zeros_initializer = Zeros
ones_initializer = Ones
constant_initializer = Constant
random_uniform_initializer = RandomUniform
random_normal_initializer = RandomNormal
truncated_normal_initializer = TruncatedNormal
variance_scaling_initializer = VarianceScaling
glorot_uniform_initializer = GlorotUniform
glorot_normal_initializer = GlorotNormal
orthogonal_initializer = Orthogonal

_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_uniform": RandomUniform,
    "random_normal": RandomNormal, "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal, "identity": Identity,
}
for _cls in list(_BY_NAME.values()):
    _BY_NAME[_cls.__name__] = _cls


def get(identifier):
    """An initializer from a name, a class, a config dict or an instance (Keras style)."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        try:
            return _BY_NAME[identifier]()
        except KeyError:
            raise InvalidArgumentError(f"unknown initializer {identifier!r}; known: {sorted(_BY_NAME)}") from None
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_NAME.get(identifier["class_name"])
        if cls is None:
            raise InvalidArgumentError(f"unknown initializer {identifier['class_name']!r}")
        return cls.from_config(identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise InvalidArgumentError(f"cannot interpret {identifier!r} as an initializer")


def serialize(init):
    return {"class_name": type(init).__name__, "config": init.get_config()}
