"""Seeded random ops. Each op keeps its own stream per Session, seeded from (graph seed, op seed)."""
import numpy as np

from ...errors import InvalidArgumentError
from .. import dtypes as _dt
from ..graph import Tensor, get_default_graph
from ..registry import apply_op, register, static_value
from .core import convert_to_tensor, same_as_input
from .math_ops import multiply


def set_random_seed(seed):
    """Set the graph-level seed: ops created afterwards without their own seed become repeatable."""
    from .. import eager
    if eager.executing_eagerly():
        eager.set_eager_seed(seed)
    get_default_graph().seed = None if seed is None else int(seed)


def get_seed(op_seed):
    """(graph_seed, op_seed) as TF derives them; (None, None) means a fresh random stream."""
    g = get_default_graph()
    if g.seed is not None:
        return g.seed, int(op_seed) if op_seed is not None else g.next_seed()
    if op_seed is not None:
        return 87654321, int(op_seed)
    return None, None


def make_rng(seeds):
    if seeds is None or seeds[0] is None:
        return np.random.default_rng()
    return np.random.default_rng([int(seeds[0]) & 0xFFFFFFFF, int(seeds[1]) & 0xFFFFFFFF])


def _shape_attr(shape):
    if isinstance(shape, Tensor):
        sv = static_value(shape)
        if sv is None:
            raise InvalidArgumentError("random op shapes must be known when the graph is built")
        shape = sv
    return tuple(int(d) for d in np.asarray(shape).reshape(-1))


def _rand_infer(inputs, attrs):
    return [(attrs["shape"], attrs["dtype"])]


def _uniform_kernel(xp, a):
    rng, lo, hi, dt, shp = a["_rng"], a["minval"], a["maxval"], a["dtype"], a["shape"]
    if dt.is_integer:
        return lambda: xp.asarray(rng.integers(lo, hi, size=shp, dtype=dt.np))
    return lambda: xp.asarray((rng.random(size=shp) * (hi - lo) + lo).astype(dt.np))


def _normal_kernel(xp, a):
    rng, mean, std, dt, shp = a["_rng"], a["mean"], a["stddev"], a["dtype"], a["shape"]
    return lambda: xp.asarray((rng.standard_normal(size=shp) * std + mean).astype(dt.np))


def _truncated_kernel(xp, a):
    rng, mean, std, dt, shp = a["_rng"], a["mean"], a["stddev"], a["dtype"], a["shape"]

    def run():
        out = rng.standard_normal(size=shp)
        bad = np.abs(out) > 2.0
        while bad.any():   # redraw values beyond two standard deviations, as TF does
            out[bad] = rng.standard_normal(size=int(bad.sum()))
            bad = np.abs(out) > 2.0
        return xp.asarray((out * std + mean).astype(dt.np))
    return run


for _n, _k in (("RandomUniform", _uniform_kernel), ("RandomStandardNormal", _normal_kernel),
               ("TruncatedNormal", _truncated_kernel)):
    register(_n, infer=_rand_infer, kernel=_k, stateful=True, differentiable=False)


def _random(op_type, shape, dtype, seed, name, **attrs):
    dt = _dt.as_dtype(dtype)
    attrs.update(shape=_shape_attr(shape), dtype=dt, seeds=get_seed(seed))
    return apply_op(op_type, [], attrs, name=name)


def random_uniform(shape, minval=0, maxval=None, dtype=_dt.float32, seed=None, name=None):
    dt = _dt.as_dtype(dtype)
    if maxval is None:
        if dt.is_integer:
            raise InvalidArgumentError("random_uniform with an integer dtype needs maxval")
        maxval = 1.0
    return _random("RandomUniform", shape, dt, seed, name, minval=minval, maxval=maxval)


def random_normal(shape, mean=0.0, stddev=1.0, dtype=_dt.float32, seed=None, name=None):
    return _random("RandomStandardNormal", shape, dtype, seed, name, mean=float(mean), stddev=float(stddev))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=_dt.float32, seed=None, name=None):
    return _random("TruncatedNormal", shape, dtype, seed, name, mean=float(mean), stddev=float(stddev))


def _shuffle_kernel(xp, a):
    rng = a["_rng"]
    return lambda x: x[xp.asarray(rng.permutation(x.shape[0]))] if x.ndim else x


register("RandomShuffle", infer=same_as_input(), kernel=_shuffle_kernel, stateful=True, differentiable=False)


def random_shuffle(value, seed=None, name=None):
    return apply_op("RandomShuffle", [convert_to_tensor(value)], {"seeds": get_seed(seed)}, name=name)


def _dropout_kernel(xp, a):
    rng, rate = a["_rng"], a["rate"]
    keep = 1.0 - rate

    def run(x):
        mask = (rng.random(size=x.shape, dtype=np.float32) >= rate).astype(x.dtype)
        mask *= 1.0 / keep
        mask = xp.asarray(mask)
        return x * mask, mask
    return run


register("Dropout", infer=lambda i, a: [(i[0].shape, i[0].dtype), (i[0].shape, i[0].dtype)],
         kernel=_dropout_kernel, stateful=True, num_outputs=2,
         grad=lambda op, g, _m=None: [multiply(g, op.outputs[1])])


def dropout(x, rate=None, noise_shape=None, seed=None, name=None, keep_prob=None):
    """Zero each element with probability `rate`, scaling the rest by 1/(1-rate)."""
    x = convert_to_tensor(x)
    if rate is None:
        rate = 1.0 - keep_prob if keep_prob is not None else 0.5
    if isinstance(rate, Tensor):
        sv = static_value(rate)
        if sv is None:
            raise InvalidArgumentError("dropout rate must be a Python number or constant")
        rate = float(sv)
    if not 0 <= rate < 1:
        raise InvalidArgumentError(f"dropout rate must be in [0, 1), got {rate}")
    if rate == 0:
        return x
    return apply_op("Dropout", [x], {"rate": float(rate), "seeds": get_seed(seed)}, name=name)[0]
