"""Choice between the numba kernels and the NumPy fallback for the boosted-trees hot loops.

numba is an optional dependency (extra ``[fast]``): the histogram, split-scan, partition and binning
loops cannot be vectorised well by NumPy (the design's probe: 27.5 ms with ``np.bincount`` against
0.85 ms with a numba ``prange`` loop for one 80,000-row histogram). Every kernel therefore has a
NumPy twin that gives the same numbers, and numba is imported only when a kernel is first needed, so
``import kestimator`` stays fast.
"""

import functools

from kestimator.errors import InvalidArgumentError, MissingDependencyError

KERNEL_CHOICES = ("auto", "numba", "numpy")


@functools.lru_cache(maxsize=None)
def numba_available():
    """Returns True when numba can be imported (checked once per process)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_kernels(kernels):
    """Turns a user's ``kernels`` argument into ``"numba"`` or ``"numpy"``.

    Args:
      kernels: ``"auto"`` (numba when importable, else NumPy), ``"numba"`` or ``"numpy"``.

    Returns:
      ``"numba"`` or ``"numpy"``.

    Raises:
      InvalidArgumentError: ``kernels`` is not one of the three names.
      MissingDependencyError: ``"numba"`` was asked for and numba is not installed.
    """
    if kernels not in KERNEL_CHOICES:
        raise InvalidArgumentError(f"kernels must be one of {KERNEL_CHOICES}, got {kernels!r}")
    if kernels == "numpy":
        return "numpy"
    if numba_available():
        return "numba"
    if kernels == "numba":
        raise MissingDependencyError("numba", "fast", "boosted-trees numba kernels")
    return "numpy"


def numba_kernels():
    """Imports and returns the module of numba kernels (compiled on first call, cached on disk)."""
    from kestimator.estimators.boosted_trees import _numba_kernels

    return _numba_kernels


# Work (roughly: nanoseconds of single-thread loop) below which a numba kernel runs on one thread.
# A parallel region costs ~10 us on a quiet machine but a scheduler slice (several ms) whenever
# another process holds a core, so only calls long enough to amortise that are split.
PARALLEL_MIN_WORK = 1 << 17


def worth_threads(work):
    """Whether a kernel call of about ``work`` elementary steps should use the thread pool."""
    return work >= PARALLEL_MIN_WORK
