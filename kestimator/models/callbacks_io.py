"""Callbacks that write files: ModelCheckpoint, TensorBoard, BackupAndRestore."""
import os
import warnings

import numpy as np

from ..errors import InvalidArgumentError
from .callbacks import Callback, _monitor_op

__all__ = ["ModelCheckpoint", "TensorBoard", "BackupAndRestore"]


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after epochs, or every `save_freq` batches.

    Args:
        filepath: a path or template formatted with `epoch` (1-based) and the logs, e.g.
            "epoch-{epoch:02d}-{val_loss:.2f}.h5".
        monitor: the logs key compared when `save_best_only`.
        save_best_only: save only when `monitor` improves (the file is then usually overwritten).
        save_weights_only: model.save_weights instead of model.save.
        mode: 'min', 'max' or 'auto'.
        save_freq: 'epoch' or a number of batches.
        initial_value_threshold: the value to beat first when `save_best_only`.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", options=None, initial_value_threshold=None, **kwargs):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = _monitor_op(mode, monitor, "ModelCheckpoint")
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise InvalidArgumentError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self.save_freq = save_freq
        self.best = None if initial_value_threshold is None else float(initial_value_threshold)
        self._batches = 0
        self._epoch = 0

    def _overrides(self, hook):
        if hook in ("on_train_batch_end", "on_batch_end"):
            return self.save_freq != "epoch"
        return super()._overrides(hook)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self.save_freq != "epoch" and self._batches % self.save_freq == 0:
            self._save(self._epoch, logs or {}, batch=batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs or {})

    def _path(self, epoch, logs, batch=None):
        values = {k: (float(v) if np.ndim(v) == 0 else v) for k, v in logs.items()}
        try:
            if batch is not None:
                return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **values)
            return self.filepath.format(epoch=epoch + 1, **values)
        except KeyError as e:
            raise InvalidArgumentError(f"ModelCheckpoint: filepath {self.filepath!r} names {e}, which is not in "
                                       f"the logs ({sorted(logs)})") from None

    def _save(self, epoch, logs, batch=None):
        path = self._path(epoch, logs, batch)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"ModelCheckpoint: {self.monitor!r} is not in the logs; saving skipped",
                              RuntimeWarning, stacklevel=2)
                return
            current = float(current)
            better = self.best is None or (current < self.best if self.mode == "min" else current > self.best)
            if not better:
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                prev = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {prev} to {current:.5f}, saving to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class TensorBoard(Callback):
    """Write scalars (epoch logs, and batch logs every `update_freq` batches), weight histograms every
    `histogram_freq` epochs, and the graph, to event files TensorBoard reads (log_dir/train and
    log_dir/validation).

    Args:
        log_dir: the folder for event files.
        histogram_freq: epochs between weight histograms (0: none).
        write_graph: write the model's training graph once.
        update_freq: 'epoch', or a number of batches between batch-level scalars.
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False, write_steps_per_second=False,
                 update_freq="epoch", profile_batch=0, embeddings_freq=0, embeddings_metadata=None, **kwargs):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = write_graph
        self.update_freq = update_freq
        self._writers = {}
        self._batches = 0

    def _overrides(self, hook):
        if hook in ("on_train_batch_end", "on_batch_end"):
            return isinstance(self.update_freq, int) and self.update_freq > 0
        return super()._overrides(hook)

    def _writer(self, kind):
        w = self._writers.get(kind)
        if w is None:
            from ..io.events import EventFileWriter
            w = self._writers[kind] = EventFileWriter(os.path.join(self.log_dir, kind))
        return w

    def on_train_begin(self, logs=None):
        self._batches = 0
        if self.write_graph:
            self._write_graph()

    def _write_graph(self):
        """The training graph as a GraphDef event in the train event file (TensorBoard's graph view)."""
        import time
        from ..engine.summary import graph_def_bytes
        from ..io.protobuf import bytes_field, double_field
        rt = getattr(self.model, "_runtime", None)
        if rt is None:
            return
        event = double_field(1, time.time()) + bytes_field(4, graph_def_bytes(rt.graph))
        self._writer("train").add_event(event)

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self._batches % self.update_freq == 0:
            w = self._writer("train")
            for k, v in (logs or {}).items():
                if np.ndim(v) == 0:
                    w.add_scalar(f"batch_{k}", float(v), self._batches)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train, val = self._writer("train"), None
        for k, v in logs.items():
            if np.ndim(v) != 0:
                continue
            if k.startswith("val_"):
                val = val or self._writer("validation")
                val.add_scalar(f"epoch_{k[4:]}", float(v), epoch)
            else:
                train.add_scalar(f"epoch_{k}", float(v), epoch)
        if self.histogram_freq and (epoch + 1) % self.histogram_freq == 0:
            for w in self.model.weights:
                values = w.numpy()
                if values.size and np.all(np.isfinite(values)):
                    train.add_histogram(w.name.replace(":", "_"), values.astype(np.float64), epoch)
        train.flush()
        if val is not None:
            val.flush()

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers = {}


class BackupAndRestore(Callback):
    """Resume an interrupted fit(): the model weights, optimizer state, epoch and step are backed up in
    `backup_dir` (every epoch, or every `save_freq` batches); a new fit() with the same callback restores
    them and continues at that epoch and step, with the same data order. The backup is deleted when fit()
    completes (unless `delete_checkpoint=False`).

    Args:
        backup_dir: the folder holding the backup file.
        save_freq: 'epoch' or a number of batches.
        delete_checkpoint: remove the backup after a completed fit.
    """

    _FILE = "backup.ckpt"

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True, save_before_preemption=False):
        super().__init__()
        self.backup_dir = os.fspath(backup_dir)
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise InvalidArgumentError(f"BackupAndRestore: save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self._resume_point = None
        self._epoch = 0
        self._step = 0

    @property
    def _path(self):
        return os.path.join(self.backup_dir, self._FILE)

    def _overrides(self, hook):
        if hook in ("on_train_batch_end", "on_batch_end"):
            return self.save_freq != "epoch"
        return super()._overrides(hook)

    def on_train_begin(self, logs=None):
        self._resume_point = None
        if not os.path.exists(self._path):
            return
        from ..engine import checkpoint
        meta = checkpoint.read_metadata(self._path)
        self.model.load_weights(self._path)
        seed = meta.get("shuffle_seed")
        if seed is not None:
            self.model._shuffle_seed = int(seed)
        epoch, step = int(meta.get("epoch", 0)), int(meta.get("step", 0))
        steps = self.params.get("steps")
        if steps is not None and step >= steps:
            epoch, step = epoch + 1, 0
        self._resume_point = (epoch, step)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch" and (batch + 1) % self.save_freq == 0:
            self._backup(self._epoch, batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self._backup(epoch + 1, 0)

    def _backup(self, epoch, step):
        from ..engine import checkpoint
        from .saving import checkpoint_payload
        os.makedirs(self.backup_dir, exist_ok=True)
        tensors, meta = checkpoint_payload(self.model)
        meta.update({"epoch": int(epoch), "step": int(step), "shuffle_seed": self.model._shuffle_seed})
        checkpoint.save_tensors(self._path, tensors, meta)

    def on_train_end(self, logs=None):
        """fit() completed (it did not raise): the backup is no longer needed."""
        if self.delete_checkpoint:
            try:
                os.remove(self._path)
            except FileNotFoundError:
                pass
