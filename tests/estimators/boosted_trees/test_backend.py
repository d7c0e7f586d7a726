import pathlib
import subprocess
import sys

import pytest

from kestimator.errors import InvalidArgumentError, MissingDependencyError
from kestimator.estimators.boosted_trees import _backend


def test_auto_falls_back_to_numpy_without_numba(monkeypatch):
    monkeypatch.setattr(_backend, "numba_available", lambda: False)
    assert _backend.resolve_kernels("auto") == "numpy"
    assert _backend.resolve_kernels("numpy") == "numpy"
    with pytest.raises(MissingDependencyError, match=r"kestimator\[fast\]"):
        _backend.resolve_kernels("numba")


def test_auto_prefers_numba_when_importable(monkeypatch):
    monkeypatch.setattr(_backend, "numba_available", lambda: True)
    assert _backend.resolve_kernels("auto") == "numba"
    with pytest.raises(InvalidArgumentError, match="kernels must be one of"):
        _backend.resolve_kernels("gpu")


def test_importing_the_package_does_not_import_numba():
    code = ("import sys; import kestimator.estimators.boosted_trees as bt; "
            "bt.GradientBoostedTrees(kernels='numpy').fit([[0.0], [1.0]], [0, 1]); "
            "print('numba' in sys.modules)")
    repo = pathlib.Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=repo)
    assert out.stdout.strip() == "False"
