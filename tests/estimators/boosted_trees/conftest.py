"""Shared fixtures: every kernel-level test runs on both the NumPy and the numba kernels."""

import pytest

from kestimator.estimators.boosted_trees._backend import numba_available

KERNELS = [
    "numpy",
    pytest.param("numba", marks=pytest.mark.skipif(not numba_available(),
                                                   reason="numba (extra [fast]) is not installed")),
]


@pytest.fixture(params=KERNELS)
def kernels(request):
    return request.param
