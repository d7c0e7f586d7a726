"""TensorBoard event files: golden bytes, TF-written fixtures, TF reading ours, TensorBoard reading ours."""
import json
import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from kestimator.errors import DataLossError, InvalidArgumentError, NotFoundError
from kestimator.io import protobuf as pb
from kestimator.io.events import (EventFileWriter, histogram_proto, histogram_summary, merge_summaries,
                                  read_event_scalars, scalar_summary)
from kestimator.io.records import encode_record, iter_records

TF_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "tf"
TF_EVENTS = json.loads((TF_DIR / "tf_events.json").read_text())
HISTO = {1: ("min", "double"), 2: ("max", "double"), 3: ("num", "double"), 4: ("sum", "double"),
         5: ("sum_squares", "double"), 6: ("bucket_limit", "double", "repeated"),
         7: ("bucket", "double", "repeated")}
VALUE = {1: ("tag", "string"), 2: ("simple_value", "float"), 5: ("histo", HISTO)}
EVENT = {1: ("wall_time", "double"), 2: ("step", "int64"), 3: ("file_version", "string"),
         5: ("summary", {1: ("value", VALUE, "repeated")})}


def events_of(path):
    return [pb.decode_message(rec, EVENT) for _, rec in iter_records(path)]


def test_scalar_summary_golden_bytes():
    # Value: tag "a" = 0a 01 61; simple_value 1.0 = key 2<<3|5 = 0x15, then 00 00 80 3f; 8 bytes in all.
    # Summary: field 1 (0x0a), length 8, the Value.
    assert scalar_summary("a", 1.0).hex() == "0a080a0161150000803f"
    assert scalar_summary("a", np.float64(1.0)) == scalar_summary("a", np.array(1, np.int32))


def test_merge_is_concatenation_of_values():
    merged = merge_summaries([scalar_summary("a", 1.0), scalar_summary("b", 2.0), histogram_summary("h", [1.0])])
    values = pb.decode_message(merged, {1: ("value", VALUE, "repeated")})["value"]
    assert [v["tag"] for v in values] == ["a", "b", "h"]
    assert values[0]["simple_value"] == 1.0 and values[1]["simple_value"] == 2.0 and values[2]["histo"]["num"] == 1
    with pytest.raises(InvalidArgumentError, match="element 1"):
        merge_summaries([scalar_summary("a", 1.0), "oops"])


def test_histogram_matches_tensorflow_cpp_histogram():
    tf = TF_EVENTS["tf1_histogram"]     # HistogramProto computed by TF1's C++ summary op
    ours = pb.decode_message(histogram_proto(tf["values"]), HISTO)
    for key in ("min", "max", "num", "sum", "sum_squares"):
        assert ours[key] == pytest.approx(tf[key], rel=1e-15), key
    assert ours["bucket_limit"].tolist() == tf["bucket_limit"]
    assert ours["bucket"].tolist() == tf["bucket"]


def test_histogram_refuses_non_finite_values():
    with pytest.raises(InvalidArgumentError, match="weights"):
        histogram_summary("weights", [1.0, np.nan])
    with pytest.raises(InvalidArgumentError, match="tag"):
        scalar_summary("", 1.0)


def test_writer_file_name_first_event_and_round_trip(tmp_path):
    with EventFileWriter(tmp_path / "run", filename_suffix=".v2") as w:
        w.add_scalar("loss", 0.5, step=0, wall_time=10.0)
        w.add_scalar("loss", 0.25, step=3, wall_time=11.0)
        w.add_histogram("w", [1.0, 2.0, 2.0], step=3, wall_time=11.0)
        w.add_summary(merge_summaries([scalar_summary("a", -1.0), scalar_summary("b", 7.0)]), step=-4,
                      wall_time=12.0)
    name = os.path.basename(w.path)
    host = re.escape(socket.gethostname())
    assert re.fullmatch(rf"events\.out\.tfevents\.\d{{10}}\.{host}\.{os.getpid()}\.\d+\.v2", name), name
    events = events_of(w.path)
    assert events[0]["file_version"] == "brain.Event:2" and "step" not in events[0]
    assert [e.get("step", 0) for e in events[1:]] == [0, 3, 3, -4]
    assert [e["wall_time"] for e in events[1:]] == [10.0, 11.0, 11.0, 12.0]
    assert read_event_scalars(w.path) == {"loss": [(0, 0.5), (3, 0.25)], "a": [(-4, -1.0)], "b": [(-4, 7.0)]}


def test_writers_in_the_same_second_use_different_files(tmp_path):
    with EventFileWriter(tmp_path) as a, EventFileWriter(tmp_path) as b:
        assert a.path != b.path
    assert len(list(tmp_path.iterdir())) == 2


def test_flush_secs_zero_writes_through(tmp_path):
    w = EventFileWriter(tmp_path, flush_secs=0)
    w.add_scalar("x", 1.0, step=1)     # more than 0 s since the last flush: written through
    assert read_event_scalars(w.path) == {"x": [(1, 1.0)]}
    w.add_scalar("x", 2.0, step=2)
    assert read_event_scalars(w.path) == {"x": [(1, 1.0), (2, 2.0)]}
    w.close()
    with pytest.raises(InvalidArgumentError, match="closed"):
        w.add_scalar("x", 3.0, step=3)
    with pytest.raises(InvalidArgumentError, match="bytes"):
        EventFileWriter(tmp_path).add_summary({"x": 1}, step=0)


@pytest.mark.parametrize("name", ["tf2_scalars.tfevents", "tf1_simple.tfevents"])
def test_reads_tensorflow_written_scalars(name):
    # tf2: tensor-encoded scalars (float32, int64, float64), a histogram tensor and a text tensor
    # that must be skipped; tf1: simple_value scalars next to a HistogramProto
    expected = {tag: [tuple(p) for p in pts] for tag, pts in TF_EVENTS[name].items()}
    assert read_event_scalars(TF_DIR / name) == expected


def test_directory_reads_every_event_file_in_name_order(tmp_path):
    for i, value in enumerate([1.0, 2.0]):
        with EventFileWriter(tmp_path, filename_suffix=f".{i}") as w:
            w.add_scalar("v", value, step=i)
    (tmp_path / "notes.txt").write_text("not an event file")
    assert read_event_scalars(tmp_path) == {"v": [(0, 1.0), (1, 2.0)]}
    with pytest.raises(NotFoundError):
        read_event_scalars(tmp_path / "missing")


def test_tensor_scalar_encodings_built_by_hand(tmp_path):
    # rank-0 tensors in the repeated-value fields instead of tensor_content: DT_DOUBLE (2) in
    # double_val (6), DT_HALF (19) in half_val (13, the 16 bits 0x3C00 = 1.0), DT_INT32 (3) in int_val (7)
    def tensor_value(tag, tensor, plugin=None):
        meta = pb.bytes_field(9, pb.bytes_field(1, pb.bytes_field(1, plugin))) if plugin else b""
        return pb.bytes_field(1, pb.bytes_field(1, tag) + meta + pb.bytes_field(8, tensor))
    summary = merge_summaries([
        tensor_value("d", pb.varint_field(1, 2) + pb.bytes_field(2, b"") + pb.packed_double_field(6, [2.5])),
        tensor_value("h", pb.varint_field(1, 19) + pb.packed_varint_field(13, [0x3C00])),
        tensor_value("i", pb.varint_field(1, 3) + pb.varint_field(7, 42)),
        tensor_value("vec", pb.varint_field(1, 1) + pb.bytes_field(2, pb.bytes_field(2, pb.varint_field(1, 2)))
                     + pb.packed_float_field(5, [1.0, 2.0])),                 # rank 1: not a scalar
        tensor_value("hp", pb.varint_field(1, 1) + pb.packed_float_field(5, [0.0]), plugin="hparams"),
    ])
    with EventFileWriter(tmp_path) as w:
        w.add_summary(summary, step=9)
    assert read_event_scalars(w.path) == {"d": [(9, 2.5)], "h": [(9, 1.0)], "i": [(9, 42.0)]}


def test_corrupt_event_is_reported_with_file_and_offset(tmp_path):
    good = encode_record(pb.double_field(1, 1.0))
    path = tmp_path / "events.out.tfevents.bad"
    path.write_bytes(good + encode_record(b"\x2a\x05ab"))   # summary field declaring 5 bytes, 2 present
    with pytest.raises(DataLossError, match=rf"{re.escape(str(path))}: event at byte offset {len(good)}"):
        read_event_scalars(path)


def test_tensorflow_reads_our_event_file():
    # ks_events.tfevents was written by EventFileWriter (tests/fixtures/make_tf_records.py) and read back
    # by TensorFlow's summary_iterator into ks_events.tf_parsed.json
    tf_events = json.loads((TF_DIR / "ks_events.tf_parsed.json").read_text())
    assert tf_events[0]["file_version"] == "brain.Event:2"
    assert [(e["step"], e["wall_time"], e["scalars"]["loss"]) for e in tf_events[1:4]] == \
        [(0, 1000.0, 1.0), (1, 1001.0, 0.5), (2, 1002.0, float(np.float32(1 / 3)))]
    histo = tf_events[4]["histograms"]["weights"]
    ours = pb.decode_message(histogram_proto([-1.0, 0.0, 0.0, 2.5, 1e-9]), HISTO)
    assert histo["bucket_limit"] == ours["bucket_limit"].tolist() and histo["bucket"] == ours["bucket"].tolist()
    assert (histo["min"], histo["max"], histo["num"]) == (-1.0, 2.5, 5.0)
    assert read_event_scalars(TF_DIR / "ks_events.tfevents") == {"loss": [(0, 1.0), (1, 0.5),
                                                                          (2, float(np.float32(1 / 3)))]}


def test_tensorboard_event_accumulator_reads_our_file(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.compat.proto import summary_pb2

    values = np.random.default_rng(0).normal(size=500)
    with EventFileWriter(tmp_path) as w:
        for step in range(3):
            w.add_scalar("loss", 1.0 / (step + 1), step)
        w.add_histogram("weights", values, step=7)
        w.add_summary(merge_summaries([scalar_summary("a", 1.0), scalar_summary("b", 2.0)]), step=8)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["a", "b", "loss"]
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(0, 1.0), (1, 0.5), (2, float(np.float32(1 / 3)))]
    (h,) = acc.Histograms("weights")
    assert h.step == 7
    hv = h.histogram_value
    assert (hv.min, hv.max, hv.num) == (values.min(), values.max(), 500)
    assert hv.sum == pytest.approx(values.sum(), rel=1e-12)
    assert sum(hv.bucket) == 500
    # protobuf's own parser agrees that a merged Summary holds both values
    parsed = summary_pb2.Summary.FromString(merge_summaries([scalar_summary("a", 1.0), scalar_summary("b", 2.0)]))
    assert [(v.tag, v.simple_value) for v in parsed.value] == [("a", 1.0), ("b", 2.0)]
