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


# The GPU backend: None until asked for; then CuPy when it is importable and sees a device, or whatever
# `register_backend` installed (tests install a NumPy-backed stand-in).
_gpu = {"backend": None, "resolved": False}
_visible_gpus = [None]   # physical GPU indices ks.config.set_visible_devices left visible (None: all)
_default_device = [""]   # where ops without a device go ("" = the CPU)


def register_backend(kind, module):
    """Run GPU ops with `module` (CuPy, or a module that looks like it) instead of the detected CuPy.

    Args:
        kind: "GPU" (the only device type with a pluggable backend).
        module: an array module, a `kestimator.engine.gpu.Backend`, or None to forget any GPU backend
            (then no GPU is present, whatever is installed).

    Returns:
        The Backend now in use (None when `module` is None).

    Raises:
        InvalidArgumentError: `kind` is not "GPU".
    """
    if str(kind).upper() != "GPU":
        raise InvalidArgumentError(f"only the GPU backend can be registered, not {kind!r}")
    from .gpu.backend import Backend
    backend = module if module is None or isinstance(module, Backend) else Backend(module)
    _gpu["backend"], _gpu["resolved"] = backend, True
    return backend


def reset_backend(kind="GPU"):
    """Forget a registered backend: the next look-up detects CuPy again."""
    if str(kind).upper() != "GPU":
        raise InvalidArgumentError(f"only the GPU backend can be reset, not {kind!r}")
    _gpu["backend"], _gpu["resolved"] = None, False


def gpu_backend():
    """The GPU Backend, or None when no GPU is present (CuPy is imported here, on first use only)."""
    if not _gpu["resolved"]:
        cp = _cupy_module()
        if cp is not None:
            from .gpu.backend import Backend
            _gpu["backend"] = Backend(cp)
        _gpu["resolved"] = True
    return _gpu["backend"]


def set_visible_gpus(indices):
    """Limit placement to these physical GPUs (None: all); set by ks.config.set_visible_devices."""
    _visible_gpus[0] = None if indices is None else list(indices)


def _physical_gpus():
    backend = gpu_backend()
    n = backend.device_count() if backend is not None else 0
    visible = _visible_gpus[0]
    return list(range(n)) if visible is None else [i for i in visible if i < n]


def gpu_count():
    """How many GPUs ops can be placed on (visible ones only)."""
    if _gpu["resolved"] and _gpu["backend"] is None:
        return 0   # the common CPU-only case, without a look-up
    return len(_physical_gpus())


def physical_gpu(logical):
    """The physical device index behind logical GPU `logical` (they differ when some are hidden)."""
    return _physical_gpus()[logical]


def set_default_device(spec):
    """Place ops that have no device of their own on `spec` (e.g. "/gpu:0"); "" or None: the CPU.

    An explicit `with ke.device(...)` still wins. Takes effect for plans compiled afterwards.
    """
    _default_device[0] = canonical_device(spec) if spec else ""


def get_default_device():
    return _default_device[0]


def set_memory_fraction(fraction):
    """Cap each visible GPU's memory pool at `fraction` of its memory (ConfigProto's
    per_process_gpu_memory_fraction). A no-op without a GPU."""
    backend = gpu_backend()
    if backend is None:
        return
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise InvalidArgumentError(f"per_process_gpu_memory_fraction must be in (0, 1], got {fraction}")
    for index in _physical_gpus():
        backend.set_memory_limit(index, fraction=fraction)


def array_module(device):
    """The array module (numpy or the GPU backend's kernel namespace) that runs kernels placed on `device`."""
    if device and "GPU" in device:
        backend = gpu_backend()
        if backend is None:
            raise InvalidArgumentError(f"no GPU available for {device}")
        return backend.xp
    return np


def is_device_array(value):
    """True for an array that lives on a GPU."""
    if type(value) is np.ndarray:
        return False
    backend = _gpu["backend"]
    return backend is not None and backend.is_device_array(value)


def get_array_module(*arrays):
    """numpy or the GPU kernel namespace, whichever owns the arrays (NumPy for plain values)."""
    for a in arrays:
        if is_device_array(a):
            return _gpu["backend"].xp
    return np


def to_numpy(value):
    """A host (NumPy) value: device arrays are copied back, anything else is returned as is."""
    if is_device_array(value):
        return _gpu["backend"].to_host(value)
    return value
