"""Boosted-trees programs the MPI tests launch: `mpiexec -n N python bt_mpi_worker.py SCENARIO OUTDIR`.

Every rank writes what the test checks into OUTDIR (rank<r>_<scenario>.npz / .json). `fit_core` and
`make_tree_data` are also imported by the tests to build the one-process reference on all rows.
"""
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))   # the repository root: import kestimator

import kestimator.distributed as kd  # noqa: E402

# epsilon 0.05 -> a 1,521-row quantile sample (binning.quantile_sample_size), fewer than the rows: the
# distributed bin-edge sample is exercised, not bypassed.
CORE_PARAMS = dict(n_trees=12, max_depth=4, learning_rate=0.3, l2_regularization=1.0, min_node_weight=0.5,
                   quantile_sketch_epsilon=0.05, center_bias=True, categorical_features=[6], random_state=3)


def make_tree_data(n=4000, seed=0):
    """6 numeric columns (5% NaN), one categorical id column (0..4, -1 missing); binary and 3-class labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 7))
    x[:, 6] = rng.integers(-1, 5, n)
    y2 = ((x[:, 0] + 0.5 * x[:, 1] ** 2 + (x[:, 6] == 2) + 0.3 * rng.normal(size=n)) > 0.8).astype(np.int64)
    y3 = np.digitize(x[:, 2] + x[:, 3] * (x[:, 6] > 1), [-0.5, 0.6]).astype(np.int64)
    x[:, :6][rng.random((n, 6)) < 0.05] = np.nan
    return x, y2, y3


def fit_core(x, y, n_classes, collectives=None, global_rows=None):
    from kestimator.estimators.boosted_trees import GradientBoostedTrees
    model = GradientBoostedTrees(n_classes=n_classes, **CORE_PARAMS)
    return model.fit(x, y, collectives=collectives, global_rows=global_rows)


def state_arrays(model):
    return {k: v for k, v in model.get_state().items() if isinstance(v, np.ndarray)}


def scenario_core(outdir):
    """Binary on consecutive row blocks; 3-class on strided shards (rows rank::size, global_rows given)."""
    from kestimator.estimators.boosted_trees.distributed import TreeCollectives
    r, n = kd.rank(), kd.size()
    x, y2, y3 = make_tree_data()
    stats = {}
    block = np.array_split(np.arange(len(y2)), n)[r]
    comm = TreeCollectives()
    binary = fit_core(x[block], y2[block], 2, comm)
    stats["binary"] = {"calls": comm.histogram_calls, "bytes": comm.histogram_bytes, "rows": int(block.size)}
    rows = np.arange(r, len(y3), n)
    comm = TreeCollectives()
    softmax = fit_core(x[rows], y3[rows], 3, comm, global_rows=rows)
    stats["softmax"] = {"calls": comm.histogram_calls, "rows": int(rows.size)}
    for tag, model in (("binary", binary), ("softmax", softmax)):
        np.savez(os.path.join(outdir, f"rank{r}_{tag}.npz"), **state_arrays(model))
    with open(os.path.join(outdir, f"rank{r}_core.json"), "w") as f:
        json.dump(stats, f)


def estimator_columns():
    import kestimator as ks
    fc = ks.feature_column
    return [fc.numeric_column("x", shape=[6]),
            fc.indicator_column(fc.categorical_column_with_identity("k", 5, default_value=None))]


ESTIMATOR_PARAMS = dict(n_trees=8, max_depth=3, learning_rate=0.3, l2_regularization=1.0,
                        quantile_sketch_epsilon=0.05)


def estimator_features(x):
    return {"x": x[:, :6].astype(np.float32), "k": x[:, 6].astype(np.int64)}


def scenario_estimator(outdir):
    """BoostedTreesClassifier with RunConfig(train_distribute=MultiWorkerMirroredStrategy()), one model_dir."""
    import kestimator as ks
    r = kd.rank()
    x, y2, _ = make_tree_data()
    config = ks.estimators.RunConfig(train_distribute=ks.distributed.MultiWorkerMirroredStrategy(),
                                     save_checkpoints_steps=4)
    est = ks.estimators.BoostedTreesClassifier(estimator_columns(), model_dir=os.path.join(outdir, "model"),
                                               config=config, **ESTIMATOR_PARAMS)
    saves = []
    original = est._checkpoints.save
    est._checkpoints.save = lambda *a, **k: saves.append(a[0]) or original(*a, **k)
    est.train(ks.estimators.inputs.numpy_input_fn(estimator_features(x), y2, batch_size=len(y2), num_epochs=1,
                                                  shuffle=False))
    with open(os.path.join(outdir, f"rank{r}_estimator.json"), "w") as f:
        json.dump({"saves": saves, "histogram_calls": est._tree_collectives.histogram_calls}, f)


def scenario_estimator_ctx(outdir):
    """As scenario_estimator, with an input_fn(input_context) that reads only its block of consecutive rows."""
    import kestimator as ks
    r = kd.rank()
    x, y2, _ = make_tree_data()
    seen = []

    def input_fn(input_context):
        seen.append([input_context.input_pipeline_id, input_context.num_input_pipelines])
        block = np.array_split(np.arange(len(y2)), input_context.num_input_pipelines)[input_context.input_pipeline_id]
        return ks.estimators.inputs.numpy_input_fn(estimator_features(x[block]), y2[block], batch_size=len(block),
                                                   num_epochs=1, shuffle=False)()

    config = ks.estimators.RunConfig(train_distribute=ks.distributed.MultiWorkerMirroredStrategy())
    est = ks.estimators.BoostedTreesClassifier(estimator_columns(), model_dir=os.path.join(outdir, "model_ctx"),
                                               config=config, **ESTIMATOR_PARAMS)
    est.train(input_fn)
    with open(os.path.join(outdir, f"rank{r}_estimator_ctx.json"), "w") as f:
        json.dump({"contexts": seen, "histogram_calls": est._tree_collectives.histogram_calls}, f)


CLI_ARGS = ["--set", "estimator.BoostedTreesClassifier.n_trees=20", "--set", "train.max_steps=20"]


def cli_train(run_dir):
    """`kestimator train configs/boosted_trees_cancer.yaml` (20 trees) into run_dir; returns the exit code."""
    from kestimator.cli.main import main
    config = os.path.join(os.path.dirname(os.path.dirname(HERE)), "configs", "boosted_trees_cancer.yaml")
    return main(["train", config, "--output", run_dir, *CLI_ARGS])


def scenario_cli(outdir):
    """The command, data-parallel because mpiexec launched it (the CLI picks MultiWorkerMirroredStrategy)."""
    code = cli_train(os.path.join(outdir, "run"))
    if code != 0:
        raise SystemExit(code)


def scenario_bench(outdir):
    """Timing for benchmarks/distributed.py: the BENCHMARKS.md problem's shape, scaled by argv[3] rows."""
    from kestimator.estimators.boosted_trees import GradientBoostedTrees
    from kestimator.estimators.boosted_trees.distributed import TreeCollectives
    n_rows = int(sys.argv[3]) if len(sys.argv) > 3 else 200_000
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n_rows, 20))
    y = ((x[:, :5].sum(axis=1) + 0.5 * rng.normal(size=n_rows)) > 0).astype(np.int64)
    r, n = kd.rank(), kd.size()
    block = np.array_split(np.arange(n_rows), n)[r]
    comm = TreeCollectives()
    kd.barrier(name="bench start")
    t0 = time.perf_counter()
    GradientBoostedTrees(n_trees=20, max_depth=6, learning_rate=0.1).fit(x[block], y[block], collectives=comm)
    seconds = time.perf_counter() - t0
    with open(os.path.join(outdir, f"rank{r}_bench.json"), "w") as f:
        json.dump({"seconds": seconds, "histogram_seconds": comm.histogram_seconds,
                   "histogram_calls": comm.histogram_calls, "histogram_bytes": comm.histogram_bytes,
                   "other_seconds": comm.other_seconds, "size": n}, f)


if __name__ == "__main__":
    kd.init()
    globals()[f"scenario_{sys.argv[1]}"](sys.argv[2])
