"""The example programs, unchanged, with every op placed on GPU:0 of the fake CuPy (a subprocess each).

This runs the Keras, Estimator, Saver and debugger paths through device variables and device kernels. The
engine-level examples run by default; the rest are `slow` (run with -m slow). They must end with "OK" as
they do on the CPU (tests/test_examples.py); test_real_gpu.py runs them on CuPy.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
FAST = {"01_tensors", "02_variables", "03_linear_regression", "04_saver", "10_eager", "12_devices", "14_debug"}
# examples that never put a value on a device: eager mode stays on the CPU, the input pipeline runs no graph,
# and 12_devices' products of constants are folded when the plan is compiled
HOST_ONLY = {"10_eager", "11_input_pipeline", "12_devices"}
_RUNNER = ("import runpy, sys\n"
           "from kestimator.engine import devices\n"
           "from tests.gpu.fake_device import make_fake_cupy\n"
           "fake = make_fake_cupy(1)\n"
           "devices.register_backend('GPU', fake)\n"
           "devices.set_default_device('/gpu:0')\n"
           "sys.argv = [sys.argv[1]]\n"
           "runpy.run_path(sys.argv[0], run_name='__main__')\n"
           "print('device allocations', fake._state.allocations)\n")


def _examples():
    names = sorted(f[:-3] for f in os.listdir(EXAMPLES) if f.endswith(".py")) if os.path.isdir(EXAMPLES) else []
    return [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in names]


@pytest.mark.parametrize("name", _examples())
def test_example_runs_on_the_fake_device(name, tmp_path):
    out = subprocess.run([sys.executable, "-c", _RUNNER, os.path.join(EXAMPLES, name + ".py")], capture_output=True,
                         text=True, cwd=tmp_path, timeout=600, env=dict(os.environ, PYTHONPATH=ROOT))
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0 and len(lines) > 1 and lines[-2] == "OK", out.stderr[-3000:]
    allocations = int(lines[-1].split()[-1])
    assert (allocations == 0) == (name in HOST_ONLY), f"{name}: {allocations} device allocations"
