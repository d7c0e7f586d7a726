"""Every op test case of tests/engine, run with all ops on the (fake) GPU, against the same NumPy references.

The cases are imported from tests/engine/test_kernels.py (forward values) and test_gradients.py (gradients
against float64 central differences), so an op added there is checked on the device path too. Run on the
fake device, this proves each kernel is xp-generic in the ways the fake can see (no host array meets a
device array, values stay on the device, results come back as NumPy); test_real_gpu.py runs the same cases
on CuPy when a GPU is present.
"""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.engine import devices

from ..engine import test_gradients as grad_cases
from ..engine import test_kernels as kernel_cases
from ..engine.gradcheck import check_gradients

GPU0 = "/job:localhost/replica:0/task:0/device:GPU:0"


def run_case(name, rtol=1e-7, atol=1e-9):
    """Run kernel case `name` with every op on GPU:0; returns the Plan (for placement checks)."""
    build, inputs, ref = kernel_cases.CASES[name]
    g = ke.Graph()
    with g.as_default():
        xs = [ke.placeholder(ke.as_dtype(np.asarray(x).dtype), shape=np.shape(x)) for x in inputs]
        out = build(*xs)
        init = ke.global_variables_initializer()
    with ke.Session(graph=g) as sess:
        sess.run(init)
        got = sess.run(out, {x: v for x, v in zip(xs, inputs)})
        plan = list(sess._plans.values())[-1]
    assert type(got) is np.ndarray
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(ref(*inputs), dtype=np.float64),
                               rtol=rtol, atol=atol)
    return plan


@pytest.mark.parametrize("name", sorted(kernel_cases.CASES))
def test_forward_case_on_the_device(fake_gpu, name):
    devices.set_default_device("/gpu:0")
    plan = run_case(name)
    kernels = [op for op in plan.ops if op.type not in ("Const", "Placeholder", "NoOp", "VariableV2")]
    on_gpu = [op for op in kernels if plan.devices.get(op, GPU0) == GPU0]
    assert len(on_gpu) >= len(kernels) / 2, f"case {name}: most ops ran on the CPU"


@pytest.mark.parametrize("name", sorted(grad_cases.CASES))
def test_gradient_case_on_the_device(fake_gpu, name):
    devices.set_default_device("/gpu:0")
    build, inputs = grad_cases.CASES[name]
    check_gradients(build, inputs)


@pytest.mark.parametrize("name", grad_cases.SECOND_ORDER)
def test_second_order_gradient_case_on_the_device(fake_gpu, name):
    devices.set_default_device("/gpu:0")
    build, inputs = grad_cases.CASES[name]
    check_gradients(build, inputs, order=2, rtol=1e-4, atol=1e-6)
