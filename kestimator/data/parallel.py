"""The parallel executor: worker threads and worker processes that run *chunks* of elements.

A hand-off between threads costs microseconds; a NumPy map function on a small array costs about the
same. So the unit of work is a chunk (a list of consecutive elements, sized by the caller from measured
per-element times), never one element: one queue put and one result hand-off serve up to 64 elements.

Threads are the default: NumPy releases the GIL inside its kernels. Processes serve functions that hold
the GIL (pure-Python loops). Worker processes are forked by default, so the function (a lambda or a
closure included) is inherited rather than sent; elements and results travel pickled over pipes —
pickle here only ever reads bytes that this pool's own processes wrote, never a file.

Every worker is a daemon and stops promptly on ``close()``: threads check a cancel flag between
elements, processes are terminated. A worker process also exits by itself when its parent dies.
"""
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback

from ..errors import InvalidArgumentError, KestimatorError, UnavailableError
from .structure import call_with_element

MAX_THREADS = 64


class ChunkTask:
    """A list of elements to map, and afterwards their outputs.

    Attributes:
        items: the input elements.
        start: the stream index of ``items[0]`` (for error messages).
        outputs: the mapped elements (``None`` in the slots that failed).
        failures: None, or a list of ``(offset, exception, remote_traceback_text)``.
        seconds: time the worker spent on the chunk.
        cancelled: set by the owner when it no longer wants the result.
    """

    __slots__ = ("items", "start", "outputs", "failures", "seconds", "done", "cancelled", "call",
                 "nbytes", "finished", "input_error", "limit")

    def __init__(self, items, start, done):
        self.items = items
        self.start = start
        self.outputs = None
        self.failures = None
        self.seconds = 0.0
        self.done = done           # queue.SimpleQueue the finished task is put on
        self.cancelled = False
        self.call = None
        self.nbytes = 0
        self.finished = False      # set by the owner once it has taken the task off ``done``
        self.input_error = None    # an error raised by the input while this chunk was being read
        self.limit = None          # a semaphore capping how many of its owner's chunks run at once


def run_chunk(fn, task):
    """Map ``fn`` over ``task.items`` in this thread, recording per-element failures."""
    outputs = []
    append = outputs.append
    failures = None
    t0 = time.perf_counter()
    for offset, item in enumerate(task.items):
        if task.cancelled:
            break
        try:
            append(call_with_element(fn, item) if isinstance(item, tuple) else fn(item))
        except Exception as exc:   # noqa: BLE001 - delivered to the consumer with its index
            append(None)
            if failures is None:
                failures = []
            failures.append((offset, exc, None))
    task.seconds = time.perf_counter() - t0
    task.outputs = outputs
    task.failures = failures


class ThreadPool:
    """Daemon threads taking :class:`ChunkTask` s from one queue; shared by the maps of one pass."""

    def __init__(self):
        self._queue = queue.SimpleQueue()
        self._threads = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def num_threads(self):
        return len(self._threads)

    def ensure_threads(self, n):
        with self._lock:
            while len(self._threads) < min(n, MAX_THREADS) and not self._closed:
                t = threading.Thread(target=self._work, name=f"ks.data-map-{len(self._threads)}",
                                     daemon=True)
                t.start()
                self._threads.append(t)

    def submit(self, fn, task):
        task.call = fn
        self._queue.put(task)

    def _work(self):
        get = self._queue.get
        while True:
            task = get()
            if task is None or self._closed:
                return
            if not task.cancelled:
                if task.limit is None:
                    run_chunk(task.call, task)
                else:   # the shared pool may have more threads than this map's num_parallel_calls
                    with task.limit:
                        run_chunk(task.call, task)
            task.call = None
            task.done.put(task)

    def close(self):
        """Ask every thread to stop after its current element; does not wait for them."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._queue.put(None)


def default_start_method():
    """fork where the platform offers it (functions need not be picklable), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    return "fork" if "fork" in methods and sys.platform != "darwin" else "spawn"


class ProcessPool:
    """Worker processes running one fixed function over chunks.

    Args:
        fn: the map function (inherited by forked workers, pickled for spawn / forkserver).
        num_workers: how many processes.
        start_method: "fork", "spawn", "forkserver" or None (see :func:`default_start_method`).
        name: used in thread names and error messages.

    Raises:
        InvalidArgumentError: the function cannot be sent to spawned workers.
    """

    def __init__(self, fn, num_workers, start_method=None, name="map"):
        self.name = name
        self.broken = False
        self._death_error = None
        self._closed = False
        method = start_method or default_start_method()
        mp = multiprocessing.get_context(method)
        self._tasks = mp.Queue()
        self._tasks.cancel_join_thread()      # never wait at exit for tasks nobody will read
        self._reader, self._writer = mp.Pipe(duplex=False)
        # Kept on self: a spawned child unpickles it after start() returns, so it must stay alive.
        self._write_lock = write_lock = mp.Lock()
        self._pending = {}
        self._pending_lock = threading.Lock()
        self._next_id = 0
        self._procs = []
        for i in range(num_workers):
            p = mp.Process(target=_process_worker_main, name=f"ks.data-{name}-{i}",
                           args=(fn, self._tasks, self._writer, write_lock, os.getpid()), daemon=True)
            try:
                p.start()
            except (pickle.PicklingError, AttributeError, TypeError) as exc:
                self.close()
                raise InvalidArgumentError(
                    f"{name}: the map function cannot be sent to '{method}' worker processes ({exc}); "
                    "define it at module level or use Options.process_start_method='fork'") from exc
            self._procs.append(p)
        self._collector = threading.Thread(target=self._collect, name=f"ks.data-{name}-results",
                                           daemon=True)
        self._collector.start()

    def submit(self, fn, task):
        """Queue ``task`` (``fn`` is ignored: the pool's function was fixed at start)."""
        del fn
        with self._pending_lock:
            if self.broken or self._closed:
                error = self._death_error or UnavailableError(f"{self.name}: the worker processes were closed")
                task.outputs = [None] * len(task.items)
                task.failures = [(k, error, None) for k in range(len(task.items))]
                task.done.put(task)
                return
            task_id = self._next_id
            self._next_id += 1
            self._pending[task_id] = task
        self._tasks.put((task_id, task.items))

    def _collect(self):
        sentinels = {p.sentinel: p for p in self._procs}
        while not self._closed:
            try:
                ready = multiprocessing.connection.wait([self._reader, *sentinels], timeout=0.2)
            except OSError:
                return
            if self._closed:
                return
            if self._reader in ready:
                try:
                    payload = self._reader.recv_bytes()
                except (EOFError, OSError):
                    return
                self._deliver(payload)
            elif ready:
                self._fail_all(next(sentinels[s] for s in ready if s in sentinels))
                return

    def _deliver(self, payload):
        task_id, outputs, failures, seconds = pickle.loads(payload)
        with self._pending_lock:
            task = self._pending.pop(task_id, None)
        if task is None:
            return
        if outputs is None:   # the worker could not pickle the chunk's outputs
            offset, exc, text = failures[0]
            outputs = [None] * len(task.items)
            failures = [(k, exc, text) for k in range(len(task.items))]
        task.outputs, task.failures, task.seconds = outputs, failures, seconds
        task.done.put(task)

    def _fail_all(self, dead):
        dead.join(0.1)
        err = UnavailableError(f"{self.name}: worker process {dead.pid} exited with code {dead.exitcode} "
                               "while mapping; its elements were lost")
        with self._pending_lock:
            self.broken = True
            self._death_error = err
            tasks = list(self._pending.values())
            self._pending.clear()
        for task in tasks:
            task.outputs = [None] * len(task.items)
            task.failures = [(k, err, None) for k in range(len(task.items))]
            task.done.put(task)

    def close(self):
        """Terminate the workers now (they hold no state worth finishing) and reap them."""
        if self._closed:
            return
        self._closed = True
        for p in self._procs:
            if p.is_alive():
                p.terminate()
        for p in self._procs:
            p.join(1.0)
            if p.is_alive():
                p.kill()
                p.join(1.0)
        self._tasks.close()
        for conn in (self._reader, self._writer):
            conn.close()


def _process_worker_main(fn, tasks, writer, write_lock, parent_pid):
    """Body of a worker process: map chunks until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    watchdog = threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True)
    watchdog.start()
    while True:
        try:
            message = tasks.get(timeout=1.0)
        except queue.Empty:
            continue
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, items = message
        task = ChunkTask(items, 0, None)
        run_chunk(fn, task)
        failures = None
        if task.failures:
            failures = [(k, _picklable(exc), _format_traceback(exc)) for k, exc, _ in task.failures]
        try:
            payload = pickle.dumps((task_id, task.outputs, failures, task.seconds), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:   # noqa: BLE001 - outputs that cannot travel back
            err = InvalidArgumentError(f"the map function returned a value that cannot be sent back from "
                                       f"a worker process: {exc}")
            payload = pickle.dumps((task_id, None, [(0, err, None)], task.seconds))
        with write_lock:
            writer.send_bytes(payload)


def _format_traceback(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _picklable(exc):
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:   # noqa: BLE001 - replaced by a description that always travels
        return KestimatorError(f"{type(exc).__name__}: {exc}")


def _exit_when_orphaned(parent_pid):
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)
