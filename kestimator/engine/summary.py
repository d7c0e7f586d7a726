"""TF 1.x's `tf.summary`: summary ops that produce serialized Summary protobufs, and FileWriter.

    loss = ...
    ke.summary.scalar("loss", loss)
    merged = ke.summary.merge_all()
    writer = ke.summary.FileWriter("logs/run1", sess.graph)
    writer.add_summary(sess.run(merged, feed), global_step)

A summary op is an ordinary engine op whose output is a string scalar: the bytes of a `Summary` message
(encoded by `kestimator.io.events`). FileWriter appends them to a TensorBoard event file. No TensorFlow or
tensorboard package is needed to write; `tensorboard --logdir logs` reads the result.
"""
import os
import re
import time

import numpy as np

from ..errors import InvalidArgumentError
from . import dtypes as _dt
from .graph import GraphKeys, Tensor, get_default_graph
from .registry import apply_op, register

__all__ = ["scalar", "histogram", "merge", "merge_all", "FileWriter", "FileWriterCache"]


def _summary_bytes(value, what):
    """bytes of a Summary given as bytes, a bytes scalar array or an eager string tensor."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise InvalidArgumentError(f"{what}: expected one serialized Summary, got an array of shape "
                                       f"{value.shape}")
        value = value.reshape(()).item()
    if isinstance(value, (bytes, bytearray, memoryview, np.bytes_)):
        return bytes(value)
    raise InvalidArgumentError(f"{what}: expected a serialized Summary (bytes), got {type(value).__name__}")


# -- the ops ---------------------------------------------------------------------------------------------
def _scalar_infer(inputs, attrs):
    shape = inputs[0].shape
    if shape.ndims is not None and shape.num_elements() not in (None, 1):
        raise InvalidArgumentError(f"summary scalar {attrs['tag']!r} needs a scalar, got shape {shape}")
    if inputs[0].dtype.is_string:
        raise InvalidArgumentError(f"summary scalar {attrs['tag']!r} needs a number, got a string tensor")
    return [((), _dt.string)]


def _scalar_kernel(xp, attrs):
    from ..io.events import scalar_summary
    tag = attrs["tag"]

    def run(x):
        if np.size(x) != 1:
            raise InvalidArgumentError(f"summary scalar {tag!r} needs a scalar, got shape {np.shape(x)}")
        return scalar_summary(tag, np.asarray(x).reshape(()))
    return run


def _histogram_kernel(xp, attrs):
    from ..io.events import histogram_summary
    tag = attrs["tag"]
    return lambda x: histogram_summary(tag, np.asarray(x))


def _merge_kernel(xp, attrs):
    from ..io.events import merge_summaries
    return lambda *parts: merge_summaries([_summary_bytes(p, "merge") for p in parts])


def _merge_infer(inputs, attrs):
    for t in inputs:
        if not t.dtype.is_string:
            raise InvalidArgumentError(f"summary merge: input {getattr(t, 'name', t)} has dtype {t.dtype.name}, "
                                       "not a serialized Summary (string)")
    return [((), _dt.string)]


def _register_once(name, **kwargs):
    from .registry import registered_ops
    return registered_ops().get(name) or register(name, **kwargs)


# Kernels return Python bytes, so Session.run hands back bytes as TensorFlow does.
_register_once("ScalarSummary", infer=_scalar_infer, kernel=_scalar_kernel, differentiable=False)
_register_once("HistogramSummary", infer=lambda i, a: [((), _dt.string)], kernel=_histogram_kernel,
               differentiable=False)
_register_once("MergeSummary", infer=_merge_infer, kernel=_merge_kernel, differentiable=False)


_INVALID_TAG_CHARS = re.compile(r"[^-/\w.]")


def _tag_and_collect(name, op_type, inputs, collections, family=None):
    """Build a summary op as TF1 does: the tag is the unique name scope opened for `name` (so a tag
    never collides with another op's name: "max" beside a "Max" op becomes "max_1")."""
    from .ops.core import convert_to_tensor
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"summary name must be a non-empty string, got {name!r}")
    clean = _INVALID_TAG_CHARS.sub("_", name).lstrip("/") or "summary"
    if family:
        clean = f"{_INVALID_TAG_CHARS.sub('_', family)}/{clean}"
    g = get_default_graph()
    value = convert_to_tensor(inputs)
    with g.name_scope(clean) as scope:
        out = apply_op(op_type, [value], {"tag": scope.rstrip("/")}, name=op_type)
    if isinstance(out, Tensor):
        for key in (collections if collections is not None else [GraphKeys.SUMMARIES]):
            out.graph.add_to_collection(key, out)
    return out


def scalar(name, tensor, collections=None, family=None):
    """A summary op holding one scalar.

    Args:
        name: the tag (prefixed with the current name scope, as TF1 does).
        tensor: a numeric scalar tensor.
        collections: graph collections to add the op to (default [GraphKeys.SUMMARIES]).

    Returns:
        A string scalar tensor: a serialized Summary.

    Raises:
        InvalidArgumentError: `tensor` is not a scalar (at build time when its shape is known, else when run).
    """
    return _tag_and_collect(name, "ScalarSummary", tensor, collections, family)


def histogram(name, values, collections=None, family=None):
    """A summary op holding a histogram of `values` (any shape) with TensorFlow's default buckets.

    Raises:
        InvalidArgumentError: (when run) the values contain NaN or Inf.
    """
    return _tag_and_collect(name, "HistogramSummary", values, collections, family)


def merge(inputs, collections=None, name=None):
    """One summary op holding all the summaries in `inputs`.

    Raises:
        InvalidArgumentError: `inputs` is empty or holds a non-string tensor.
    """
    from .ops.core import convert_to_tensor
    inputs = [convert_to_tensor(t) for t in inputs]
    if not inputs:
        raise InvalidArgumentError("summary.merge needs at least one summary")
    out = apply_op("MergeSummary", inputs, {}, name=name or "Merge/MergeSummary")
    if isinstance(out, Tensor):
        for key in collections or ():
            out.graph.add_to_collection(key, out)
    return out


def merge_all(key=GraphKeys.SUMMARIES, scope=None, name=None):
    """Merge every summary in collection `key` of the default graph; None when it is empty (as TF1)."""
    items = get_default_graph().get_collection(key, scope)
    if not items:
        return None
    return merge(items, name=name)


# -- GraphDef encoding for add_graph ---------------------------------------------------------------------
# tensorflow/core/framework/types.proto DataType numbers
_DT_ENUM = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6, "string": 7, "int64": 9,
            "bool": 10, "float16": 19, "uint16": 17, "uint32": 22, "uint64": 23}


def _shape_proto(shape):
    from ..io.protobuf import bytes_field, varint_field
    if shape.ndims is None:
        return varint_field(3, 1)   # unknown_rank = true
    return b"".join(bytes_field(2, varint_field(1, -1 if d is None else d)) for d in shape)


def _attr_entry(key, attr_value):
    from ..io.protobuf import bytes_field
    return bytes_field(5, bytes_field(1, key) + bytes_field(2, attr_value))


def graph_def_bytes(graph):
    """A serialized GraphDef of `graph`: NodeDef {name, op, input, device, attr {T, _output_shapes}}.

    TensorBoard's graph dashboard reads it; values of constants are not included.
    """
    from ..io.protobuf import bytes_field, varint_field
    nodes = []
    for op in graph.get_operations():
        node = bytes_field(1, op.name) + bytes_field(2, op.type)
        for t in op.inputs:
            node += bytes_field(3, t.op.name if t.value_index == 0 else f"{t.op.name}:{t.value_index}")
        for c in op.control_inputs:
            node += bytes_field(3, "^" + c.name)
        if op.device:
            node += bytes_field(4, op.device)
        if op.outputs:
            enum = _DT_ENUM.get(op.outputs[0].dtype.name)
            if enum is not None:
                node += _attr_entry("T", varint_field(6, enum))
            shapes = b"".join(bytes_field(7, _shape_proto(t.shape)) for t in op.outputs)
            node += _attr_entry("_output_shapes", bytes_field(1, shapes))
        nodes.append(bytes_field(1, node))
    return b"".join(nodes) + bytes_field(4, varint_field(1, 27))   # versions { producer: 27 }


# -- FileWriter --------------------------------------------------------------------------------------------
class FileWriter:
    """Write summaries and the graph to an event file in `logdir` for TensorBoard.

    Args:
        logdir: folder of the event file (created if missing).
        graph: optionally, a Graph written at once (TensorBoard's graph view).
        flush_secs: buffered events reach the disk at least this often (checked on each add).
        filename_suffix: appended to the event file's name.

    Raises:
        OSError: the folder cannot be created.
    """

    def __init__(self, logdir, graph=None, max_queue=10, flush_secs=120, filename_suffix=None, session=None,
                 graph_def=None):
        from ..io.events import EventFileWriter
        self._logdir = os.fspath(logdir)
        self._writer = EventFileWriter(self._logdir, filename_suffix=filename_suffix or "", flush_secs=flush_secs)
        self._closed = False
        if graph is not None or graph_def is not None:
            self.add_graph(graph, graph_def=graph_def)

    @property
    def event_file(self):
        return self._writer.path

    def get_logdir(self):
        return self._logdir

    def add_summary(self, summary, global_step=None):
        """Append a serialized Summary (the value of a summary op) at step `global_step`.

        Raises:
            InvalidArgumentError: `summary` is not a serialized Summary, or the writer is closed.
        """
        self._check_open()
        self._writer.add_summary(_summary_bytes(summary, "FileWriter.add_summary"),
                                 None if global_step is None else int(global_step))

    def add_graph(self, graph, global_step=None, graph_def=None):
        """Append the graph's structure (a GraphDef) for TensorBoard's graph dashboard."""
        from ..io.protobuf import bytes_field, double_field, varint_field
        self._check_open()
        payload = graph_def if isinstance(graph_def, (bytes, bytearray)) else graph_def_bytes(graph)
        step = int(global_step or 0)
        event = double_field(1, time.time()) + (varint_field(2, step) if step else b"") + bytes_field(4, payload)
        self._writer.add_event(event)

    def add_event(self, event):
        """Append one serialized Event message."""
        self._check_open()
        self._writer.add_event(bytes(event))

    def _check_open(self):
        if self._closed:
            raise InvalidArgumentError(f"FileWriter for {self._logdir} is closed")

    def flush(self):
        """Write buffered events to disk."""
        self._writer.flush()

    def close(self):
        """Flush and close the event file. Closing twice is harmless."""
        if not self._closed:
            self._writer.close()
            self._closed = True

    def reopen(self):
        """A closed writer starts a new event file in the same folder."""
        if self._closed:
            from ..io.events import EventFileWriter
            self._writer = EventFileWriter(self._logdir)
            self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FileWriterCache:
    """One FileWriter per folder, shared (as TF1's FileWriterCache)."""
    _writers = {}

    @classmethod
    def get(cls, logdir):
        key = os.path.abspath(os.fspath(logdir))
        writer = cls._writers.get(key)
        if writer is None or writer._closed:
            writer = cls._writers[key] = FileWriter(key)
        return writer

    @classmethod
    def clear(cls):
        for writer in cls._writers.values():
            writer.close()
        cls._writers.clear()
