"""The `kestimator` command's failures and help: a bad config or override ends with exit code 1 and a
message naming the key path, the file and the line, before anything is written; --help for every command."""
import os
import subprocess
import sys

import pytest

from kestimator.cli.main import COMMANDS, main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs")


def kestimator(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "kestimator", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def mlp_text():
    with open(os.path.join(CONFIGS, "mlp_digits.yaml")) as f:
        return f.read()


def line_of(text, needle):
    """1-based line number of the first line containing `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_invalid_config_exits_1_naming_key_file_and_line_before_any_work(tmp_path):
    text = mlp_text().replace("units: 128", "unitz: 128").replace("fit: {epochs: 10", "fit: {epochs: 0")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    run_dir = tmp_path / "run"
    proc = kestimator("train", str(path), "--output", str(run_dir))
    assert proc.returncode == 1
    err = proc.stderr
    assert err.startswith("kestimator train: error: ")
    assert f"{path}, line {line_of(text, 'unitz')}: model.sequential.1.Dense.unitz: unknown argument of layer " \
           f"'Dense'; did you mean 'units'?" in err
    assert f"{path}, line {line_of(text, 'fit: {')}: fit.epochs: expected an integer >= 1, got 0" in err
    assert "Traceback" not in err
    assert not run_dir.exists()                 # validation comes before the run directory


def test_unknown_names_are_refused_with_suggestions(capsys, tmp_path):
    text = mlp_text().replace("Dropout: {rate: 0.1}", "Dropuot: {rate: 0.1}").replace(
        "loss: sparse_categorical_crossentropy", "loss: sparse_categorical_crossentropi")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["train", str(path), "--output", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert f"{path}, line {line_of(text, 'Dropuot')}: model.sequential.2.Dropuot: unknown layer 'Dropuot'; " \
           f"did you mean 'Dropout'?" in err
    assert f"{path}, line {line_of(text, 'loss:')}: compile.loss: unknown loss 'sparse_categorical_crossentropi'; " \
           f"did you mean 'sparse_categorical_crossentropy'? (known losses: " in err


def test_invalid_override_names_the_set_argument(capsys, tmp_path):
    code = main(["train", os.path.join(CONFIGS, "mlp_digits.yaml"), "--output", str(tmp_path / "run"),
                 "--set", "fit.epochs=zero"])
    assert code == 1
    err = capsys.readouterr().err
    assert "--set fit.epochs=zero: fit.epochs: expected an integer >= 1, got a string 'zero'" in err
    assert not (tmp_path / "run").exists()


def test_override_of_an_unknown_key_suggests_the_right_one(capsys, tmp_path):
    assert main(["train", os.path.join(CONFIGS, "mlp_digits.yaml"), "--output", str(tmp_path / "run"),
                 "--set", "fit.epoch=2"]) == 1
    err = capsys.readouterr().err
    assert "--set fit.epoch=2: fit.epoch: unknown key" in err and "'epochs'" in err


def test_missing_config_file(capsys, tmp_path):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 1
    assert f"config file {tmp_path / 'nope.yaml'} does not exist" in capsys.readouterr().err


def test_evaluate_without_a_trained_run_says_to_train_first(capsys, tmp_path):
    assert main(["evaluate", os.path.join(CONFIGS, "mlp_digits.yaml"), "--output", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert f"no trained Keras model at {tmp_path / 'run' / 'model.h5'}" in err and "kestimator train" in err


def test_gpu_device_without_a_gpu_is_refused(capsys, tmp_path, monkeypatch):
    from kestimator import config as ks_config
    monkeypatch.setattr(ks_config, "list_physical_devices", lambda device_type=None: [])   # a machine without
    code = main(["train", os.path.join(CONFIGS, "mlp_digits.yaml"), "--output", str(tmp_path / "run"),
                 "--set", "device=gpu"])
    assert code == 1
    assert "--set device=gpu: device: gpu asks for a GPU, but none is visible" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kestimator {command}")
    assert COMMANDS[command] in " ".join(out.split())
    if command != "inspect":
        assert "--set KEY.PATH=VALUE" in out and "--output DIR" in out


def test_top_level_help_lists_the_commands():
    proc = kestimator("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout
