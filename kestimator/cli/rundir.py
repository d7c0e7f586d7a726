"""The run directory of a ``kestimator`` command: its files, its log, its metrics.

A run directory holds::

    config.resolved.yaml    the config with every default filled in (written before training starts)
    train.log               everything the commands printed (appended by each command, progress bars
                            reduced to their final state)
    model.h5                the trained Keras model (Keras configs), or the estimator's checkpoints
    metrics.json            the final metrics of the last train / evaluate
    history.jsonl           one line of logs per finished epoch (Keras) -- survives an interruption
    curves.png              the learning curves (when matplotlib is installed)
    backup/                 BackupAndRestore's state while a Keras run is unfinished
    train_state.json        the step target of an estimator's train call while it is unfinished
    predictions.npz / .csv  written by ``kestimator predict``
    export/                 written by ``kestimator export``
"""
import contextlib
import io
import json
import math
import os
import sys
import tempfile

import numpy as np

RESOLVED_CONFIG = "config.resolved.yaml"
LOG_FILE = "train.log"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.jsonl"
TRAIN_STATE_FILE = "train_state.json"
BACKUP_DIR = "backup"
EXPORT_DIR = "export"


def to_jsonable(value):
    """Plain JSON values from NumPy scalars / arrays and nested dicts (NaN and inf become strings)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist()) if value.ndim else to_jsonable(value.item())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def file_mode():
    """The mode a plain ``open()`` would give a new file (mkstemp's files are private, 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_json(path, data):
    """Write ``data`` as JSON atomically (temporary file, fsync, rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    os.chmod(tmp, file_mode())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(to_jsonable(data), f, indent=2, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path, default=None):
    """The JSON in ``path``, or ``default`` when the file is missing or unreadable (a torn write)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


class RunDir:
    """Paths inside one run directory.

    Args:
        path: the directory (created on :meth:`create`).
    """

    def __init__(self, path):
        self.path = os.path.abspath(os.fspath(path))

    def file(self, name):
        return os.path.join(self.path, name)

    def create(self):
        os.makedirs(self.path, exist_ok=True)
        return self

    @property
    def metrics(self):
        return self.file(METRICS_FILE)

    @property
    def history(self):
        return self.file(HISTORY_FILE)

    @property
    def log(self):
        return self.file(LOG_FILE)

    @property
    def backup(self):
        return self.file(BACKUP_DIR)

    @property
    def train_state(self):
        return self.file(TRAIN_STATE_FILE)

    def read_history(self):
        """``{log name: [value per epoch]}`` from history.jsonl; a repeated epoch (re-run after an
        interruption) keeps its last line."""
        by_epoch = {}
        try:
            with open(self.history, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue                    # a line torn by a kill
                    if isinstance(row, dict) and "epoch" in row:
                        by_epoch[int(row["epoch"])] = row
        except OSError:
            return {}
        curves = {}
        for epoch in sorted(by_epoch):
            for key, value in by_epoch[epoch].items():
                if key != "epoch" and isinstance(value, (int, float)):
                    curves.setdefault(key, []).append(float(value))
        return curves


class _LogTee(io.TextIOBase):
    """A text stream that writes to the terminal stream and, line by line, to the log file.

    Progress bars redraw their line with carriage returns; the log keeps only each line's last state.
    ``isatty`` answers for the terminal stream, so tqdm still draws bars on a terminal.
    """

    def __init__(self, stream, log):
        super().__init__()
        self._stream, self._log, self._line = stream, log, ""

    def write(self, text):
        self._stream.write(text)
        parts = text.split("\n")
        for part in parts[:-1]:
            self._log.write(self._last_state(self._line + part) + "\n")
            self._line = ""
        if len(parts) > 1:
            self._log.flush()           # a killed run keeps every finished line
        # keep only the latest state of a line being redrawn, so a long bar does not pile up in memory
        self._line = self._last_state(self._line + parts[-1])
        return len(text)

    @staticmethod
    def _last_state(line):
        if "\r" not in line:
            return line
        states = [s for s in line.split("\r") if s.strip()]
        return states[-1] if states else ""

    def flush(self):
        self._stream.flush()
        self._log.flush()

    def isatty(self):
        try:
            return self._stream.isatty()
        except (AttributeError, ValueError):
            return False

    def fileno(self):
        return self._stream.fileno()

    @property
    def encoding(self):
        return getattr(self._stream, "encoding", "utf-8")

    def finish(self):
        if self._line.strip():
            self._log.write(self._last_state(self._line) + "\n")
        self._line = ""
        self._log.flush()


@contextlib.contextmanager
def logging_to(path, echo_logger_names=("kestimator",)):
    """Copy stdout and stderr to ``path`` (appending) for the duration, and send the INFO messages of
    kestimator's loggers (estimator progress, checkpoints) to stdout.

    Args:
        path: the log file.
        echo_logger_names: loggers whose INFO records are printed.
    """
    import logging

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    log = open(path, "a", encoding="utf-8")
    out, err = _LogTee(sys.stdout, log), _LogTee(sys.stderr, log)
    saved = sys.stdout, sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = [logging.getLogger(name) for name in echo_logger_names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        for lg, level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(level)
        out.finish()
        err.finish()
        log.close()


def metrics_table(sections):
    """A small text table of final metrics.

    Args:
        sections: ``{section name: {metric: value}}`` (e.g. ``{"train": {...}, "eval": {...}}``).

    Returns:
        The table as a string (empty when there is nothing to show).
    """
    names = []
    for values in sections.values():
        for key, value in (values or {}).items():
            if key not in names and _is_number(value):
                names.append(key)
    columns = [name for name, values in sections.items() if values]
    if not names or not columns:
        return ""
    width = max(len(n) for n in names + ["metric"])
    cells = {c: {n: _fmt(sections[c].get(n)) for n in names} for c in columns}
    widths = {c: max([len(c)] + [len(v) for v in cells[c].values()]) for c in columns}
    header = "metric".ljust(width) + "".join("  " + c.rjust(widths[c]) for c in columns)
    lines = [header, "-" * len(header)]
    for n in names:
        lines.append(n.ljust(width) + "".join("  " + cells[c][n].rjust(widths[c]) for c in columns))
    return "\n".join(lines)


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _fmt(value):
    if value is None or not _is_number(value):
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.3e}"
