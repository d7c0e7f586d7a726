"""Runtime settings, as `tf.config`: devices, threads and seeds.

    ks.config.list_physical_devices("GPU")                  # [] without CUDA / CuPy
    ks.config.threading.set_intra_op_parallelism_threads(2) # BLAS threads, via threadpoolctl
    ks.config.set_seed(0)                                    # graph-level seed and NumPy's global seed

The CPU is always present. GPUs are found through CuPy, only when it can be imported and sees a device.
"""
import collections
import itertools
import types

import numpy as np

from .errors import InvalidArgumentError

PhysicalDevice = collections.namedtuple("PhysicalDevice", ["name", "device_type"])
LogicalDevice = collections.namedtuple("LogicalDevice", ["name", "device_type"])

_DEVICE_TYPES = ("CPU", "GPU")
_state = {"visible": None, "memory_growth": {}, "intra_op": 0, "inter_op": 0, "blas_limiter": None,
          "soft_placement": True}

__all__ = ["PhysicalDevice", "LogicalDevice", "list_physical_devices", "list_logical_devices",
           "get_visible_devices", "set_visible_devices", "set_seed", "experimental", "threading",
           "get_soft_device_placement", "set_soft_device_placement"]


def _check_type(device_type):
    if device_type is None:
        return None
    kind = str(device_type).upper()
    if kind not in _DEVICE_TYPES:
        raise InvalidArgumentError(f"unknown device type {device_type!r}; kestimator knows {list(_DEVICE_TYPES)}")
    return kind


def list_physical_devices(device_type=None):
    """The machine's devices: CPU:0 always, then one GPU per CUDA device CuPy sees.

    Args:
        device_type: "CPU", "GPU" or None for all.

    Returns:
        [PhysicalDevice(name="/physical_device:CPU:0", device_type="CPU"), ...]

    Raises:
        InvalidArgumentError: an unknown device type.
    """
    from .engine.devices import gpu_count
    kind = _check_type(device_type)
    out = []
    if kind in (None, "CPU"):
        out.append(PhysicalDevice("/physical_device:CPU:0", "CPU"))
    if kind in (None, "GPU"):
        out.extend(PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(gpu_count()))
    return out


def get_visible_devices(device_type=None):
    """The physical devices the runtime may use (all of them unless `set_visible_devices` narrowed it)."""
    kind = _check_type(device_type)
    visible = _state["visible"]
    devices = list_physical_devices() if visible is None else list(visible)
    return [d for d in devices if kind is None or d.device_type == kind]


def set_visible_devices(devices, device_type=None):
    """Restrict the runtime to `devices` (of `device_type`, others stay visible). The CPU stays visible.

    Raises:
        InvalidArgumentError: a device that is not one of `list_physical_devices()`.
    """
    kind = _check_type(device_type)
    devices = [devices] if isinstance(devices, PhysicalDevice) else list(devices)
    known = list_physical_devices()
    for d in devices:
        if d not in known:
            raise InvalidArgumentError(f"{d!r} is not a physical device of this machine: {known}")
        if kind is not None and d.device_type != kind:
            raise InvalidArgumentError(f"{d.name} is not a {kind} device")
    keep = [d for d in get_visible_devices() if kind is not None and d.device_type != kind]
    chosen = keep + devices
    if not any(d.device_type == "CPU" for d in chosen):
        chosen.insert(0, known[0])   # kestimator always needs its CPU
    _state["visible"] = [d for d in known if d in chosen]
    from .engine import devices as _devices
    gpus = [int(d.name.rsplit(":", 1)[1]) for d in _state["visible"] if d.device_type == "GPU"]
    _devices.set_visible_gpus(gpus)


def list_logical_devices(device_type=None):
    """Devices ops can be placed on: one per visible physical device, numbered from 0 per type."""
    kind = _check_type(device_type)
    counts, out = {}, []
    for d in get_visible_devices():
        i = counts.get(d.device_type, 0)
        counts[d.device_type] = i + 1
        if kind is None or d.device_type == kind:
            out.append(LogicalDevice(f"/job:localhost/replica:0/task:0/device:{d.device_type}:{i}", d.device_type))
    return out


def get_soft_device_placement():
    return _state["soft_placement"]


def set_soft_device_placement(enabled):
    _state["soft_placement"] = bool(enabled)


def set_seed(seed):
    """Make runs repeatable: sets the graph-level seed of the default graph and of graphs created later,
    eager execution's seed, and NumPy's global seed (`np.random.seed`).

    Args:
        seed: an int, or None to go back to unseeded behaviour.
    """
    from .engine import eager, graph
    from .engine.ops.random_ops import set_random_seed
    seed = None if seed is None else int(seed)
    graph.set_default_seed(seed)
    set_random_seed(seed)
    # restart the op-seed sequence, so ops made after each set_seed(s) draw the same streams (as TF2)
    graph.get_default_graph()._seed_counter = itertools.count(1)
    eager.set_eager_seed(seed)
    if seed is not None:
        np.random.seed(seed & 0xFFFFFFFF)


# -- experimental: memory growth ---------------------------------------------------------------------------
def _set_memory_growth(device, enable):
    """Let the GPU memory pool grow as needed instead of reserving memory up front (CuPy's pool always
    grows; this records the choice and validates the device).

    Raises:
        InvalidArgumentError: `device` is not a GPU of this machine.
    """
    if not isinstance(device, PhysicalDevice) or device.device_type != "GPU":
        raise InvalidArgumentError(f"cannot set memory growth on {device!r}: not a GPU device")
    if device not in list_physical_devices("GPU"):
        raise InvalidArgumentError(f"{device.name} is not a GPU of this machine")
    _state["memory_growth"][device.name] = bool(enable)


def _get_memory_growth(device):
    if not isinstance(device, PhysicalDevice) or device.device_type != "GPU":
        raise InvalidArgumentError(f"{device!r} is not a GPU device")
    return _state["memory_growth"].get(device.name, False)


experimental = types.SimpleNamespace(
    set_memory_growth=_set_memory_growth, get_memory_growth=_get_memory_growth,
    list_physical_devices=list_physical_devices, list_logical_devices=list_logical_devices,
    set_visible_devices=set_visible_devices, get_visible_devices=get_visible_devices)


# -- threading ------------------------------------------------------------------------------------------
def _set_intra_op(num_threads):
    """Threads one op may use (BLAS matmuls). 0 restores the library default. Applied through
    threadpoolctl when it is installed; otherwise only recorded.

    Raises:
        InvalidArgumentError: a negative count.
    """
    n = int(num_threads)
    if n < 0:
        raise InvalidArgumentError(f"intra_op_parallelism_threads must be >= 0, got {num_threads}")
    limiter = _state["blas_limiter"]
    if limiter is not None:   # undo the previous limit before applying a new one
        limiter.restore_original_limits()
        _state["blas_limiter"] = None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if n and threadpool_limits is not None:
        _state["blas_limiter"] = threadpool_limits(limits=n, user_api="blas")
    _state["intra_op"] = n


def _get_intra_op():
    return _state["intra_op"]


def _set_inter_op(num_threads):
    """Threads that run independent ops at once; recorded (a Plan runs its ops in one thread)."""
    n = int(num_threads)
    if n < 0:
        raise InvalidArgumentError(f"inter_op_parallelism_threads must be >= 0, got {num_threads}")
    _state["inter_op"] = n


def _get_inter_op():
    return _state["inter_op"]


threading = types.SimpleNamespace(
    set_intra_op_parallelism_threads=_set_intra_op, get_intra_op_parallelism_threads=_get_intra_op,
    set_inter_op_parallelism_threads=_set_inter_op, get_inter_op_parallelism_threads=_get_inter_op)
