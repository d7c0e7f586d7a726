"""train_and_evaluate with TrainSpec / EvalSpec in one process (the 2-rank run is in
tests/distributed/test_mpi_integration.py)."""
import os

import numpy as np
import pytest

from kestimator import estimators
from kestimator.errors import InvalidArgumentError

from ..distributed import mpi_integration


class _RecordingExporter:
    name = "recorder"

    def __init__(self):
        self.calls = []

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        self.calls.append((os.path.relpath(export_path, estimator.model_dir), os.path.basename(checkpoint_path),
                           int(eval_result["global_step"]), is_the_final_export))
        return f"exported-{eval_result['global_step']}"


def _estimator(model_dir):
    config = estimators.RunConfig(model_dir=str(model_dir), save_checkpoints_steps=5, tf_random_seed=3)
    return estimators.Estimator(mpi_integration._model_fn, config=config)


def _eval_input_fn():
    from kestimator.data import Dataset
    x, y = mpi_integration.make_data(64, seed=9)
    return Dataset.from_tensor_slices(({"x": x}, y)).batch(32)


def test_evaluates_after_each_checkpoint_then_exports_once_more_as_final(tmp_path):
    """Checkpoints at steps 0, 5, 10, 15 (new model, every 5 steps, the end): with no delay and no throttle,
    one evaluation after each; the exporter runs after each evaluation and once more as the final export.
    The returned result is what evaluate() gives for the step-15 checkpoint."""
    est = _estimator(tmp_path)
    exporter = _RecordingExporter()
    result, exports = estimators.train_and_evaluate(
        est, estimators.TrainSpec(mpi_integration._batched_input_fn, max_steps=15),
        estimators.EvalSpec(_eval_input_fn, steps=None, exporters=[exporter], start_delay_secs=0, throttle_secs=0))
    assert [c[2] for c in exporter.calls] == [0, 5, 10, 15, 15]
    assert [c[3] for c in exporter.calls] == [False, False, False, False, True]
    assert exporter.calls[-1][:2] == (os.path.join("export", "recorder"), "model.ckpt-15.h5")
    assert exports == ["exported-15"]
    again = est.evaluate(_eval_input_fn)
    assert int(result["global_step"]) == 15 and sorted(result) == ["accuracy", "global_step", "loss"]
    np.testing.assert_allclose([result["loss"], result["accuracy"]], [again["loss"], again["accuracy"]], rtol=1e-6)
    assert os.listdir(tmp_path / "eval")


def test_throttle_and_start_delay_skip_evaluations_but_not_the_final_one(tmp_path):
    """A 1-hour start delay: no evaluation during training, only the final one on the last checkpoint."""
    est = _estimator(tmp_path)
    exporter = _RecordingExporter()
    result, _ = estimators.train_and_evaluate(
        est, estimators.TrainSpec(mpi_integration._batched_input_fn, max_steps=10),
        estimators.EvalSpec(_eval_input_fn, steps=1, exporters=exporter, start_delay_secs=3600))
    assert [(c[2], c[3]) for c in exporter.calls] == [(10, True)]
    assert int(result["global_step"]) == 10


@pytest.mark.parametrize("make, message", [
    (lambda: estimators.TrainSpec(None), "input_fn must be callable"),
    (lambda: estimators.TrainSpec(_eval_input_fn, max_steps=0), "max_steps must be a positive int"),
    (lambda: estimators.EvalSpec(_eval_input_fn, steps=-1), "steps must be a positive int"),
    (lambda: estimators.EvalSpec(_eval_input_fn, throttle_secs=-5), "throttle_secs must be a number >= 0"),
    (lambda: estimators.EvalSpec(_eval_input_fn, exporters=[object()]), "needs a non-empty `name`"),
    (lambda: estimators.EvalSpec(_eval_input_fn, exporters=[_RecordingExporter(), _RecordingExporter()]),
     "exporter names must be unique"),
])
def test_specs_reject_bad_values(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()
