"""Device strings and backends.

Ops run on a backend: NumPy for the CPU, CuPy for a CUDA GPU. Each kernel is written against an array
module `xp`, so adding a backend never touches op definitions. CuPy is imported only when a GPU is asked
for, so `import kestimator` never needs it.
"""
import functools
import re

import numpy as np

from ..errors import InvalidArgumentError

_DEVICE_RE = re.compile(
    r"^(?:/job:(?P<job>\w+))?(?:/replica:(?P<replica>\d+))?(?:/task:(?P<task>\d+))?"
    r"(?:/(?:device:)?(?P<type>cpu|gpu|CPU|GPU):(?P<index>\d+|\*))?$")


def canonical_device(spec):
    """'/gpu:1' -> '/job:localhost/replica:0/task:0/device:GPU:1'.

    Raises:
        InvalidArgumentError: the string names no device kestimator knows (CPU and GPU only).
    """
    if spec is None or spec == "":
        return ""
    if callable(spec):
        raise InvalidArgumentError("device functions are not supported; pass a device string")
    m = _DEVICE_RE.match(spec.strip())
    if not m or not m.group("type"):
        raise InvalidArgumentError(
            f"unknown device {spec!r}: use '/cpu:0', '/device:CPU:0' or '/device:GPU:<n>'")
    index = m.group("index")
    index = "0" if index == "*" else index
    return (f"/job:{m.group('job') or 'localhost'}/replica:{m.group('replica') or 0}"
            f"/task:{m.group('task') or 0}/device:{m.group('type').upper()}:{index}")


CPU0 = canonical_device("/cpu:0")


def device_type_and_index(canonical):
    kind, index = canonical.rsplit("device:", 1)[1].split(":")
    return kind, int(index)


@functools.lru_cache(maxsize=None)
def _cupy_module():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:   # no CuPy, no driver, or no device: all mean "no GPU here"
        return None
    return None


_visible_gpus = [None]   # physical GPU indices ks.config.set_visible_devices left visible (None: all)


def set_visible_gpus(indices):
    """Limit placement to these physical GPUs (None: all); set by ks.config.set_visible_devices."""
    _visible_gpus[0] = None if indices is None else list(indices)


def gpu_count():
    cp = _cupy_module()
    n = cp.cuda.runtime.getDeviceCount() if cp is not None else 0
    visible = _visible_gpus[0]
    return n if visible is None else len([i for i in visible if i < n])


def array_module(device):
    """The array module (numpy or cupy) that runs kernels placed on `device`."""
    if device and "GPU" in device:
        cp = _cupy_module()
        if cp is None:
            raise InvalidArgumentError(f"no GPU available for {device}")
        return cp
    return np


def get_array_module(*arrays):
    """numpy or cupy, whichever owns the arrays (NumPy for plain values)."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            return _cupy_module()
    return np


def to_numpy(value):
    if type(value).__module__.startswith("cupy"):
        return value.get()
    return value
