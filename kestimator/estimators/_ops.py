"""Engine ops the canned estimators' heads need: label checks at run time."""
import numpy as np

from ..engine.ops.core import same_as_input
from ..engine.registry import apply_op, register
from ..errors import InvalidArgumentError


def _check_kernel(xp, a):
    lo, hi, what = a["low"], a["high"], a["what"]

    def run(x):
        arr = np.asarray(x)
        if arr.size:
            bad = (arr < lo) | (arr > hi) | (arr != arr)
            if bad.any():
                value = arr[bad].reshape(-1)[0]
                raise InvalidArgumentError(f"{what}: label {value!r} is outside [{lo}, {hi}]")
        return x
    return run


register("CheckLabelRange", infer=same_as_input(), kernel=_check_kernel, differentiable=False)


def check_label_range(labels, low, high, what):
    """`labels` unchanged, after checking at run time that every value lies in [low, high]."""
    return apply_op("CheckLabelRange", [labels], {"low": low, "high": high, "what": str(what)},
                    name="check_label_range")
