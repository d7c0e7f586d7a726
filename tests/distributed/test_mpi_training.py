"""Data-parallel training and collectives on real MPI ranks (mpiexec -n 2, and -n 4 oversubscribed).

References: the one-process run of the same program in this pytest process (no launcher: rank 0 of 1),
NumPy arithmetic on the per-rank inputs, and the checkpoint file read back here.
"""
import json

import numpy as np
import pytest

from . import _mpi

VARIABLES = ["w1", "b1", "w2", "b2", "global_step", "Adam/iterations", "Adam/learning_rate",
             "w1/m", "w1/v", "b1/m", "b1/v", "w2/m", "w2/v", "b2/m", "b2/v"]


def _load(outdir, rank, tag):
    with np.load(outdir / f"rank{rank}_{tag}.npz") as z:
        return {k.replace("|", "/"): z[k] for k in z.files}


@pytest.fixture(scope="module")
def two_rank_training(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("mpi_train")
    res = _mpi.run_worker(2, "train", outdir)
    assert res.returncode == 0, res
    return outdir


@pytest.fixture(scope="module")
def one_process_reference():
    from . import mpi_worker
    return {"plain": mpi_worker.train_mlp(), "fp16": mpi_worker.train_mlp(compression="fp16", bucket_bytes=64 << 20),
            "passes2": mpi_worker.train_mlp(steps=8, passes=2)}


@pytest.mark.parametrize("tag", ["plain", "fp16", "passes2"])
def test_ranks_end_with_bit_identical_variables(two_rank_training, tag):
    """Different random initial weights per rank (seed 100 + rank), broadcast from rank 0, then 12 Adam
    steps on different data: every variable (weights, slots, counters) must be identical to the bit."""
    a, b = _load(two_rank_training, 0, tag), _load(two_rank_training, 1, tag)
    assert sorted(VARIABLES) == sorted(k for k in a if k != "stats")
    for name in VARIABLES:
        assert a[name].tobytes() == b[name].tobytes(), name


def test_two_ranks_with_half_batches_match_one_process_with_the_global_batch(two_rank_training,
                                                                              one_process_reference):
    """Rank r feeds rows r::2 of each 32-row global batch, so the averaged gradient is the gradient of the
    32-row mean loss; after 12 steps the variables equal the one-process run's up to float32 rounding
    (sum order differs: 1e-5 relative)."""
    got, ref = _load(two_rank_training, 0, "plain"), one_process_reference["plain"]
    assert got["Adam/iterations"] == ref["Adam/iterations"] == 12
    for name in VARIABLES:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert not np.allclose(got["w1"], _load(two_rank_training, 0, "passes2")["w1"])   # the runs differ


def test_gradients_travel_in_fused_buckets(two_rank_training):
    """387 float32 parameters (20*16 + 16 + 16*3 + 3) in 1024-byte buckets -> 256 + 131 elements: two
    allreduce messages per step, 12 steps -> 24 messages (not one per tensor: that would be 48)."""
    calls, messages, buckets = _load(two_rank_training, 0, "plain")["stats"]
    assert (calls, messages, buckets) == (12, 24, 2)


def test_fp16_compression_stays_close_to_float32(two_rank_training, one_process_reference):
    """float16 carries ~11 bits: gradients round at 5e-4 relative; after 12 Adam steps of lr 0.01 the
    weights stay within 5e-4 of the uncompressed one-process run (seen here: 3e-5)."""
    got, ref = _load(two_rank_training, 0, "fp16"), one_process_reference["fp16"]
    for name in ("w1", "b1", "w2", "b2"):
        np.testing.assert_allclose(got[name], ref[name], atol=5e-4, err_msg=name)
    assert _load(two_rank_training, 0, "fp16")["stats"][1] == 12      # one 64 MB bucket per step


def test_backward_passes_per_step_accumulates_before_one_update(two_rank_training, one_process_reference):
    """8 calls with backward_passes_per_step=2: 4 updates (iterations), each with the average over 2 ranks
    x 2 passes x 16 rows = the mean over 64 rows, as one process with 2 passes of 32 rows."""
    got, ref = _load(two_rank_training, 0, "passes2"), one_process_reference["passes2"]
    assert got["Adam/iterations"] == 4 and got["global_step"] == 8
    assert tuple(got["stats"][:2]) == (4, 8)
    for name in VARIABLES:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_four_ranks_oversubscribed_collectives_and_training(tmp_path):
    """4 ranks on this machine's 2 cores. Expected values are computed here from each rank's inputs."""
    res = _mpi.run_worker(4, "collectives", tmp_path)
    assert res.returncode == 0, res
    n = 4
    base = np.arange(6, dtype=np.float64).reshape(2, 3)
    outs = [json.loads((tmp_path / f"rank{r}_collectives.json").read_text()) for r in range(n)]
    for r, out in enumerate(outs):
        assert (out["rank"], out["size"], out["local_rank"], out["local_size"]) == (r, n, r, n)
        np.testing.assert_array_equal(out["sum"], base * sum(k + 1 for k in range(n)))       # x (1+2+3+4)
        np.testing.assert_allclose(out["average"], base * 2.5)                             # 10 / 4
        assert out["max"] == [3, 0] and out["min"] == [0, -3]
        assert out["inplace"] == [True, [6.0] * 4]                                          # 0+1+2+3
        assert out["scalar"] == 8.0                                                          # 0.5+1.5+2.5+3.5
        assert out["bcast_obj"] == [1235, "rank1", 2001]                                     # root 1's dict
        assert out["bcast_arr"] == ["<i2", [0, 1, 2, 3, 4]]                                  # root 0's int16
        assert out["bad_inplace"] == ("no error" if r == 0 else
                                      f"broadcast <unnamed>: rank 0 sends float32 (3,), the in-place buffer on "
                                      f"rank {r} is float32 (4,)")
        # rank k contributes k+1 rows of value k
        assert out["gather"] == [[k, k] for k in range(n) for _ in range(k + 1)]
        assert out["gather_obj"] == [{"r": k, "arr": [float(k)] * 2} for k in range(n)]
        assert out["equal_steps"] == 10                                                      # min(10 + 3k)
        assert out["files"] == [f"part-{i:02d}.rec" for i in range(7)][r::n]
        assert out["seed"] == 42                                                             # root's seed
        # loss = mean(1, 2, 3, 4); acc = mean(0, .5, 1, 1.5); strings untouched
        assert out["logs"] == {"loss": 2.5, "acc": 0.75, "name": "text"}
        assert out["chief"] == "written by 0"
    ranks = [_load(tmp_path, r, "plain") for r in range(n)]
    from . import mpi_worker
    ref = mpi_worker.train_mlp(steps=6)
    for name in VARIABLES:
        for r in range(1, n):
            assert ranks[r][name].tobytes() == ranks[0][name].tobytes(), (name, r)
        np.testing.assert_allclose(ranks[0][name], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_broadcast_after_restore_gives_every_rank_the_checkpoint(tmp_path):
    """Rank 0 trains 3 steps and saves; all ranks rebuild from different seeds, only rank 0 restores,
    then BroadcastGlobalVariablesHook.after_create_session: every rank holds the checkpoint's weights,
    Adam slots and counters (compared with the file read back here)."""
    res = _mpi.run_worker(2, "restore", tmp_path)
    assert res.returncode == 0, res
    from kestimator.engine import train
    path = (tmp_path / "checkpoint_path.txt").read_text()
    saved = dict((name, train.load_variable(path, name)) for name, _ in train.list_variables(path))
    assert int(saved["Adam/iterations"]) == 3
    for r in range(2):
        got = _load(tmp_path, r, "restored")
        assert sorted(got) == sorted(saved)
        for name, value in saved.items():
            np.testing.assert_array_equal(got[name], value, err_msg=f"rank {r} {name}")


def test_keras_fit_on_two_ranks_matches_one_process_fit(tmp_path):
    """fit() with DistributedOptimizer + BroadcastGlobalVariablesCallback + MetricAverageCallback on 2 ranks
    (different initial weights, half batches) against a one-process fit of the full batches from rank 0's
    weights: same final weights, and the averaged epoch metrics equal the one-process ones (the mean of
    the two halves' means is the mean over the global batch; rounding of float32 sums: 1e-5)."""
    res = _mpi.run_worker(2, "keras", tmp_path)
    assert res.returncode == 0, res
    from . import mpi_worker
    ref_weights, ref_history = mpi_worker.fit_keras(seed=1)
    histories = [json.loads((tmp_path / f"rank{r}_history.json").read_text()) for r in range(2)]
    assert histories[0] == histories[1]
    assert sorted(histories[0]) == sorted(ref_history) == ["accuracy", "loss"]
    for key in ref_history:
        np.testing.assert_allclose(histories[0][key], ref_history[key], rtol=1e-5, err_msg=key)
    with np.load(tmp_path / "rank0_keras.npz") as z0, np.load(tmp_path / "rank1_keras.npz") as z1:
        w0 = [z0[f"arr_{i}"] for i in range(len(z0.files))]
        w1 = [z1[f"arr_{i}"] for i in range(len(z1.files))]
    assert len(w0) == len(ref_weights) == 4
    for a, b, ref in zip(w0, w1, ref_weights):
        assert a.tobytes() == b.tobytes()
        np.testing.assert_allclose(a, ref, rtol=1e-5, atol=1e-6)
