"""ArrayBatches (models/data_adapter.py): the prefetching epoch yields exactly the batches of the plain one,
hands buffers back only after the caller is done with them, and leaves no thread behind."""
import os
import threading

import numpy as np
import pytest

from kestimator.models import data_adapter as da


def _arrays(n=103):
    rng = np.random.default_rng(4)
    return [rng.standard_normal((n, 5, 3)).astype(np.float32), np.arange(n, dtype=np.int64)]


def _collect(source, epoch, start=0, steps=None):
    return [(step, [a.copy() for a in feeds]) for step, feeds in source.epoch(epoch, start, steps)]


@pytest.mark.parametrize("start,steps", [(0, None), (3, None), (0, 25)], ids=["epoch", "resumed", "cycling"])
def test_prefetched_batches_equal_the_plain_ones(start, steps):
    plain = da.ArrayBatches(_arrays(), 8, shuffle=True, seed=9)
    ahead = da.ArrayBatches(_arrays(), 8, shuffle=True, seed=9)
    ahead.prefetch = True
    for epoch in (0, 1):
        want, got = _collect(plain, epoch, start, steps), _collect(ahead, epoch, start, steps)
        assert [s for s, _ in got] == [s for s, _ in want]
        for (_, g), (_, w) in zip(got, want):
            for a, b in zip(g, w):
                np.testing.assert_array_equal(a, b)
    # 103 rows in batches of 8: 12 full batches and one of 7; every row once per epoch
    rows = np.concatenate([f[1] for _, f in _collect(ahead, 2)])
    assert sorted(rows.tolist()) == list(range(103))


def test_a_batch_is_not_overwritten_while_the_caller_holds_it():
    ahead = da.ArrayBatches(_arrays(200), 10, shuffle=True, seed=1)
    ahead.prefetch = True
    it = ahead.epoch(0)
    _, first = next(it)
    snapshot = [a.copy() for a in first]
    threading.Event().wait(0.05)   # give the worker time: it may fill the other buffer set, not this one
    for a, b in zip(first, snapshot):
        np.testing.assert_array_equal(a, b)
    it.close()


def test_stopping_early_ends_the_worker_thread():
    ahead = da.ArrayBatches(_arrays(400), 4, shuffle=True, seed=2)
    ahead.prefetch = True
    before = {t.ident for t in threading.enumerate()}
    it = ahead.epoch(0)
    for _ in range(3):
        next(it)
    it.close()
    left = [t for t in threading.enumerate() if t.ident not in before and t.name == "kestimator-batch-prefetch"]
    assert left == []


def test_an_error_in_the_worker_reaches_the_caller(monkeypatch):
    ahead = da.ArrayBatches(_arrays(), 8, shuffle=True, seed=3)
    ahead.prefetch = True

    def broken(self, perm, step, out):
        raise MemoryError(f"gathering step {step}")
    monkeypatch.setattr(da.ArrayBatches, "_gather", broken)
    with pytest.raises(MemoryError, match="gathering step 0"):
        list(ahead.epoch(0))


def test_prefetch_is_off_by_default():
    x = np.zeros((1000, 784), np.float32)
    assert da.PREFETCH_MIN_BYTES is None
    assert not da.ArrayBatches([x], 256, shuffle=True).prefetch_pays()


def test_prefetch_pays_for_big_shuffled_batches_only(monkeypatch):
    monkeypatch.setattr(da, "PREFETCH_MIN_BYTES", 256 << 10)
    x = np.zeros((1000, 784), np.float32)   # 3,136 bytes a row
    assert da.ArrayBatches([x], 256, shuffle=True).prefetch_pays() == ((os.cpu_count() or 1) > 1)
    assert not da.ArrayBatches([x], 32, shuffle=True).prefetch_pays()    # 100 KB < 256 KB
    assert not da.ArrayBatches([x], 256, shuffle=False).prefetch_pays()  # slices need no gather
