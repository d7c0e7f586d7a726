"""Programs for the integration tests: the SAME user code as a one-process run, launched with
`mpiexec -n N python mpi_integration.py SCENARIO OUTDIR`. The functions are also called by the tests in the
pytest process (no launcher: rank 0 of 1) to compute the one-process reference.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))   # the repository root: import kestimator

import kestimator.distributed as kd  # noqa: E402
from kestimator.estimators.hooks import SessionRunHook  # noqa: E402

N_IN, N_HID, N_OUT = 20, 16, 3


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_IN)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.int64) + (x[:, 3] > 1).astype(np.int64)
    return x, y


def fit_with_strategy(outdir, init_seed=None, numpy_seed=None):
    """Plain Keras code under MultiWorkerMirroredStrategy: compile in scope, fit with the GLOBAL batch 32,
    shuffled, with validation data, a CSVLogger, then evaluate and predict.

    Ranks start from different weights (initializer seed 1 + rank) and different NumPy global seeds
    (shuffle seed: 500 + rank) unless given: the chief's must win. Returns a JSON-able dict.
    """
    from kestimator import initializers, keras, optimizers
    r = kd.rank()
    np.random.seed(500 + r if numpy_seed is None else numpy_seed)
    seed = 1 + r if init_seed is None else init_seed
    x, y = make_data(256, seed=3)
    xv, yv = make_data(101, seed=4)
    strategy = kd.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((N_IN,)),
            keras.layers.Dense(N_HID, activation="relu", kernel_initializer=initializers.GlorotUniform(seed=seed)),
            keras.layers.Dense(N_OUT, activation="softmax",
                               kernel_initializer=initializers.GlorotUniform(seed=seed + 50))])
        model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=3, shuffle=True, verbose=2, validation_data=(xv, yv),
                        validation_batch_size=50,
                        callbacks=[keras.callbacks.CSVLogger(os.path.join(outdir, "fit_log.csv"))])
    evaluated = model.evaluate(xv, yv, batch_size=50, verbose=0, return_dict=True)
    predicted = model.predict(xv[:7], verbose=0)
    return {"weights": [np.asarray(w).tolist() for w in model.get_weights()], "history": history.history,
            "evaluate": evaluated, "predict": np.asarray(predicted).tolist(),
            "optimizer": type(model.optimizer).__name__,
            "distributed_optimizer": isinstance(model.optimizer, kd.DistributedOptimizer)}


def fit_backup_and_resume(outdir, init_seed=None, numpy_seed=None):
    """fit 2 epochs with BackupAndRestore(delete_checkpoint=False), then a NEW model (other initial
    weights) fits to epoch 4 with the same backup folder: only the chief reads the backup; its weights,
    Adam state and resume point (epoch 2) must reach every rank. Returns (weights, history of the 2nd fit)."""
    from kestimator import callbacks, initializers, keras, optimizers
    r = kd.rank()
    np.random.seed(700 + r if numpy_seed is None else numpy_seed)
    x, y = make_data(128, seed=8)
    strategy = kd.MultiWorkerMirroredStrategy()
    backup = os.path.join(outdir, "backup")
    histories, model = [], None
    for i, epochs in enumerate((2, 4)):
        seed = (1 + r if init_seed is None else init_seed) + 10 * i
        with strategy.scope():
            model = keras.Sequential([keras.Input((N_IN,)), keras.layers.Dense(
                N_OUT, activation="softmax", kernel_initializer=initializers.GlorotUniform(seed=seed))])
            model.compile(optimizer=optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
        hist = model.fit(x, y, batch_size=32, epochs=epochs, shuffle=True, verbose=0,
                         callbacks=[callbacks.BackupAndRestore(backup, delete_checkpoint=False)])
        histories.append(hist.history)
    return [np.asarray(w).tolist() for w in model.get_weights()], histories


def scenario_backup(outdir):
    weights, histories = fit_backup_and_resume(outdir)
    with open(os.path.join(outdir, f"rank{kd.rank()}_backup.json"), "w") as f:
        json.dump({"weights": weights, "histories": histories}, f)


def scenario_fit(outdir):
    out = fit_with_strategy(outdir)
    with open(os.path.join(outdir, f"rank{kd.rank()}_fit.json"), "w") as f:
        json.dump(out, f)


# -- Estimator ------------------------------------------------------------------------------------------------
class _ChiefMarker(SessionRunHook):
    """A training_chief_hook: writes <folder>/chief_hook_rank<r> when training ends (TF: chief only)."""

    def __init__(self, folder):
        self.folder = folder

    def end(self, session):
        with open(os.path.join(self.folder, f"chief_hook_rank{kd.rank()}"), "w") as f:
            f.write("ran")


def _model_fn(features, labels, mode, config=None):
    from kestimator import engine as ke
    from kestimator import estimators, optimizers
    x = features["x"]
    w1 = ke.get_variable("w1", [N_IN, N_HID], initializer=ke.random_normal_initializer(stddev=0.3, seed=1))
    b1 = ke.get_variable("b1", [N_HID], initializer=ke.zeros_initializer())
    w2 = ke.get_variable("w2", [N_HID, N_OUT], initializer=ke.random_normal_initializer(stddev=0.3, seed=2))
    logits = ke.matmul(ke.nn.relu(ke.matmul(x, w1) + b1), w2)
    loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    if mode == estimators.ModeKeys.EVAL:
        from kestimator.metrics import tf_metrics
        return estimators.EstimatorSpec(mode, loss=loss, eval_metric_ops={
            "accuracy": tf_metrics.accuracy(labels, ke.argmax(logits, axis=1))})
    train_op = optimizers.Adam(0.01).minimize(loss, global_step=ke.train.get_global_step())
    chief_hooks = [_ChiefMarker(config.model_dir)] if config is not None and config.model_dir else []
    return estimators.EstimatorSpec(mode, loss=loss, train_op=train_op, training_chief_hooks=chief_hooks)


def _batched_input_fn():
    """No input_context argument: the Dataset of 16-row batches is sharded for it (whole batches)."""
    from kestimator.data import Dataset
    x, y = make_data(320, seed=5)
    return Dataset.from_tensor_slices(({"x": x}, y)).batch(16).repeat()


class _KillAt(SessionRunHook):
    """Rank 1 kills itself (SIGKILL: no excepthook, no clean-up) once the global step reaches `step`."""

    def __init__(self, step):
        self.step = step

    def after_create_session(self, session, coord):
        self.session = session

    def after_run(self, run_context, run_values):
        from kestimator import engine as ke
        if kd.rank() == 1 and int(self.session.run(ke.train.get_global_step())) >= self.step:
            import signal
            os.kill(os.getpid(), signal.SIGKILL)

    def end(self, session):
        pass


def train_model_fn_estimator(model_dir, kill_at=None, max_steps=24):
    from kestimator import estimators
    config = estimators.RunConfig(model_dir=model_dir, save_checkpoints_steps=5, save_summary_steps=4,
                                  train_distribute=kd.MultiWorkerMirroredStrategy(), tf_random_seed=10 + kd.rank())
    est = estimators.Estimator(_model_fn, config=config)
    est.train(_batched_input_fn, max_steps=max_steps, hooks=[_KillAt(kill_at)] if kill_at else None)
    return est


def scenario_estimator_full(outdir):
    train_model_fn_estimator(os.path.join(outdir, "full"))


def scenario_estimator_killed(outdir):
    train_model_fn_estimator(os.path.join(outdir, "resumed"), kill_at=13)


def scenario_estimator_resume(outdir):
    train_model_fn_estimator(os.path.join(outdir, "resumed"))


def canned_input_fn(input_context=None):
    """TF's input_fn(input_context): rows i::n, batched per replica, so the ranks' i-th batches together
    are the one-process global batch of 32."""
    from kestimator.data import Dataset
    x, y = make_data(320, seed=6)
    n, i = (input_context.num_input_pipelines, input_context.input_pipeline_id) if input_context else (1, 0)
    batch = input_context.get_per_replica_batch_size(32) if input_context else 32
    return Dataset.from_tensor_slices(({"x": x}, y)).shard(n, i).batch(batch)


def train_canned(model_dir):
    """A canned DNNClassifier, 10 steps (one pass over 320 rows in global batches of 32)."""
    from kestimator import estimators, feature_column
    config = estimators.RunConfig(model_dir=model_dir, train_distribute=kd.MultiWorkerMirroredStrategy(),
                                  tf_random_seed=20 + kd.rank(), save_summary_steps=5)
    est = estimators.DNNClassifier(hidden_units=[8], feature_columns=[feature_column.numeric_column("x", (N_IN,))],
                                   n_classes=N_OUT, optimizer="Adam", config=config)
    est.train(canned_input_fn)
    return {name: est.get_variable_value(name).tolist() for name in est.get_variable_names()}


def scenario_canned(outdir):
    values = train_canned(os.path.join(outdir, "canned"))
    with open(os.path.join(outdir, f"rank{kd.rank()}_canned.json"), "w") as f:
        json.dump(values, f)


def evaluate_distributed(model_dir, eval_distribute=True):
    """Estimator.evaluate of the model in model_dir on 101 rows in batches of 8; with eval_distribute the
    Dataset is sharded for each rank (rank 0 reads batches 0, 2, ..., 12: 7 batches, 53 rows; rank 1: 6
    batches, 48 rows) and the metric variables are summed over the ranks."""
    from kestimator import estimators
    from kestimator.data import Dataset
    xe, ye = make_data(101, seed=11)
    strategy = kd.MultiWorkerMirroredStrategy() if eval_distribute else None
    config = estimators.RunConfig(model_dir=model_dir, eval_distribute=strategy)
    est = estimators.Estimator(_model_fn, config=config)
    result = est.evaluate(lambda: Dataset.from_tensor_slices(({"x": xe}, ye)).batch(8))
    return {k: float(v) for k, v in result.items()}


def scenario_evaluate(outdir):
    """Train 10 steps on 2 ranks, then a distributed evaluation on both."""
    train_model_fn_estimator(os.path.join(outdir, "evaluated"), max_steps=10)
    with open(os.path.join(outdir, f"rank{kd.rank()}_evaluate.json"), "w") as f:
        json.dump(evaluate_distributed(os.path.join(outdir, "evaluated")), f)


def scenario_train_and_evaluate(outdir):
    """All ranks train (the Dataset sharded for them); the chief evaluates after each checkpoint."""
    from kestimator import estimators
    from kestimator.data import Dataset
    xe, ye = make_data(64, seed=9)
    config = estimators.RunConfig(model_dir=os.path.join(outdir, "tae"), save_checkpoints_steps=5,
                                  train_distribute=kd.MultiWorkerMirroredStrategy(), tf_random_seed=3)
    est = estimators.Estimator(_model_fn, config=config)
    result, exports = estimators.train_and_evaluate(
        est, estimators.TrainSpec(_batched_input_fn, max_steps=10),
        estimators.EvalSpec(lambda: Dataset.from_tensor_slices(({"x": xe}, ye)).batch(32), steps=None,
                            start_delay_secs=0, throttle_secs=0))
    with open(os.path.join(outdir, f"rank{kd.rank()}_tae.json"), "w") as f:
        json.dump({"result": result, "exports": exports}, f)


if __name__ == "__main__":
    kd.init()
    globals()[f"scenario_{sys.argv[1]}"](sys.argv[2])
