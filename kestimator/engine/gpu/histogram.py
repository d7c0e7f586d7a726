"""Gradient / hessian / count histograms of boosted-tree nodes on a GPU.

Same contract as kestimator/estimators/boosted_trees/histogram.py (`build_histograms`,
`subtract_histograms`, `node_totals`): ``hist[slot, feature, bin] = (sum of gradients, sum of hessians,
row count)`` in float64 over each node's rows. Arguments may be NumPy arrays (copied to the current
device) or device arrays; `hist` is written in place and returned (a NumPy `hist` gets the result copied
back).

The kernel: one block per (chunk of a node's rows, node, feature). Its threads add their rows into a
per-block histogram of that feature in shared memory with atomic adds (float64 atomicAdd: compute
capability 6.0 or newer), then add the non-zero bins into the global histogram, again atomically. The
order of the additions varies, so sums can differ from the CPU's in the last bits of float64; the counts
are exact.
"""
import numpy as np

HISTOGRAM_SOURCE = r"""
extern "C" __global__ void ks_histograms(const unsigned char* binned, const float* gradients,
                                         const float* hessians, const int* sample_indices,
                                         const long long* starts, const long long* stops,
                                         const long long* slots, double* hist, long long n_rows,
                                         long long n_features, long long n_bins, long long rows_per_block) {
    extern __shared__ double local[];
    long long feature = blockIdx.z;
    long long node = blockIdx.y;
    long long begin = starts[node] + (long long)blockIdx.x * rows_per_block;
    long long stop = stops[node];
    long long end = begin + rows_per_block < stop ? begin + rows_per_block : stop;
    for (long long b = threadIdx.x; b < n_bins * 3; b += blockDim.x) local[b] = 0.0;
    __syncthreads();
    const unsigned char* column = binned + feature * n_rows;
    for (long long i = begin + threadIdx.x; i < end; i += blockDim.x) {
        long long row = sample_indices[i];
        long long b = column[row];
        atomicAdd(&local[b * 3], (double)gradients[row]);
        atomicAdd(&local[b * 3 + 1], (double)hessians[row]);
        atomicAdd(&local[b * 3 + 2], 1.0);
    }
    __syncthreads();
    if (begin < end) {
        double* out = hist + ((slots[node] * n_features + feature) * n_bins) * 3;
        for (long long b = threadIdx.x; b < n_bins * 3; b += blockDim.x)
            if (local[b] != 0.0) atomicAdd(&out[b], local[b]);
    }
}
"""
THREADS = 256
ROWS_PER_BLOCK = 4096


def _backend():
    from .. import devices
    backend = devices.gpu_backend()
    if backend is None:
        from ...errors import FailedPreconditionError
        raise FailedPreconditionError("GPU histograms need a GPU (CuPy with a CUDA device)")
    return backend


def build_histograms(binned, gradients, hessians, sample_indices, starts, stops, slots, hist, kernels="cuda"):
    """Build the histograms of several nodes into ``hist[slots]`` on the current GPU.

    Args:
      binned: uint8 (n_features, n_rows) bin ids, feature-major.
      gradients, hessians: float32 (n_rows,).
      sample_indices: int32 (n_rows,); node j's rows are ``sample_indices[starts[j]:stops[j]]``.
      starts, stops, slots: int64 (n_nodes,).
      hist: float64 (n_slots, n_features, n_bins_total, 3), written in place.
      kernels: accepted for signature compatibility with the CPU builder (always the CUDA kernel).

    Returns:
      ``hist``.

    Raises:
      FailedPreconditionError: no GPU backend.
      InvalidArgumentError: `hist` is not float64 of the layout above, or bins do not fit uint8.
    """
    from ...errors import InvalidArgumentError
    backend = _backend()
    xp = backend.xp
    host_hist = hist if type(hist) is np.ndarray else None
    dev_hist = xp.asarray(hist)
    if dev_hist.dtype != np.float64 or dev_hist.ndim != 4 or dev_hist.shape[3] != 3:
        raise InvalidArgumentError(f"hist must be float64 (n_slots, n_features, n_bins, 3), got "
                                   f"{dev_hist.dtype} {dev_hist.shape}")
    n_features, n_rows = binned.shape
    n_bins = dev_hist.shape[2]
    if n_features != dev_hist.shape[1] or n_bins > 256 or not dev_hist.flags.c_contiguous:
        raise InvalidArgumentError(f"hist {dev_hist.shape} does not match binned {binned.shape} (at most 256 bins, "
                                   "C-contiguous)")
    b = xp.ascontiguousarray(xp.asarray(binned, dtype=np.uint8))
    g = xp.ascontiguousarray(xp.asarray(gradients, dtype=np.float32))
    h = xp.ascontiguousarray(xp.asarray(hessians, dtype=np.float32))
    idx = xp.ascontiguousarray(xp.asarray(sample_indices, dtype=np.int32))
    starts_h = np.asarray(_to_host(backend, starts), dtype=np.int64)
    stops_h = np.asarray(_to_host(backend, stops), dtype=np.int64)
    slots_h = np.asarray(_to_host(backend, slots), dtype=np.int64)
    if len(starts_h):
        dev_hist[xp.asarray(slots_h)] = 0.0
        longest = int((stops_h - starts_h).max(initial=0))
        chunks = max(1, -(-longest // ROWS_PER_BLOCK))
        kernel = backend.raw_kernel(HISTOGRAM_SOURCE, "ks_histograms")
        kernel((chunks, len(starts_h), n_features), (THREADS,),
               (b, g, h, idx, xp.asarray(starts_h), xp.asarray(stops_h), xp.asarray(slots_h), dev_hist,
                np.int64(n_rows), np.int64(n_features), np.int64(n_bins), np.int64(ROWS_PER_BLOCK)),
               shared_mem=n_bins * 3 * 8)
    if host_hist is not None:
        host_hist[...] = backend.to_host(dev_hist)
        return host_hist
    return dev_hist


def _to_host(backend, a):
    return backend.to_host(a) if backend.is_device_array(a) else a


def subtract_histograms(hist, parent_slots, built_slots, target_slots, parent_hist=None, kernels="cuda"):
    """The subtraction trick on device histograms: ``hist[target] = parent_hist[parent] - hist[built]``."""
    parent_hist = hist if parent_hist is None else parent_hist
    if len(target_slots) == 0:
        return hist
    xp = _backend().xp
    hist[xp.asarray(target_slots)] = parent_hist[xp.asarray(parent_slots)] - hist[xp.asarray(built_slots)]
    return hist


def node_totals(hist, slots):
    """(G, H, C) of each node from its feature-0 histogram: float64 (len(slots), 3), on hist's device."""
    xp = _backend().xp
    return hist[xp.asarray(slots), 0].sum(axis=1)
