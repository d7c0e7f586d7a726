"""Hand-written CUDA kernels for the GPU backend (compiled by CuPy's NVRTC on first use).

- Fused optimizer updates (Adam, SGD with momentum / Nesterov, Adagrad, RMSprop): one ElementwiseKernel
  over the whole parameter slab, the same arithmetic (and flush-to-zero of tiny moments) as the numba
  kernels in kestimator/optimizers/fused.py, called with the same arguments.
- Fused sparse softmax cross-entropy: one thread per row computes the loss and the gradient row.
- Moments (the batch / layer normalization statistics): one block per group, a two-pass reduction in
  float64 through shared memory.

The sources are plain strings so the tests can compile them on the CPU with a small CUDA emulator
(tests/gpu/cuda_emulator.py) and check them against NumPy: that is all the verification they have had
without a GPU (see docs/GPU.md).
"""
import numpy as np

# -- optimizer updates -----------------------------------------------------------------------------------
# Inputs first, then the arrays updated in place (ElementwiseKernel output parameters are references, so
# `m` is read and written). `T` is the slab's dtype; the scalars arrive in it too.
OPTIMIZER_KERNELS = {
    "adam": ("T g, T lr_t, T b1, T b2, T eps, T decay, T tiny", "T var, T m, T v", """
        T mi = b1 * m + ((T)1 - b1) * g;
        mi = (mi >= tiny || mi <= -tiny) ? mi : (T)0;
        T vi = b2 * v + ((T)1 - b2) * g * g;
        vi = vi >= tiny ? vi : (T)0;
        m = mi;
        v = vi;
        var = var * decay - lr_t * mi / (sqrt(vi) + eps);
        """, "ks_adam"),
    "sgd_momentum": ("T g, T lr, T momentum, T tiny", "T var, T vel", """
        T vi = momentum * vel - lr * g;
        vi = (vi >= tiny || vi <= -tiny) ? vi : (T)0;
        vel = vi;
        var += vi;
        """, "ks_sgd_momentum"),
    "sgd_nesterov": ("T g, T lr, T momentum, T tiny", "T var, T vel", """
        T vi = momentum * vel - lr * g;
        vi = (vi >= tiny || vi <= -tiny) ? vi : (T)0;
        vel = vi;
        var += momentum * vi - lr * g;
        """, "ks_sgd_nesterov"),
    "adagrad": ("T g, T lr, T eps", "T var, T acc", """
        T a = acc + g * g;
        acc = a;
        var -= lr * g / (sqrt(a) + eps);
        """, "ks_adagrad"),
    "rmsprop": ("T g, T lr, T rho, T eps, T tiny", "T var, T ms", """
        T s = rho * ms + ((T)1 - rho) * g * g;
        s = s >= tiny ? s : (T)0;
        ms = s;
        var -= lr * g / sqrt(s + eps);
        """, "ks_rmsprop"),
}


def optimizer_kernel(backend, name):
    """The device version of numba kernel `name` of kestimator.optimizers.fused, same call signature.

    Returns:
        A function, or None when the backend cannot compile ElementwiseKernels (the optimizer then runs
        its xp-generic array code) or has no kernel of that name.
    """
    if backend is None or not backend.has_elementwise or name not in ("adam", "sgd_momentum", "adagrad",
                                                                      "rmsprop"):
        return None
    cached = backend._kernels.get(("optimizer", name))
    if cached is None:
        cached = backend._kernels[("optimizer", name)] = _optimizer_wrapper(backend, name)
    return cached


def _optimizer_wrapper(backend, name):
    def kern(key):
        ins, outs, body, kname = OPTIMIZER_KERNELS[key]
        return backend.elementwise_kernel(ins, outs, body, kname)

    if name == "adam":
        k = kern("adam")
        return lambda var, g, m, v, lr_t, b1, b2, eps, decay, tiny: k(g, lr_t, b1, b2, eps, decay, tiny, var, m, v)
    if name == "sgd_momentum":
        plain, nesterov = kern("sgd_momentum"), kern("sgd_nesterov")
        return lambda var, g, vel, lr, momentum, nest, tiny: (nesterov if nest else plain)(g, lr, momentum, tiny,
                                                                                           var, vel)
    if name == "adagrad":
        k = kern("adagrad")
        return lambda var, g, acc, lr, eps: k(g, lr, eps, var, acc)
    k = kern("rmsprop")
    return lambda var, g, ms, lr, rho, eps, tiny: k(g, lr, rho, eps, tiny, var, ms)


# -- sparse softmax cross-entropy --------------------------------------------------------------------------
# One thread per row (rows are independent; k is the class count, usually small). A label outside [0, k)
# gives a NaN loss and a NaN gradient row, as TensorFlow's GPU kernel does (the CPU kernel raises): checking
# on the host would cost a device synchronization every step.
SPARSE_XENT_SOURCE = r"""
extern "C" __global__ void {name}(const {T}* logits, const {L}* labels, {T}* loss, {T}* grad,
                                  long long n, long long k) {{
    long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    const {T}* row = logits + r * k;
    {T}* g = grad + r * k;
    long long lab = (long long)labels[r];
    if (lab < 0 || lab >= k) {{
        {T} nan = {NAN};
        loss[r] = nan;
        for (long long j = 0; j < k; ++j) g[j] = nan;
        return;
    }}
    {T} m = row[0];
    for (long long j = 1; j < k; ++j) m = (row[j] > m || row[j] != row[j]) ? row[j] : m;
    {T} s = 0;
    for (long long j = 0; j < k; ++j) {{
        {T} e = exp(row[j] - m);
        g[j] = e;
        s += e;
    }}
    loss[r] = log(s) - (row[lab] - m);
    for (long long j = 0; j < k; ++j) g[j] = g[j] / s;
    g[lab] -= ({T})1;
}}
"""

_CTYPES = {"float32": "float", "float64": "double", "int32": "int", "int64": "long long"}
_NANS = {"float32": "__int_as_float(0x7fffffff)", "float64": "__longlong_as_double(0x7ff8000000000000LL)"}


def sparse_xent_source(dtype, label_dtype):
    """(CUDA source, kernel name) for logits of `dtype` and labels of `label_dtype` (NumPy dtype names)."""
    name = f"ks_sparse_xent_{dtype}_{label_dtype}"
    src = SPARSE_XENT_SOURCE.format(name=name, T=_CTYPES[dtype], L=_CTYPES[label_dtype], NAN=_NANS[dtype])
    return src, name


def _sparse_xent_factory(backend, op, attrs):
    dtype, ldtype = op.inputs[0].dtype.name, op.inputs[1].dtype.name
    if not backend.has_raw or dtype not in ("float32", "float64") or ldtype not in ("int32", "int64"):
        return None
    src, name = sparse_xent_source(dtype, ldtype)
    kernel = backend.raw_kernel(src, name)
    xp = backend.xp
    threads = 128

    def run(logits, labels):
        n, k = logits.shape
        logits = xp.ascontiguousarray(logits)
        labels = xp.ascontiguousarray(labels.reshape(-1))
        loss = xp.empty((n,), dtype=logits.dtype)
        grad = xp.empty((n, k), dtype=logits.dtype)
        if n:
            kernel(((n + threads - 1) // threads,), (threads,), (logits, labels, loss, grad, np.int64(n), np.int64(k)))
        return loss, grad
    return run


# -- moments ------------------------------------------------------------------------------------------------
# Group g's elements are x[g * gstride + j * estride] for j < count: per-channel statistics of an NHWC batch
# are (gstride 1, estride C), per-row statistics of a layer (gstride C, estride 1). blockDim.x must be a
# power of two. The variance is the mean squared deviation from the mean rounded to T, as the CPU graph
# (reduce_mean of squared_difference(x, mean)) computes it.
MOMENTS_SOURCE = r"""
extern "C" __global__ void {name}(const {T}* x, {T}* mean, {T}* var, long long count, long long gstride,
                                  long long estride) {{
    extern __shared__ double partial[];
    const {T}* base = x + (long long)blockIdx.x * gstride;
    unsigned int t = threadIdx.x;
    double s = 0;
    for (long long j = t; j < count; j += blockDim.x) s += (double)base[j * estride];
    partial[t] = s;
    __syncthreads();
    for (unsigned int w = blockDim.x / 2; w > 0; w >>= 1) {{
        if (t < w) partial[t] += partial[t + w];
        __syncthreads();
    }}
    {T} mu = ({T})(partial[0] / (double)count);
    __syncthreads();
    double q = 0;
    for (long long j = t; j < count; j += blockDim.x) {{
        double d = (double)base[j * estride] - (double)mu;
        q += d * d;
    }}
    partial[t] = q;
    __syncthreads();
    for (unsigned int w = blockDim.x / 2; w > 0; w >>= 1) {{
        if (t < w) partial[t] += partial[t + w];
        __syncthreads();
    }}
    if (t == 0) {{
        mean[blockIdx.x] = mu;
        var[blockIdx.x] = ({T})(partial[0] / (double)count);
    }}
}}
"""


def moments_source(dtype):
    name = f"ks_moments_{dtype}"
    return MOMENTS_SOURCE.format(name=name, T=_CTYPES[dtype]), name


def moments_launcher(backend, dtype):
    """fn(x, groups, count, gstride, estride, out_shape) -> (mean, var) on the current device."""
    src, name = moments_source(dtype)
    kernel = backend.raw_kernel(src, name)
    xp = backend.xp

    def run(x, groups, count, gstride, estride, out_shape):
        x = xp.ascontiguousarray(x)
        mean = xp.empty(out_shape, dtype=x.dtype)
        var = xp.empty(out_shape, dtype=x.dtype)
        threads = 1
        while threads < min(count, 256):
            threads *= 2
        if groups:
            kernel((groups,), (threads,), (x, mean, var, np.int64(count), np.int64(gstride), np.int64(estride)),
                   shared_mem=threads * 8)
        return mean, var
    return run


# op type -> factory(backend, op, attrs) returning a kernel function, or None to use the xp-generic kernel
OVERRIDES = {"SparseSoftmaxCrossEntropyWithLogits": _sparse_xent_factory}
