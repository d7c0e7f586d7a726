"""Intra-op parallelism: one CPU kernel's batch split into contiguous chunks run on worker threads.

Why not just BLAS threads: OpenBLAS splits each GEMM across its threads, but the work around a convolution's
GEMMs (the im2col copy, the col2im scatter-add, pooling and its gradient) stays on one core, and GEMMs as
small as a CNN's (7,744 x 288 x 64) split poorly. Splitting the whole kernel on the batch axis gives each core
its own im2col + GEMM + scatter with one BLAS thread each; NumPy's copies and GEMMs and the numba kernels
(nogil) release the GIL, so the chunks really run at once.

Off (one worker) unless something turns it on: fit()'s thread tuner (models/threads.py) times it against
plain BLAS threading and keeps whichever is faster on this machine. Kernels that split must only write to
disjoint slices of their outputs from each chunk, and reduce any per-chunk partials themselves.
"""
import os
import queue
import threading

import numpy as np

# Splitting costs a hand-off to each worker (~30 us); below this many elements a kernel runs whole.
# Convolutions and pooling spend ~1 ns or more per element; a plain elementwise pass ~0.1 ns, so it needs more.
MIN_ELEMENTS = 1 << 15
MIN_ELEMENTWISE = 1 << 18

_lock = threading.Lock()       # guards the worker list
_dispatch = threading.Lock()   # one caller at a time hands out chunks; another caller meanwhile runs whole
_state = {"workers": 1, "threads": [], "seen": False}
_local = threading.local()     # .worker: True on a worker thread (a chunk that splits again runs whole)


def workers():
    """How many chunks a splittable kernel runs in (1: no splitting)."""
    return _state["workers"]


def worth_splitting(xp, elements, elementwise=False):
    """Whether a kernel over `elements` elements of array module `xp` splits now: NumPy, at least
    MIN_ELEMENTS (MIN_ELEMENTWISE for a kernel that makes one cheap pass), and more than one worker.

    A kernel that could split is noted, workers or not: `splittable_seen` tells fit()'s tuner whether trying
    workers can pay."""
    if xp is not np or elements < (MIN_ELEMENTWISE if elementwise else MIN_ELEMENTS):
        return False
    _state["seen"] = True
    return _state["workers"] > 1


def splittable_seen():
    """Whether any kernel big enough to split has run in this process."""
    return _state["seen"]


def set_workers(n):
    """Split kernels into `n` chunks from now on (1 turns splitting off); the threads are made on first use."""
    _state["workers"] = max(1, int(n))


class _Worker:
    """A daemon thread running the chunks handed to it, one at a time, in order.

    Plain SimpleQueues (C code) instead of an executor's futures: handing out an empty chunk and waiting for it
    measured 32 us against the executor's 39-50 in the same run (most of it the OS waking a thread), and a
    convolution step makes a dozen of them."""

    def __init__(self, index):
        self.tasks = queue.SimpleQueue()
        self.results = queue.SimpleQueue()
        threading.Thread(target=self._loop, name=f"kestimator-intra-op-{index}", daemon=True).start()

    def _loop(self):
        _local.worker = True
        while True:
            fn, lo, hi = self.tasks.get()
            try:
                self.results.put((True, fn(lo, hi)))
            except BaseException as e:   # noqa: B902 - handed to the caller, which re-raises it
                self.results.put((False, e))


def _threads(count):
    with _lock:
        while len(_state["threads"]) < count:
            _state["threads"].append(_Worker(len(_state["threads"])))
        return _state["threads"][:count]


def _after_fork_in_child():
    """A forked child has none of the parent's worker threads (and may have forked mid hand-out): it starts
    with no workers, splitting off, and fresh locks, instead of handing chunks to threads that do not exist."""
    global _lock, _dispatch
    _lock, _dispatch = threading.Lock(), threading.Lock()
    _state.update(workers=1, threads=[])


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def bounds(n_items, parts):
    """`parts` contiguous (lo, hi) ranges covering range(n_items), sizes differing by at most one."""
    parts = max(1, min(parts, n_items))
    q, r = divmod(n_items, parts)
    out, lo = [], 0
    for i in range(parts):
        hi = lo + q + (1 if i < r else 0)
        out.append((lo, hi))
        lo = hi
    return out


def run_chunks(fn, n_items, enabled=True):
    """[fn(lo, hi) for each chunk of range(n_items)], the first chunk on this thread and the others on
    workers; one chunk (fn(0, n_items)) when splitting is off, not `enabled`, there is one item, this is a
    worker thread, or another thread is handing out chunks right now.

    Every chunk has finished when this returns or raises (a chunk writes into buffers the caller owns).
    """
    parts = _state["workers"] if enabled else 1
    if parts <= 1 or n_items < 2 or getattr(_local, "worker", False) or not _dispatch.acquire(blocking=False):
        return [fn(0, n_items)]
    try:
        ranges = bounds(n_items, parts)
        helpers = _threads(len(ranges) - 1)
        for worker, (lo, hi) in zip(helpers, ranges[1:]):
            worker.tasks.put((fn, lo, hi))
        try:
            first = fn(*ranges[0])
        finally:
            outcomes = [worker.results.get() for worker in helpers]   # every chunk stops before we return
        for ok, value in outcomes:
            if not ok:
                raise value
        return [first] + [value for _, value in outcomes]
    finally:
        _dispatch.release()
