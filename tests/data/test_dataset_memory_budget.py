"""Options.memory_budget_bytes: required buffers raise, read-ahead buffers hold back.

Elements here are 10,000-byte arrays (1,250 float64), so the arithmetic is in round numbers.
"""
import time

import numpy as np
import pytest

from kestimator.data import Dataset, Options
from kestimator.errors import ResourceExhaustedError

ELEMENT_BYTES = 10_000


def _budget(nbytes):
    options = Options()
    options.memory_budget_bytes = nbytes
    return options


def _counting_source(n):
    produced = {"n": 0}

    def gen():
        for i in range(n):
            produced["n"] += 1
            yield np.full(ELEMENT_BYTES // 8, i, dtype=np.float64)
    return Dataset.from_generator(gen), produced


def _settle(produced, seconds=0.3):
    """Wait until the background readers stop advancing (they are blocked on the budget or buffer)."""
    last, end = -1, time.monotonic() + 5
    while time.monotonic() < end:
        time.sleep(seconds / 3)
        if produced["n"] == last:
            return
        last = produced["n"]


def test_shuffle_buffer_over_budget_raises_naming_the_shuffle():
    # 100 elements * 10,000 bytes = 1,000,000 bytes > 500,000: the 51st element cannot be held
    ds = Dataset.range(100).map(lambda x: np.zeros(ELEMENT_BYTES // 8)).shuffle(100).with_options(_budget(500_000))
    with pytest.raises(ResourceExhaustedError, match=r"Dataset.shuffle\(buffer_size=100\).*510000 bytes"):
        next(iter(ds))
    # the same pipeline with a buffer that fits runs to the end
    ok = Dataset.range(100).map(lambda x: np.zeros(ELEMENT_BYTES // 8)).shuffle(40).with_options(_budget(500_000))
    assert sum(1 for _ in ok) == 100


def test_memory_cache_over_budget_raises():
    ds = Dataset.range(30).map(lambda x: np.zeros(ELEMENT_BYTES // 8)).cache().with_options(_budget(200_000))
    with pytest.raises(ResourceExhaustedError, match="in-memory cache"):
        list(ds)


def test_prefetch_reads_ahead_only_up_to_the_budget():
    source, produced = _counting_source(1000)
    it = iter(source.prefetch(500).with_options(_budget(55_000)))
    first = next(it)
    _settle(produced)
    # 55,000 bytes hold 5 elements; the producer also holds the one waiting for room: at most 1 + 5 + 1
    assert produced["n"] <= 7, produced
    assert it.memory_budget.peak <= 55_000
    rest = [int(x[0]) for x in it]
    assert [int(first[0])] + rest == list(range(1000))


def test_prefetch_without_budget_fills_its_buffer():
    source, produced = _counting_source(1000)
    it = iter(source.prefetch(50))
    next(it)
    _settle(produced)
    assert produced["n"] >= 50       # the contrast: the buffer size alone bounds it
    it.close()


@pytest.mark.parametrize("budget", [100_000, None])
def test_parallel_map_in_flight_respects_the_budget(budget):
    source, produced = _counting_source(2000)
    ds = source.map(lambda x: x * 2, num_parallel_calls=4)
    it = iter(ds.with_options(_budget(budget)) if budget else ds)
    for _ in range(300):          # long enough for the chunks to grow to their full size
        next(it)
    _settle(produced)
    ahead = produced["n"] - 300
    if budget:
        # 100,000 bytes are 10 elements: in-flight input plus the ready output chunk stay within them
        # (chunks are cut to the room left, one element at least)
        assert ahead <= 10, produced
        assert it.memory_budget.peak <= budget
    else:
        assert ahead > 100       # the contrast: 2 x 4 chunks of up to 64 elements in flight
    assert sum(1 for _ in it) == 1700


def test_budget_is_per_pass_and_released():
    ds = Dataset.range(20).map(lambda x: np.zeros(ELEMENT_BYTES // 8)).shuffle(5).prefetch(3)
    ds = ds.with_options(_budget(100_000))
    for _ in range(3):       # the same pass-sized budget each time: nothing leaks between passes
        it = iter(ds)
        assert sum(1 for _ in it) == 20
        assert it.memory_budget.required == 0 and it.memory_budget.read_ahead == 0
