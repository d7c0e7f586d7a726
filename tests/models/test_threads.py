"""The BLAS thread-count trial of fit(): it keeps whichever count ran the trial steps faster."""
import time

import numpy as np
import pytest

from kestimator import keras
from kestimator.models import threads


class FakeBlas:
    default = 2

    def __init__(self):
        self.current, self.history = 2, []

    def set(self, n):
        self.current = n
        self.history.append(n)


@pytest.mark.parametrize("slow,expected", [(2, 1), (1, 2)])
def test_trial_keeps_the_faster_count(slow, expected):
    blas = FakeBlas()
    tuner = threads.EpochTuner(blas)
    seen = []
    for step, item in tuner.epoch(((i, None) for i in range(60)), 60):
        time.sleep(0.002 if blas.current == slow else 0.0002)   # the step's cost under the current count
        seen.append(blas.current)
    assert tuner.choice == expected
    # one warm-up step at the default, 16 alternating trial steps, then the choice for the rest
    assert seen[0] == 2 and seen[1:5] == [1] * 4 and seen[5:9] == [2] * 4 and seen[17:] == [expected] * 43
    tuner.restore()
    assert blas.current == 2


def test_short_epochs_keep_the_previous_choice():
    blas = FakeBlas()
    tuner = threads.EpochTuner(blas)
    tuner.choice = 1
    assert [blas.current for _ in tuner.epoch(((i, None) for i in range(10)), 10)] == [1] * 10


def test_fit_restores_the_default_thread_count():
    blas = threads._blas
    if not blas.available():
        pytest.skip("BLAS thread count is not adjustable here (single-threaded BLAS or no threadpoolctl)")
    from threadpoolctl import threadpool_info
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((640, 3), np.float32), np.zeros((640, 2), np.float32), batch_size=8, verbose=0)
    assert model._blas_threads in (1, blas.default)
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before
