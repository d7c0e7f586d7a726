"""Keras callbacks: the hooks fit / evaluate / predict call, and the common ones.

Per-step hooks cost time in a loop that runs thousands of steps per second, so `CallbackList` only calls
the batch hooks a callback actually overrides, and builds the per-batch `logs` dict (which needs a
session run to read the metrics) only for callbacks that ask for it. A callback that sets
`_lazy_batch_logs = True` gets a function returning the logs instead (the progress bar uses this to read
the metrics only when it redraws).
"""
import math
import warnings

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["Callback", "CallbackList", "History", "BaseLogger", "EarlyStopping", "ReduceLROnPlateau",
           "LearningRateScheduler", "TerminateOnNaN", "LambdaCallback", "CSVLogger", "RemoteMonitor"]

_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                "on_predict_batch_begin", "on_predict_batch_end", "on_batch_begin", "on_batch_end")


class Callback:
    """Base class: override the hooks you need. `self.model` and `self.params` are set by fit()."""

    _lazy_batch_logs = False

    def __init__(self):
        self.model = None
        self.params = {}
        self.validation_data = None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def _overrides(self, hook):
        mine = getattr(type(self), hook, None)
        return mine is not None and mine is not getattr(Callback, hook)


def _overrides_any(cb, hooks):
    if not isinstance(cb, Callback):
        return True
    if cb._overrides(hooks[0]):
        return True
    # the train hooks forward to on_batch_begin/on_batch_end by default
    return any(cb._overrides(h) for h in hooks[1:])


class CallbackList:
    """Calls a list of callbacks; batch hooks only for the callbacks that override them.

    The order is tf.keras's: the callbacks given, then a History and then a progress bar added by
    `add_history` / `add_progbar`, so both record the epoch logs after every other callback has written
    into them (a ProgbarLogger anywhere in the list is moved last for the same reason).

    Args:
        callbacks: Callback objects.
        add_history: append a History unless one is in `callbacks`.
        add_progbar: append a ProgbarLogger unless one is in `callbacks`.
        model: the model each callback gets with `set_model`.
        params: dict given to each callback's `set_params` (tf.keras passes them as keywords; both work).
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, params=None,
                 **more_params):
        from .progbar import ProgbarLogger   # progbar imports this module
        given = list(callbacks or [])
        if add_history and not any(isinstance(cb, History) for cb in given):
            given.append(History())
        if add_progbar and not any(isinstance(cb, ProgbarLogger) for cb in given):
            given.append(ProgbarLogger(count_mode="steps"))
        bars = [cb for cb in given if isinstance(cb, ProgbarLogger)]
        self.callbacks = [cb for cb in given if not isinstance(cb, ProgbarLogger)] + bars
        self._history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        self._progbar = bars[0] if bars else None
        if model is not None:
            self.set_model(model)
        if params is not None or more_params:
            self.set_params({**(params or {}), **more_params})
        self._find_batch_hooks()

    def _find_batch_hooks(self):
        """Which callbacks get each batch hook (asked again after set_params: a progress bar only wants
        batch hooks when it draws a bar)."""
        self._batch = {}
        for kind, hooks in (("train_begin", ("on_train_batch_begin", "on_batch_begin")),
                            ("train_end", ("on_train_batch_end", "on_batch_end")),
                            ("test_begin", ("on_test_batch_begin",)), ("test_end", ("on_test_batch_end",)),
                            ("predict_begin", ("on_predict_batch_begin",)),
                            ("predict_end", ("on_predict_batch_end",))):
            self._batch[kind] = [cb for cb in self.callbacks if _overrides_any(cb, hooks)]

    def append(self, cb):
        self.callbacks.append(cb)
        if getattr(self, "model", None) is not None:
            cb.set_model(self.model)
        if getattr(self, "params", None) is not None:
            cb.set_params(self.params)
        self._find_batch_hooks()

    def set_model(self, model):
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params):
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)
        self._find_batch_hooks()

    def __iter__(self):
        return iter(self.callbacks)

    # -- per-batch ----------------------------------------------------------------------------------------
    def wants(self, kind):
        """Whether any callback overrides the batch hook `kind` ("train_end", "test_begin", ...)."""
        return bool(self._batch[kind])

    def _call_batch(self, kind, hook, batch, logs):
        memo = None
        for cb in self._batch[kind]:
            if getattr(cb, "_lazy_batch_logs", False):
                getattr(cb, hook)(batch, logs)
                continue
            if memo is None:
                memo = logs() if callable(logs) else (logs or {})
            getattr(cb, hook)(batch, memo)

    def on_train_batch_begin(self, batch, logs=None):
        self._call_batch("train_begin", "on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call_batch("train_end", "on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call_batch("test_begin", "on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call_batch("test_end", "on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call_batch("predict_begin", "on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call_batch("predict_end", "on_predict_batch_end", batch, logs)

    # -- per-epoch and per-run -----------------------------------------------------------------------------
    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)


class History(Callback):
    """Records the epoch logs: `history.history["loss"]` is the list of epoch losses; `history.epoch`."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


class BaseLogger(Callback):
    """Kept for Keras 2 code that lists it; fit already averages metrics over the epoch."""


# -- monitoring helpers -------------------------------------------------------------------------------------
def _monitor_op(mode, monitor, who):
    mode = (mode or "auto").lower()
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"{who}: mode {mode!r} is unknown, using 'auto'", RuntimeWarning, stacklevel=3)
        mode = "auto"
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.endswith("auc") or "precision" in monitor
                         or "recall" in monitor) and "loss" not in monitor else "min"
    return mode


def _value(logs, monitor, who):
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(f"{who}: the monitored quantity {monitor!r} is not in the logs (available: "
                      f"{sorted(logs or {})}); skipping", RuntimeWarning, stacklevel=3)
        return None
    return float(np.asarray(value))


class EarlyStopping(Callback):
    """Stop training when `monitor` has not improved by `min_delta` for `patience` epochs.

    Args:
        monitor: a key of the epoch logs ("val_loss").
        min_delta: the smallest change that counts as an improvement.
        patience: epochs without improvement before stopping.
        mode: 'min', 'max' or 'auto' (from the name).
        baseline: stop unless the monitored value beats this.
        restore_best_weights: put back the weights of the best epoch when stopping (and at the end).
        start_from_epoch: epochs to wait before monitoring.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.mode = _monitor_op(mode, monitor, "EarlyStopping")
        self.min_delta = abs(min_delta) if self.mode == "max" else -abs(min_delta)
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = None, None

    def _better(self, current, reference):
        if reference is None:
            return True
        if self.mode == "max":
            return current - self.min_delta > reference
        return current - self.min_delta < reference

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = None if self.baseline is None else float(self.baseline)
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = _value(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._better(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(current, float(self.baseline)):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        return (logs or {}).get(self.monitor)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` stops improving for `patience` epochs.

    The new rate is loaded into the optimizer's learning-rate variable of the running model, so the next
    training step uses it without rebuilding anything.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if factor >= 1.0:
            raise InvalidArgumentError(f"ReduceLROnPlateau does not support a factor >= 1.0, got {factor}")
        if "epsilon" in kwargs:
            min_delta = kwargs.pop("epsilon")
        self.monitor, self.factor, self.patience, self.verbose = monitor, float(factor), int(patience), verbose
        self.mode = _monitor_op(mode, monitor, "ReduceLROnPlateau")
        self.min_delta, self.cooldown, self.min_lr = float(min_delta), int(cooldown), float(min_lr)
        self.cooldown_counter, self.wait, self.best = 0, 0, None

    def _better(self, current):
        if self.best is None:
            return True
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        self.cooldown_counter, self.wait, self.best = 0, 0, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model._get_learning_rate())
        current = _value(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model._get_learning_rate())
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.model._set_learning_rate(new)
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch's start to `schedule(epoch)` or `schedule(epoch, lr)`."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.model._get_learning_rate())
        try:
            new = self.schedule(epoch, lr)
        except TypeError:
            new = self.schedule(epoch)
        new = float(np.asarray(new))
        if not math.isfinite(new):
            raise InvalidArgumentError(f"LearningRateScheduler: schedule returned {new} for epoch {epoch}")
        self.model._set_learning_rate(new)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model._get_learning_rate())


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions: on_epoch_begin(epoch, logs), on_batch_end(batch, logs), on_train_begin(logs)..."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_batch_begin=None, on_batch_end=None,
                 on_train_begin=None, on_train_end=None, **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_batch_begin=on_batch_begin,
                     on_batch_end=on_batch_end, on_train_begin=on_train_begin, on_train_end=on_train_end)
        hooks.update(kwargs)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not hasattr(Callback, name):
                raise InvalidArgumentError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)

    def _overrides(self, hook):
        return hook in self.__dict__


class CSVLogger(Callback):
    """Append one CSV row per epoch: epoch, then the logs' keys in sorted order.

    Args:
        filename: the CSV file.
        separator: the field separator.
        append: keep an existing file's rows and append (the header is not repeated).
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = str(filename), separator, append
        self.keys, self._file = None, None

    def on_train_begin(self, logs=None):
        import os
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._header_written = exists
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if not self._header_written:
            self._file.write(self.sep.join(["epoch"] + self.keys) + "\n")
            self._header_written = True

        def fmt(v):
            if isinstance(v, (list, tuple, np.ndarray)) and np.ndim(v):
                return '"[' + ", ".join(str(x) for x in np.ravel(v)) + ']"'
            return repr(float(v)) if isinstance(v, (float, np.floating, int, np.integer)) else str(v)
        self._file.write(self.sep.join([str(epoch)] + [fmt(logs.get(k, "NA")) for k in self.keys]) + "\n")
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class RemoteMonitor(Callback):
    """Not available: kestimator makes no network calls."""

    def __init__(self, *args, **kwargs):
        raise InvalidArgumentError("RemoteMonitor is not supported (kestimator makes no network calls)")

