"""Progress output of `kestimator train`: a tqdm bar on a terminal (here a pseudo-terminal), plain lines
otherwise; train.log keeps each bar's final state as one line, without the carriage-return redraws."""
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs")


def run_on_terminal(args, columns=160):
    """Run the command with stdout / stderr on a pseudo-terminal `columns` wide; returns (exit code, bytes)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "kestimator", *args], stdout=slave, stderr=slave, cwd=REPO,
                            env=env, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:          # the terminal closes when the process exits
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=120), out.decode("utf-8", "replace")


def test_keras_fit_draws_a_bar_on_a_terminal_and_logs_its_final_state(tmp_path):
    run_dir = tmp_path / "mlp"
    code, out = run_on_terminal(["train", os.path.join(CONFIGS, "mlp_digits.yaml"), "--output", str(run_dir),
                                 "--set", "fit.epochs=2", "--set", "callbacks=[]"])
    assert code == 0, out
    # tqdm redraws the line with carriage returns and ends it at 47/47 steps (1500 rows / batch 32)
    assert re.search(r"\rEpoch 2/2: 100%\|[^\r\n]*\| 47/47 ", out), out[-2000:]
    log = (run_dir / "train.log").read_text()
    assert "\r" not in log
    bars = [line for line in log.splitlines() if line.startswith("Epoch ")]
    assert len(bars) == 2 and all("47/47" in line and "100%" in line for line in bars)


def test_estimator_training_draws_a_bar_on_a_terminal(tmp_path):
    run_dir = tmp_path / "penguins"
    code, out = run_on_terminal(["train", os.path.join(CONFIGS, "dnn_penguins.yaml"), "--output", str(run_dir),
                                 "--set", "train.steps=150"])
    assert code == 0, out
    assert re.search(r"\rTrain: 100%\|[^\r\n]*\| 150/150 ", out), out[-2000:]
    log = (run_dir / "train.log").read_text()
    assert "\r" not in log and any(line.startswith("Train: 100%") for line in log.splitlines())
