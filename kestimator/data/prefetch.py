"""prefetch: a background thread keeps up to ``buffer_size`` elements ready.

The producer thread starts on the first request (so a restore can ``skip`` the input directly), holds
at most ``buffer_size`` elements (fewer while the pipeline is at ``Options.memory_budget_bytes``; at
least one), passes input errors through in order, and exits within ~0.1 s of ``close()``.
"""
import collections
import threading

from .iterator import NodeIterator
from .options import AUTOTUNE
from .structure import nbytes
from .transforms import UnaryDataset
from .validation import check_positive_int

AUTOTUNE_PREFETCH = 8
_WAIT = 0.1


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


class _PrefetchIterator(NodeIterator):
    """Reads ``it`` ahead on a daemon thread; also the reader of a parallel interleave's inputs.

    Args:
        it: the input iterator.
        buffer_size: the most elements held.
        ctx: the pass's IterationContext (stop signal, budget).
        semaphore: optional; held around each input read, to cap how many readers run at once.
    """

    def __init__(self, it, buffer_size, ctx, semaphore=None):
        self._it = it
        self._semaphore = semaphore
        self._cap = buffer_size
        self._ctx = ctx
        self._budget = ctx.budget
        self._buf = collections.deque()
        self._sizes = collections.deque()     # bytes of each buffered element (with a budget only)
        self._cond = threading.Condition(threading.Lock())
        self._thread = None
        self._input_done = False
        self._closed = False
        self._producer_exited = False

    def _stopping(self):
        return self._closed or self._ctx.closed

    def _start(self):
        if self._stopping():
            return
        self._thread = threading.Thread(target=self._produce, name="ks.data-prefetch", daemon=True)
        self._ctx.track(self)
        self._thread.start()

    def _produce(self):
        try:
            self._produce_loop()
        finally:
            # The input belongs to this thread while it runs: whichever of this thread and close()
            # comes second closes it.
            with self._cond:
                self._producer_exited = True
                close_input = self._closed
            if close_input:
                self._it.close()
            self._ctx.untrack(self)

    def _produce_loop(self):
        it, buf, cond, budget = self._it, self._buf, self._cond, self._budget
        while True:
            with cond:
                while len(buf) >= self._cap and not self._stopping():
                    cond.wait(_WAIT)
                if self._stopping():
                    return
                # Under a budget read one element at a time, so that each is weighed before the next.
                room = 1 if budget is not None else self._cap - len(buf)
            try:
                if self._semaphore is None:
                    items = it.next_batch(room)
                else:
                    with self._semaphore:
                        items = it.next_batch(room)
            except Exception as exc:     # delivered to the consumer in order
                items = [_Failure(exc)]
            if self._stopping():
                return
            if not items:
                with cond:
                    self._input_done = True
                    cond.notify_all()
                return
            for item in items:
                size = 0
                if budget is not None:
                    size = nbytes(item) if type(item) is not _Failure else 0
                    # Keep at least one element so the pipeline moves; otherwise wait for room.
                    if buf:
                        budget.wait_for_room(size, lambda: self._stopping() or not buf)
                    budget.add_read_ahead(size)
                with cond:
                    buf.append(item)
                    self._sizes.append(size)
                    cond.notify_all()

    def start(self):
        """Start reading ahead now (otherwise the first ``next`` starts it)."""
        if self._thread is None:
            self._start()

    def ready(self):
        """True when ``next`` would not wait (an element, an error or the end is there)."""
        return bool(self._buf) or self._input_done

    def wait_ready(self, timeout):
        """Wait up to ``timeout`` seconds for :meth:`ready` to become true."""
        if self._thread is None:
            self._start()
        with self._cond:
            if not self.ready() and not self._stopping():
                self._cond.wait(timeout)

    def __next__(self):
        if self._thread is None:
            self._start()
        cond, buf = self._cond, self._buf
        with cond:
            while not buf:
                if self._input_done or self._stopping():
                    raise StopIteration
                cond.wait(_WAIT)
            item = buf.popleft()
            size = self._sizes.popleft()
            cond.notify_all()
        if size:
            self._budget.release_read_ahead(size)
        if type(item) is _Failure:
            raise item.exc
        return item

    def skip(self, n):
        if self._thread is None:
            return self._it.skip(n)
        return super().skip(n)

    def close(self):
        """Signal the producer (it exits within ~0.1 s, or when a slow input call returns)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            close_input = self._thread is None or self._producer_exited
            self._cond.notify_all()
        if self._budget is not None:
            self._budget.release_read_ahead(sum(self._sizes))
            self._sizes.clear()
        self._buf.clear()
        if close_input:
            self._it.close()


class PrefetchDataset(UnaryDataset):
    """``prefetch(buffer_size)``."""

    def __init__(self, input_dataset, buffer_size):
        super().__init__(input_dataset)
        if buffer_size == AUTOTUNE:
            buffer_size = AUTOTUNE_PREFETCH
        self._size = check_positive_int(buffer_size, "prefetch buffer_size", allow=(0,))

    def _make_iterator(self, ctx, path):
        it = self._input._make_iterator(ctx, path)
        return it if self._size == 0 else _PrefetchIterator(it, self._size, ctx)

    def _describe_args(self):
        return {"buffer_size": self._size}
