"""TF 1.x's learning-rate decays that return graph tensors (`ke.train.exponential_decay` ...), also
importable from `kestimator.engine.train`."""
import numpy as np

from ..errors import InvalidArgumentError
from . import dtypes as _dt

__all__ = ["exponential_decay", "piecewise_constant", "cosine_decay", "inverse_time_decay", "polynomial_decay"]


def _decay_inputs(learning_rate, global_step, what):
    from .ops.core import cast, convert_to_tensor
    if global_step is None:
        raise InvalidArgumentError(f"global_step is required for {what}")
    lr = convert_to_tensor(learning_rate)
    if not lr.dtype.is_floating:
        lr = cast(lr, _dt.float32)
    return lr, cast(convert_to_tensor(global_step), lr.dtype)


def exponential_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False, name=None):
    """learning_rate * decay_rate ^ (global_step / decay_steps), the exponent floored when `staircase`.

    Returns:
        A scalar tensor (graph mode) to pass as an optimizer's learning rate.

    Raises:
        InvalidArgumentError: global_step is None or decay_steps is not positive.
    """
    from .ops.math_ops import floor, multiply, pow
    if decay_steps <= 0:
        raise InvalidArgumentError(f"decay_steps must be positive, got {decay_steps}")
    lr, step = _decay_inputs(learning_rate, global_step, "exponential_decay")
    p = step / float(decay_steps)
    if staircase:
        p = floor(p)
    return multiply(lr, pow(np.asarray(decay_rate, lr.dtype.np), p), name=name or "ExponentialDecay")


def inverse_time_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False, name=None):
    """learning_rate / (1 + decay_rate * global_step / decay_steps) (the ratio floored when `staircase`)."""
    from .ops.math_ops import divide, floor
    lr, step = _decay_inputs(learning_rate, global_step, "inverse_time_decay")
    p = step / float(decay_steps)
    if staircase:
        p = floor(p)
    return divide(lr, 1.0 + float(decay_rate) * p, name=name or "InverseTimeDecay")


def polynomial_decay(learning_rate, global_step, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                     name=None):
    """(lr - end) * (1 - min(step, decay_steps) / decay_steps) ^ power + end (cycle: decay_steps grows
    to the next multiple of itself past the step)."""
    from .ops.math_ops import ceil, maximum, minimum, pow
    lr, step = _decay_inputs(learning_rate, global_step, "polynomial_decay")
    steps = float(decay_steps)
    if cycle:
        steps = steps * maximum(ceil(step / steps), 1.0)
    else:
        step = minimum(step, steps)
    frac = pow(1.0 - step / steps, float(power))
    return (lr - float(end_learning_rate)) * frac + float(end_learning_rate)


def cosine_decay(learning_rate, global_step, decay_steps, alpha=0.0, name=None):
    """learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha)."""
    from .ops.math_ops import cos, minimum, multiply
    lr, step = _decay_inputs(learning_rate, global_step, "cosine_decay")
    step = minimum(step, float(decay_steps))
    cosine = 0.5 * (1.0 + cos(step * (np.pi / float(decay_steps))))
    return multiply(lr, (1.0 - float(alpha)) * cosine + float(alpha), name=name or "CosineDecay")


def piecewise_constant(x, boundaries, values, name=None):
    """values[0] while x <= boundaries[0], values[i] while boundaries[i-1] < x <= boundaries[i], values[-1]
    after the last boundary.

    Raises:
        InvalidArgumentError: len(values) != len(boundaries) + 1, or boundaries not increasing.
    """
    from .ops.array_ops import gather
    from .ops.core import cast, constant, convert_to_tensor
    from .ops.math_ops import greater
    from .ops.reduce_ops import reduce_sum
    if len(values) != len(boundaries) + 1:
        raise InvalidArgumentError(f"piecewise_constant needs len(values) == len(boundaries) + 1, got "
                                   f"{len(values)} values and {len(boundaries)} boundaries")
    bounds = np.asarray(boundaries, dtype=np.float64)
    if np.any(np.diff(bounds) <= 0):
        raise InvalidArgumentError(f"piecewise_constant boundaries must increase: {list(boundaries)}")
    vals = np.asarray(values)
    vals = vals.astype(np.float32) if vals.dtype == np.float64 else vals
    x = cast(convert_to_tensor(x), _dt.float64)
    index = reduce_sum(cast(greater(x, constant(bounds)), _dt.int32))
    return gather(constant(vals), index, name=name or "PiecewiseConstant")
