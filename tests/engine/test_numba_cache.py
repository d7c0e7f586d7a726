"""numba kernels load from numba's on-disk cache in a second process instead of compiling again.

A kernel whose closure holds another compiled function gets a cache key that differs in every process, so
its cached copy is never found: each process paid ~1 s per such kernel on its first training step.
"""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

_PROBE = r"""
import json
import numpy as np
from kestimator.engine import cpu_fusion
from kestimator.engine.ops import _pool_kernels

pool = _pool_kernels.numba_kernels()["max_pool_grad_relu"]
x = np.ones((1, 4, 4, 2), np.float32)
pool(x, np.ones((1, 2, 2, 2), np.float32), 2, 2, 2, 2, 0, 0, np.empty_like(x), np.empty(2, np.float32), True)
xent = cpu_fusion.kernels()["xent_normalize"]
e = np.ones((2, 3), np.float32)
xent(e, np.array([0, 1]), np.empty(2, np.float32), np.float32(1), False, np.float32(0), np.float32(1))
print(json.dumps({name: sum(k.stats.cache_hits.values()) for name, k in (("pool", pool), ("xent", xent))}))
"""


def test_kernels_calling_other_kernels_load_from_the_cache_in_a_second_process(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    first, second = (json.loads(run.stdout.strip().splitlines()[-1]) for run in runs)
    assert first == {"pool": 0, "xent": 0}   # compiled, and written to the empty cache
    assert second["pool"] >= 1 and second["xent"] >= 1
