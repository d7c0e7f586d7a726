"""The hand-written CUDA kernels (kestimator/engine/gpu/kernels.py, histogram.py), run by the CPU emulator.

Each is compared with its CPU counterpart: the numba optimizer loops, the NumPy cross-entropy, the
boosted-tree histogram builder. The emulator runs every block's threads as OS threads with real barriers
and atomics, so reductions and atomic accumulation are exercised; see cuda_emulator.py for its limits.
"""
import numpy as np
import pytest

from kestimator.engine import devices
from kestimator.engine.gpu import histogram as gpu_histogram
from kestimator.engine.gpu import kernels
from kestimator.estimators.boosted_trees import histogram as cpu_histogram
from kestimator.optimizers import fused

from . import cuda_emulator as emu

R = np.random.default_rng(5)


def _numba(name):
    k = fused.get(name)
    if k is None:
        pytest.skip("numba is not installed: no CPU reference loop")
    return k


# Moments are differences of nearly equal products (m = b1*m + (1-b1)*g), so an ulp of the operands can be a
# large relative error of a small result: the tolerance is absolute at the operands' scale (~1) as well.
@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("name,nesterov", [("adam", None), ("sgd_momentum", False), ("sgd_momentum", True),
                                           ("adagrad", None), ("rmsprop", None)])
def test_optimizer_kernels_follow_the_numba_loops(fake_gpu_kernels, name, nesterov, dtype, rtol):
    n = 1000
    cpu = {"var": R.normal(size=n).astype(dtype), "s1": np.abs(R.normal(size=n)).astype(dtype),
           "s2": np.abs(R.normal(size=n)).astype(dtype)}
    tiny = np.finfo(dtype).tiny
    cpu["s1"][:10] = tiny * 1.05   # decays below the smallest normal: must flush to zero on both sides
    dev = {k: fake_gpu_kernels.asarray(v) for k, v in cpu.items()}
    gpu_kernel = kernels.optimizer_kernel(devices.gpu_backend(), name)
    cpu_kernel = _numba(name)
    f = dtype
    for step in range(1, 6):
        g = R.normal(size=n).astype(dtype)
        g[:10] = 0
        dg = fake_gpu_kernels.asarray(g)
        if name == "adam":
            args = (f(0.01), f(0.9), f(0.999), f(1e-7), f(0.999), f(tiny))
            cpu_kernel(cpu["var"], g, cpu["s1"], cpu["s2"], *args)
            gpu_kernel(dev["var"], dg, dev["s1"], dev["s2"], *args)
        elif name == "sgd_momentum":
            cpu_kernel(cpu["var"], g, cpu["s1"], f(0.1), f(0.9), nesterov, f(tiny))
            gpu_kernel(dev["var"], dg, dev["s1"], f(0.1), f(0.9), nesterov, f(tiny))
        elif name == "adagrad":
            cpu_kernel(cpu["var"], g, cpu["s1"], f(0.1), f(1e-7))
            gpu_kernel(dev["var"], dg, dev["s1"], f(0.1), f(1e-7))
        else:
            cpu_kernel(cpu["var"], g, cpu["s1"], f(0.01), f(0.9), f(1e-7), f(tiny))
            gpu_kernel(dev["var"], dg, dev["s1"], f(0.01), f(0.9), f(1e-7), f(tiny))
    for k in cpu:
        np.testing.assert_allclose(dev[k].get(), cpu[k], rtol=rtol, atol=rtol / 10, err_msg=k)
    if name in ("adam", "sgd_momentum", "rmsprop"):
        assert (dev["s1"].get()[:10] == 0).all()   # flushed, as the CPU loop does


def _xent_reference(logits, labels):
    shifted = logits - logits.max(1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(1)
    loss = np.log(s) - shifted[np.arange(len(labels)), labels]
    grad = e / s[:, None]
    grad[np.arange(len(labels)), labels] -= 1
    return loss, grad


@pytest.mark.parametrize("dtype,ldtype,rtol", [("float32", "int32", 2e-6), ("float64", "int64", 1e-13)])
def test_sparse_cross_entropy_kernel(dtype, ldtype, rtol):
    src, name = kernels.sparse_xent_source(dtype, ldtype)
    k = emu.RawKernel(src, name)
    n, c = 300, 7   # more rows than one block of 128 threads, a partial last block
    logits = (R.normal(size=(n, c)) * 5).astype(dtype)
    labels = R.integers(0, c, size=n).astype(ldtype)
    labels[17] = c          # out of range: NaN row, as TF on GPU
    labels[18] = -1
    loss, grad = np.empty(n, dtype), np.empty((n, c), dtype)
    k(((n + 127) // 128,), (128,), (logits, labels, loss, grad, np.int64(n), np.int64(c)))
    ok = np.ones(n, bool)
    ok[[17, 18]] = False
    want_loss, want_grad = _xent_reference(logits[ok].astype(np.float64), labels[ok])
    np.testing.assert_allclose(loss[ok], want_loss, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grad[ok], want_grad, rtol=rtol, atol=rtol)
    assert np.isnan(loss[~ok]).all() and np.isnan(grad[~ok]).all()


@pytest.mark.parametrize("threads", [1, 4, 64])
def test_moments_kernel_column_and_row_layouts(threads):
    src, name = kernels.moments_source("float64")
    k = emu.RawKernel(src, name)
    x = R.normal(size=(37, 5)) * 2 + 3
    mean, var = np.empty(5), np.empty(5)
    k((5,), (threads,), (x, mean, var, np.int64(37), np.int64(1), np.int64(5)), shared_mem=threads * 8)
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(var, x.var(0), rtol=1e-12)
    mean, var = np.empty(37), np.empty(37)
    k((37,), (threads,), (x, mean, var, np.int64(5), np.int64(5), np.int64(1)), shared_mem=threads * 8)
    np.testing.assert_allclose(mean, x.mean(1), rtol=1e-13)
    np.testing.assert_allclose(var, x.var(1), rtol=1e-12)


def _histogram_problem(n_rows=6000, n_features=3, n_bins=17):
    binned = R.integers(0, n_bins, size=(n_features, n_rows)).astype(np.uint8)
    g = R.normal(size=n_rows).astype(np.float32)
    h = R.uniform(0.1, 1.0, size=n_rows).astype(np.float32)
    idx = R.permutation(n_rows).astype(np.int32)
    # three nodes: one longer than a block's 4096 rows (two blocks add into it), one tiny, one empty
    starts = np.array([0, 5000, 5900], np.int64)
    stops = np.array([5000, 5900, 5900], np.int64)
    slots = np.array([2, 0, 3], np.int64)
    return binned, g, h, idx, starts, stops, slots


def test_histogram_kernel_matches_the_cpu_builder(fake_gpu_kernels):
    binned, g, h, idx, starts, stops, slots = _histogram_problem()
    want = np.full((4, binned.shape[0], 17, 3), 7.0)   # slots not built keep their values
    cpu_histogram.build_histograms(binned, g, h, idx, starts, stops, slots, want, kernels="numpy")
    host = np.full_like(want, 7.0)
    out = gpu_histogram.build_histograms(binned, g, h, idx, starts, stops, slots, host)
    assert out is host   # a NumPy histogram is filled in place
    np.testing.assert_allclose(host, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(host[..., 2], want[..., 2])   # counts are exact
    dev = fake_gpu_kernels.asarray(np.full_like(want, 7.0))
    gpu_histogram.build_histograms(fake_gpu_kernels.asarray(binned), fake_gpu_kernels.asarray(g),
                                   fake_gpu_kernels.asarray(h), fake_gpu_kernels.asarray(idx), starts, stops,
                                   slots, dev)
    np.testing.assert_allclose(dev.get(), want, rtol=1e-12, atol=1e-12)
    # the subtraction trick and node totals, on the device
    gpu_histogram.subtract_histograms(dev, np.array([2]), np.array([0]), np.array([1]))
    cpu_histogram.subtract_histograms(want, np.array([2]), np.array([0]), np.array([1]))
    np.testing.assert_allclose(dev.get(), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gpu_histogram.node_totals(dev, np.array([2, 0])).get(),
                               cpu_histogram.node_totals(want, np.array([2, 0])), rtol=1e-12)


def test_histograms_need_a_gpu():
    from kestimator.errors import FailedPreconditionError
    devices.register_backend("GPU", None)
    try:
        with pytest.raises(FailedPreconditionError, match="need a GPU"):
            gpu_histogram.build_histograms(*_histogram_problem(10, 1, 2), np.zeros((4, 1, 2, 3)))
    finally:
        devices.reset_backend()
