"""The same user code on 2 MPI ranks and in one process: Keras fit under MultiWorkerMirroredStrategy,
Estimator.train with RunConfig(train_distribute=...) (killed and resumed), and `kestimator train` under mpiexec.

References: the one-process run of the same function in this pytest process (no launcher: rank 0 of 1).
"""
import csv
import json
import os

import numpy as np
import pytest

from . import _mpi

INTEGRATION = os.path.join(_mpi.HERE, "mpi_integration.py")


@pytest.fixture(scope="module")
def fit_runs(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("fit")
    res = _mpi.run_worker(2, "fit", outdir, worker=INTEGRATION)
    assert res.returncode == 0, res
    ranks = [json.loads((outdir / f"rank{r}_fit.json").read_text()) for r in range(2)]
    from . import mpi_integration
    refdir = tmp_path_factory.mktemp("fit_ref")
    reference = mpi_integration.fit_with_strategy(str(refdir), init_seed=1, numpy_seed=500)
    return outdir, res, ranks, reference


def test_fit_on_two_ranks_with_the_global_batch_matches_one_process_fit(fit_runs):
    """Rank r starts from other weights (seed 1 + r) and another shuffle seed (500 + r); the chief's win.
    Each step rank r trains on rows r::2 of the same shuffled global batch of 32, so after 3 epochs the
    weights equal a one-process fit(batch_size=32) up to float32 rounding of the sums (1e-5), and the two
    ranks are bit-identical."""
    _, _, (a, b), ref = fit_runs
    assert a["distributed_optimizer"] and a["optimizer"] == "Adam" and not ref["distributed_optimizer"]
    assert len(a["weights"]) == len(ref["weights"]) == 4
    for wa, wb, wr in zip(a["weights"], b["weights"], ref["weights"]):
        wa, wb = np.array(wa, np.float32), np.array(wb, np.float32)
        assert wa.tobytes() == wb.tobytes()
        np.testing.assert_allclose(wa, np.array(wr, np.float32), rtol=1e-5, atol=1e-6)


def test_fit_logs_and_evaluate_hold_the_metrics_over_all_ranks_rows(fit_runs):
    """Epoch logs (loss, accuracy, val_*) and evaluate() come from metric state summed over the ranks, so
    they equal the one-process values over the same rows: the validation set has 101 rows in batches of
    50 (the last one, a single row, is rank 0's only)."""
    _, _, (a, b), ref = fit_runs
    assert a["history"] == b["history"] and a["evaluate"] == b["evaluate"]
    assert sorted(a["history"]) == sorted(ref["history"]) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key, series in ref["history"].items():
        np.testing.assert_allclose(a["history"][key], series, rtol=1e-5, err_msg=key)
    for key, value in ref["evaluate"].items():
        np.testing.assert_allclose(a["evaluate"][key], value, rtol=1e-5, err_msg=key)
    # accuracy over 101 rows is k / 101 exactly as in one process
    assert round(a["evaluate"]["accuracy"] * 101, 4) == round(ref["evaluate"]["accuracy"] * 101, 4)
    np.testing.assert_allclose(a["predict"], ref["predict"], rtol=1e-5, atol=1e-6)   # per rank, all rows


def test_only_the_chief_logs_and_prints(fit_runs):
    """CSVLogger runs on rank 0 only (one header, one row per epoch, the reduced values) and only rank 0
    prints the per-epoch lines."""
    outdir, res, (a, _), _ = fit_runs
    with open(outdir / "fit_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    np.testing.assert_allclose([float(r["val_loss"]) for r in rows], a["history"]["val_loss"], rtol=1e-6)
    assert res.output.count("Epoch 1/3") == 1 and res.output.count("Epoch 3/3") == 1, res


def test_fit_resumes_from_the_chiefs_backup_on_every_rank(tmp_path):
    """A second fit(epochs=4) of a freshly built model (other initial weights on each rank) with the backup
    a 2-epoch fit left: only the chief reads it (BackupAndRestore is chief-only); its weights, Adam state,
    epoch and shuffle seed reach rank 1, so both ranks train epochs 3 and 4 only and end bit-identical and
    equal to the one-process run of the same code (1e-5)."""
    res = _mpi.run_worker(2, "backup", tmp_path, worker=INTEGRATION)
    assert res.returncode == 0, res
    got = [json.loads((tmp_path / f"rank{r}_backup.json").read_text()) for r in range(2)]
    assert got[0] == got[1]
    from . import mpi_integration
    weights, histories = mpi_integration.fit_backup_and_resume(str(tmp_path / "reference"), init_seed=1,
                                                               numpy_seed=700)
    assert [len(h["loss"]) for h in got[0]["histories"]] == [len(h["loss"]) for h in histories] == [2, 2]
    np.testing.assert_allclose(got[0]["histories"][1]["loss"], histories[1]["loss"], rtol=1e-5)
    for a, ref in zip(got[0]["weights"], weights):
        np.testing.assert_allclose(a, ref, rtol=1e-5, atol=1e-6)


def _checkpoint(folder):
    from kestimator.estimators.checkpoint_manager import CheckpointManager
    return CheckpointManager(str(folder)).load()


def test_killed_two_rank_estimator_job_ends_fast_and_resumes_to_the_uninterrupted_variables(tmp_path):
    """Estimator.train(max_steps=24) with RunConfig(train_distribute=...) on 2 ranks, checkpoints every 5
    steps, the batched Dataset sharded automatically (no input_context argument). A second job's rank 1 is
    SIGKILLed at global step 13: the launcher ends the whole job within seconds (no rank hangs in a
    collective). A third job resumes from the chief's step-10 checkpoint (variables, Adam slots, each rank's
    own input position) and ends with the same variables, bit for bit, as the uninterrupted job."""
    full = _mpi.run_worker(2, "estimator_full", tmp_path, worker=INTEGRATION)
    assert full.returncode == 0, full
    killed = _mpi.run_worker(2, "estimator_killed", tmp_path, worker=INTEGRATION)
    assert killed.returncode != 0 and killed.seconds < 30, killed
    path, _, meta = _checkpoint(tmp_path / "resumed")
    assert meta["global_step"] == 10 and not meta["train_call"]["finished"]
    assert [p["batches"] for p in meta["train_call"]["input"]["per_rank"]] == [10, 10]
    resumed = _mpi.run_worker(2, "estimator_resume", tmp_path, worker=INTEGRATION)
    assert resumed.returncode == 0, resumed
    _, want, want_meta = _checkpoint(tmp_path / "full")
    _, got, got_meta = _checkpoint(tmp_path / "resumed")
    assert want_meta["global_step"] == got_meta["global_step"] == 24 and got_meta["train_call"]["start_step"] == 10
    assert sorted(got) == sorted(want) and "w1/m" in got
    for name in want:
        assert np.asarray(got[name]).tobytes() == np.asarray(want[name]).tobytes(), name
    # only the chief writes: one event file (summaries), written by one process; training_chief_hooks ran
    # on the chief alone
    assert len([f for f in os.listdir(tmp_path / "full") if f.startswith("events.")]) == 1
    assert sorted(f for f in os.listdir(tmp_path / "full") if f.startswith("chief_hook")) == ["chief_hook_rank0"]


def test_canned_dnn_classifier_on_two_ranks_matches_one_process(tmp_path):
    """DNNClassifier with input_fn(input_context): rank r reads rows r::2 in batches of 16, so each step's
    averaged gradient is the one-process gradient of the 32-row batch; the ranks start from other seeds
    (tf_random_seed 20 + rank) and the chief's initial weights are broadcast. After 10 steps every variable
    equals the one-process run's (1e-5: float32 sum order)."""
    res = _mpi.run_worker(2, "canned", tmp_path, worker=INTEGRATION)
    assert res.returncode == 0, res
    got = [json.loads((tmp_path / f"rank{r}_canned.json").read_text()) for r in range(2)]
    assert got[0] == got[1]
    from . import mpi_integration
    ref = mpi_integration.train_canned(str(tmp_path / "reference"))
    assert sorted(got[0]) == sorted(ref) and ref["global_step"] == 10
    for name, value in ref.items():
        np.testing.assert_allclose(got[0][name], value, rtol=1e-5, atol=1e-7, err_msg=name)


def _kestimator_mpiexec(args, timeout=120):
    import subprocess
    import sys
    mpiexec = _mpi.require_mpi()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=_mpi.ROOT)
    env.pop("KESTIMATOR_DISTRIBUTED", None)
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "kestimator"] + args, cwd=_mpi.ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def test_kestimator_train_of_an_estimator_config_under_mpiexec_matches_one_process(tmp_path):
    """configs/dnn_penguins.yaml (a canned DNNClassifier on CSV data), 8 unshuffled steps of the global
    batch 32: rank r reads rows r::2 in batches of 16, so the chief's checkpoint equals the one-process
    run's (1e-5) and so do the per-example evaluation metrics (each rank evaluates its rows; the metric
    variables are summed). The model_dir (the chief's run directory) holds one training and one evaluation event file."""
    overrides = ["train.steps=8", "train.shuffle=false", "output.plot=null"]
    args = ["train", "configs/dnn_penguins.yaml"] + [a for o in overrides for a in ("--set", o)]
    rc, text = _kestimator_mpiexec(args + ["--output", str(tmp_path / "mpi")])
    assert rc == 0, text
    assert text.count("data-parallel on 2 MPI ranks") == 1, text
    from kestimator.cli.runner import train
    assert train(os.path.join(_mpi.ROOT, "configs", "dnn_penguins.yaml"), overrides, str(tmp_path / "one")) == 0
    _, got, meta = _checkpoint(tmp_path / "mpi")
    _, want, _ = _checkpoint(tmp_path / "one")
    assert meta["global_step"] == 8 and sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-7, err_msg=name)
    metrics = [json.loads((tmp_path / d / "metrics.json").read_text())["eval"] for d in ("mpi", "one")]
    assert sorted(metrics[0]) == sorted(metrics[1]) and "accuracy" in metrics[0]
    # "loss" is the mean of per-batch losses, which depends on how the rows are batched (here per rank);
    # the per-example metrics do not
    for key in set(metrics[1]) - {"loss"}:
        np.testing.assert_allclose(metrics[0][key], metrics[1][key], rtol=1e-5, err_msg=key)
    assert len([f for f in os.listdir(tmp_path / "mpi") if f.startswith("events.")]) == 1
    assert len(os.listdir(tmp_path / "mpi" / "eval")) == 1


def test_kestimator_train_under_mpiexec_trains_data_parallel_and_only_the_chief_writes(tmp_path):
    """`mpiexec -n 2 python -m kestimator train configs/mlp_digits.yaml` (distribute: auto detects the
    launcher): one run directory, written by rank 0 alone (one epoch line printed, a history of 1
    epoch, 1500 rows in 47 global batches of 32); the final `eval` metrics, an evaluate() whose rows were split over the ranks and reduced,
    equal a one-process evaluation of the saved model on the same validation rows (1e-5)."""
    out = tmp_path / "run"
    rc, text = _kestimator_mpiexec(["train", "configs/mlp_digits.yaml", "--set", "fit.epochs=1", "--set",
                                    "output.plot=null", "--output", str(out)])
    assert rc == 0, text
    assert text.count("data-parallel on 2 MPI ranks") == 1 and text.count("Epoch 1/1 - 47 steps") == 1, text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and (out / "model.h5").is_file()
    assert len((out / "history.jsonl").read_text().splitlines()) == 1   # one writer, not two
    from kestimator.cli.build_keras import model_inputs, model_targets
    from kestimator.cli.runner import prepare
    from kestimator.models import load_model
    run = prepare(os.path.join(_mpi.ROOT, "configs", "mlp_digits.yaml"), ["fit.epochs=1"], str(tmp_path / "ref"))
    vx, vy = run.data("validation")
    model = load_model(str(out / "model.h5"))
    logs = model.evaluate(model_inputs(model, vx, "v"), model_targets(vy, "v"), verbose=0, return_dict=True)
    assert len(vy) == 297
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(metrics["eval"][key], logs[key], rtol=1e-5, err_msg=key)


def test_train_and_evaluate_on_two_ranks_evaluates_on_the_chief_and_returns_its_result_everywhere(tmp_path):
    """Both ranks train to step 10; the chief evaluates after the checkpoints of steps 0, 5, 10 (one event
    file per evaluation in model_dir/eval) and both ranks return its final result, which equals a
    one-process evaluate() of the step-10 checkpoint here."""
    res = _mpi.run_worker(2, "train_and_evaluate", tmp_path, worker=INTEGRATION)
    assert res.returncode == 0, res
    got = [json.loads((tmp_path / f"rank{r}_tae.json").read_text()) for r in range(2)]
    assert got[0] == got[1] and got[0]["result"]["global_step"] == 10 and got[0]["exports"] == []
    assert len(os.listdir(tmp_path / "tae" / "eval")) == 3
    from kestimator import estimators
    from . import mpi_integration
    from kestimator.data import Dataset
    xe, ye = mpi_integration.make_data(64, seed=9)
    est = estimators.Estimator(mpi_integration._model_fn, model_dir=str(tmp_path / "tae"))
    ref = est.evaluate(lambda: Dataset.from_tensor_slices(({"x": xe}, ye)).batch(32))
    assert int(ref["global_step"]) == 10
    np.testing.assert_allclose(got[0]["result"]["loss"], ref["loss"], rtol=1e-6)


def test_estimator_evaluate_with_eval_distribute_sums_metrics_over_the_ranks_shards(tmp_path):
    """RunConfig(eval_distribute=...): rank 0 evaluates 53 of the 101 rows, rank 1 48; the metric variables
    (accuracy's and the mean loss's totals and counts) are summed over the ranks, so both ranks return the
    one-process evaluation of the same checkpoint on all 101 rows (accuracy k / 101 exactly), and only the
    chief writes an evaluation event file."""
    res = _mpi.run_worker(2, "evaluate", tmp_path, worker=INTEGRATION)
    assert res.returncode == 0, res
    got = [json.loads((tmp_path / f"rank{r}_evaluate.json").read_text()) for r in range(2)]
    assert got[0] == got[1]
    assert len(os.listdir(tmp_path / "evaluated" / "eval")) == 1
    from . import mpi_integration
    ref = mpi_integration.evaluate_distributed(str(tmp_path / "evaluated"), eval_distribute=False)
    assert ref["global_step"] == got[0]["global_step"] == 10
    assert round(ref["accuracy"] * 101, 3) == round(got[0]["accuracy"] * 101, 3) == round(ref["accuracy"] * 101)
    np.testing.assert_allclose(got[0]["loss"], ref["loss"], rtol=1e-6)
