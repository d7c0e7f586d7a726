"""The reader contract, checked for one input at a time, in a forked child process.

Opening a file must end in one of two ways: a correct load, or a ``KestimatorError`` subclass whose
message names the file. Along the way the reader may not

* raise any other exception type (a ``KeyError`` or ``RecursionError`` escaping is a bug),
* crash the interpreter (a segfault in a C library kills the child, not the test run) or hang: a SIGPROF
  timer (CPU seconds, so a busy machine does not fake a hang) interrupts a hang in Python code with a
  traceback; the parent kills a child stuck in C code (wall-time backstop);
* allocate more than a cap (the child sets the documented read limit, ``_formats.set_max_read_bytes``, to a
  quarter of it): tracemalloc's peak over the call (NumPy buffers are traced, so an array
  allocated from a declared size shows up) and, for allocations in C that tracemalloc cannot see
  (HDF5, zlib), an address-space limit on the child that turns them into a MemoryError;
* create a file (the watched folders are listed before and after) or import a module (``sys.modules``
  is compared; the tests warm each reader up on a valid file first, so its own lazy imports are done).

Each input runs in a fork so that the parent survives anything the reader does; the fork is cheap
(copy-on-write) and the child inherits the warmed-up modules and fixtures. ``Contract.run`` returns
``("ok", None)`` or ``("error", Refusal)`` and raises ``ContractViolation`` (an AssertionError, so
hypothesis shrinks the input) when a rule is broken.
"""
import json
import os
import resource
import select
import shutil
import signal
import sys
import time
import traceback
import tracemalloc

MiB = 1 << 20
_GRACE_S = 5.0   # the parent waits this long past the deadline before it kills a child stuck in C code
# The child's deadline counts CPU seconds (ITIMER_PROF), so a machine busy with other work does not turn a slow
# input into a "hang"; the parent's backstop for a child blocked in C (using no CPU) is wall time, this many
# times the deadline plus the grace.
_WALL_FACTOR = 3


class ContractViolation(AssertionError):
    """A reader broke the contract on one input."""


class Refusal:
    """A KestimatorError the reader raised in the child: its class name and message."""

    def __init__(self, kind, message):
        self.kind, self.message = kind, message

    def __repr__(self):
        return f"{self.kind}({self.message[:120]!r})"


class _Deadline(BaseException):
    """Raised by the alarm handler; a BaseException so `except Exception` in a reader cannot swallow it."""


def _listing(folder):
    out = set()
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(root, name), folder))
    return out


class Contract:
    """Checks one reader against the contract.

    Args:
        name: what is read, for messages ("checkpoint", "Keras .h5" ...).
        deadline_s: seconds one input may take.
        mem_factor / mem_floor: the allocation cap is max(mem_floor, mem_factor * input size).
        watch: folders that must hold the same entries before and after each call.
        names_file: require the error message to name the input path (off for in-memory inputs).
    """

    def __init__(self, name, deadline_s=10.0, mem_factor=64, mem_floor=64 * MiB, watch=(), names_file=True):
        self.name, self.deadline_s = name, deadline_s
        self.mem_factor, self.mem_floor = mem_factor, mem_floor
        self.watch, self.names_file = list(watch), names_file
        self.tried = 0
        self.outcomes = {"ok": 0, "error": 0}
        self.error_types = {}
        self.skipped = 0
        self._started = None

    def run(self, fn, path=None, size=None, mentions=None, watch=None):
        """Call fn() under the contract, in a forked child.

        Args:
            fn: the reader call (it may check what it loaded with asserts: a failed assert is a violation).
            path: the input path; an error message must contain it (or one of `mentions`).
            size: the input's size in bytes (default: the file's or folder's size) for the allocation cap.
            mentions: alternative strings, any of which may stand for the path in a message.
            watch: folders to watch for this call (default: the contract's).

        Returns:
            ("ok", None) or ("error", Refusal).

        Raises:
            ContractViolation: any rule broken.
        """
        if self._over_budget():
            self.skipped += 1
            return "skipped", None
        if size is None:
            size = _size_of(path)
        _keep_last(path)
        cap = max(self.mem_floor, self.mem_factor * size)
        wanted = ([os.fspath(path)] if path is not None else []) + list(mentions or [])
        folders = self.watch if watch is None else list(watch)
        sys.stdout.flush()
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:   # the child: run the reader, report, and leave without running any cleanup
            code = 0
            try:
                os.close(read_end)
                report = self._child(fn, cap, wanted, folders)
            except BaseException as exc:   # noqa: B902 - anything at all must reach the parent
                report = {"failure": f"{self.name}: harness error in the child: {exc!r}"}
            try:
                view = memoryview(json.dumps(report).encode())
                while view:
                    view = view[os.write(write_end, view):]
            except BaseException:   # noqa: B902
                code = 3
            os._exit(code)
        os.close(write_end)
        report, failure = self._collect(pid, read_end)
        self.tried += 1
        if failure is None:
            failure = report.get("failure")
        if failure is not None:
            raise ContractViolation(failure)
        kind = report["outcome"]
        self.outcomes[kind] += 1
        if self.tried % 250 == 0:
            self._progress()
        if kind == "ok":
            return "ok", None
        self.error_types[report["type"]] = self.error_types.get(report["type"], 0) + 1
        return "error", Refusal(report["type"], report["message"])

    def _collect(self, pid, read_end):
        """(report, failure) from the child: its JSON report, or why there is none (hang, crash)."""
        wall = self.deadline_s * _WALL_FACTOR + _GRACE_S
        chunks, limit = [], time.monotonic() + wall
        try:
            while True:
                left = limit - time.monotonic()
                if left <= 0:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    return {}, (f"{self.name}: no result after {wall:.0f} s and the deadline "
                                "could not interrupt it (a hang in C code)")
                ready, _, _ = select.select([read_end], [], [], left)
                if not ready:
                    continue
                chunk = os.read(read_end, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(read_end)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            return {}, f"{self.name}: the reader crashed the interpreter (signal {os.WTERMSIG(status)})"
        try:
            return json.loads(b"".join(chunks).decode()), None
        except ValueError:
            return {}, f"{self.name}: the child died without a report (exit status {status})"

    def _child(self, fn, cap, wanted, folders):
        from kestimator.errors import KestimatorError
        from kestimator import _formats
        modules = set(sys.modules)
        listings = {d: _listing(d) for d in folders}
        # The documented read limit (_formats.set_max_read_bytes) at a quarter of the cap: a reader that checks
        # declared sizes before allocating refuses with ResourceExhaustedError, and copies while converting
        # still fit the cap; one that allocates first shows up in tracemalloc's peak.
        _formats.set_max_read_bytes(max(cap // 4, 1))
        _cap_address_space(cap)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        signal.signal(signal.SIGPROF, _raise_deadline)
        # The timer repeats: an exception raised inside a C callback may be printed and dropped ("Exception
        # ignored in ..."), so it fires again until one reaches the reader's Python frames.
        signal.setitimer(signal.ITIMER_PROF, self.deadline_s, 0.25)
        report, failure = None, None
        try:
            try:
                fn()
                report = {"outcome": "ok"}
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
        except _Deadline:
            failure = (f"{self.name}: no result after {self.deadline_s} CPU s (a hang):\n"
                       f"{traceback.format_exc(limit=-12)}")
        except KestimatorError as exc:
            text = str(exc)
            kind = type(exc).__name__
            cause = exc.__cause__
            if cause is not None and not isinstance(cause, KestimatorError):   # caught by a reader's boundary
                kind += f"<-{type(cause).__name__}"
            report = {"outcome": "error", "type": kind, "message": text[:2000]}
            if self.names_file and wanted and not any(w in text for w in wanted):
                failure = f"{self.name}: {type(exc).__name__} does not name the file ({wanted[0]}): {text[:300]}"
        except BaseException as exc:   # noqa: B902 - the contract is about exactly this
            failure = (f"{self.name}: {type(exc).__name__} is not a KestimatorError:\n"
                       f"{traceback.format_exc(limit=-12)}")
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        if failure is None and peak > cap:
            failure = f"{self.name}: allocated {peak / MiB:.1f} MiB (cap {cap / MiB:.1f} MiB)"
        if failure is None:
            # stdlib codecs load on first use ("ascii" the first time bytes are decoded so): not a file's doing
            new = sorted(m for m in set(sys.modules) - modules if not m.startswith("encodings."))
            if new:
                failure = f"{self.name}: reading imported modules {new[:10]}"
        if failure is None:
            for folder, before in listings.items():
                after = _listing(folder)
                if after != before:
                    failure = (f"{self.name}: reading changed folder {folder}: added {sorted(after - before)}, "
                               f"removed {sorted(before - after)}")
        return {"failure": failure} if failure is not None else report

    def summary(self):
        skipped = f" ({self.skipped} not run: FUZZ_BUDGET_S spent)" if self.skipped else ""
        return (f"{self.name}: {self.tried} inputs, {self.outcomes['ok']} loaded, {self.outcomes['error']} refused "
                f"{dict(sorted(self.error_types.items()))}{skipped}")

    def _over_budget(self):
        """FUZZ_BUDGET_S=<s> caps the seconds one reader is fuzzed (for a slow-tier run on a busy machine);
        inputs drawn after that are not run, and the summary says how many."""
        budget = os.environ.get("FUZZ_BUDGET_S")
        if not budget:
            return False
        if self._started is None:
            self._started = time.monotonic()
        return time.monotonic() - self._started > float(budget)

    def _progress(self):
        """With FUZZ_PROGRESS=<path>, append the running tally there (a long run shows its counts as it goes)."""
        target = os.environ.get("FUZZ_PROGRESS")
        if target:
            with open(target, "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} {self.summary()}\n")


def _size_of(path):
    if path is None:
        return 0
    path = os.fspath(path)
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _keep_last(path):
    """With FUZZ_LAST_INPUT=<path> set, copy each input there before it runs (to replay one by hand)."""
    target = os.environ.get("FUZZ_LAST_INPUT")
    if not target or path is None or not os.path.exists(path):
        return
    if os.path.isdir(target):
        shutil.rmtree(target)
    if os.path.isdir(path):
        shutil.copytree(path, target)
    else:
        shutil.copyfile(path, target)


def _cap_address_space(cap):
    """Limit the child's address space to what it maps now plus `cap` (and slack for thread stacks and
    allocator arenas), so an allocation in C that tracemalloc cannot see fails with MemoryError instead of
    exhausting the machine."""
    limits = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    soft = vm + cap + 1024 * MiB
    if limits[1] != resource.RLIM_INFINITY:
        soft = min(soft, limits[1])
    resource.setrlimit(resource.RLIMIT_AS, (soft, limits[1]))


def _raise_deadline(signum, frame):
    raise _Deadline()
