"""An interrupted `kestimator train` started again with the same command continues where it stopped:
a Keras fit killed outright (SIGKILL) resumes from its BackupAndRestore backup; an Estimator stopped with
Ctrl-C (SIGINT) resumes from its newest checkpoint towards the same step target."""
import json
import os
import re
import signal
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs")


def _command(*args):
    return [sys.executable, "-m", "kestimator", *args]


def _env():
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def interrupt_when(args, trigger, sig, timeout=120):
    """Start the command, send `sig` as soon as a stdout line starts with `trigger`; returns (exit code, output)."""
    proc = subprocess.Popen(_command(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                            env=_env())
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(trigger):
                proc.send_signal(sig)
                break
        lines.append(proc.stdout.read())
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(lines)


def run(args, timeout=120):
    return subprocess.run(_command(*args), capture_output=True, text=True, cwd=REPO, env=_env(), timeout=timeout)


def test_keras_fit_killed_resumes_from_its_backup(tmp_path):
    run_dir = str(tmp_path / "mlp")
    # 8 epochs of 600 single-example steps: long enough to be killed in the middle, short for a test
    args = ["train", os.path.join(CONFIGS, "mlp_digits.yaml"), "--output", run_dir, "--set", "fit.epochs=8",
            "--set", "fit.batch_size=1", "--set", "fit.steps_per_epoch=600", "--set", "callbacks=[]"]
    # "Epoch 2/8" is printed at the end of epoch 2, after epoch 1's backup was written
    code, first = interrupt_when(args, "Epoch 2/8", signal.SIGKILL)
    assert code == -signal.SIGKILL, f"the first run was not killed mid-way (exit {code}):\n{first}"
    assert os.path.isfile(os.path.join(run_dir, "backup", "backup.ckpt"))
    assert not os.path.exists(os.path.join(run_dir, "model.h5"))

    second = run(args)
    assert second.returncode == 0, second.stderr
    resumed = re.search(r"resuming the interrupted run from its backup in .*: epoch (\d+) of 8", second.stdout)
    assert resumed, second.stdout
    start = int(resumed.group(1))
    assert start >= 2                                                  # epoch 1 is not trained again
    epochs = [int(m) for m in re.findall(r"^Epoch (\d+)/8", second.stdout, re.M)]
    assert epochs == list(range(start, 9))
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    # the history of both runs together: each of the 8 epochs once
    assert metrics["epochs"] == 8
    assert metrics["eval"]["accuracy"] > 0.8
    assert not os.path.exists(os.path.join(run_dir, "backup"))
    with open(os.path.join(run_dir, "train.log")) as f:
        log = f.read()
    assert log.count("kestimator train") == 2 and "Epoch 1/8" in log   # both runs are in the log


def test_estimator_interrupted_resumes_from_its_checkpoint(tmp_path):
    run_dir = str(tmp_path / "penguins")
    args = ["train", os.path.join(CONFIGS, "dnn_penguins.yaml"), "--output", run_dir, "--set", "train.steps=1200"]
    code, first = interrupt_when(args, "Saving checkpoints for 100 ", signal.SIGINT)
    assert code == 130, f"the first run was not interrupted mid-way (exit {code}):\n{first}"
    assert "interrupted; run the same command again to resume" in first

    second = run(args)
    assert second.returncode == 0, second.stderr
    resumed = re.search(r"resuming the interrupted training in .*: global step (\d+) of 1200", second.stdout)
    assert resumed, second.stdout
    start = int(resumed.group(1))
    assert start >= 100
    assert f"Restored from checkpoint {os.path.join(run_dir, f'model.ckpt-{start}.h5')}" in second.stdout
    assert "Saving checkpoints for 0 " not in second.stdout
    # it continues to the first call's target (1200), not 1200 steps more
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["global_step"] == 1200 and metrics["eval"]["global_step"] == 1200
    with open(os.path.join(run_dir, "train_state.json")) as f:
        assert json.load(f)["finished"] is True


def test_a_finished_estimator_run_trains_more_steps_when_asked_again(tmp_path):
    """After a finished call, the same command is a new call: `steps` counts from the current step."""
    steps = 150
    run_dir = str(tmp_path / "linear")
    args = ["train", os.path.join(CONFIGS, "linear_diabetes.yaml"), "--output", run_dir, "--set", f"train.steps={steps}"]
    assert run(args).returncode == 0
    again = run(args)
    assert again.returncode == 0, again.stderr
    assert f"continuing from the checkpoint at global step {steps}" in again.stdout
    assert json.load(open(os.path.join(run_dir, "metrics.json")))["global_step"] == 2 * steps
