"""One GPU array backend: CuPy, or any module that looks like it (the tests use a NumPy-backed stand-in).

The Plan never calls CuPy directly: it asks a `Backend` for the kernel namespace (`xp`), device contexts,
allocation, host <-> device copies, memory limits and compiled kernels. That keeps CuPy out of
`import kestimator` (nothing here imports it) and makes the whole seam testable without a GPU.

What a module must offer (CuPy does): `ndarray`, `asarray`, `empty`, `zeros`, the NumPy-style functions the
kernels call, `lib.stride_tricks.as_strided`, `cuda.Device(i)` (a context manager), `cuda.runtime
.getDeviceCount()`, `cuda.memory.OutOfMemoryError`, `get_default_memory_pool()` with `set_limit(size=,
fraction=)` / `get_limit()`, and arrays with `.get()`. Optional: `ElementwiseKernel`, `RawKernel` (without
them fused kernels are skipped and the xp-generic kernels run) and `scatter_add` (else `cupyx.scatter_add`).
"""
import types

import numpy as np


class _UfuncWithAt:
    """`xp.add` whose `.at(a, indices, b)` works on every CuPy version (through scatter_add)."""

    __slots__ = ("_ufunc", "_scatter_add")

    def __init__(self, ufunc, scatter_add):
        self._ufunc, self._scatter_add = ufunc, scatter_add

    def __call__(self, *args, **kwargs):
        return self._ufunc(*args, **kwargs)

    def at(self, a, indices, b):
        self._scatter_add(a, indices, b)

    def __getattr__(self, name):
        return getattr(self._ufunc, name)


def _as_strided_without_writeable(as_strided):
    # NumPy's as_strided takes `writeable=`; CuPy's does not (its views are always writable). The conv
    # kernels pass writeable=False as a guard on the CPU; on the GPU the flag has no counterpart.
    def run(x, shape=None, strides=None, writeable=True, **unused):
        return as_strided(x, shape=shape, strides=strides)
    return run


class _Namespace(types.ModuleType):
    """A copy of an array module's namespace; names it lacks (lazily loaded submodules) come from it."""

    def __getattr__(self, name):
        return getattr(self.__dict__["_module"], name)


def kernel_namespace(module, scatter_add):
    """`module`'s namespace with the few differences from NumPy that kernels meet smoothed over.

    Kernels are written against NumPy's API; CuPy lacks `ufunc.at` (before v13) and `as_strided`'s
    `writeable=`. A copy of the module's dict with those two names replaced keeps every other lookup a
    plain attribute access (no per-call indirection).
    """
    ns = _Namespace(f"{module.__name__}[kestimator]")
    ns.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    ns.__dict__["_module"] = module
    if scatter_add is not None:
        ns.add = _UfuncWithAt(module.add, scatter_add)
    lib = getattr(module, "lib", None)
    tricks = getattr(lib, "stride_tricks", None)
    if tricks is not None and hasattr(tricks, "as_strided"):
        new_tricks = types.SimpleNamespace(**{k: v for k, v in vars(tricks).items() if not k.startswith("__")})
        new_tricks.as_strided = _as_strided_without_writeable(tricks.as_strided)
        new_lib = types.SimpleNamespace(**{k: v for k, v in vars(lib).items() if not k.startswith("__")})
        new_lib.stride_tricks = new_tricks
        ns.lib = new_lib
    return ns


class _NoOOM(Exception):
    """Stands in for the OOM class of a module that has none (never raised)."""


class Backend:
    """A GPU array module and what the Plan needs from it.

    Args:
        module: `cupy`, or a module with the same surface (see the module docstring).
        name: shown in messages (default: the module's name).

    Attributes:
        xp: the namespace kernels are compiled against (see `kernel_namespace`).
        OutOfMemoryError: the exception class the module raises when an allocation fails.
        has_elementwise / has_raw: whether `elementwise_kernel` / `raw_kernel` can compile CUDA C.
    """

    def __init__(self, module, name=None):
        self.module = module
        self.name = name or getattr(module, "__name__", "gpu")
        self.ndarray = module.ndarray
        scatter_add = getattr(module, "scatter_add", None)
        if scatter_add is None:
            try:
                import cupyx   # ships with CuPy
                scatter_add = cupyx.scatter_add
            except ImportError:
                scatter_add = None
        self.scatter_add = scatter_add
        self.xp = kernel_namespace(module, scatter_add)
        memory = getattr(getattr(module, "cuda", None), "memory", None)
        self.OutOfMemoryError = getattr(memory, "OutOfMemoryError", _NoOOM)
        self.has_elementwise = hasattr(module, "ElementwiseKernel")
        self.has_raw = hasattr(module, "RawKernel")
        self._kernels = {}
        self._limits = {}

    def __repr__(self):
        return f"<Backend {self.name}>"

    # -- devices ------------------------------------------------------------------------------------------
    def device_count(self):
        return int(self.module.cuda.runtime.getDeviceCount())

    def device(self, index):
        """Context manager making physical device `index` current (allocations and launches go there)."""
        return self.module.cuda.Device(index)

    def is_device_array(self, value):
        return isinstance(value, self.ndarray)

    def device_of(self, value):
        """Physical index of the device holding `value`."""
        dev = value.device
        return int(getattr(dev, "id", dev))

    def synchronize(self, index):
        """Wait for the work queued on device `index`."""
        self.module.cuda.Device(index).synchronize()

    # -- memory -------------------------------------------------------------------------------------------
    def empty(self, shape, dtype, index):
        with self.device(index):
            return self.module.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype, index):
        with self.device(index):
            return self.module.zeros(shape, dtype=dtype)

    def to_device(self, host, index):
        """A copy of host array `host` on device `index`."""
        with self.device(index):
            return self.module.asarray(host)

    def to_host(self, value):
        """A NumPy copy of device array `value`."""
        return value.get()

    def copy_from_host(self, dst, host):
        """Write host array `host` into device array `dst` (same shape) in place."""
        with self.device(self.device_of(dst)):
            dst[...] = self.module.asarray(np.ascontiguousarray(host, dtype=dst.dtype))

    def move(self, value, index):
        """A copy of device array `value` on device `index` (a peer copy between GPUs)."""
        with self.device(index):
            return value.copy()   # CuPy's ndarray.copy copies onto the current device

    def activator(self, index):
        """A function making device `index` current (the generated plan calls it before that device's ops)."""
        return self.module.cuda.Device(index).use

    def set_memory_limit(self, index, fraction=None, size=None):
        """Cap the memory pool of device `index`: a fraction of the device's memory, or bytes."""
        pool = self.module.get_default_memory_pool()
        with self.device(index):
            if fraction is not None:
                pool.set_limit(fraction=float(fraction))
            else:
                pool.set_limit(size=int(size or 0))
            self._limits[index] = pool.get_limit()

    def memory_limit(self, index):
        pool = self.module.get_default_memory_pool()
        with self.device(index):
            return int(pool.get_limit())

    # -- compiled kernels -----------------------------------------------------------------------------------
    def elementwise_kernel(self, in_params, out_params, operation, name):
        """A cached `ElementwiseKernel` (compiled by CuPy on first call, per device).

        Raises:
            AttributeError: the module has no ElementwiseKernel (check `has_elementwise` first).
        """
        key = ("ew", in_params, out_params, operation, name)
        k = self._kernels.get(key)
        if k is None:
            k = self._kernels[key] = self.module.ElementwiseKernel(in_params, out_params, operation, name)
        return k

    def raw_kernel(self, code, name):
        """A cached `RawKernel` (extern "C" CUDA source, launched as k(grid, block, args, shared_mem=))."""
        key = ("raw", code, name)
        k = self._kernels.get(key)
        if k is None:
            k = self._kernels[key] = self.module.RawKernel(code, name)
        return k
