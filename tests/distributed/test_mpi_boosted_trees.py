"""Boosted trees on 2 MPI ranks (each holding a shard of the rows) against the one-process fit on all rows.

References: GradientBoostedTrees / BoostedTreesClassifier run on all rows in this pytest process (no
launcher: rank 0 of 1). Split structure (features, bins, thresholds, children, default directions) must be
identical; sums (leaf values, gains, hessians) are compared at rtol 1e-12: each rank sums its rows' float32
gradients in float64 and the allreduce adds the two partial sums, a different order than one process
adding all rows, so the last bits may differ (on this data they happen not to: float64 holds these sums of
float32 values exactly, so the test sees equal values, but only the tolerance is promised).
"""
import json

import numpy as np
import pytest

from . import _mpi, bt_mpi_worker as worker

STRUCTURE = ["bin_edges", "bin_edge_offsets", "n_bins", "feature_kinds", "tree_node_offsets", "tree_output",
             "node_feature", "node_bin", "node_threshold", "node_default_left", "node_is_categorical",
             "node_left", "node_right", "node_count"]
SUMS = ["baseline", "node_value", "node_gain", "node_hessian"]


def _run(n, scenario, outdir, timeout=120):
    res = _mpi.run_worker(n, scenario, outdir, timeout=timeout, worker=worker.__file__)
    assert res.returncode == 0, res
    return res


def _npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def core_run(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("mpi_bt_core")
    _run(2, "core", outdir)
    return outdir


@pytest.mark.parametrize("tag,n_classes", [("binary", 2), ("softmax", 3)])
def test_two_ranks_grow_the_one_process_ensemble(core_run, tag, n_classes):
    """binary: rows in consecutive blocks; softmax (3 classes, one tree per class per round): rows r::2 with
    their global row numbers. 4,000 rows > the 1,521-row quantile sample, so the edges come from the
    sample gathered on rank 0 and broadcast, and must equal the one-process sample's."""
    x, y2, y3 = worker.make_tree_data()
    ref = worker.state_arrays(worker.fit_core(x, y2 if n_classes == 2 else y3, n_classes))
    rank0, rank1 = _npz(core_run / f"rank0_{tag}.npz"), _npz(core_run / f"rank1_{tag}.npz")
    assert sorted(rank0) == sorted(ref)
    for key in ref:
        assert rank0[key].tobytes() == rank1[key].tobytes(), key        # every rank holds the same ensemble
    for key in STRUCTURE:
        np.testing.assert_array_equal(rank0[key], ref[key], err_msg=key)
    for key in SUMS:
        np.testing.assert_allclose(rank0[key], ref[key], rtol=1e-12, atol=1e-12, err_msg=key)
    assert ref["node_feature"].size > 12 * n_classes * 8     # real trees, not stumps (rounds x classes x nodes)
    assert np.any(ref["node_is_categorical"]) and np.any(ref["node_default_left"] & (ref["node_left"] >= 0))


def test_one_histogram_allreduce_per_tree_level(core_run):
    """max_depth 4: the root's histogram, then one fused array per level for levels 1-3 (the last level's
    nodes are leaves): 4 allreduces a tree; 12 trees (binary), 36 trees (3 classes x 12 rounds)."""
    for rank in (0, 1):
        stats = json.loads((core_run / f"rank{rank}_core.json").read_text())
        assert stats["binary"]["calls"] == 12 * 4
        assert stats["softmax"]["calls"] == 36 * 4
        assert stats["binary"]["rows"] == stats["softmax"]["rows"] == 2000


def test_estimator_under_multi_worker_strategy(tmp_path):
    """RunConfig(train_distribute=MultiWorkerMirroredStrategy()): each rank keeps rows r::2 of the input,
    only rank 0 writes the checkpoints (steps 4 and 8), and the checkpointed model predicts exactly what
    the one-process estimator trained on all rows predicts."""
    _run(2, "estimator", tmp_path)
    stats = [json.loads((tmp_path / f"rank{r}_estimator.json").read_text()) for r in (0, 1)]
    assert stats[0]["saves"] == [4, 8] and stats[1]["saves"] == []
    assert stats[0]["histogram_calls"] == stats[1]["histogram_calls"] == 8 * 3
    _assert_same_estimator(tmp_path / "model", tmp_path / "ref")


def test_estimator_with_an_input_context_input_fn(tmp_path):
    """An input_fn(input_context) gets rank r of 2 and reads only its block of consecutive rows; the
    ensemble is again the one-process ensemble on all rows."""
    _run(2, "estimator_ctx", tmp_path)
    for rank in (0, 1):
        stats = json.loads((tmp_path / f"rank{rank}_estimator_ctx.json").read_text())
        assert stats["contexts"] == [[rank, 2]] and stats["histogram_calls"] == 8 * 3
    _assert_same_estimator(tmp_path / "model_ctx", tmp_path / "ref")


def _assert_same_estimator(model_dir, ref_dir):
    import kestimator as ks
    x, y2, _ = worker.make_tree_data()
    feats = worker.estimator_features(x)

    def input_fn(y=None):
        return ks.estimators.inputs.numpy_input_fn(feats, y, batch_size=len(x), num_epochs=1, shuffle=False)

    ref = ks.estimators.BoostedTreesClassifier(worker.estimator_columns(), model_dir=str(ref_dir),
                                               **worker.ESTIMATOR_PARAMS)
    ref.train(input_fn(y2))
    dist = ks.estimators.BoostedTreesClassifier(worker.estimator_columns(), model_dir=str(model_dir),
                                                **worker.ESTIMATOR_PARAMS)
    assert dist.get_variable_value("global_step") == 8
    for key in ("boosted_trees/node_feature", "boosted_trees/node_threshold", "boosted_trees/node_left",
                "boosted_trees/bin_edges"):
        np.testing.assert_array_equal(dist.get_variable_value(key), ref.get_variable_value(key), err_msg=key)
    got = next(dist.predict(input_fn(), yield_single_examples=False))["logits"]
    want = next(ref.predict(input_fn(), yield_single_examples=False))["logits"]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_the_strategy_in_a_one_process_run_changes_nothing(tmp_path):
    """No launcher: rank 0 of 1, the collectives return at once and the checkpoint equals a plain run's."""
    import kestimator as ks
    x, y2, _ = worker.make_tree_data(n=600)
    feats = worker.estimator_features(x)
    runs = {}
    for name, config in (("plain", None), ("strategy", ks.estimators.RunConfig(
            train_distribute=ks.distributed.MultiWorkerMirroredStrategy()))):
        est = ks.estimators.BoostedTreesClassifier(worker.estimator_columns(), model_dir=str(tmp_path / name),
                                                   config=config, **worker.ESTIMATOR_PARAMS)
        est.train(ks.estimators.inputs.numpy_input_fn(feats, y2, batch_size=600, num_epochs=1, shuffle=False))
        runs[name] = est
    assert runs["strategy"]._tree_collectives.histogram_calls == 0
    for key in ("boosted_trees/node_value", "boosted_trees/node_feature", "boosted_trees/bin_edges"):
        np.testing.assert_array_equal(runs["strategy"].get_variable_value(key), runs["plain"].get_variable_value(key))


def test_kestimator_train_under_mpiexec(tmp_path, capsys):
    """`mpiexec -n 2 ... kestimator train configs/boosted_trees_cancer.yaml` trains data-parallel (the log says
    so) and ends with the one-process command's model: the same checkpointed trees and eval metrics."""
    res = _run(2, "cli", tmp_path)
    assert "data-parallel on 2 MPI ranks" in res.output
    assert worker.cli_train(str(tmp_path / "one")) == 0
    two = json.loads((tmp_path / "run" / "metrics.json").read_text())["eval"]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["eval"]
    assert two.keys() == one.keys() and two["global_step"] == one["global_step"] == 20
    for key in one:
        assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-9), key
    import kestimator as ks
    a = ks.estimators.BoostedTreesClassifier([ks.feature_column.numeric_column("x", shape=[30])],
                                             model_dir=str(tmp_path / "run"))
    b = ks.estimators.BoostedTreesClassifier([ks.feature_column.numeric_column("x", shape=[30])],
                                             model_dir=str(tmp_path / "one"))
    for key in ("boosted_trees/node_feature", "boosted_trees/node_threshold", "boosted_trees/bin_edges"):
        np.testing.assert_array_equal(a.get_variable_value(key), b.get_variable_value(key), err_msg=key)
