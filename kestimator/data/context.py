"""What one pass over a pipeline shares: options, the memory budget, worker pools, the stop signal.

Every iterator in a pipeline (including the ones ``interleave`` and ``flat_map`` open on datasets built
at run time) gets the same :class:`IterationContext`. Closing the context stops every thread and
process the pass started; contexts still open when the interpreter exits are closed by an ``atexit``
hook, so an interrupted loop never leaves a worker behind.
"""
import atexit
import threading
import weakref

from ..errors import ResourceExhaustedError, UnavailableError

_live_contexts = weakref.WeakSet()
_live_lock = threading.Lock()


class MemoryBudget:
    """Counts the bytes a pipeline's buffers hold against ``Options.memory_budget_bytes``.

    *Required* bytes belong to buffers that cannot shrink (shuffle, in-memory cache): adding past the
    limit raises. *Read-ahead* bytes belong to buffers that can (prefetch, parallel map, parallel
    interleave): they ask :meth:`has_room` and wait while the total is at the limit.
    """

    def __init__(self, limit):
        self.limit = int(limit)
        self.required = 0
        self.read_ahead = 0
        self.peak = 0
        self._cond = threading.Condition(threading.Lock())

    @property
    def in_use(self):
        return self.required + self.read_ahead

    def reserve_required(self, nbytes, what):
        """Count ``nbytes`` for a buffer that must hold them.

        Raises:
            ResourceExhaustedError: the required buffers alone would pass the limit.
        """
        with self._cond:
            if self.required + nbytes > self.limit:
                raise ResourceExhaustedError(
                    f"{what} needs {self.required + nbytes} bytes, more than "
                    f"Options.memory_budget_bytes={self.limit}; lower its buffer size or raise the budget")
            self.required += nbytes
            self.peak = max(self.peak, self.in_use)

    def release_required(self, nbytes):
        with self._cond:
            self.required -= nbytes
            self._cond.notify_all()

    def has_room(self, nbytes):
        """True when ``nbytes`` more read-ahead bytes fit under the limit."""
        return self.in_use + nbytes <= self.limit

    def add_read_ahead(self, nbytes):
        with self._cond:
            self.read_ahead += nbytes
            self.peak = max(self.peak, self.in_use)

    def release_read_ahead(self, nbytes):
        with self._cond:
            self.read_ahead -= nbytes
            self._cond.notify_all()

    def wait_for_room(self, nbytes, stop, timeout=0.05):
        """Block until ``nbytes`` fit or ``stop`` (a callable) says to give up; returns has_room."""
        with self._cond:
            while self.in_use + nbytes > self.limit and not stop():
                self._cond.wait(timeout)
            return self.in_use + nbytes <= self.limit


class IterationContext:
    """Shared state of one pass (one ``iter(dataset)``) over a pipeline.

    Args:
        options: the merged :class:`~kestimator.data.Options` of the pipeline.
        entropy: a 64-bit int, the seed used by transformations given ``seed=None``; recorded in the
            iterator state so that a restored pass replays the same random choices.
    """

    def __init__(self, options, entropy, static_nodes=()):
        self.options = options
        # Nodes of the dataset graph iter() was called on (not datasets built at run time by
        # interleave / flat_map functions): only their process pools are kept for reuse.
        self._static_nodes = {id(n): n for n in static_nodes}
        self.entropy = entropy
        limit = options.memory_budget_bytes
        self.budget = MemoryBudget(limit) if limit is not None else None
        self.closed = False
        self._lock = threading.Lock()
        self._resources = {}          # id -> object with close(); threads and pools of this pass
        self._thread_pool = None
        self._process_pools = {}      # map node -> ProcessPool, reused by each pass of a repeat
        with _live_lock:
            _live_contexts.add(self)

    def track(self, resource):
        """Remember ``resource`` (anything with ``close()``) so that :meth:`close` stops it."""
        with self._lock:
            if self.closed:
                resource.close()
                return
            self._resources[id(resource)] = resource

    def untrack(self, resource):
        with self._lock:
            self._resources.pop(id(resource), None)

    def thread_pool(self, num_threads):
        """The pass's shared worker threads, grown to at least ``num_threads``."""
        from .parallel import ThreadPool
        with self._lock:
            if self.closed:       # a late request from a stopping reader: a pool that runs nothing
                pool = ThreadPool()
                pool.close()
                return pool
            if self._thread_pool is None:
                self._thread_pool = ThreadPool()
            pool = self._thread_pool
        pool.ensure_threads(num_threads)
        return pool

    def process_pool(self, node, fn, num_workers):
        """Worker processes for one ``map`` node (its function fixed at start).

        Returns ``(pool, owned)``: for a node of the static graph the pool is kept for the whole pass
        (a ``repeat`` reuses it each epoch) and ``owned`` is False; for a node built at run time the
        caller owns the pool and closes it with its iterator.
        """
        from .parallel import ProcessPool
        if self.closed:
            raise UnavailableError("the pass was closed; no worker processes are started for it")
        method = self.options.process_start_method
        if id(node) not in self._static_nodes:
            return ProcessPool(fn, num_workers, start_method=method, name=node.name), True
        with self._lock:
            pool = self._process_pools.get(id(node))
            if pool is None or pool.broken:
                pool = ProcessPool(fn, num_workers, start_method=method, name=node.name)
                self._process_pools[id(node)] = pool
            return pool, False

    def close(self):
        """Stop every thread and worker process of this pass (idempotent, safe from any thread)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            resources = list(self._resources.values())
            self._resources.clear()
            pools = list(self._process_pools.values())
            self._process_pools.clear()
            thread_pool, self._thread_pool = self._thread_pool, None
        for resource in resources:
            resource.close()
        if thread_pool is not None:
            thread_pool.close()
        for pool in pools:
            pool.close()


def _close_live_contexts():
    with _live_lock:
        contexts = list(_live_contexts)
    for ctx in contexts:
        ctx.close()


atexit.register(_close_live_contexts)
