"""Binary file formats shared by the data pipeline and the summary writer.

* :mod:`.crc32c` — the CRC-32C checksum and TFRecord's masking of it.
* :mod:`.records` — record files in TFRecord framing (optionally GZIP / ZLIB compressed).
* :mod:`.protobuf` — a minimal protocol-buffers wire-format encoder / decoder.
* :mod:`.events` — TensorBoard event files.
* :mod:`.example_wire` — the wire format of tf.train.Example (its API is :mod:`kestimator.data.example`).

Note: the function :func:`crc32c` exported here shadows the submodule of the same name as an attribute;
reach the module with ``importlib.import_module("kestimator.io.crc32c")``.
"""
from .crc32c import crc32c, mask, masked_crc, unmask  # noqa: F401
from .events import (EventFileWriter, histogram_summary, merge_summaries, read_event_scalars,  # noqa: F401
                     scalar_summary)
from .records import RecordWriter, encode_record, iter_records  # noqa: F401

__all__ = ["crc32c", "mask", "unmask", "masked_crc", "RecordWriter", "iter_records", "encode_record",
           "EventFileWriter", "scalar_summary", "histogram_summary", "merge_summaries", "read_event_scalars"]
