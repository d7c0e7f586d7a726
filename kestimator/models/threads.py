"""The BLAS thread count of fit()'s training loop, chosen by timing real steps.

BLAS threads only pay off when each of them gets a core and the matrices are big enough to split. On a
machine shared with other work, or for small layers, they wait for each other instead. Measured here
with one other process busy on one of the two cores: the seed MLP at batch 32 trained at 3,600 steps/s
with one OpenBLAS thread and 1,500 with two; the small CNN at 34 and 16 steps/s. So at the start of each
epoch fit() runs a few of its steps with one thread and a few with the default count, alternating, and
keeps the faster (by the median of 8 timed steps each) for the rest of the epoch. The default count
comes back when fit() ends. Without threadpoolctl, or with a single-threaded BLAS, nothing changes.

Two guards against a trial that a busy machine fooled: one round under load once picked 2 threads and
the small CNN fell from 65 to 27 steps/s. (1) When the 1-minute load average exceeds the core count,
there is no trial: other processes hold the cores, and one thread is the choice. (2) After choosing more
than one thread, the epoch keeps watching: when the median of the last 8 steps is more than twice the
trial's median for that count, the rest of the epoch runs with one thread.
"""
import os
import time

_TRIAL = (1, 1, 1, 1, "n", "n", "n", "n", 1, 1, 1, 1, "n", "n", "n", "n")   # after one warm-up step
_MIN_STEPS = 48     # shorter epochs keep the previous choice: the trial would be most of the epoch
_WATCH = 8          # steps in the running median that re-checks a multi-thread choice
_SLOWDOWN = 2.0     # that median over the trial's median that sends the epoch back to one thread


def overloaded():
    """Whether the machine is busier than its cores: the 1-minute load average exceeds os.cpu_count()."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):   # no load average on this platform: no evidence of load
        return False
    return load > (os.cpu_count() or 1)


class BlasThreads:
    """Sets the BLAS thread count of this process (through threadpoolctl, imported when first needed)."""

    def __init__(self):
        self._controller = None
        self.default = None

    def available(self):
        if self._controller is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                self._controller = False
                return False
            ctl = ThreadpoolController().select(user_api="blas")
            info = ctl.info()
            if not info:
                self._controller = False
                return False
            self._controller = ctl
            self.default = max(int(i.get("num_threads") or 1) for i in info)
        return self._controller is not False and self.default > 1

    def set(self, n):
        self._controller.limit(limits=int(n))


class EpochTuner:
    """Wraps an epoch's batch iterator: times the first steps under each thread count, then runs the rest
    of the epoch with the faster one.

    Attributes:
        choice: the thread count in use after the last trial (None before any).
        timings: the trial's median step time (seconds) per thread count ({} when there was no trial).
        reason: why `choice` was made: "trial", "load" (load average above the core count) or "slowdown"
            (a multi-thread choice whose steps became twice as slow as in its trial).
    """

    def __init__(self, blas):
        self.blas = blas
        self.choice = None
        self.timings = {}
        self.reason = None

    def epoch(self, batches, steps):
        """A generator over `batches` (the epoch's (step, feeds) pairs) that sets the thread count;
        `steps` is the epoch's length (None: unknown)."""
        blas = self.blas
        n = blas.default
        trial = steps is not None and steps >= _MIN_STEPS
        if trial and overloaded():
            trial = False
            self.choice, self.timings, self.reason = 1, {}, "load"
        schedule = [n] + [n if s == "n" else 1 for s in _TRIAL] if trial else []
        if not trial and self.choice is not None:
            blas.set(self.choice)
        times = {1: [], n: []}
        recent = []   # step times after a multi-thread choice
        setting, started = None, None
        for index, item in enumerate(batches):
            now = time.perf_counter()
            if setting is not None and index > 1:   # index 1 ends the warm-up step (compiles a plan)
                times[setting].append(now - started)
            elif setting is None and started is not None and self.reason == "trial" and self.choice != 1:
                recent.append(now - started)
                if len(recent) >= _WATCH:
                    median = sorted(recent[-_WATCH:])[_WATCH // 2]
                    if median > _SLOWDOWN * self.timings[self.choice]:
                        self.choice, self.reason = 1, "slowdown"
                        blas.set(1)
            if index < len(schedule):
                setting = schedule[index]
                blas.set(setting)
            elif index == len(schedule) and schedule:
                one, many = sorted(times[1])[len(times[1]) // 2], sorted(times[n])[len(times[n]) // 2]
                self.choice = 1 if one < many else n
                self.timings = {1: one, n: many}
                self.reason = "trial"
                blas.set(self.choice)
                setting = None
            started = time.perf_counter()
            yield item

    def restore(self):
        self.blas.set(self.blas.default)


_blas = BlasThreads()


def epoch_tuner():
    """An EpochTuner for one fit() call, or None when the thread count cannot or need not be chosen."""
    if not _blas.available():
        return None
    return EpochTuner(_blas)
