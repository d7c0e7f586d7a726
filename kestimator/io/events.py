"""TensorBoard event files: write scalars and histograms, read scalars back.

An event file is a record file (TFRecord framing, see :mod:`.records`) of serialized ``Event`` protos
(``tensorflow/core/util/event.proto``); its first event carries ``file_version = "brain.Event:2"``.
The messages used here, with their field numbers::

    Event          { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3;
                     bytes graph_def = 4; Summary summary = 5; ... } }
    Summary        { repeated Value value = 1; }
    Summary.Value  { string tag = 1; SummaryMetadata metadata = 9; oneof value { float simple_value = 2;
                     HistogramProto histo = 5; TensorProto tensor = 8; ... } }
    HistogramProto { double min = 1, max = 2, num = 3, sum = 4, sum_squares = 5;
                     repeated double bucket_limit = 6 [packed]; repeated double bucket = 7 [packed]; }

Because a Summary is only a repeated field, concatenating serialized Summaries yields their merge.
No protobuf package is used: the messages are written with :mod:`.protobuf`.
"""
import itertools
import os
import socket
import threading
import time

import numpy as np

from ..errors import DataLossError, InvalidArgumentError, NotFoundError
from .protobuf import bytes_field, decode_message, double_field, float_field, packed_double_field, varint_field
from .records import RecordWriter, iter_records

__all__ = ["EventFileWriter", "scalar_summary", "histogram_summary", "merge_summaries", "read_event_scalars"]

_FILE_VERSION = "brain.Event:2"
_writer_ids = itertools.count()


# ---- summaries ---------------------------------------------------------------------------------------
def _tag_bytes(tag):
    if not isinstance(tag, str) or not tag:
        raise InvalidArgumentError(f"summary tag must be a non-empty str, got {tag!r}")
    return bytes_field(1, tag)


def scalar_summary(tag, value):
    """A serialized Summary holding one scalar (``simple_value``, as tf.compat.v1.summary.scalar).

    Args:
        tag: the series name shown by TensorBoard.
        value: a real number (stored as float32).

    Returns:
        bytes of a Summary message.

    Raises:
        InvalidArgumentError: empty tag or a value that is not a real scalar.
    """
    try:
        value = float(np.asarray(value).item())
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"scalar summary {tag!r} needs a real scalar value, got {value!r}") from None
    return bytes_field(1, _tag_bytes(tag) + float_field(2, value))


_default_limits = None


def _bucket_limits():
    """TensorFlow's default histogram bucket edges: +-1e-12 growing by 10% up to 1e20, 0, +-DBL_MAX.

    Bucket i counts values v with ``limits[i-1] <= v < limits[i]``.
    """
    global _default_limits
    if _default_limits is None:
        pos = [1e-12]
        while pos[-1] * 1.1 < 1e20:
            pos.append(pos[-1] * 1.1)
        pos = np.array(pos + [np.finfo(np.float64).max])
        _default_limits = np.concatenate([-pos[::-1], [0.0], pos])
    return _default_limits


def histogram_proto(values, tag="histogram"):
    """Serialized HistogramProto of `values` with TensorFlow's default buckets.

    Runs of empty buckets are collapsed into one (its right edge is the run's last edge), as
    TensorFlow encodes them, so the message stays small.

    Raises:
        InvalidArgumentError: NaN or infinite values (the message names the tag).
    """
    try:
        v = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"histogram {tag!r} needs numeric values") from None
    if not np.all(np.isfinite(v)):
        raise InvalidArgumentError(f"NaN or Inf in summary histogram for: {tag}")
    limits = _bucket_limits()
    index = np.minimum(np.searchsorted(limits, v, side="right"), limits.size - 1)   # v == DBL_MAX: last bucket
    counts = np.bincount(index, minlength=limits.size)
    empty = counts == 0
    # keep non-empty buckets and the last bucket of each run of empty ones
    keep = ~empty | np.append(~empty[1:], True)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    return (double_field(1, lo) + double_field(2, hi) + double_field(3, float(v.size))
            + double_field(4, float(v.sum())) + double_field(5, float(np.dot(v, v)))
            + packed_double_field(6, limits[keep]) + packed_double_field(7, counts[keep].astype(np.float64)))


def histogram_summary(tag, values):
    """A serialized Summary holding a histogram of `values` (``histo``, as tf.compat.v1.summary.histogram).

    Raises:
        InvalidArgumentError: empty tag, non-numeric, NaN or infinite values.
    """
    return bytes_field(1, _tag_bytes(tag) + bytes_field(5, histogram_proto(values, tag)))


def merge_summaries(summaries):
    """Merge serialized Summaries into one (concatenation: a Summary is a repeated field).

    Raises:
        InvalidArgumentError: an element is not bytes.
    """
    parts = []
    for i, s in enumerate(summaries):
        if not isinstance(s, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(f"merge_summaries: element {i} is {type(s).__name__}, not a serialized "
                                       f"Summary (bytes)")
        parts.append(bytes(s))
    return b"".join(parts)


# ---- writing -----------------------------------------------------------------------------------------
def _event(wall_time, step, field, payload):
    step_part = varint_field(2, step) if step else b""   # proto3 leaves a zero step out
    return double_field(1, wall_time) + step_part + bytes_field(field, payload)


class EventFileWriter:
    """Write an event file TensorBoard reads.

    Creates ``<logdir>/events.out.tfevents.<unix time>.<hostname>.<pid>.<n><filename_suffix>`` (the pid
    and a per-process counter keep writers started in the same second apart) and writes the
    file_version event first.

    Args:
        logdir: directory (created if missing).
        filename_suffix: appended to the file name.
        flush_secs: write buffered events to disk when more than this many seconds have passed since
            the last flush (checked when an event is added; there is no background thread).

    Raises:
        OSError: the directory or file cannot be created.

    Example::

        with EventFileWriter("runs/a") as w:
            w.add_scalar("loss", 0.25, step=1)
    """

    def __init__(self, logdir, filename_suffix="", flush_secs=120):
        self.logdir = os.fspath(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}."
                f"{next(_writer_ids)}{filename_suffix}")
        self.path = os.path.join(self.logdir, name)
        self._flush_secs = flush_secs
        self._lock = threading.Lock()
        self._writer = RecordWriter(self.path)
        self._writer.write(_event(time.time(), 0, 3, _FILE_VERSION.encode()))
        self._writer.flush()
        self._last_flush = time.monotonic()

    def add_event(self, serialized_event):
        """Append one serialized Event message as it is."""
        with self._lock:
            if self._writer is None:
                raise InvalidArgumentError(f"EventFileWriter for {self.path} is closed")
            self._writer.write(serialized_event)
            if self._flush_secs is not None and time.monotonic() - self._last_flush > self._flush_secs:
                self._writer.flush()
                self._last_flush = time.monotonic()

    def add_summary(self, summary, step=None, wall_time=None):
        """Append an Event holding a serialized Summary.

        Args:
            summary: bytes of a Summary message (e.g. from :func:`scalar_summary` / :func:`merge_summaries`).
            step: the global step (None: 0).
            wall_time: seconds since the epoch (None: now).

        Raises:
            InvalidArgumentError: `summary` is not bytes or the writer is closed.
        """
        if not isinstance(summary, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(f"add_summary needs a serialized Summary (bytes), got "
                                       f"{type(summary).__name__}")
        step = 0 if step is None else int(step)
        self.add_event(_event(time.time() if wall_time is None else float(wall_time), step, 5, summary))

    def add_scalar(self, tag, value, step, wall_time=None):
        """Append a scalar; TensorBoard shows it under `tag` at `step`."""
        self.add_summary(scalar_summary(tag, value), step, wall_time)

    def add_histogram(self, tag, values, step, wall_time=None):
        """Append a histogram of `values` (any shape; NaN/Inf refused)."""
        self.add_summary(histogram_summary(tag, values), step, wall_time)

    def flush(self):
        """Write buffered events to the file."""
        with self._lock:
            if self._writer is not None:
                self._writer.flush()
                self._last_flush = time.monotonic()

    def close(self):
        """Flush and close the file. Closing twice is harmless."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- reading -----------------------------------------------------------------------------------------
_SHAPE = {2: ("dim", {1: ("size", "int64")}, "repeated"), 3: ("unknown_rank", "bool")}
_TENSOR = {1: ("dtype", "enum"), 2: ("tensor_shape", _SHAPE), 4: ("tensor_content", "bytes"),
           5: ("float_val", "float", "repeated"), 6: ("double_val", "double", "repeated"),
           7: ("int_val", "int32", "repeated"), 10: ("int64_val", "int64", "repeated"),
           11: ("bool_val", "bool", "repeated"), 13: ("half_val", "int32", "repeated")}
_VALUE = {1: ("tag", "string"), 2: ("simple_value", "float"), 8: ("tensor", _TENSOR),
          9: ("metadata", {1: ("plugin_data", {1: ("plugin_name", "string")})})}
_EVENT = {2: ("step", "int64"), 5: ("summary", {1: ("value", _VALUE, "repeated")})}

# TensorProto dtype enum -> (NumPy type of tensor_content, the repeated field holding values)
_TENSOR_DTYPES = {1: ("<f4", "float_val"), 2: ("<f8", "double_val"), 3: ("<i4", "int_val"),
                  4: ("u1", "int_val"), 5: ("<i2", "int_val"), 6: ("i1", "int_val"), 9: ("<i8", "int64_val"),
                  10: ("?", "bool_val"), 19: ("<f2", "half_val")}


def _tensor_scalar(tensor):
    """The value of a rank-0 numeric TensorProto, or None for anything else."""
    shape = tensor.get("tensor_shape", {})
    if shape.get("dim") or shape.get("unknown_rank"):
        return None
    spec = _TENSOR_DTYPES.get(tensor.get("dtype", 0))
    if spec is None:
        return None
    np_type, field = spec
    content = tensor.get("tensor_content")
    if content:
        values = np.frombuffer(content, np_type)
    else:
        values = np.asarray(tensor.get(field, []))
        if field == "half_val":   # half floats travel as their 16 bits in an int32
            values = values.astype(np.uint16).view(np.float16)
    return float(values[0]) if values.size else 0.0


def _event_files(path):
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if "tfevents" in n)
        return [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
    if not os.path.exists(path):
        raise NotFoundError(f"event file not found: {path}")
    return [path]


def read_event_scalars(path):
    """Read the scalar series of an event file (or of every event file directly inside a directory).

    Both encodings are read: ``simple_value`` (TF1-style, and :class:`EventFileWriter`) and rank-0
    numeric tensors as TF2's ``tf.summary.scalar`` writes them. Tensors of a tag whose metadata names
    another TensorBoard plugin than "scalars" are left out.

    Args:
        path: an event file, or a directory whose ``*tfevents*`` files are read in name order.

    Returns:
        ``{tag: [(step, value), ...]}`` in file order; step is an int, value a float.

    Raises:
        NotFoundError: `path` does not exist.
        DataLossError: a truncated or corrupt record or Event (names the file and byte offset).
    """
    path = os.fspath(path)
    scalars, plugins = {}, {}
    for file in _event_files(path):
        for offset, record in iter_records(file):
            try:
                event = decode_message(record, _EVENT, "Event")
            except DataLossError as e:
                raise DataLossError(f"{file}: event at byte offset {offset}: {e}") from None
            summary = event.get("summary")
            if not summary:
                continue
            step = event.get("step", 0)
            for value in summary.get("value", []):
                tag = value.get("tag", "")
                plugin = value.get("metadata", {}).get("plugin_data", {}).get("plugin_name")
                if plugin:   # TF2 writes a tag's metadata with its first value only
                    plugins[tag] = plugin
                if "simple_value" in value:
                    scalars.setdefault(tag, []).append((step, float(value["simple_value"])))
                elif "tensor" in value and plugins.get(tag, "scalars") == "scalars":
                    number = _tensor_scalar(value["tensor"])
                    if number is not None:
                        scalars.setdefault(tag, []).append((step, number))
    return scalars
