"""map: sequential, threads, processes; order, concurrency, error propagation with the element index."""
import os
import threading
import time
import traceback

import numpy as np
import pytest

from kestimator.data import AUTOTUNE, Dataset, Options
from kestimator.errors import InvalidArgumentError, UnavailableError


def fail_on_seven(x):
    if x == 7:
        raise ValueError(f"cannot map {int(x)}")
    return x * 2


def square(x):          # module level: picklable for spawned workers
    return x * x


@pytest.mark.parametrize("mode", ["sequential", "threads", "processes"])
def test_error_reaches_consumer_with_type_index_and_traceback(mode):
    kwargs = {"sequential": {}, "threads": {"num_parallel_calls": 3},
              "processes": {"num_parallel_calls": 2, "use_processes": True}}[mode]
    it = iter(Dataset.range(12).map(fail_on_seven, **kwargs))
    got = [int(next(it)) for _ in range(7)]
    assert got == [0, 2, 4, 6, 8, 10, 12]
    with pytest.raises(ValueError, match="cannot map 7") as info:
        next(it)
    note = "\n".join(info.value.__notes__)
    assert "Dataset.map(fail_on_seven) on input element 7" in note
    if mode == "processes":
        assert "traceback in the worker process" in note and "fail_on_seven" in note
    else:
        frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
        assert "fail_on_seven" in frames
    # the failed element is dropped; iteration goes on with the next one, as tf.data does
    assert [int(v) for v in it] == [16, 18, 20, 22]


def test_stop_iteration_inside_a_map_function_is_not_a_silent_end():
    def f(x):
        if x == 2:
            raise StopIteration
        return x
    with pytest.raises(InvalidArgumentError, match="raised StopIteration on input element 2"):
        list(Dataset.range(5).map(f, num_parallel_calls=2))
    with pytest.raises(InvalidArgumentError, match="raised StopIteration"):
        list(Dataset.range(5).map(f))


def test_threads_really_run_calls_concurrently():
    barrier = threading.Barrier(4, timeout=10)

    def f(x):
        barrier.wait()        # returns only when 4 calls are inside f at once
        return x
    assert sorted(int(v) for v in Dataset.range(8).map(f, num_parallel_calls=4)) == list(range(8))


def test_processes_run_in_other_processes_and_lambdas_work_with_fork():
    pids = [int(p) for p in Dataset.range(16).map(lambda x: (time.sleep(0.02), os.getpid())[1],
                                                   num_parallel_calls=2, use_processes=True)]
    assert os.getpid() not in pids
    assert len(set(pids)) == 2


def test_options_flag_selects_processes_and_spawn_needs_picklable_function():
    options = Options()
    options.use_processes = True
    options.process_start_method = "spawn"
    ds = Dataset.range(20).map(square, num_parallel_calls=2).with_options(options)
    assert [int(v) for v in ds] == [x * x for x in range(20)]
    bad = Dataset.range(3).map(lambda x: x, num_parallel_calls=2).with_options(options)
    with pytest.raises(InvalidArgumentError, match="cannot be sent to 'spawn' worker processes"):
        list(bad)


def test_a_worker_process_that_dies_is_reported():
    def die(x):
        if x == 5:
            os._exit(3)
        return x
    it = iter(Dataset.range(40).map(die, num_parallel_calls=1, use_processes=True))
    with pytest.raises(UnavailableError, match="exited with code 3"):
        for _ in it:
            pass


def test_non_deterministic_map_yields_the_same_multiset():
    def f(x):
        time.sleep(0.002 * (int(x) % 3))
        return x
    ds = Dataset.range(60).map(f, num_parallel_calls=4, deterministic=False)
    assert sorted(int(v) for v in ds) == list(range(60))
    options = Options()
    options.deterministic = False
    assert sorted(int(v) for v in Dataset.range(60).map(f, num_parallel_calls=3).with_options(options)) == \
        list(range(60))


def test_autotune_and_threadpool_cap_still_give_input_order():
    options = Options()
    options.threading.private_threadpool_size = 1
    ds = Dataset.range(500).map(lambda x: x + 1, num_parallel_calls=AUTOTUNE).with_options(options)
    assert [int(v) for v in ds] == list(range(1, 501))


def test_map_over_dict_elements_and_numpy_work_in_threads():
    x = np.random.default_rng(0).normal(size=(64, 8, 8)).astype(np.float32)
    ds = Dataset.from_tensor_slices({"img": x, "i": np.arange(64)}).map(
        lambda d: {"img": np.flip(d["img"], axis=1) * 2.0, "i": d["i"]}, num_parallel_calls=2).batch(16)
    got = np.concatenate([b["img"] for b in ds])
    np.testing.assert_allclose(got, np.flip(x, axis=2) * 2.0)


def test_upstream_error_keeps_its_place_in_a_parallel_map():
    def gen():
        yield from range(5)
        raise OSError("disk gone")
    it = iter(Dataset.from_generator(gen).map(lambda x: x + 100, num_parallel_calls=2))
    assert [int(next(it)) for _ in range(5)] == [100, 101, 102, 103, 104]
    with pytest.raises(OSError, match="disk gone"):
        next(it)


def test_autotune_tuner_keeps_the_faster_mode():
    from kestimator.data.autotune import INLINE, POOL, ModeTuner
    now = [0.0]
    tuner = ModeTuner(trial_seconds=1.0, settle_seconds=10.0, clock=lambda: now[0])
    speeds = {POOL: 100.0, INLINE: 400.0}          # elements per second of each mode

    def run(seconds):
        end = now[0] + seconds
        while now[0] < end:
            now[0] += 0.1
            tuner.record(int(speeds[tuner.mode] * 0.1))
    run(3.5)                                       # warm-up pool trial, inline trial, pool trial
    assert tuner.mode == INLINE and tuner.rates[INLINE] > tuner.rates[POOL]
    speeds[POOL] = 1000.0                          # the workload changes (e.g. a GIL-free function)
    run(14.0)                                      # settle, then a new round of trials
    assert tuner.mode == POOL
    # a later pass starts in the remembered mode, without warm-up trials
    remembered = []
    later = ModeTuner(trial_seconds=1.0, settle_seconds=10.0, clock=lambda: now[0], settled_mode=INLINE,
                      on_settle=remembered.append)
    assert later.mode == INLINE
    tuner = later
    run(12.5)                                      # after the settle window: one pool trial, pool wins
    assert later.mode == POOL and remembered == [POOL]


def test_autotune_switching_modes_keeps_the_order():
    from kestimator.data.autotune import ModeTuner
    ds = Dataset.range(3000).map(lambda x: x * 2, num_parallel_calls=AUTOTUNE)
    it = iter(ds)
    it._root._tuner = ModeTuner(trial_seconds=0.0, settle_seconds=0.0)   # switch at every chunk
    assert [int(v) for v in it] == [2 * x for x in range(3000)]


def test_state_after_an_error_warns():
    it = iter(Dataset.range(10).map(fail_on_seven))
    with pytest.raises(ValueError):
        for _ in it:
            pass
    with pytest.warns(RuntimeWarning, match="1 element"):
        it.get_state()


def test_num_parallel_calls_caps_concurrent_calls_even_in_a_shared_pool():
    active, peak, lock = [0], [0], threading.Lock()

    def tracked(x):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.005)
        with lock:
            active[0] -= 1
        return x
    # the pass's thread pool grows to 4 threads for the first map; the second asks for 1 call at a time
    ds = Dataset.range(40).map(lambda x: x, num_parallel_calls=4).map(tracked, num_parallel_calls=1)
    assert [int(v) for v in ds] == list(range(40))
    assert peak[0] == 1
