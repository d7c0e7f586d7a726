"""Saving and restoring an iterator's position (get_state / set_state / iterator_from_state)."""
import json
import os

import numpy as np
import pytest

from kestimator.data import Dataset, RecordDataset, RecordWriter
from kestimator.errors import InvalidArgumentError


def _to_list(it):
    return [np.asarray(x).tolist() if not isinstance(x, tuple) else tuple(np.asarray(v).tolist() for v in x)
            for x in it]


def _check_resume_everywhere(make_dataset, points):
    """For each k: consume k elements, save, restore from JSON in a fresh dataset, compare the rest."""
    full = _to_list(make_dataset())
    for k in points:
        ds = make_dataset()
        it = iter(ds)
        head = [next(it) for _ in range(min(k, len(full)))]
        state = json.loads(json.dumps(it.get_state()))
        it.close()
        restored = make_dataset().iterator_from_state(state)
        assert _to_list(head) + _to_list(restored) == full, k


@pytest.fixture
def record_files(tmp_path):
    for shard in range(3):
        with RecordWriter(str(tmp_path / f"data-{shard}.rec")) as w:
            for i in range(10 + 5 * shard):
                w.write(b"%d-%d" % (shard, i))
    return str(tmp_path / "data-*.rec")


def test_resume_file_interleave_shuffle_map_batch_prefetch(record_files):
    def make():
        files = Dataset.list_files(record_files, shuffle=False)
        return (files.interleave(RecordDataset, cycle_length=2, num_parallel_calls=2)
                .shuffle(8, seed=4).map(lambda r: r.upper(), num_parallel_calls=2).batch(4).prefetch(2))
    _check_resume_everywhere(make, [0, 1, 3, 5, 11, 12])


def test_resume_across_repeat_epochs_with_unseeded_shuffle():
    # seed=None: the pass's random entropy is recorded in the state, so the restore replays it
    def make():
        return Dataset.range(17).shuffle(5).repeat(3).batch(3)
    ds = make()
    it = iter(ds)
    head = [next(it).tolist() for _ in range(7)]
    state = it.get_state()
    rest = [b.tolist() for b in it]
    restored = make().iterator_from_state(state)
    assert [b.tolist() for b in restored] == rest
    assert sorted(v for b in head + rest for v in b) == sorted(list(range(17)) * 3)


@pytest.mark.parametrize("stop", [0, 2, 9, 20])
def test_resume_through_filter_window_unbatch_shard_zip_concatenate(stop):
    def make():
        a = Dataset.range(40).filter(lambda x: x % 3 != 0).shard(2, 1)
        b = Dataset.range(100, 200).window(3, shift=2).flat_map(lambda w: w.batch(3)).unbatch()
        return Dataset.zip((a, b)).concatenate(Dataset.zip((Dataset.range(3), Dataset.range(3)))).enumerate()
    _check_resume_everywhere(make, [stop])


def test_resume_of_a_later_pass_replays_that_pass():
    ds = Dataset.range(20).shuffle(20, seed=3)
    first = [int(v) for v in ds]
    it = iter(ds)                     # pass 1: a different order
    head = [int(next(it)) for _ in range(5)]
    state = it.get_state()
    rest = [int(v) for v in it]
    assert head + rest != first
    fresh = Dataset.range(20).shuffle(20, seed=3)
    assert [int(v) for v in fresh.iterator_from_state(state)] == rest
    # the restored dataset's next pass continues after the restored one (pass 2, not pass 1 again)
    assert [int(v) for v in fresh] == [int(v) for v in (lambda d: (list(d), list(d), list(d))[2])(
        Dataset.range(20).shuffle(20, seed=3))]


def test_set_state_on_an_existing_iterator_and_exhausted_state():
    ds = Dataset.range(10).map(lambda x: x * 2, num_parallel_calls=2)
    it = iter(ds)
    for _ in range(4):
        next(it)
    state = it.get_state()
    other = iter(ds)
    next(other)
    other.set_state(state)
    assert [int(v) for v in other] == [8, 10, 12, 14, 16, 18]
    done = other.get_state()
    assert done["exhausted"] is True
    assert list(ds.iterator_from_state(done)) == []


@pytest.mark.parametrize("parallel", [None, 2])
def test_restore_does_not_compute_skipped_elements(parallel):
    calls = {"before": 0, "after": 0}

    def before(x):
        calls["before"] += 1
        return x

    def after(x):
        calls["after"] += 1
        return x + 1

    def make():
        return (Dataset.range(1000).map(before).shuffle(10, seed=0)
                .map(after, num_parallel_calls=parallel).batch(10))
    it = iter(make())
    for _ in range(50):
        next(it)
    state = it.get_state()
    rest = [b.tolist() for b in it]
    calls.update(before=0, after=0)
    restored = make().iterator_from_state(state)
    assert next(restored).tolist() == rest[0]
    if parallel is None:
        # 500 shuffle outputs replayed on indices: `before` runs for the 10 elements left in the buffer
        # and the 10 refills of the batch returned; `after` only for that batch
        assert calls == {"before": 20, "after": 10}
    else:
        # the parallel map reads ahead (up to 4 chunks), still far from the 510 of a replay by reading
        assert calls["before"] < 300 and calls["after"] < 300


def test_state_is_checked():
    ds = Dataset.range(5)
    state = iter(ds).get_state()
    with pytest.raises(InvalidArgumentError, match="different pipeline"):
        Dataset.range(6).iterator_from_state(state)
    with pytest.raises(InvalidArgumentError, match="different pipeline"):
        Dataset.range(5).map(lambda x: x).iterator_from_state(state)
    with pytest.raises(InvalidArgumentError, match="not a dataset iterator state"):
        ds.iterator_from_state({"pass": 0})
    with pytest.raises(InvalidArgumentError, match="malformed"):
        ds.iterator_from_state({**state, "consumed": "many"})
    with pytest.raises(InvalidArgumentError, match="version"):
        ds.iterator_from_state({**state, "version": 99})


def test_state_is_json_with_plain_types(record_files):
    ds = Dataset.list_files(record_files).interleave(RecordDataset, cycle_length=2)
    it = iter(ds)
    next(it)
    state = it.get_state()
    assert json.loads(json.dumps(state)) == state
    assert set(state) == {"kind", "version", "pass", "consumed", "entropy", "exhausted", "fingerprint"}
    assert os.path.basename(record_files) == "data-*.rec"
