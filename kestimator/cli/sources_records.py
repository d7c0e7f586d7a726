"""Reading a ``records:`` data source: record files of serialized ``tf.train.Example`` protos.

The spec names the files (a path, a glob, or a list of them), the ``compression`` they were written with
(``GZIP``, ``ZLIB`` or null) and a ``feature_spec``, one entry per feature::

    records: train-*.tfrecord
    feature_spec:
      pixels: {dtype: float32, shape: [784]}
      label: {dtype: int64}
    label: label

Every feature is parsed as a fixed-length feature (``tf.io.FixedLenFeature``): ``dtype`` is float32, int64
or string, ``shape`` defaults to ``[]`` (a scalar), and ``default`` (optional) fills Examples that lack the
feature. String features come back as object arrays of ``bytes``, as TensorFlow gives them (they may hold
binary data such as encoded images).
"""
import numpy as np

from ..errors import InvalidArgumentError

_BATCH = 4096   # Examples parsed per call; bounds the per-batch Python lists


def read_records(spec, files):
    """Read every Example of ``files`` into arrays.

    Args:
        spec: the source spec (``feature_spec``, ``label``, ``compression``).
        files: the record files, in order.

    Returns:
        ``(features, labels)``: ``{name: array [n, *shape]}`` for every feature but the label, and the
        label array (``None`` without ``label``).

    Raises:
        InvalidArgumentError: no ``feature_spec``, a label not in it, or an Example that does not fit it.
        DataLossError: a corrupt record file or Example (from the record reader and parser).
    """
    from ..data.example import FixedLenFeature, parse_example
    from ..io.records import iter_records

    feature_spec = spec.get("feature_spec")
    if not feature_spec:
        raise InvalidArgumentError("a records source needs feature_spec: {feature: {dtype, shape}}")
    label = spec.get("label")
    if label is not None and label not in feature_spec:
        raise InvalidArgumentError(f"records source: the label {label!r} is not in feature_spec "
                                   f"({', '.join(feature_spec)})")
    parsers = {name: FixedLenFeature(tuple(entry.get("shape") or ()), entry.get("dtype", "float32"),
                                     entry.get("default"))
               for name, entry in feature_spec.items()}
    chunks = {name: [] for name in parsers}
    for path in files:
        batch = []
        for _, data in iter_records(path, spec.get("compression")):
            batch.append(data)
            if len(batch) == _BATCH:
                _parse_into(chunks, batch, parsers, parse_example, path)
                batch = []
        if batch:
            _parse_into(chunks, batch, parsers, parse_example, path)
    arrays = {}
    for name, parts in chunks.items():
        if parts:
            arrays[name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
        else:
            raise InvalidArgumentError(f"records source: no Examples in {', '.join(files)}")
    labels = arrays.pop(label) if label is not None else None
    return arrays, labels


def _parse_into(chunks, batch, parsers, parse_example, path):
    try:
        parsed = parse_example(batch, parsers)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{path}: {exc}") from None
    for name, value in parsed.items():
        chunks[name].append(value)
