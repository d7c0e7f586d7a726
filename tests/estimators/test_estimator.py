"""Estimator with a custom model_fn: train / evaluate / predict, resuming, hooks, summaries, inputs, errors."""
import os

import numpy as np
import pytest

import kestimator as ks
from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError, NotFoundError
from kestimator.estimators import Estimator, EstimatorSpec, ModeKeys, RunConfig
from kestimator.estimators.inputs import numpy_input_fn
from kestimator.io.events import read_event_scalars

TRUE_W = np.array([1.0, -2.0, 0.5], np.float32)


def _data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x @ TRUE_W + 0.75).astype(np.float32)


def linear_model_fn(features, labels, mode, params):
    """y = x @ w + b trained by SGD; an eval metric and a summary of the batch's mean prediction."""
    w = ke.get_variable("w", [3, 1], initializer=ke.zeros_initializer())
    b = ke.get_variable("b", [1], initializer=ke.zeros_initializer())
    pred = ke.reshape(ke.matmul(features["x"], w) + b, [-1])
    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, predictions={"y": pred, "double": pred * 2.0})
    loss = ks.losses.mean_squared_error(labels, pred)
    if mode == ModeKeys.EVAL:
        return EstimatorSpec(mode, loss=loss, eval_metric_ops={"mae": ks.metrics.mean_absolute_error(labels, pred)})
    ke.summary.scalar("mean_prediction", ke.reduce_mean(pred))
    train_op = ks.optimizers.SGD(params.get("lr", 0.1)).minimize(loss, global_step=ke.train.get_global_step())
    return EstimatorSpec(mode, loss=loss, train_op=train_op)


def _est(tmp_path, **config):
    config.setdefault("save_checkpoints_secs", None)
    return Estimator(linear_model_fn, model_dir=str(tmp_path), params={"lr": 0.1}, config=RunConfig(**config))


def _train_fn(x, y, batch=20, epochs=None):
    return numpy_input_fn({"x": x}, y, batch_size=batch, num_epochs=epochs, shuffle=True, seed=0)


def test_train_evaluate_predict(tmp_path):
    x, y = _data()
    est = _est(tmp_path)
    assert est.train(_train_fn(x, y), steps=300) is est
    np.testing.assert_allclose(est.get_variable_value("w").ravel(), TRUE_W, atol=1e-3)
    np.testing.assert_allclose(est.get_variable_value("b"), [0.75], atol=1e-3)
    assert est.get_variable_value("global_step") == 300
    assert {"w", "b", "global_step", "SGD/iterations"} <= set(est.get_variable_names())
    result = est.evaluate(numpy_input_fn({"x": x}, y, batch_size=64, shuffle=False))
    assert set(result) == {"loss", "mae", "global_step"} and result["global_step"] == 300
    assert result["loss"] < 1e-5 and result["mae"] < 3e-3
    preds = list(est.predict(numpy_input_fn({"x": x[:5]}, batch_size=2, shuffle=False)))
    assert len(preds) == 5 and set(preds[0]) == {"y", "double"}
    w, b = est.get_variable_value("w").ravel(), est.get_variable_value("b")
    np.testing.assert_allclose([p["y"] for p in preds], x[:5] @ w + b, rtol=1e-5)
    only = list(est.predict(numpy_input_fn({"x": x[:2]}, shuffle=False), predict_keys="double"))
    assert set(only[0]) == {"double"}
    with pytest.raises(InvalidArgumentError, match=r"predict_keys \['nope'\].*available: \['double', 'y'\]"):
        list(est.predict(numpy_input_fn({"x": x[:2]}, shuffle=False), predict_keys=["nope"]))
    batches = list(est.predict(numpy_input_fn({"x": x[:5]}, batch_size=2, shuffle=False), yield_single_examples=False))
    assert [len(b["y"]) for b in batches] == [2, 2, 1]


def test_evaluate_loss_is_the_mean_of_batch_losses(tmp_path):
    x, y = _data(30)
    est = _est(tmp_path)
    est.train(_train_fn(x, y), steps=3)
    w, b = est.get_variable_value("w").ravel(), est.get_variable_value("b")
    res = est.evaluate(numpy_input_fn({"x": x}, y, batch_size=20, shuffle=False))
    err = (x @ w + b - y) ** 2
    # batches of 20 and 10 rows: "loss" averages the two batch means (TF's metrics.mean(loss))
    np.testing.assert_allclose(res["loss"], (err[:20].mean() + err[20:].mean()) / 2, rtol=1e-5)


def test_resume_continues_and_max_steps_twice_does_nothing(tmp_path):
    x, y = _data()
    _est(tmp_path, save_checkpoints_steps=50, keep_checkpoint_max=3).train(_train_fn(x, y), steps=120)
    kept = ks.estimators.list_checkpoints(str(tmp_path))
    assert [os.path.basename(p) for p in kept] == ["model.ckpt-50.h5", "model.ckpt-100.h5", "model.ckpt-120.h5"]
    est2 = _est(tmp_path, save_checkpoints_steps=50, keep_checkpoint_max=3)
    est2.train(_train_fn(x, y), steps=30)
    assert est2.get_variable_value("global_step") == 150
    est2.train(_train_fn(x, y), max_steps=200)
    assert est2.get_variable_value("global_step") == 200
    before = {p: os.path.getmtime(p) for p in ks.estimators.list_checkpoints(str(tmp_path))}
    w_before = est2.get_variable_value("w")
    est2.train(_train_fn(x, y), max_steps=200)   # already there: no step, no checkpoint
    assert {p: os.path.getmtime(p) for p in ks.estimators.list_checkpoints(str(tmp_path))} == before
    np.testing.assert_array_equal(est2.get_variable_value("w"), w_before)
    assert est2.latest_checkpoint().endswith("model.ckpt-200.h5")


def test_corrupt_newest_checkpoint_resumes_from_previous(tmp_path):
    x, y = _data()
    _est(tmp_path, save_checkpoints_steps=10).train(_train_fn(x, y), steps=20)
    newest = ks.estimators.list_checkpoints(str(tmp_path))[-1]
    with open(newest, "r+b") as f:
        f.seek(os.path.getsize(newest) - 100)
        f.write(b"\xab" * 50)
    est = _est(tmp_path, save_checkpoints_steps=10)
    with pytest.warns(UserWarning, match="model.ckpt-20.h5"):
        est.train(_train_fn(x, y), steps=5)
    assert est.get_variable_value("global_step") == 15   # resumed from step 10


def test_input_fn_may_return_a_dataset_or_a_generator_or_arrays(tmp_path):
    from kestimator.data import Dataset
    x, y = _data(60)
    est = _est(tmp_path)
    est.train(lambda: Dataset.from_tensor_slices(({"x": x}, y)).batch(20).repeat(), steps=9)

    def gen():
        for i in range(0, 60, 30):
            yield {"x": x[i:i + 30]}, y[i:i + 30]
    est.train(gen, steps=100)                 # ends when the generator does: 2 more steps
    assert est.get_variable_value("global_step") == 11
    est.train(lambda: ({"x": x}, y), steps=4)  # fixed arrays: the same batch every step
    assert est.get_variable_value("global_step") == 15
    res = est.evaluate(lambda: ({"x": x}, y))
    assert res["global_step"] == 15
    with pytest.raises(InvalidArgumentError, match="repeat forever"):
        est.train(lambda: ({"x": x}, y))


def test_hooks_see_steps_fetch_tensors_and_stop(tmp_path):
    x, y = _data(60)
    seen = []

    class Recorder(ks.estimators.SessionRunHook):
        def begin(self):
            self.w = ke.get_default_graph().get_tensor_by_name("w:0")

        def before_run(self, run_context):
            return ks.estimators.SessionRunArgs({"w": self.w, "gs": ke.train.get_global_step()})

        def after_run(self, run_context, run_values):
            seen.append(int(run_values.results["gs"]))
            assert run_values.results["w"].shape == (3, 1)

    log = ks.estimators.LoggingTensorHook({"step": "global_step:0"}, every_n_iter=3)
    stop = ks.estimators.StopAtStepHook(num_steps=7)
    est = _est(tmp_path)
    est.train(_train_fn(x, y), steps=100, hooks=[Recorder(), log, stop])
    assert est.get_variable_value("global_step") == 7
    assert seen == list(range(1, 8))
    assert [v["step"] for _, v in log.logged] == [1, 4, 7]


def test_summaries_are_written_every_save_summary_steps(tmp_path):
    x, y = _data(60)
    _est(tmp_path, save_summary_steps=5, log_step_count_steps=4).train(_train_fn(x, y), steps=12)
    scalars = read_event_scalars(str(tmp_path))
    assert [s for s, _ in scalars["loss"]] == [1, 6, 11]
    assert [s for s, _ in scalars["global_step/sec"]] == [4, 8, 12]
    assert all(v > 0 for _, v in scalars["global_step/sec"])
    assert [s for s, _ in scalars["mean_prediction"]] == [1, 6, 11]
    assert all(np.isfinite(v) for _, v in scalars["loss"])
    est = _est(tmp_path)
    est.evaluate(numpy_input_fn({"x": x}, y, shuffle=False), name="holdout")
    ev = read_event_scalars(os.path.join(str(tmp_path), "eval_holdout"))
    assert set(ev) == {"loss", "mae"} and ev["loss"][0][0] == 12


def test_each_call_compiles_few_plans(tmp_path, monkeypatch):
    from kestimator.engine import plan as plan_mod
    count = []
    original = plan_mod.Plan.__init__

    def counting(self, *a, **k):
        count.append(1)
        original(self, *a, **k)
    monkeypatch.setattr(plan_mod.Plan, "__init__", counting)
    x, y = _data(110)
    _est(tmp_path, save_summary_steps=0).train(_train_fn(x, y, batch=20, epochs=1), steps=1000)
    # initializer, variable reader (checkpoints), one step plan for batches of 20 and one for the last 10
    assert len(count) <= 5


def test_warm_start_from_another_model_dir(tmp_path):
    x, y = _data()
    src = tmp_path / "src"
    _est(src).train(_train_fn(x, y), steps=200)
    est = Estimator(linear_model_fn, model_dir=str(tmp_path / "dst"), params={"lr": 0.0},
                    config=RunConfig(save_checkpoints_secs=None), warm_start_from=str(src))
    est.train(_train_fn(x, y), steps=1)        # lr 0: the weights stay the warm-started ones
    np.testing.assert_array_equal(est.get_variable_value("w"), _est(src).get_variable_value("w"))
    assert est.get_variable_value("global_step") == 1


def test_errors_name_the_problem(tmp_path):
    x, y = _data(20)
    with pytest.raises(InvalidArgumentError, match="must take a `features` argument"):
        Estimator(lambda inputs, labels: None)
    with pytest.raises(InvalidArgumentError, match="differs from config.model_dir"):
        Estimator(linear_model_fn, model_dir=str(tmp_path / "a"), config=RunConfig(model_dir=str(tmp_path / "b")))
    est = _est(tmp_path)
    with pytest.raises(NotFoundError, match="no checkpoint"):
        est.get_variable_value("w")
    with pytest.raises(InvalidArgumentError, match="steps or max_steps, not both"):
        est.train(_train_fn(x, y), steps=1, max_steps=2)

    def bad_metric_fn(features, labels, mode):
        w = ke.get_variable("w", [3, 1])
        loss = ks.losses.mean_squared_error(labels, ke.reshape(ke.matmul(features["x"], w), [-1]))
        return EstimatorSpec(mode, loss=loss, eval_metric_ops={"loss": ks.metrics.mean(loss)})
    with pytest.raises(InvalidArgumentError, match='metric named "loss"'):
        Estimator(bad_metric_fn, model_dir=str(tmp_path / "m")).evaluate(lambda: ({"x": x}, y))
    with pytest.raises(InvalidArgumentError, match="EstimatorSpec"):
        Estimator(lambda features, labels, mode: None, model_dir=str(tmp_path / "n")).train(
            lambda: ({"x": x}, y), steps=1)


def test_nan_loss_stops_training_with_an_error(tmp_path):
    x, y = _data(20)
    y = y.copy()
    y[3] = np.nan
    with pytest.raises(ks.estimators.NanLossDuringTrainingError, match="NaN"):
        _est(tmp_path).train(lambda: ({"x": x}, y), steps=3)


class _Crash(Exception):
    pass


class _CrashAt(ks.estimators.SessionRunHook):
    """Raises after `n` steps: a train() call that dies without its final checkpoint."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def after_run(self, run_context, run_values):
        self.seen += 1
        if self.seen == self.n:
            raise _Crash()


def _input_kinds(x, y):
    from kestimator.data import Dataset

    def dataset():       # resumed through the iterator state recorded in the checkpoint
        return Dataset.from_tensor_slices(({"x": x}, y)).shuffle(64, seed=3).batch(8).repeat()

    def generator():     # a deterministic generator: resumed by re-reading the consumed batches
        rng = np.random.default_rng(5)
        while True:
            idx = rng.permutation(len(x))[:8]
            yield {"x": x[idx]}, y[idx]
    return {"numpy": _train_fn(x, y, batch=8), "dataset": dataset, "generator": generator}


@pytest.mark.parametrize("kind", ["numpy", "dataset", "generator"])
def test_interrupted_train_resumes_at_the_same_input_position(tmp_path, kind):
    x, y = _data(64)
    fn = _input_kinds(x, y)[kind]
    ref = _est(tmp_path / "ref", save_checkpoints_steps=4, tf_random_seed=1)
    ref.train(fn, max_steps=30)
    est = _est(tmp_path / "run", save_checkpoints_steps=4, tf_random_seed=1)
    with pytest.raises(_Crash):
        est.train(fn, max_steps=30, hooks=[_CrashAt(14)])      # dies after step 14; newest checkpoint: 12
    assert est.get_variable_value("global_step") == 12
    est.train(fn, max_steps=30)
    np.testing.assert_array_equal(est.get_variable_value("w"), ref.get_variable_value("w"))
    np.testing.assert_array_equal(est.get_variable_value("b"), ref.get_variable_value("b"))
    # a new call with a different target starts its input from the beginning, as TF does
    est.train(fn, steps=1)
    assert est.get_variable_value("global_step") == 31


def test_evaluate_steps_and_checkpoint_path(tmp_path):
    x, y = _data(100)
    est = _est(tmp_path, save_checkpoints_steps=5)
    est.train(_train_fn(x, y), steps=10)
    first = ks.estimators.list_checkpoints(str(tmp_path))[1]      # step 5 (step 0 is the first)
    res = est.evaluate(numpy_input_fn({"x": x}, y, batch_size=10, shuffle=False), steps=2, checkpoint_path=first)
    assert res["global_step"] == 5
    full = est.evaluate(numpy_input_fn({"x": x[:20]}, y[:20], batch_size=10, shuffle=False), checkpoint_path=first)
    np.testing.assert_allclose(res["loss"], full["loss"], rtol=1e-6)   # 2 steps of 10 = the first 20 rows


def test_train_op_that_does_not_count_steps_is_an_error(tmp_path):
    x, y = _data(20)

    def model_fn(features, labels, mode):
        w = ke.get_variable("w", [3, 1])
        loss = ks.losses.mean_squared_error(labels, ke.reshape(ke.matmul(features["x"], w), [-1]))
        return EstimatorSpec(mode, loss=loss, train_op=ks.optimizers.SGD(0.1).minimize(loss))   # no global_step
    with pytest.raises(InvalidArgumentError, match="did not increment the global step"):
        Estimator(model_fn, model_dir=str(tmp_path)).train(lambda: ({"x": x}, y), steps=5)
