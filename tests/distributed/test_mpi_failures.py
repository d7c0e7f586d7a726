"""A failing or stalled rank ends the whole job quickly, with a message that says who and why."""
from . import _mpi


def test_exception_on_one_rank_aborts_the_job_with_its_traceback(tmp_path):
    """Rank 1 raises while rank 0 waits in a collective that can never complete: the excepthook prints
    rank 1's traceback and MPI_Abort ends rank 0 too, long before any deadline (300 s by default)."""
    res = _mpi.run_worker(2, "exception", tmp_path, timeout=90)
    assert res.returncode != 0, res
    assert res.seconds < 40, res      # start-up included; the deadline would be 300 s
    assert "uncaught ValueError on rank 1 of 2" in res.output, res
    assert "[rank 1] Traceback (most recent call last):" in res.output, res
    assert "[rank 1] ValueError: deliberate failure on rank one" in res.output, res
    assert "mpi_worker.py" in res.output and "scenario_exception" in res.output, res
    assert "rank 0 passed the collective" not in res.output, res


def test_stall_inspector_names_the_missing_rank_and_the_pending_tensors(tmp_path):
    """Rank 1 sleeps instead of running the second training step; with a 2 s deadline (set once both ranks
    ran the first step; KESTIMATOR_COLLECTIVE_TIMEOUT covers start-up) rank 0's inspector reports rank 1
    as not arrived, where rank 1 is (file:line), and the gradient tensors pending."""
    res = _mpi.run_worker(2, "stall", tmp_path, timeout=90,
                          env={"KESTIMATOR_COLLECTIVE_TIMEOUT": "60", "STALL_TEST_TIMEOUT": "2"})
    assert res.returncode != 0, res
    assert res.seconds < 50, res
    out = res.output
    assert "did not complete within 2 s on rank 0" in out, res
    assert "ranks that did not arrive: [1]" in out, res
    assert "rank 0 waits in allreduce 'SGD/gradients'" in out and "w1:0, b1:0, w2:0, b2:0" in out, res
    line = next(ln for ln in out.splitlines() if ln.startswith("[rank 0]     rank 1 ("))
    assert "is not in a collective" in line and "mpi_worker.py" in line and "scenario_stall" in line, line
    assert "rank 1 finished" not in out and "rank 0 finished" not in out, res


def test_ranks_reducing_different_tensors_fail_naming_the_first_difference(tmp_path):
    """dense/bias has shape (3,) on rank 0 and (4,) on rank 1: the first reduction compares metadata and
    fails on every rank naming that tensor, before any gradient bucket is exchanged."""
    res = _mpi.run_worker(2, "metadata", tmp_path, timeout=90)
    assert res.returncode != 0, res
    assert res.seconds < 40, res
    assert ("first difference at position 1: rank 0: 'dense/bias:0' shape (3,) float32; "
            "rank 1: 'dense/bias:0' shape (4,) float32") in res.output, res
    assert "finished" not in res.output, res
