"""Property-based tests: transformations against plain-Python references on generated inputs."""
import collections

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kestimator.data import Dataset

SETTINGS = settings(max_examples=40, deadline=None)
values = st.lists(st.integers(-1000, 1000), max_size=60)


def ints(ds):
    return [int(v) for v in ds]


def ref_interleave(inputs, cycle, block):
    """tf.data's interleave order, written as a slot simulation (independent of the library's loop)."""
    pending = collections.deque(inputs)
    slots = [None] * cycle
    out = []
    i = 0
    while pending or any(s is not None for s in slots):
        if slots[i] is None and pending:
            slots[i] = collections.deque(pending.popleft())
        if slots[i] is None:
            i = (i + 1) % cycle
            continue
        taken = 0
        while taken < block and slots[i]:
            out.append(slots[i].popleft())
            taken += 1
        if taken < block:      # the dataset ended inside the block: the slot empties, move on
            slots[i] = None
        i = (i + 1) % cycle
    return out


@SETTINGS
@given(values, st.integers(1, 80), st.integers(0, 2**31))
def test_shuffle_preserves_the_multiset(xs, buffer_size, seed):
    got = ints(Dataset.from_tensor_slices(np.array(xs, dtype=np.int64)).shuffle(buffer_size, seed=seed)) \
        if xs else []
    assert sorted(got) == sorted(xs)


@SETTINGS
@given(values, st.integers(1, 9), st.booleans())
def test_batch_then_unbatch_is_the_input_minus_a_dropped_remainder(xs, batch_size, drop):
    if not xs:
        return
    ds = Dataset.from_tensor_slices(np.array(xs)).batch(batch_size, drop_remainder=drop)
    batches = [b.tolist() for b in ds]
    keep = len(xs) // batch_size * batch_size if drop else len(xs)
    assert batches == [xs[i:i + batch_size] for i in range(0, keep, batch_size)]
    assert ints(ds.unbatch()) == xs[:keep]
    assert ds.cardinality() == len(batches)


@SETTINGS
@given(values, st.integers(0, 4))
def test_repeat_is_concatenated_copies(xs, count):
    got = ints(Dataset.from_tensor_slices(np.array(xs, dtype=np.int64)).repeat(count)) if xs else []
    assert got == xs * count


@SETTINGS
@given(values, st.integers(1, 7))
def test_shards_partition_the_input(xs, num_shards):
    if not xs:
        return
    ds = Dataset.from_tensor_slices(np.array(xs))
    shards = [ints(ds.shard(num_shards, i)) for i in range(num_shards)]
    assert shards == [xs[i::num_shards] for i in range(num_shards)]
    assert sorted(sum(shards, [])) == sorted(xs)


@SETTINGS
@given(st.lists(st.integers(0, 6), max_size=10), st.integers(1, 4), st.integers(1, 3), st.booleans())
def test_interleave_matches_reference_order(lengths, cycle, block, parallel):
    inputs = [[100 * i + j for j in range(n)] for i, n in enumerate(lengths)]
    ds = Dataset.range(len(lengths)).interleave(
        lambda i: Dataset.range(lengths[i]).map(lambda j: 100 * i + j), cycle_length=cycle, block_length=block,
        num_parallel_calls=2 if parallel else None)
    got = ints(ds)
    assert got == ref_interleave(inputs, cycle, block)
    assert sorted(got) == sorted(sum(inputs, []))


@SETTINGS
@given(values, st.integers(-1, 70), st.integers(-1, 70))
def test_skip_take_are_slices(xs, n_skip, n_take):
    if not xs:
        return
    ds = Dataset.from_tensor_slices(np.array(xs)).skip(n_skip).take(n_take)
    rest = [] if n_skip == -1 else xs[n_skip:]
    expected = rest if n_take == -1 else rest[:n_take]
    assert ints(ds) == expected
    assert ds.cardinality() == len(expected)


@SETTINGS
@given(values, st.sampled_from([1, 2, 3, 8]), st.integers(1, 200))
def test_parallel_map_matches_sequential_for_any_workers(xs, workers, chunk_shape_seed):
    if not xs:
        return
    rng = np.random.default_rng(chunk_shape_seed)
    delays = rng.integers(0, 3, size=len(xs))

    def f(x):
        # uneven cost per element so that chunks finish out of order
        acc = 0
        for _ in range(int(delays[int(x[1])]) * 200):
            acc += 1
        return x[0] * 3 + 1

    data = np.stack([np.array(xs), np.arange(len(xs))], axis=1)
    got = ints(Dataset.from_tensor_slices(data).map(f, num_parallel_calls=workers))
    assert got == [x * 3 + 1 for x in xs]


@SETTINGS
@given(values, st.integers(1, 4))
def test_filter_and_enumerate_match_comprehensions(xs, k):
    if not xs:
        return
    ds = Dataset.from_tensor_slices(np.array(xs)).filter(lambda x: x % k == 0).enumerate(3)
    assert [(int(i), int(x)) for i, x in ds] == list(enumerate([x for x in xs if x % k == 0], 3))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.integers(1, 5), st.integers(0, 60), st.booleans())
def test_restore_continues_with_the_next_element(n, buffer_size, batch_size, stop_after, parallel):
    """Any prefix consumed, state saved, a fresh iterator restored: prefix + rest == one full pass."""
    ds = (Dataset.range(n).shuffle(buffer_size, seed=11).repeat(2)
          .map(lambda x: x * 10, num_parallel_calls=2 if parallel else None).batch(batch_size))
    it = iter(ds)
    prefix = []
    for _ in range(stop_after):
        try:
            prefix.append(next(it).tolist())
        except StopIteration:
            break
    state = it.get_state()
    expected_rest = [b.tolist() for b in it]
    restored = ds.iterator_from_state(state)
    assert [b.tolist() for b in restored] == expected_rest
    fresh_same_pass = Dataset.range(n).shuffle(buffer_size, seed=11)   # a multiset check of the whole
    assert sorted(v for b in prefix + expected_rest for v in b) == \
        sorted([int(x) * 10 for x in fresh_same_pass] * 2)
