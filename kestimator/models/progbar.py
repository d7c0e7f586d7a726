"""Progress output of fit / evaluate / predict.

On a terminal with verbose=1 a tqdm bar advances with the steps; it redraws at most every 0.1 s and reads
the running metrics only when it redraws. Otherwise (a log file, CI, verbose=2) each epoch prints one
line, so a long run does not fill a log with one line per step.
"""
import sys
import time

from .callbacks import Callback

_REDRAW_SECONDS = 0.1


def _isatty():
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def format_logs(logs):
    """'loss: 0.1234 - accuracy: 0.9000' (scalars only)."""
    parts = []
    for k, v in (logs or {}).items():
        try:
            parts.append(f"{k}: {float(v):.4f}")
        except (TypeError, ValueError):
            continue
    return " - ".join(parts)


def _duration(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s"
    return f"{seconds * 1000:.0f}ms"


class ProgbarLogger(Callback):
    """Prints training progress: a tqdm bar per epoch on a terminal (verbose=1), else one line per epoch.

    Args:
        count_mode: 'steps' (the only mode; 'samples' is accepted and treated alike).
        stateful_metrics: ignored (every metric here is averaged over the epoch already).
    """

    _lazy_batch_logs = True

    def __init__(self, count_mode="steps", stateful_metrics=None):
        super().__init__()
        self._bar = None
        self._tty = None
        self.verbose = 1
        self.epochs = 1

    def set_params(self, params):
        super().set_params(params)
        self.verbose = params.get("verbose", 1)
        self.epochs = params.get("epochs", 1)
        self._tty = _isatty()

    def _uses_bar(self):
        return self.verbose == 1 and bool(self._tty)

    def _overrides(self, hook):
        if hook in ("on_train_batch_end", "on_test_batch_end", "on_predict_batch_end"):
            return self._uses_bar()
        return super()._overrides(hook)

    # -- bar ----------------------------------------------------------------------------------------------
    def _open_bar(self, total, desc=None):
        if not self._uses_bar():
            return
        from tqdm import tqdm
        self._bar = tqdm(total=total, file=sys.stdout, desc=desc, unit="step", dynamic_ncols=True,
                         leave=True, mininterval=_REDRAW_SECONDS, bar_format=None)
        self._last_draw = time.monotonic()

    def _advance(self, batch, logs_fn):
        bar = self._bar
        if bar is None:
            return
        now = time.monotonic()
        if now - self._last_draw < _REDRAW_SECONDS:
            return
        self._last_draw = now
        bar.update(batch + 1 - bar.n)
        text = format_logs(logs_fn() if callable(logs_fn) else logs_fn)
        if text:
            bar.set_postfix_str(text, refresh=False)

    def _close_bar(self, steps_done, logs):
        bar = self._bar
        if bar is None:
            return False
        if steps_done is not None and steps_done > bar.n:
            bar.update(steps_done - bar.n)
        text = format_logs(logs)
        if text:
            bar.set_postfix_str(text, refresh=False)
        bar.close()
        self._bar = None
        return True

    # -- training -----------------------------------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._seen = 0
        if self.verbose:
            self._open_bar(self.params.get("steps"), desc=f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        self._advance(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if not self.verbose:
            return
        steps = self.params.get("steps") or self._seen
        if self._close_bar(steps, logs):
            return
        took = time.perf_counter() - self._epoch_start
        line = f"Epoch {epoch + 1}/{self.epochs} - {steps} steps - {_duration(took)}"
        text = format_logs(logs)
        print(line + (" - " + text if text else ""), flush=True)

    # -- evaluate / predict ---------------------------------------------------------------------------------
    def on_test_begin(self, logs=None):
        if self.params.get("_in_fit"):
            return
        self._test_start = time.perf_counter()
        if self.verbose:
            self._open_bar(self.params.get("steps"), desc="Evaluate")

    def on_test_batch_end(self, batch, logs=None):
        if not self.params.get("_in_fit"):
            self._advance(batch, logs)

    def on_test_end(self, logs=None):
        if self.params.get("_in_fit") or not self.verbose:
            return
        if self._close_bar(self.params.get("steps"), logs):
            return
        took = time.perf_counter() - self._test_start
        text = format_logs(logs)
        print(f"Evaluate - {self.params.get('steps')} steps - {_duration(took)}" + (" - " + text if text else ""),
              flush=True)

    def on_predict_begin(self, logs=None):
        self._test_start = time.perf_counter()
        if self.verbose:
            self._open_bar(self.params.get("steps"), desc="Predict")

    def on_predict_batch_end(self, batch, logs=None):
        self._advance(batch, {})

    def on_predict_end(self, logs=None):
        if not self.verbose:
            return
        if self._close_bar(self.params.get("steps"), {}):
            return
        took = time.perf_counter() - self._test_start
        print(f"Predict - {self.params.get('steps')} steps - {_duration(took)}", flush=True)
