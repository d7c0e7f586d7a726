"""Launching the MPI test programs: find mpiexec, run `mpi_worker.py SCENARIO` on N ranks, collect output.

The MPI tests skip (with one line saying why) only when mpi4py or mpiexec is not installed
(`pip install 'kestimator[mpi]'` installs both: the mpich wheel puts mpiexec next to the interpreter).
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(HERE, "mpi_worker.py")


def find_mpiexec():
    """The mpiexec beside this interpreter (the mpich wheel's), else the one on PATH, else None."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return shutil.which("mpiexec")


def require_mpi():
    """Skip the calling test unless mpi4py and mpiexec are installed; returns the mpiexec path."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install 'kestimator[mpi]')")
    mpiexec = find_mpiexec()
    if mpiexec is None:
        pytest.skip("mpiexec is not installed (pip install 'kestimator[mpi]' brings MPICH's)")
    return mpiexec


class Result:
    def __init__(self, proc, seconds):
        self.returncode, self.seconds = proc.returncode, seconds
        self.output = proc.stdout + proc.stderr

    def __repr__(self):
        return f"<rc={self.returncode} {self.seconds:.1f}s>\n{self.output}"


def run_worker(n, scenario, outdir, timeout=90, env=None, worker=WORKER):
    """Run `mpiexec -n n python <worker> scenario outdir` (default mpi_worker.py); returns a Result (rc,
    seconds, output)."""
    mpiexec = require_mpi()
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.setdefault("OMP_NUM_THREADS", "1")
    full_env.pop("KESTIMATOR_DISTRIBUTED", None)
    full_env.update(env or {})
    t0 = time.monotonic()
    proc = subprocess.run([mpiexec, "-n", str(n), sys.executable, worker, scenario, str(outdir)], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)
    return Result(proc, time.monotonic() - t0)
