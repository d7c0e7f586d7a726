"""Each example program in examples/ runs unchanged as a subprocess and ends by printing "OK".

The examples are the public API's contract (see examples/README.md in the seed). A part of the project
adds its examples to EXAMPLES when the code they need lands. An example whose code is still missing is
listed with `needs=`: it is collected and run, and expected to fail (strictly) until that module exists,
so it can neither hide a failure nor stay unlisted once it could pass.
"""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES_DIR = os.path.join(ROOT, "examples")


def _module_exists(name):
    """True when `name` is a real module or package (an empty folder is only a namespace: False)."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return False
    return spec is not None and spec.origin is not None


def _example(name, needs=None):
    if needs is None or _module_exists(needs):
        return name
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f"needs {needs}, not written yet"))


EXAMPLES = [
    _example("01_tensors"),
    _example("02_variables"),
    _example("03_linear_regression"),
    _example("04_saver"),
    _example("05_estimator_dnn"),
    _example("06_custom_model_fn"),
    _example("07_run_config"),
    _example("08_keras_mlp"),
    _example("09_keras_to_estimator"),
    _example("10_eager"),
    _example("11_input_pipeline"),
    _example("12_devices"),
    _example("13_tensorboard"),
    _example("14_debug"),
    _example("15_quantize", needs="kestimator.optimize"),
]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_and_prints_ok(name, tmp_path):
    path = os.path.join(EXAMPLES_DIR, name + ".py")
    assert os.path.isfile(path), path
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, path], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{output[-4000:]}"
    lines = proc.stdout.strip().splitlines()
    assert lines and lines[-1] == "OK", f"{name} did not end with OK:\n{output[-4000:]}"
