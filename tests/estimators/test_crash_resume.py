"""Kill a training process (SIGKILL) at random moments and resume: the final model equals an uninterrupted run's.

Each kill can land anywhere: while building the graph, between steps, in the middle of writing a
checkpoint file or the index. A new process then resumes from the newest good checkpoint, restoring the
weights, optimizer slots, random streams (dropout) and the input position.
"""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from kestimator.estimators.checkpoint_manager import CheckpointManager

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(HERE, "crash_worker.py")


def _start(model_dir, max_steps):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, WORKER, model_dir, str(max_steps)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)


def _kill_while_training(model_dir, max_steps, rng, max_delay):
    """Start a worker, wait until it starts training, SIGKILL it after a random delay. True if it was killed
    before finishing."""
    proc = _start(model_dir, max_steps)
    line = proc.stdout.readline()
    assert line.strip() == "TRAINING", proc.stderr.read()
    time.sleep(rng.uniform(0.0, max_delay))
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    proc.stderr.close()
    return alive


def _final_state(model_dir):
    found = CheckpointManager(model_dir).load()
    assert found is not None
    return found[1], found[2]["global_step"]


def _crash_and_compare(tmp_path, max_steps, kills, max_delay, seed):
    from tests.estimators.crash_worker import train
    ref_dir = str(tmp_path / "reference")
    train(ref_dir, max_steps)
    ref, ref_step = _final_state(ref_dir)
    assert ref_step == max_steps
    crash_dir = str(tmp_path / "crashed")
    rng = random.Random(seed)
    killed = attempts = 0
    while killed < kills:
        attempts += 1
        assert attempts < kills * 4, "the worker kept finishing before it could be killed"
        if _kill_while_training(crash_dir, max_steps, rng, max_delay):
            killed += 1
        else:
            break   # it finished: nothing left to interrupt
    proc = _start(crash_dir, max_steps)   # the last run goes to the end
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and out.strip().endswith("DONE"), err[-3000:]
    got, step = _final_state(crash_dir)
    assert step == max_steps
    assert set(got) == set(ref)
    for name in ref:
        # same arithmetic in the same order: equal to float rounding (in practice bit for bit)
        np.testing.assert_allclose(np.asarray(got[name], np.float64), np.asarray(ref[name], np.float64),
                                   rtol=1e-6, atol=1e-7, err_msg=name)
    leftovers = [f for f in os.listdir(crash_dir) if f.endswith(".tmp")]
    assert not leftovers
    assert len([f for f in os.listdir(crash_dir) if f.endswith(".h5")]) <= 4   # keep_checkpoint_max
    return killed


def test_sigkill_at_random_moments_then_resume_matches_uninterrupted(tmp_path):
    killed = _crash_and_compare(tmp_path, max_steps=450, kills=3, max_delay=0.25, seed=1)
    assert killed >= 2


@pytest.mark.slow
def test_sigkill_twenty_times_then_resume_matches_uninterrupted(tmp_path):
    killed = _crash_and_compare(tmp_path, max_steps=2000, kills=20, max_delay=0.4, seed=2)
    assert killed >= 20
