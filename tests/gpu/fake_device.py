"""A pretend CuPy over NumPy, so the GPU seam can be tested on a machine without a GPU.

Arrays "on the device" are `DeviceArray`s, an ndarray subclass that remembers its device. The module
behaves like CuPy where the engine could get it wrong:

- mixing a host `np.ndarray` into a device operation raises TypeError (CuPy refuses implicit transfers);
  NumPy scalars and Python numbers are fine;
- an operation on arrays of another device than the current one raises ValueError;
- `lib.stride_tricks.as_strided` has no `writeable=` and `add` has no `.at` (as in CuPy before v13);
- `asarray` of host data and `.get()` are the only transfers, and they are counted (`stats`);
- allocations count against a per-device memory pool with `set_limit(size=, fraction=)`; going over
  raises `cuda.memory.OutOfMemoryError`;
- `ElementwiseKernel` / `RawKernel` exist only when built with `kernels=True`: they compile the CUDA C with
  the CPU emulator in cuda_emulator.py.

It cannot catch `np.asarray(device_array)` (a subclass converts silently) or code that is only slow on a GPU.
"""
import types
import weakref

import numpy as np

DEVICE_MEMORY = 1 << 30   # bytes per fake device


class OutOfMemoryError(MemoryError):
    pass


class Stats:
    def __init__(self):
        self.h2d = 0          # host -> device copies
        self.d2h = 0          # device -> host copies
        self.h2d_bytes = 0

    def reset(self):
        self.__init__()


class _State:
    def __init__(self, n_devices):
        self.n = n_devices
        self.stack = [0]
        self.used = [0] * n_devices
        self.allocations = 0   # ever made, on any device
        self.limit = [DEVICE_MEMORY] * n_devices
        self.stats = Stats()

    @property
    def current(self):
        return self.stack[-1]


class _DeviceId:
    __slots__ = ("id",)

    def __init__(self, i):
        self.id = i

    def __eq__(self, other):
        return isinstance(other, _DeviceId) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<FakeDevice {self.id}>"


class DeviceArray(np.ndarray):
    """An array that lives on fake device `device.id`."""

    _state = None   # set per fake module (subclassed)

    def __array_finalize__(self, obj):
        self._dev = getattr(obj, "_dev", None) or _DeviceId(self._state.current)

    @property
    def device(self):   # CuPy's ndarray.device (NumPy 2's own .device is a string)
        return self._dev

    def get(self):
        st = self._state
        st.stats.d2h += 1
        return np.array(self.view(np.ndarray), copy=True)

    def copy(self, order="C"):
        out = _wrap(np.array(self.view(np.ndarray), copy=True, order=order), self._state, fresh=True)
        return out

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        st = self._state
        _check(inputs, st, ufunc.__name__)
        if out is not None:
            _check(out, st, ufunc.__name__)
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*[_unwrap(x) for x in inputs], **kwargs)
        if method == "at":
            return None
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap_all(result, st)

    def __array_function__(self, func, types_, args, kwargs):
        st = self._state
        _check_nested((args, kwargs), st, func.__name__)
        return _wrap_all(func(*_unwrap_nested(args), **_unwrap_nested(kwargs)), st)


def _unwrap(x):
    return x.view(np.ndarray) if isinstance(x, DeviceArray) else x


def _unwrap_nested(x):
    if isinstance(x, DeviceArray):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap_nested(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap_nested(v) for k, v in x.items()}
    return x


def _check(values, st, what):
    for v in values:
        if isinstance(v, DeviceArray):
            if v.device.id != st.current:
                raise ValueError(f"{what}: array on device {v.device.id} used while device {st.current} is current")
        elif isinstance(v, np.ndarray):
            raise TypeError(f"{what}: unsupported type {type(v).__name__} (a host array passed to a device op)")


def _check_nested(x, st, what):
    if isinstance(x, np.ndarray):
        _check([x], st, what)
    elif isinstance(x, (list, tuple)):
        for v in x:
            _check_nested(v, st, what)
    elif isinstance(x, dict):
        for v in x.values():
            _check_nested(v, st, what)


def _account(arr, st):
    dev = st.current
    if st.used[dev] + arr.nbytes > st.limit[dev]:
        raise OutOfMemoryError(f"Out of memory allocating {arr.nbytes:,} bytes (allocated so far: "
                               f"{st.used[dev]:,} bytes, limit set to: {st.limit[dev]:,} bytes).")
    st.used[dev] += arr.nbytes
    st.allocations += 1
    weakref.finalize(arr, _release, st, dev, arr.nbytes)


def _release(st, dev, nbytes):
    st.used[dev] -= nbytes


def _wrap(x, st, fresh=False):
    cls = st.array_class
    if isinstance(x, cls):
        return x
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if isinstance(x, np.ndarray):
        owner = x.base is None or fresh
        out = x.view(cls)
        out._dev = _DeviceId(st.current)
        if owner:
            _account(out, st)
        return out
    return x


def _wrap_all(x, st):
    if isinstance(x, (np.ndarray, np.generic)):
        return _wrap(x, st)
    if isinstance(x, tuple):
        return tuple(_wrap_all(v, st) for v in x)
    if isinstance(x, list):
        return [_wrap_all(v, st) for v in x]
    return x


# functions that take host data (or shapes) on purpose
_CREATION = {"asarray", "array", "asanyarray", "ascontiguousarray", "empty", "zeros", "ones", "full", "arange",
             "eye", "identity", "linspace", "frombuffer"}


def make_fake_cupy(n_devices=2, kernels=False):
    """A new fake CuPy module with `n_devices` devices (each call: fresh state and counters).

    Args:
        n_devices: how many devices `cuda.runtime.getDeviceCount()` reports.
        kernels: give it ElementwiseKernel / RawKernel (compiled through the CPU CUDA emulator).
    """
    st = _State(n_devices)
    cls = type("DeviceArray", (DeviceArray,), {"_state": st})
    st.array_class = cls
    mod = types.ModuleType("fakecupy")

    def wrap_fn(name, fn):
        def run(*args, **kwargs):
            if name not in _CREATION:
                _check_nested((args, kwargs), st, name)
            return _wrap_all(fn(*_unwrap_nested(args), **_unwrap_nested(kwargs)), st)
        run.__name__ = name
        return run

    for name in dir(np):
        if name.startswith("_"):
            continue
        obj = getattr(np, name)
        if isinstance(obj, type) or isinstance(obj, types.ModuleType) or not callable(obj):
            setattr(mod, name, obj)
        else:
            setattr(mod, name, wrap_fn(name, obj))

    mod.stats = st.stats
    mod._state = st
    mod.ndarray = cls

    def asarray(x, dtype=None, order=None):
        if isinstance(x, cls):
            return x if dtype is None or x.dtype == np.dtype(dtype) else x.astype(dtype)
        host = np.array(x, dtype=dtype, copy=True, order="C")
        st.stats.h2d += 1
        st.stats.h2d_bytes += host.nbytes
        return _wrap(host, st)
    mod.asarray = asarray
    mod.array = lambda x, dtype=None, copy=True: (x.copy() if isinstance(x, cls) and copy else asarray(x, dtype))
    mod.get_array_module = lambda *xs: mod if any(isinstance(x, cls) for x in xs) else np

    def as_strided(x, shape=None, strides=None):   # CuPy's signature: no writeable=
        _check([x], st, "as_strided")
        view = np.lib.stride_tricks.as_strided(_unwrap(x), shape=shape, strides=strides)
        out = view.view(cls)
        out._dev = x.device
        return out
    mod.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=as_strided))

    def scatter_add(a, indices, values):
        _check_nested((a, indices, values), st, "scatter_add")
        np.add.at(_unwrap(a), _unwrap_nested(indices), _unwrap(values))
    mod.scatter_add = scatter_add

    class Device:
        def __init__(self, index=None):
            self.id = st.current if index is None else int(index)
            if not 0 <= self.id < st.n:
                raise ValueError(f"no fake device {self.id}")

        def __enter__(self):
            st.stack.append(self.id)
            return self

        def __exit__(self, *exc):
            st.stack.pop()
            return False

        def use(self):
            st.stack[-1] = self.id

        def synchronize(self):
            pass

    class MemoryPool:
        def set_limit(self, size=None, fraction=None):
            dev = st.current
            st.limit[dev] = int(DEVICE_MEMORY * fraction) if fraction is not None else (int(size) or DEVICE_MEMORY)

        def get_limit(self):
            return st.limit[st.current]

        def used_bytes(self):
            return st.used[st.current]

    pool = MemoryPool()
    mod.get_default_memory_pool = lambda: pool
    mod.cuda = types.SimpleNamespace(
        Device=Device, runtime=types.SimpleNamespace(getDeviceCount=lambda: st.n),
        memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError))
    if kernels:
        from . import cuda_emulator as emu

        def check(arrays):
            _check(arrays, st, "kernel")
        mod.ElementwiseKernel = lambda ins, outs, op, name="kernel", **kw: emu.ElementwiseKernel(
            ins, outs, op, name, new_array=lambda shape, dtype: mod.empty(shape, dtype=dtype), check=check)

        def raw(code, name, **kw):
            k = emu.RawKernel(code, name)

            def launch(grid, block, args, shared_mem=0):
                check([a for a in args if isinstance(a, np.ndarray)])
                k(grid, block, args, shared_mem=shared_mem)
            return launch
        mod.RawKernel = raw
    return mod
