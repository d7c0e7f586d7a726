"""interleave / flat_map beyond the order tests (tests/data/test_tfdata_golden.py, test_dataset_properties.py)."""
import threading
import time

import pytest

from kestimator.data import Dataset, Options


def test_parallel_interleave_reads_inputs_concurrently():
    barrier = threading.Barrier(3, timeout=10)

    def inner(i):
        def gen():
            barrier.wait()           # passes only when all three inputs are being read at once
            yield from range(int(i) * 10, int(i) * 10 + 3)
        return Dataset.from_generator(gen)
    ds = Dataset.range(3).interleave(inner, cycle_length=3, num_parallel_calls=3)
    assert [int(v) for v in ds] == [0, 10, 20, 1, 11, 21, 2, 12, 22]


def test_non_deterministic_interleave_lets_ready_inputs_go_first():
    def inner(i):
        def gen():
            if i == 0:
                time.sleep(0.5)      # the first input is slow to start
            yield from range(int(i) * 10, int(i) * 10 + 2)
        return Dataset.from_generator(gen)
    got = [int(v) for v in Dataset.range(3).interleave(inner, cycle_length=3, num_parallel_calls=3,
                                                      deterministic=False)]
    assert sorted(got) == [0, 1, 10, 11, 20, 21]
    assert got[0] != 0               # something else came out while input 0 slept
    strict = [int(v) for v in Dataset.range(3).interleave(inner, cycle_length=3, num_parallel_calls=3)]
    assert strict == [0, 10, 20, 1, 11, 21]


def test_interleave_function_error_names_the_input_element():
    def inner(i):
        if i == 2:
            raise RuntimeError("no dataset for 2")
        return Dataset.range(1)
    with pytest.raises(RuntimeError) as info:
        list(Dataset.range(4).interleave(inner, cycle_length=2))
    assert "on input element 2" in info.value.__notes__[0]


def test_inner_shuffles_differ_per_input_element_but_repeat_per_seed():
    ds = Dataset.range(3).flat_map(lambda i: Dataset.range(8).shuffle(8, seed=5))
    got = [int(v) for v in ds]
    blocks = [got[0:8], got[8:16], got[16:24]]
    assert all(sorted(b) == list(range(8)) for b in blocks)
    assert len({tuple(b) for b in blocks}) == 3          # the element index is part of the seed path
    again = [int(v) for v in Dataset.range(3).flat_map(lambda i: Dataset.range(8).shuffle(8, seed=5))]
    assert again == got


def test_parallel_interleave_under_a_memory_budget_still_completes():
    import numpy as np
    options = Options()
    options.memory_budget_bytes = 50_000
    ds = Dataset.range(4).interleave(lambda i: Dataset.range(20).map(lambda j: np.full(1000, j, np.float64)),
                                     cycle_length=4, num_parallel_calls=4).with_options(options)
    it = iter(ds)
    total = sum(float(x[0]) for x in it)
    assert total == 4 * sum(range(20))
    assert it.memory_budget.peak <= 50_000 + 4 * 8000     # each reader may hold one element over
