"""Intra-op chunking: the ranges cover the batch once, chunks run on other threads, errors wait for all chunks."""
import threading
import time

import pytest

from kestimator.engine import intra_op


@pytest.fixture
def three_workers():
    intra_op.set_workers(3)
    yield
    intra_op.set_workers(1)


@pytest.mark.parametrize("n,parts", [(1, 3), (2, 3), (7, 3), (9, 3), (64, 2), (5, 1), (0, 2)])
def test_bounds_cover_every_item_once_in_order_with_sizes_within_one(n, parts):
    ranges = intra_op.bounds(n, parts)
    covered = [i for lo, hi in ranges for i in range(lo, hi)]
    assert covered == list(range(n))
    sizes = [hi - lo for lo, hi in ranges]
    assert max(sizes) - min(sizes) <= 1 and len(ranges) == max(1, min(parts, n))


def test_chunks_run_on_worker_threads_and_come_back_in_order(three_workers):
    seen = []

    def chunk(lo, hi):
        seen.append(threading.current_thread().name)
        return (lo, hi)
    assert intra_op.run_chunks(chunk, 8) == [(0, 3), (3, 6), (6, 8)]
    assert threading.current_thread().name in seen
    assert sum(name.startswith("kestimator-intra-op") for name in seen) == 2


def test_off_by_default_or_when_not_enabled():
    calls = []
    assert intra_op.workers() == 1
    intra_op.run_chunks(lambda lo, hi: calls.append((lo, hi)), 10)
    intra_op.set_workers(2)
    try:
        intra_op.run_chunks(lambda lo, hi: calls.append((lo, hi)), 10, enabled=False)
    finally:
        intra_op.set_workers(1)
    assert calls == [(0, 10), (0, 10)]


@pytest.mark.parametrize("failing", [0, 2])
def test_an_error_in_any_chunk_is_raised_after_every_chunk_has_finished(three_workers, failing):
    finished = []

    def chunk(lo, hi):
        if lo == intra_op.bounds(9, 3)[failing][0]:
            raise ValueError(f"chunk at {lo}")
        time.sleep(0.05)
        finished.append(lo)
    with pytest.raises(ValueError, match="chunk at"):
        intra_op.run_chunks(chunk, 9)
    assert len(finished) == 2   # the other two chunks were not abandoned mid-write


def test_a_chunk_that_splits_again_runs_whole_instead_of_waiting_on_itself(three_workers):
    inner = []

    def chunk(lo, hi):
        inner.append(intra_op.run_chunks(lambda a, b: (a, b), 4))
        return lo
    assert intra_op.run_chunks(chunk, 6) == [0, 2, 4]
    # the caller's own chunk may split (its thread is not a worker); the workers' chunks run whole
    assert sorted(inner, key=len)[:2] == [[(0, 4)], [(0, 4)]]


def test_callers_on_several_threads_each_get_their_own_chunks_back(three_workers):
    results, errors = {}, []

    def caller(tag):
        try:
            for _ in range(200):
                got = intra_op.run_chunks(lambda lo, hi: (tag, lo, hi), 9)
                assert [g[0] for g in got] == [tag] * len(got)
                assert [i for _, lo, hi in got for i in range(lo, hi)] == list(range(9))
            results[tag] = True
        except BaseException as e:   # noqa: B902 - reported by the main thread
            errors.append(e)
    threads = [threading.Thread(target=caller, args=(tag,)) for tag in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork is POSIX-only")
def test_a_forked_child_runs_chunks_itself_instead_of_waiting_on_the_parents_threads(three_workers):
    import os
    intra_op.run_chunks(lambda lo, hi: None, 6)   # the parent's worker threads exist now
    pid = os.fork()
    if pid == 0:   # the child: its copy of the worker list names threads that do not run here
        ok = False
        try:
            ok = intra_op.workers() == 1 and intra_op.run_chunks(lambda lo, hi: (lo, hi), 6) == [(0, 6)]
            intra_op.set_workers(2)   # and splitting again starts threads of its own
            ok = ok and intra_op.run_chunks(lambda lo, hi: (lo, hi), 6) == [(0, 3), (3, 6)]
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
