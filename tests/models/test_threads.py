"""The BLAS thread-count trial of fit(): it keeps whichever count ran the trial steps faster."""
import time

import numpy as np
import pytest

from kestimator import keras
from kestimator.engine import intra_op
from kestimator.models import threads


class FakeBlas:
    default = 2

    def __init__(self):
        self.current, self.history = 2, []

    def set(self, n):
        self.current = n
        self.history.append(n)


@pytest.fixture
def quiet(monkeypatch):
    """The machine's real load average is not under test here: report a quiet machine."""
    monkeypatch.setattr(threads, "overloaded", lambda: False)


@pytest.fixture
def no_split(monkeypatch):
    monkeypatch.setattr(intra_op, "splittable_seen", lambda: False)


def _setting(blas):
    return "split" if intra_op.workers() > 1 else "blas" if blas.current > 1 else "one"


@pytest.mark.parametrize("slow,expected", [(2, 1), (1, 2)])
def test_trial_keeps_the_faster_count(quiet, no_split, slow, expected):
    blas = FakeBlas()
    tuner = threads.EpochTuner(blas)
    seen = []
    for step, item in tuner.epoch(((i, None) for i in range(60)), 60):
        time.sleep(0.002 if blas.current == slow else 0.0002)   # the step's cost under the current count
        seen.append(blas.current)
    assert tuner.choice == expected and tuner.workers == 1 and set(tuner.timings) == {"one", "blas"}
    # one warm-up step, 8 trial steps on one thread and 8 with the default count, then the choice for the rest
    assert seen[:9] == [1] * 9 and seen[9:17] == [2] * 8 and seen[17:] == [expected] * 43
    tuner.restore()
    assert blas.current == 2


@pytest.mark.parametrize("fast", ["one", "blas", "split"])
def test_with_splittable_kernels_the_trial_also_times_intra_op_workers(quiet, monkeypatch, fast):
    monkeypatch.setattr(intra_op, "splittable_seen", lambda: True)
    blas = FakeBlas()
    tuner = threads.EpochTuner(blas)
    seen = []
    try:
        for step, item in tuner.epoch(((i, None) for i in range(70)), 70):
            setting = _setting(blas)
            time.sleep(0.0002 if setting == fast else 0.002)
            seen.append(setting)
        # warm-up, then 4 steps of "one" and "split" in turn, twice, and 8 of "blas"; the fastest for the rest
        assert seen[:25] == ["one"] * 5 + ["split"] * 4 + ["one"] * 4 + ["split"] * 4 + ["blas"] * 8
        assert seen[25:] == [fast] * 45
        assert set(tuner.timings) == {"one", "blas", "split"}
        assert (tuner.choice, tuner.workers) == {"one": (1, 1), "blas": (2, 1), "split": (1, 2)}[fast]
    finally:
        tuner.restore()
    assert blas.current == 2 and intra_op.workers() == 1


def test_split_steps_while_openblas_threads_still_spin_are_not_timed(quiet, monkeypatch):
    # the last epoch ran with BLAS threads, which keep spinning for _SPIN_S: split steps in that window are
    # slowed by them (30 ms here instead of 3) and must not decide the trial against splitting
    monkeypatch.setattr(intra_op, "splittable_seen", lambda: True)
    monkeypatch.setattr(threads, "_SPIN_S", 0.2)
    blas = FakeBlas()
    tuner = threads.EpochTuner(blas)
    tuner.setting, tuner.reason = "blas", "trial"
    spinning_until = time.perf_counter() + 0.2
    try:
        for _ in tuner.epoch(((i, None) for i in range(40)), 70):
            setting = _setting(blas)
            if setting == "split":
                time.sleep(0.03 if time.perf_counter() < spinning_until else 0.003)
            else:
                time.sleep(0.005 if setting == "one" else 0.01)
        assert tuner.timings["split"] < 0.01   # only the unspun split steps were timed
        assert (tuner.choice, tuner.workers) == (1, 2)
    finally:
        tuner.restore()


def test_the_trial_runs_in_the_first_epoch_and_every_fourth_after_it(quiet, no_split):
    blas = FakeBlas()
    tuner = threads.EpochTuner(blas)
    trials = []
    for epoch in range(9):
        before = blas.history[:]
        for _ in tuner.epoch(((i, None) for i in range(60)), 60):
            time.sleep(0.0002 if blas.current == 1 else 0.001)
        trials.append(2 in blas.history[len(before):])   # a trial times the default count too
        assert tuner.choice == 1
    assert trials == [True, False, False, False, True, False, False, False, True]


def test_short_epochs_keep_the_previous_choice():
    blas = FakeBlas()
    tuner = threads.EpochTuner(blas)
    tuner.setting = "one"
    assert [blas.current for _ in tuner.epoch(((i, None) for i in range(10)), 10)] == [1] * 10


def test_fit_restores_the_default_thread_count():
    blas = threads._blas
    if not blas.available():
        pytest.skip("BLAS thread count is not adjustable here (single-threaded BLAS or no threadpoolctl)")
    from threadpoolctl import threadpool_info
    # numba (compiled by fit's first plan) imports scipy, which may load a second OpenBLAS: compare the
    # libraries loaded before fit, the ones the tuner controls
    before = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((640, 3), np.float32), np.zeros((640, 2), np.float32), batch_size=8, verbose=0)
    assert model._blas_threads in (1, blas.default)
    after = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    assert {path: after[path] for path in before} == before


@pytest.mark.parametrize("load,cores,expected", [(2.5, 2, True), (2.0, 2, False), (0.3, 2, False),
                                                 (9.0, 8, True)])
def test_overloaded_compares_the_load_average_with_the_core_count(monkeypatch, load, cores, expected):
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)
    assert threads.overloaded() is expected


def test_a_loaded_machine_skips_the_trial_and_runs_one_thread(monkeypatch):
    monkeypatch.setattr(threads, "overloaded", lambda: True)
    blas = FakeBlas()
    tuner = threads.EpochTuner(blas)
    # two threads would look faster here, but with the cores taken the epoch runs on one thread throughout
    seen = []
    for _ in tuner.epoch(((i, None) for i in range(60)), 60):
        seen.append(blas.current)
    assert seen == [1] * 60
    assert tuner.choice == 1 and tuner.reason == "load" and tuner.timings == {}


def test_a_multi_thread_choice_that_slows_down_twofold_falls_back_to_one_thread(quiet, no_split):
    blas = FakeBlas()
    tuner = threads.EpochTuner(blas)
    seen = []
    for step, _ in tuner.epoch(((i, None) for i in range(80)), 80):
        # two threads win the trial (0.2 ms vs 2 ms); from step 40 on, two-thread steps take 4 ms: > 2x
        if blas.current == 2:
            time.sleep(0.004 if step >= 40 else 0.0002)
        else:
            time.sleep(0.002)
        seen.append(blas.current)
    assert tuner.reason == "slowdown" and tuner.choice == 1
    assert seen[17:40] == [2] * 23                 # the trial's choice, while it stayed fast
    switched = seen.index(1, 40)
    assert 40 + threads._WATCH // 2 <= switched <= 40 + threads._WATCH + 1   # once the median of 8 shows it
    assert seen[switched:] == [1] * (80 - switched)


def test_a_cnn_fit_with_its_kernels_split_over_intra_op_workers_trains_like_the_whole_batch(monkeypatch):
    monkeypatch.setattr(threads, "epoch_tuner", lambda: None)   # the split is forced here, not chosen
    rng = np.random.default_rng(3)
    x = rng.random((48, 12, 12, 1), dtype=np.float32)
    y = rng.integers(0, 3, 48)

    def fitted_weights():
        keras.utils.set_random_seed(0)
        L = keras.layers
        model = keras.Sequential([keras.Input((12, 12, 1)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(2),
                                  L.Conv2D(6, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
                                  L.Dense(3, activation="softmax")])
        model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        return model.get_weights()
    whole = fitted_weights()
    monkeypatch.setattr(intra_op, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(intra_op, "MIN_ELEMENTWISE", 0)
    calls = []
    run_chunks = intra_op.run_chunks
    monkeypatch.setattr(intra_op, "run_chunks", lambda fn, n, enabled=True: calls.append(enabled) or
                        run_chunks(fn, n, enabled))
    intra_op.set_workers(2)
    try:
        split = fitted_weights()
    finally:
        intra_op.set_workers(1)
    assert calls.count(True) > 20   # the convolutions, pooling and fused kernels did split
    for a, b in zip(split, whole):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
