"""The model_dir lock: a second process training into the same model_dir fails at once, naming the owner; a
stale lock (dead pid, reused pid, or a file its owner died writing) is taken over with a warning; the lock is
released when training returns or raises. The two-process cases use real subprocesses."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import kestimator as ks
from kestimator.errors import FailedPreconditionError
from kestimator.estimators import model_dir_lock
from kestimator.estimators.model_dir_lock import LOCK_NAME, ModelDirLock, read_lock

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A trainer in another process: trains a LinearRegressor into argv[1]; on its first step it writes
# argv[2] ("ready") and waits until argv[3] exists ("go"), so the test can act while it holds the lock.
_TRAINER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import kestimator as ks
    model_dir, ready, go = sys.argv[1:4]

    class Pause(ks.estimators.SessionRunHook):
        def after_run(self, run_context, run_values):
            if not os.path.exists(ready):
                with open(ready, "w") as f:
                    f.write(str(os.getpid()))
                deadline = time.time() + 60
                while not os.path.exists(go) and time.time() < deadline:
                    time.sleep(0.02)

    x = np.arange(32, dtype=np.float32).reshape(-1, 1) / 32
    est = ks.estimators.LinearRegressor([ks.feature_column.numeric_column("x")], model_dir=model_dir)
    est.train(ks.estimators.inputs.numpy_input_fn({"x": x}, 2 * x, batch_size=8, num_epochs=None, shuffle=False),
              steps=5, hooks=[Pause()])
    print("TRAINED", flush=True)
""")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _input_fn():
    x = np.arange(32, dtype=np.float32).reshape(-1, 1) / 32
    return ks.estimators.inputs.numpy_input_fn({"x": x}, 2 * x, batch_size=8, num_epochs=None, shuffle=False)


def _estimator(model_dir):
    return ks.estimators.LinearRegressor([ks.feature_column.numeric_column("x")], model_dir=str(model_dir))


def _wait_for(path, proc, timeout=120):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited early: {proc.communicate()}")
        assert time.time() < deadline, "trainer never reached its first step"
        time.sleep(0.05)


def test_second_process_fails_at_once_naming_the_owner_and_the_lock_is_released_after(tmp_path):
    model_dir = tmp_path / "model"
    ready, go = str(tmp_path / "ready"), str(tmp_path / "go")
    proc = subprocess.Popen([sys.executable, "-c", _TRAINER, str(model_dir), ready, go], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(ready, proc)
        lock_path = str(model_dir / LOCK_NAME)
        record = read_lock(lock_path)
        assert record["pid"] == proc.pid and record["host"] == socket.gethostname()
        assert abs(record["start_time"] - time.time()) < 120 and record["owner"] == "Estimator.train"
        before = sorted(os.listdir(model_dir))
        t0 = time.monotonic()
        with pytest.raises(FailedPreconditionError) as info:
            _estimator(model_dir).train(_input_fn(), steps=3)
        assert time.monotonic() - t0 < 5.0        # at once: no waiting for the owner
        message = str(info.value)
        assert f"pid {proc.pid}" in message and socket.gethostname() in message and lock_path in message
        assert sorted(os.listdir(model_dir)) == before   # the refused trainer wrote nothing
        assert read_lock(lock_path) == record             # and left the owner's lock alone
    finally:
        open(go, "w").close()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "TRAINED" in out, err
    assert not os.path.exists(model_dir / LOCK_NAME)     # released on normal exit
    est = _estimator(model_dir)
    est.train(_input_fn(), steps=2)                       # now free: resumes from the first run's step 5
    assert est.get_variable_value("global_step") == 7
    assert not os.path.exists(model_dir / LOCK_NAME)


def test_a_killed_trainers_lock_is_taken_over_with_a_warning(tmp_path):
    model_dir = tmp_path / "model"
    ready, go = str(tmp_path / "ready"), str(tmp_path / "go")
    proc = subprocess.Popen([sys.executable, "-c", _TRAINER, str(model_dir), ready, go], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(ready, proc)
    os.kill(proc.pid, signal.SIGKILL)               # dies holding the lock: no chance to release it
    proc.communicate(timeout=60)
    stale = read_lock(str(model_dir / LOCK_NAME))
    assert stale["pid"] == proc.pid
    est = _estimator(model_dir)
    with pytest.warns(RuntimeWarning, match=f"stale model_dir lock .*pid {proc.pid} is no longer running"):
        est.train(_input_fn(), steps=2)
    assert est.get_variable_value("global_step") >= 2
    assert not os.path.exists(model_dir / LOCK_NAME)


def test_lock_taken_while_training_and_released_when_training_raises(tmp_path):
    seen = []

    class Look(ks.estimators.SessionRunHook):
        def after_run(self, run_context, run_values):
            seen.append(read_lock(str(tmp_path / LOCK_NAME)))
            raise RuntimeError("boom in a hook")

    with pytest.raises(RuntimeError, match="boom in a hook"):
        _estimator(tmp_path).train(_input_fn(), steps=3, hooks=[Look()])
    assert seen[0]["pid"] == os.getpid() and seen[0]["host"] == socket.gethostname()
    assert not os.path.exists(tmp_path / LOCK_NAME)


def test_boosted_trees_take_the_lock_too(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_record(tmp_path, pid=other.pid, process_start=model_dir_lock._process_start(other.pid))
        est = ks.estimators.BoostedTreesRegressor([ks.feature_column.numeric_column("x")], model_dir=str(tmp_path),
                                                  n_trees=2, max_depth=2, n_batches_per_layer=1)
        with pytest.raises(FailedPreconditionError, match=f"locked by pid {other.pid}"):
            est.train(_input_fn(), max_steps=4)
        assert os.listdir(tmp_path) == [LOCK_NAME]
    finally:
        other.kill()
        other.wait()


def _write_record(folder, **fields):
    record = {"pid": 1, "host": socket.gethostname(), "start_time": 0.0, "started": "then",
              "process_start": None, "owner": "Estimator.train", "token": "ab"}
    record.update(fields)
    with open(os.path.join(folder, LOCK_NAME), "w") as f:
        json.dump(record, f)
    return record


def test_reused_pid_is_stale_but_a_live_owner_is_not(tmp_path):
    start = model_dir_lock._process_start(os.getppid())
    _write_record(tmp_path, pid=os.getppid(), process_start=start)       # a live process, same start time
    with pytest.raises(FailedPreconditionError, match=f"locked by pid {os.getppid()}"):
        ModelDirLock(tmp_path).acquire()
    _write_record(tmp_path, pid=os.getppid(), process_start=start - 1)   # same pid, an older process: reused
    with pytest.warns(RuntimeWarning, match="reused"):
        lock = ModelDirLock(tmp_path).acquire()
    assert read_lock(str(tmp_path / LOCK_NAME))["pid"] == os.getpid()
    lock.release()
    assert not os.path.exists(tmp_path / LOCK_NAME)


def test_other_host_is_refused_and_unreadable_old_lock_is_stale(tmp_path):
    _write_record(tmp_path, pid=12345, host="another-node")
    with pytest.raises(FailedPreconditionError, match="pid 12345 on host 'another-node'.*delete the lock file"):
        ModelDirLock(tmp_path).acquire()
    path = tmp_path / LOCK_NAME
    path.write_bytes(b"")                           # its owner died between creating and writing it
    with pytest.raises(FailedPreconditionError, match="being written"):
        ModelDirLock(tmp_path).acquire()            # young: it may still be being written
    os.utime(path, (time.time() - 60, time.time() - 60))
    with pytest.warns(RuntimeWarning, match="unreadable"):
        with ModelDirLock(tmp_path) as lock:
            assert lock.held and read_lock(str(path))["pid"] == os.getpid()
    assert not path.exists()


def test_same_process_cannot_hold_it_twice_and_release_leaves_a_foreign_lock(tmp_path):
    with ModelDirLock(tmp_path) as first:
        with pytest.raises(FailedPreconditionError, match="already locked by this process"):
            ModelDirLock(tmp_path).acquire()
        _write_record(tmp_path, pid=first._record["pid"], token="someone-else")   # replaced behind our back
    assert os.path.exists(tmp_path / LOCK_NAME)      # not ours any more: left in place


def test_only_the_chief_takes_it(tmp_path, monkeypatch):
    monkeypatch.setattr(model_dir_lock, "_is_chief", lambda: False)
    with model_dir_lock.hold(str(tmp_path)) as lock:
        assert lock is None and not os.path.exists(tmp_path / LOCK_NAME)
    monkeypatch.undo()
    with model_dir_lock.hold(str(tmp_path)) as lock:   # a one-process run is the chief
        assert lock.held and os.path.exists(tmp_path / LOCK_NAME)
