"""The BLAS thread count (and intra-op workers) of fit()'s training loop, chosen by timing real steps.

BLAS threads only pay off when each of them gets a core and the matrices are big enough to split. On a
machine shared with other work, or for small layers, they wait for each other instead. Measured here
with one other process busy on one of the two cores: the seed MLP at batch 32 trained at 3,600 steps/s
with one OpenBLAS thread and 1,500 with two; the small CNN at 34 and 16 steps/s. So at the start of an
epoch fit() runs a few of its steps with one thread and a few with the default count, and keeps the faster
(by the median of 8 timed steps each) for the rest of the epoch. That trial runs in the first epoch and in
every 4th after it; the epochs between keep its choice (the trial's slower settings cost the small CNN ~5%
of an epoch), unless a fallback (below) or a skipped trial made the last choice. When the model has
kernels big enough to split on the batch axis (convolutions, pooling: engine/intra_op.py), a third setting
joins the trial: one BLAS thread, and those kernels split over as many worker threads as BLAS would use.
The defaults come back when fit() ends. Without threadpoolctl, or with a single-threaded BLAS, nothing
changes.

Two guards against a trial that a busy machine fooled: one round under load once picked 2 threads and
the small CNN fell from 65 to 27 steps/s. (1) When the 1-minute load average exceeds the core count,
there is no trial: other processes hold the cores, and one thread is the choice. (2) After choosing a
setting that uses more than one core, the epoch keeps watching: when the median of the last 8 steps is
more than twice the trial's median for that setting, the rest of the epoch runs with one thread.
"""
import os
import time

from ..engine import intra_op

_TRIAL_ROUNDS = 2   # after one warm-up step: 4 steps under each setting in turn, twice over
_MIN_STEPS = 60     # shorter epochs keep the previous choice: the trial would be most of the epoch
_RETRIAL_EVERY = 4  # epochs between trials after the first (the slowdown watch covers the epochs between)
_WATCH = 8          # steps in the running median that re-checks a multi-thread choice
_SLOWDOWN = 2.0     # that median over the trial's median that sends the epoch back to one thread
# OpenBLAS's idle threads spin on their cores for 2^28 cycles (~0.1 s) after multi-threaded work, taking the
# cores the intra-op workers need: a "split" step that starts sooner after one with BLAS threads is not timed
# (on 2 cores it ran the small CNN at 9.5 ms a step, as one thread does, instead of 6.2).
_SPIN_S = 0.15


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
    """Wraps an epoch's batch iterator: times the first steps under each setting, then runs the rest of the
    epoch with the fastest.

    Settings: "one" (one BLAS thread), "blas" (the default BLAS thread count) and, once a kernel big enough
    to split has run (engine.intra_op), "split" (one BLAS thread, each such kernel's batch split over as many
    intra-op workers as the default count).

    Attributes:
        setting: the setting in use after the last trial ("one", "blas", "split"; None before any).
        choice: the BLAS thread count of that setting (None before any).
        workers: the intra-op workers of that setting (1: no splitting).
        timings: the trial's median step time (seconds) per setting ({} when there was no trial).
        reason: why the choice was made: "trial", "load" (load average above the core count) or "slowdown"
            (a multi-core choice whose steps became twice as slow as in its trial).
    """

    def __init__(self, blas):
        self.blas = blas
        self.setting = None
        self.timings = {}
        self.reason = None
        self._epochs = 0

    @property
    def choice(self):
        return None if self.setting is None else self.blas.default if self.setting == "blas" else 1

    @property
    def workers(self):
        return self.blas.default if self.setting == "split" else 1

    def _apply(self, setting):
        n = self.blas.default
        self.blas.set(n if setting == "blas" else 1)
        intra_op.set_workers(n if setting == "split" else 1)

    def _choose(self, setting, reason):
        self.setting, self.reason = setting, reason
        self._apply(setting)

    def _schedule(self):
        """The trial's settings after the warm-up step: "one" and (when a kernel could split) "split" in
        turn, 4 steps each, twice over; then 8 steps of "blas", last, because OpenBLAS's idle threads keep
        spinning on their cores for a while after multi-threaded work (see _SPIN_S)."""
        alternating = ("one", "split") if intra_op.splittable_seen() else ("one",)
        rounds = [s for _ in range(_TRIAL_ROUNDS) for s in alternating for _ in range(4)]
        return rounds + ["blas"] * (4 * _TRIAL_ROUNDS)

    def epoch(self, batches, steps):
        """A generator over `batches` (the epoch's (step, feeds) pairs) that sets the BLAS thread count and
        intra-op workers; `steps` is the epoch's length (None: unknown)."""
        self._epochs += 1
        due = self.setting is None or self.reason != "trial" or (self._epochs - 1) % _RETRIAL_EVERY == 0
        trial = steps is not None and steps >= _MIN_STEPS and due
        if trial and overloaded():
            trial = False
            self.timings = {}
            self._choose("one", "load")
        schedule = ["one"] if trial else []   # the warm-up step (compiles a plan); the trial follows it
        if not trial and self.setting is not None:
            self._apply(self.setting)
        times = {}
        recent = []   # step times after a multi-core choice
        trying, started = None, None   # trying: the trial setting the last step ran under
        blas_until = time.perf_counter() + _SPIN_S if self.setting == "blas" else 0.0
        for index, item in enumerate(batches):
            now = time.perf_counter()
            if index == 1 and schedule:   # after the warm-up: a kernel that could split has run, or none will
                schedule += self._schedule()
            if trying == "blas":
                blas_until = now + _SPIN_S
            if trying is not None and index > 1 and (trying != "split" or started >= blas_until):
                times.setdefault(trying, []).append(now - started)
            elif trying is None and started is not None and self.reason == "trial" and self.setting != "one":
                recent.append(now - started)
                if len(recent) >= _WATCH:
                    median = sorted(recent[-_WATCH:])[_WATCH // 2]
                    if median > _SLOWDOWN * self.timings[self.setting]:
                        self._choose("one", "slowdown")
            if index < len(schedule):
                trying = schedule[index]
                self._apply(trying)
            elif index == len(schedule) and schedule:
                self.timings = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
                self._choose(min(self.timings, key=self.timings.get) if self.timings else "one", "trial")
                trying = None
            started = time.perf_counter()
            yield item

    def restore(self):
        self.blas.set(self.blas.default)
        intra_op.set_workers(1)


_blas = BlasThreads()


def epoch_tuner():
    """An EpochTuner for one fit() call, or None when the thread count cannot or need not be chosen."""
    if not _blas.available():
        return None
    return EpochTuner(_blas)
