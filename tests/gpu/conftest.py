"""Fixtures of the GPU tests: the fake CuPy backend (installed per test, then removed)."""
import pytest

from kestimator.engine import devices

from .fake_device import make_fake_cupy


def _install(module):
    devices.register_backend("GPU", module)
    return module


@pytest.fixture
def fake_gpu():
    """A two-device fake CuPy registered as the GPU backend (no compiled kernels: the xp-generic path)."""
    yield _install(make_fake_cupy(2))
    devices.reset_backend()
    devices.set_default_device("")


@pytest.fixture
def fake_gpu_kernels():
    """A one-device fake CuPy whose ElementwiseKernel / RawKernel run through the CPU CUDA emulator."""
    yield _install(make_fake_cupy(1, kernels=True))
    devices.reset_backend()
    devices.set_default_device("")
