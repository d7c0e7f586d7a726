"""The same checks on a real GPU through CuPy. Marked `gpu`; skipped (one line) without a CUDA device.

They reuse the CPU-run test cases: every forward and gradient case of tests/engine, the fusion and kernel
tests of this folder (called with the `cupy` module where they take the fake one), training against the
CPU, and the example programs with every op on GPU:0. None of this has run yet: the project had no GPU
when it was written (docs/GPU.md lists what is unverified).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from kestimator.engine import devices

from ..engine import test_gradients as grad_cases
from ..engine import test_kernels as kernel_cases
from ..engine.gradcheck import check_gradients
from . import test_cuda_kernels, test_fusion
from .test_backend_seam import _train
from .test_ops_on_device import run_case

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(devices._cupy_module() is None, reason="no CUDA device (CuPy with a GPU)")]


@pytest.fixture
def cupy():
    """The real CuPy backend, every unpinned op on GPU:0 while the test runs."""
    devices.reset_backend()
    backend = devices.gpu_backend()
    assert backend is not None and backend.module.__name__ == "cupy"
    devices.set_default_device("/gpu:0")
    yield backend.module
    devices.set_default_device("")


@pytest.mark.parametrize("name", sorted(kernel_cases.CASES))
def test_forward_case_on_gpu(cupy, name):
    # CUDA's math functions and fused multiply-adds differ from NumPy's in the last bits
    run_case(name, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", sorted(grad_cases.CASES))
def test_gradient_case_on_gpu(cupy, name):
    build, inputs = grad_cases.CASES[name]
    check_gradients(build, inputs)


def test_training_matches_the_cpu(cupy):
    devices.set_default_device("")
    _, cpu_losses, cpu_weights, _ = _train("", steps=5)
    sess, gpu_losses, gpu_weights, weights = _train("/gpu:0", steps=5)
    assert isinstance(sess._values[weights[0].op], cupy.ndarray)
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-4)
    for a, b in zip(gpu_weights, cpu_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 4e-6)])
def test_fusion_templates_on_gpu(cupy, dtype, rtol):
    test_fusion.test_every_template_matches_the_cpu_kernel(cupy, dtype, rtol)


def test_fused_graphs_on_gpu(cupy):
    devices.set_default_device("")
    test_fusion.test_binary_ops_nan_propagation_and_broadcast_inputs(cupy)
    test_fusion.test_fetched_and_shared_intermediates_stay_materialized(cupy)
    for shape, axes, keep in [((4, 3, 3, 5), [0, 1, 2], False), ((6, 9), [1], True), ((7, 300), [0], False)]:
        test_fusion.test_moments_become_one_kernel(cupy, shape, axes, keep)
    test_fusion.test_the_fused_cross_entropy_gives_nan_for_a_bad_label_as_tf_on_gpu(cupy)


@pytest.mark.parametrize("name,nesterov", [("adam", None), ("sgd_momentum", False), ("sgd_momentum", True),
                                           ("adagrad", None), ("rmsprop", None)])
def test_optimizer_kernels_on_gpu(cupy, name, nesterov):
    # NVRTC contracts a*b+c into fused multiply-adds: a few float32 ulps from the numba loop
    test_cuda_kernels.test_optimizer_kernels_follow_the_numba_loops(cupy, name, nesterov, np.float32, 1e-5)
    test_cuda_kernels.test_optimizer_kernels_follow_the_numba_loops(cupy, name, nesterov, np.float64, 1e-12)


def test_histograms_on_gpu(cupy):
    test_cuda_kernels.test_histogram_kernel_matches_the_cpu_builder(cupy)


def test_memory_fraction_overflow_is_resource_exhausted(cupy):
    from kestimator import engine as ke
    from kestimator.errors import ResourceExhaustedError
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 1 << 16])
        y = ke.matmul(x, ke.constant(np.ones((1 << 16, 16), np.float32)), name="tall_product") * 2.0
    total = cupy.cuda.runtime.memGetInfo()[1]
    config = ke.ConfigProto(gpu_options=ke.GPUOptions(per_process_gpu_memory_fraction=0.05))
    rows = int(total * 0.06) // (4 << 16) + 1   # a feed larger than the cap
    try:
        with ke.Session(graph=g, config=config) as sess:
            assert sess.run(y, {x: np.ones((2, 1 << 16), np.float32)}).shape == (2, 16)
            with pytest.raises(ResourceExhaustedError, match="tall_product|out of memory"):
                sess.run(y, {x: np.zeros((rows, 1 << 16), np.float32)})
    finally:
        for i in range(devices.gpu_count()):
            with cupy.cuda.Device(i):
                cupy.get_default_memory_pool().set_limit(size=0)


@pytest.mark.skipif(devices._cupy_module() is None or devices._cupy_module().cuda.runtime.getDeviceCount() < 2,
                    reason="needs two GPUs")
def test_cross_device_edges_on_two_gpus(cupy):
    from kestimator import engine as ke
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [4, 6])
        with ke.device("/gpu:0"):
            a = ke.exp(x)
        with ke.device("/gpu:1"):
            b = a * 3.0 + a
    with ke.Session(graph=g) as sess:
        xv = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
        np.testing.assert_allclose(sess.run(b, {x: xv}), np.exp(xv) * 4, rtol=1e-6)


_RUNNER = ("import runpy, sys; from kestimator.engine import devices; devices.set_default_device('/gpu:0'); "
           "sys.argv = [sys.argv[1]]; runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.mark.parametrize("example", sorted(f for f in os.listdir(os.path.join(ROOT, "examples"))
                                           if f.endswith(".py")) if os.path.isdir(os.path.join(ROOT, "examples"))
                         else [])
def test_example_runs_with_every_op_on_gpu(cupy, example, tmp_path):
    out = subprocess.run([sys.executable, "-c", _RUNNER, os.path.join(ROOT, "examples", example)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=900,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "OK", out.stderr[-3000:]
