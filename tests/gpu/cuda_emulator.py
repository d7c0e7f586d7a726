"""Run CUDA C kernels on the CPU: enough of CUDA to check kestimator's kernel sources without a GPU.

`RawKernel(code, name)` and `ElementwiseKernel(in_params, out_params, operation, name)` mirror CuPy's
classes. The source is wrapped in a C++20 prelude (dim3, threadIdx / blockIdx as thread-locals,
__syncthreads as a std::barrier, atomicAdd through std::atomic_ref, the CUDA bit-cast intrinsics) and
compiled with g++ into a shared library, cached by content hash. A raw launch runs the grid's blocks one
after another, each block's threads as real OS threads, so barriers and atomics are exercised for real;
`extern __shared__` memory is one buffer per launch and static `__shared__` arrays are function statics
(blocks never run at the same time, so both are per-block in effect).

What it cannot show: warp-level behaviour, memory coalescing, timing, NVRTC-specific compile errors (g++
is stricter in some places and laxer in others), and device limits (shared memory size, grid size).
"""
import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
import threading

import numpy as np

_CTYPES = {"float32": "float", "float64": "double", "int32": "int", "int64": "long long", "bool": "bool",
           "uint8": "unsigned char", "int8": "signed char", "uint32": "unsigned int", "uint64": "unsigned long long"}

_MATH = r"""
#include <cmath>
#include <cstring>
using std::exp; using std::log; using std::sqrt; using std::tanh; using std::fabs; using std::expm1;
using std::log1p; using std::sin; using std::cos; using std::floor; using std::ceil; using std::rint;
using std::pow; using std::fmax; using std::fmin;
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
"""

# raw kernels also get threads, barriers and atomics (these headers triple the compile time)
_PRELUDE = _MATH + r"""
#include <atomic>
#include <barrier>
#include <thread>
#include <vector>
struct dim3 { unsigned int x, y, z; };
static thread_local dim3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;
static std::barrier<>* _ks_barrier = nullptr;
static char* _ks_shared = nullptr;
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
#define __syncthreads() _ks_barrier->arrive_and_wait()
template <class T> inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
template <class T> inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <class T> inline T atomicCAS(T* p, T cmp, T v) {
    std::atomic_ref<T>(*p).compare_exchange_strong(cmp, v); return cmp; }
"""

_CACHE = os.path.join(tempfile.gettempdir(), "kestimator_cuda_emulator")
_lock = threading.Lock()
_libs = {}


def _compile(source):
    digest = hashlib.sha1(source.encode()).hexdigest()
    lib = _libs.get(digest)
    if lib is not None:
        return lib
    with _lock:
        os.makedirs(_CACHE, exist_ok=True)
        so = os.path.join(_CACHE, digest + ".so")
        if not os.path.exists(so):
            cpp = os.path.join(_CACHE, f"{digest}.{os.getpid()}.cpp")   # per process: runs may overlap
            with open(cpp, "w") as f:
                f.write(source)
            tmp = so + f".{os.getpid()}.tmp"
            out = subprocess.run(["g++", "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-w", cpp, "-o", tmp],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"kernel source does not compile:\n{out.stderr}\n--- source ---\n{source}")
            os.replace(tmp, so)
            os.remove(cpp)
        lib = _libs[digest] = ctypes.CDLL(so)
    return lib


def _params(signature):
    """['const float*', 'long long', ...] from a C parameter list."""
    out = []
    for p in signature.split(","):
        p = " ".join(p.split())
        m = re.match(r"^(.*?)(\w+)$", p)
        out.append(m.group(1).strip())
    return out


def _host(a):
    return a.view(np.ndarray) if isinstance(a, np.ndarray) else a


class RawKernel:
    """CuPy's RawKernel: `k(grid, block, args, shared_mem=0)` with arrays and NumPy scalars as args."""

    launches = 0

    def __init__(self, code, name, options=(), backend="nvrtc"):
        m = re.search(r'extern\s+"C"\s+__global__\s+void\s+' + re.escape(name) + r"\s*\(([^)]*)\)", code)
        if m is None:
            raise ValueError(f"no extern \"C\" __global__ kernel named {name}")
        self.name, self.types = name, _params(m.group(1))
        code = re.sub(r"extern\s+__shared__\s+([\w ]+?)\s+(\w+)\s*\[\s*\]\s*;",
                      lambda mm: f"{mm.group(1)}* {mm.group(2)} = ({mm.group(1)}*)_ks_shared;", code)
        call = ", ".join(f"*({t}*)args[{i}]" for i, t in enumerate(self.types))
        self.source = _PRELUDE + code + r"""
extern "C" void ks_launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          unsigned long long shmem, void** args) {
    gridDim = dim3{gx, gy, gz};
    blockDim = dim3{bx, by, bz};
    std::vector<char> shared(shmem + 16);
    _ks_shared = shared.data();
    unsigned nthreads = bx * by * bz;
    for (unsigned z = 0; z < gz; ++z) for (unsigned y = 0; y < gy; ++y) for (unsigned x = 0; x < gx; ++x) {
        std::barrier<> bar(nthreads);
        _ks_barrier = &bar;
        std::vector<std::thread> threads;
        for (unsigned tz = 0; tz < bz; ++tz) for (unsigned ty = 0; ty < by; ++ty) for (unsigned tx = 0; tx < bx; ++tx)
            threads.emplace_back([=, &bar]() {
                blockIdx = dim3{x, y, z};
                threadIdx = dim3{tx, ty, tz};
                """ + name + "(" + call + r""");
                bar.arrive_and_drop();   // a finished thread no longer holds the others at a barrier
            });
        for (auto& t : threads) t.join();
    }
}
"""
        self._lib = _compile(self.source)

    def __call__(self, grid, block, args, shared_mem=0):
        grid = tuple(grid) + (1,) * (3 - len(grid))
        block = tuple(block) + (1,) * (3 - len(block))
        if len(args) != len(self.types):
            raise TypeError(f"{self.name} takes {len(self.types)} arguments, got {len(args)}")
        keep, ptrs = [], []
        for a, t in zip(args, self.types):
            if t.endswith("*"):
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"{self.name}: argument of type {t} needs an array, got {type(a).__name__}")
                raw = np.uint64(a.ctypes.data).tobytes()
            else:
                if not isinstance(a, np.generic):
                    raise TypeError(f"{self.name}: scalar argument of type {t} must be a NumPy scalar "
                                    f"(as CuPy requires), got {type(a).__name__}")
                if _CTYPES.get(a.dtype.name) != t.replace("const ", ""):
                    raise TypeError(f"{self.name}: {a.dtype.name} scalar passed for a {t} parameter")
                raw = a.tobytes()
            buf = ctypes.create_string_buffer(raw, max(len(raw), 8))
            keep.append(buf)
            ptrs.append(ctypes.addressof(buf))
        arr = (ctypes.c_void_p * len(ptrs))(*ptrs)
        type(self).launches += 1
        self._lib.ks_launch(*[ctypes.c_uint(v) for v in grid + block], ctypes.c_ulonglong(shared_mem), arr)


def _split_params(spec):
    out = []
    for p in [p.strip() for p in spec.split(",") if p.strip()]:
        words = p.split()
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        out.append((words[0], words[1], raw))
    return out


class ElementwiseKernel:
    """CuPy's ElementwiseKernel for same-dtype float/int kernels: inputs broadcast, `i` is the index,
    output parameters are references (read-modify-write works), one-letter types are placeholders."""

    launches = 0

    def __init__(self, in_params, out_params, operation, name="kernel", new_array=None, check=None):
        self.ins, self.outs = _split_params(in_params), _split_params(out_params)
        self.operation, self.name = operation, name
        self._new_array = new_array or (lambda shape, dtype: np.empty(shape, dtype))
        self._check = check
        self._compiled = {}

    def _source(self, types):
        lines = [_MATH, 'extern "C" void ks_run(long long n, void** p) {']
        for letter, ctype in types.items():
            lines.append(f"    typedef {ctype} {letter};")
        lines.append("    for (long long i = 0; i < n; ++i) {")
        k = 0
        for typ, name, _ in self.ins:
            ct = types.get(typ) or _CTYPES[typ]
            lines.append(f"        const {ct} {name} = (({ct}*)p[{k}])[i];")
            k += 1
        for typ, name, _ in self.outs:
            ct = types.get(typ) or _CTYPES[typ]
            lines.append(f"        {ct}& {name} = (({ct}*)p[{k}])[i];")
            k += 1
        lines += ["        {", self.operation, "        }", "    }", "}"]
        return "\n".join(lines)

    def __call__(self, *args, size=None):
        n_in, n_out = len(self.ins), len(self.outs)
        if len(args) not in (n_in, n_in + n_out):
            raise TypeError(f"{self.name} takes {n_in} inputs (and optionally {n_out} outputs), got {len(args)}")
        if self._check is not None:
            self._check([a for a in args if isinstance(a, np.ndarray)])
        types = {}
        for (typ, _, _), a in zip(self.ins + self.outs, args):
            if len(typ) == 1 and isinstance(a, np.ndarray) and typ not in types:
                types[typ] = a.dtype
        for typ, _, _ in self.ins + self.outs:
            if len(typ) == 1 and typ not in types:
                raise TypeError(f"{self.name}: cannot infer placeholder type {typ} from scalar arguments")

        def dtype_of(typ):
            return np.dtype(types[typ]) if typ in types else np.dtype(typ)
        ins = [np.asarray(_host(a), dtype=dtype_of(t)) for (t, _, _), a in zip(self.ins, args)]
        shape = np.broadcast_shapes(*[a.shape for a in ins]) if ins else ()
        outs = list(args[n_in:])
        if not outs:
            outs = [self._new_array(shape, dtype_of(t)) for t, _, _ in self.outs]
        for (t, _, _), o in zip(self.outs, outs):
            if o.shape != shape or o.dtype != dtype_of(t):
                raise ValueError(f"{self.name}: output {o.shape} {o.dtype} does not match {shape} {dtype_of(t)}")
        flat_ins = [np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1) for a in ins]
        work = [np.ascontiguousarray(_host(o)).reshape(-1) for o in outs]
        key = tuple(sorted((k, np.dtype(v).name) for k, v in types.items()))
        lib = self._compiled.get(key)
        if lib is None:
            lib = self._compiled[key] = _compile(self._source({k: _CTYPES[np.dtype(v).name]
                                                               for k, v in types.items()}))
        ptrs = (ctypes.c_void_p * (n_in + n_out))(*[a.ctypes.data for a in flat_ins + work])
        type(self).launches += 1
        lib.ks_run(ctypes.c_longlong(int(np.prod(shape))), ptrs)
        for o, w in zip(outs, work):
            if not np.shares_memory(_host(o), w):
                _host(o)[...] = w.reshape(shape)
        return outs[0] if n_out == 1 else tuple(outs)
