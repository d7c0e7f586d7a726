"""map: in the consuming thread, or on worker threads / processes a chunk of elements at a time.

The parallel iterator reads a chunk of consecutive input elements, hands it to the pool as one task,
and keeps up to ``2 × workers`` tasks in flight. The chunk size adapts to the measured time per
element (about a millisecond of work per task, at most 64 elements), so a cheap NumPy function pays
one hand-off per 64 elements and a slow one still spreads over every worker. Results are handed out in
input order unless ``deterministic=False``; the chunk size never changes which element comes out
where, so the output is the same for any number of workers.

In flight at once: at most ``2 × workers × 64`` input elements, fewer under
``Options.memory_budget_bytes`` (the map then stops reading ahead while the pipeline is at its budget).

With ``num_parallel_calls=AUTOTUNE`` the map also measures whether the workers help at all and runs
the chunks in the consuming thread when they do not (see :mod:`.autotune`).
"""
import collections
import os
import queue
import threading

from ..errors import InvalidArgumentError
from .autotune import INLINE, ModeTuner
from .iterator import NodeIterator, raise_user_error
from .options import AUTOTUNE
from .parallel import ChunkTask, run_chunk
from .structure import call_with_element, nbytes, spec_of
from .transforms import UnaryDataset, function_name
from .validation import resolve_parallelism

MAX_CHUNK = 64
TARGET_TASK_SECONDS = 1e-3


class _MapIterator(NodeIterator):
    """Sequential map in the consumer's thread."""

    def __init__(self, it, fn, where):
        self._it = it
        self._fn = fn
        self._where = where
        self._index = 0

    def __next__(self):
        element = self._it.__next__()
        index = self._index
        self._index = index + 1
        try:
            if isinstance(element, tuple):
                return self._fn(*element)
            return self._fn(element)
        except Exception as exc:
            raise_user_error(exc, self._where, index)

    def skip(self, n):
        k = self._it.skip(n)
        self._index += k
        return k

    def close(self):
        self._it.close()


class _ParallelMapIterator(NodeIterator):
    """Ordered (or first-finished) parallel map over chunks; see the module docstring."""

    def __init__(self, it, fn, pool, workers, deterministic, where, ctx, owned_pool=False, tuner=None):
        self._it = it
        self._tuner = tuner
        self._ctx = ctx
        self._fn = fn
        self._pool = pool
        self._owned_pool = owned_pool
        self._max_inflight = 2 * workers
        self._limit = threading.BoundedSemaphore(workers)   # num_parallel_calls: calls at once
        self._deterministic = deterministic
        self._where = where
        self._budget = ctx.budget
        self._chunk = 1
        self._inflight = collections.deque()
        self._done_q = queue.SimpleQueue()
        self._next_index = 0          # stream index of the next element read from the input
        self._input_done = False
        self._ready = []
        self._pos = 0
        self._ready_start = 0
        self._ready_failures = None
        self._ready_nbytes = 0
        self._element_bytes = 0       # recent input element size, to size chunks under a budget
        self._closed = False

    # -- producing -------------------------------------------------------------------------------------
    def _fill(self):
        """Submit chunks until enough are in flight, the input ends, or the budget says wait."""
        budget = self._budget
        if self._tuner is not None and self._tuner.mode == INLINE:
            return
        while not self._input_done and len(self._inflight) < self._max_inflight:
            chunk = self._chunk
            if budget is not None:
                if self._inflight and not budget.has_room(1):
                    return
                if self._element_bytes:    # no bigger a chunk than the room left (at least one element)
                    chunk = max(1, min(chunk, (budget.limit - budget.in_use) // self._element_bytes))
            start = self._next_index
            try:
                items = self._it.next_batch(chunk)
            except Exception as exc:      # an upstream error keeps its place in the stream
                task = ChunkTask([], start, None)
                task.input_error, task.finished, task.outputs = exc, True, []
                self._inflight.append(task)
                continue
            if not items:
                self._input_done = True
                return
            self._next_index = start + len(items)
            task = ChunkTask(items, start, self._done_q)
            task.limit = self._limit
            if budget is not None:
                task.nbytes = sum(nbytes(x) for x in items)
                budget.add_read_ahead(task.nbytes)
                self._element_bytes = max(1, task.nbytes // len(items))
            self._pool.submit(self._fn, task)
            self._inflight.append(task)

    def _wait_finished(self):
        """Take one finished task off the done queue (marks it finished); None if closed meanwhile."""
        while not (self._closed or self._ctx.closed):
            try:
                task = self._done_q.get(timeout=0.1)
            except queue.Empty:
                continue
            task.finished = True
            return task
        return None

    def _run_inline(self):
        """AUTOTUNE's inline mode: map the next chunk in this thread."""
        if self._input_done:
            return None
        start = self._next_index
        try:
            items = self._it.next_batch(self._chunk)
        except Exception as exc:
            task = ChunkTask([], start, None)
            task.input_error, task.outputs = exc, []
            return task
        if not items:
            self._input_done = True
            return None
        self._next_index = start + len(items)
        task = ChunkTask(items, start, None)
        run_chunk(self._fn, task)
        return task

    def _next_task(self):
        if self._tuner is not None and self._tuner.mode == INLINE and not self._inflight:
            return self._run_inline()
        self._fill()
        if not self._inflight:
            return None
        if self._deterministic:
            head = self._inflight[0]
            while not head.finished:
                if self._wait_finished() is None:
                    return None
            self._inflight.popleft()
            return head
        for task in self._inflight:   # an input error or a finished chunk waiting to be taken
            if task.finished:
                self._inflight.remove(task)
                return task
        task = self._wait_finished()
        if task is not None:
            self._inflight.remove(task)
        return task

    def _load(self):
        """Make the next finished chunk the ready list; False when there is none."""
        budget = self._budget
        if budget is not None and self._ready_nbytes:
            budget.release_read_ahead(self._ready_nbytes)
            self._ready_nbytes = 0
        task = self._next_task()
        if task is None:
            self._ready, self._pos = [], 0
            return False
        if task.input_error is not None:
            self._ready, self._pos = [], 0
            self._fill()
            exc, task.input_error = task.input_error, None
            raise exc
        self._adapt_chunk(task)
        if self._tuner is not None:
            self._tuner.record(len(task.items))
        if budget is not None:
            budget.release_read_ahead(task.nbytes)
            self._ready_nbytes = sum(nbytes(x) for x in task.outputs)
            budget.add_read_ahead(self._ready_nbytes)
        self._ready, self._pos, self._ready_start = task.outputs, 0, task.start
        self._ready_failures = {k: (exc, tb) for k, exc, tb in task.failures} if task.failures else None
        self._fill()          # keep the workers busy while the consumer works through this chunk
        return True

    def _adapt_chunk(self, task):
        n = len(task.items)
        if n and task.seconds > 0:
            want = int(TARGET_TASK_SECONDS * n / task.seconds)
            self._chunk = max(1, min(MAX_CHUNK, want, 2 * self._chunk))
        elif n:
            self._chunk = min(MAX_CHUNK, 2 * self._chunk)

    # -- consuming -------------------------------------------------------------------------------------
    def __next__(self):
        while True:
            pos = self._pos
            if pos < len(self._ready):
                self._pos = pos + 1
                if self._ready_failures is None or pos not in self._ready_failures:
                    return self._ready[pos]
                exc, text = self._ready_failures.pop(pos)
                raise_user_error(exc, self._where, self._ready_start + pos, text)
            if not self._load():
                raise StopIteration

    def next_batch(self, n):
        if self._pending_error is not None or self._ready_failures:
            return super().next_batch(n)
        if self._pos >= len(self._ready) and not self._load():
            return []
        if self._ready_failures:
            return super().next_batch(n)
        pos = self._pos
        out = self._ready[pos:pos + n]
        self._pos = pos + len(out)
        return out

    def skip(self, n):
        done = 0
        # Work already in flight is taken as it is; the rest is skipped in the input, unmapped.
        while done < n and (self._pos < len(self._ready) or self._inflight):
            if self._pos >= len(self._ready):
                if not self._load_for_skip():
                    break
                continue
            k = min(n - done, len(self._ready) - self._pos)
            self._pos += k
            done += k
        if done < n and not self._input_done:
            k = self._it.skip(n - done)
            self._next_index += k
            done += k
        return done

    def _load_for_skip(self):
        """Take the oldest in-flight chunk as the ready list, without submitting more work."""
        if not self._inflight:
            return False
        budget = self._budget
        if budget is not None and self._ready_nbytes:
            budget.release_read_ahead(self._ready_nbytes)
            self._ready_nbytes = 0
        head = self._inflight[0]
        while not head.finished:
            if self._wait_finished() is None:
                return False
        self._inflight.popleft()
        if budget is not None and head.input_error is None:
            budget.release_read_ahead(head.nbytes)
        self._ready, self._pos = (head.outputs or []), 0
        self._ready_failures = None
        return True

    def close(self):
        if self._closed:
            return
        self._closed = True
        for task in self._inflight:
            task.cancelled = True
        if self._budget is not None:
            for task in self._inflight:
                if not task.input_error:
                    self._budget.release_read_ahead(task.nbytes)
            self._budget.release_read_ahead(self._ready_nbytes)
        self._inflight.clear()
        self._ready = []
        if self._owned_pool:
            self._pool.close()
        self._it.close()


class MapDataset(UnaryDataset):
    """``map(map_func, num_parallel_calls, deterministic, use_processes)``."""

    def __init__(self, input_dataset, map_func, num_parallel_calls, deterministic, use_processes):
        super().__init__(input_dataset)
        if not callable(map_func):
            raise InvalidArgumentError(f"map needs a callable, got {type(map_func).__name__}")
        self._fn = map_func
        self._parallel = resolve_parallelism(num_parallel_calls, "map num_parallel_calls")
        self._deterministic = deterministic
        self._use_processes = use_processes
        self._settled_mode = None      # AUTOTUNE's last decision, pool or inline

    @property
    def name(self):
        return f"Dataset.map({function_name(self._fn)})"

    def _workers(self, options):
        n = (os.cpu_count() or 1) if self._parallel == AUTOTUNE else self._parallel
        cap = options.threading.private_threadpool_size
        return max(1, min(n, cap) if cap else n)

    def _make_iterator(self, ctx, path):
        it = self._input._make_iterator(ctx, path)
        if self._parallel is None:
            return _MapIterator(it, self._fn, self.name)
        options = ctx.options
        workers = self._workers(options)
        deterministic = self._deterministic
        if deterministic is None:
            deterministic = options.resolved_deterministic
        use_processes = self._use_processes if self._use_processes is not None else bool(options.use_processes)
        owned = False
        if use_processes:
            pool, owned = ctx.process_pool(self, self._fn, workers)
        else:
            pool = ctx.thread_pool(workers)
        tuner = None
        if self._parallel == AUTOTUNE:   # a later pass starts in the mode an earlier one settled on
            tuner = ModeTuner(settled_mode=self._settled_mode, on_settle=self._remember_mode)
        return _ParallelMapIterator(it, self._fn, pool, workers, deterministic, self.name, ctx,
                                    owned_pool=owned, tuner=tuner)

    def _remember_mode(self, mode):
        self._settled_mode = mode

    def _cardinality(self):
        return self._input.cardinality()

    def _compute_element_spec(self):
        sample = self._sample_element()
        return None if sample is None else spec_of(sample)

    def _sample_element(self):
        sample = self._input._sample_element()
        if sample is None:
            return None
        try:
            return call_with_element(self._fn, sample)
        except Exception as exc:
            raise_user_error(exc, self.name + " (computing element_spec)", 0)

    def _describe_args(self):
        return {"fn": function_name(self._fn), "parallel": self._parallel}
