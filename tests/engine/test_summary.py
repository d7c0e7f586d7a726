"""ke.summary: summary ops against TensorFlow 1.x's bytes, and FileWriter's event files against what
TensorBoard's EventAccumulator read from them (fixtures from tests/fixtures/make_tf1_summaries.py)."""
import importlib.util
import json
import os

import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError
from kestimator.io import read_event_scalars
from kestimator.io.protobuf import iter_fields
from kestimator.io.records import iter_records

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")


def _load_json(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def _generator():
    """The fixture generator module: its `write_kestimator_events` is the program TensorBoard checked."""
    spec = importlib.util.spec_from_file_location("make_tf1_summaries",
                                                  os.path.join(FIXTURES, "make_tf1_summaries.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_ops_match_tensorflow_bytes(fresh_graph):
    """Same graph as make_tf1_summaries.tf1_case: byte-identical serialized Summaries."""
    golden = _load_json("tf1_summaries.json")
    x = ke.placeholder(ke.float32, [None])
    loss = ke.summary.scalar("loss", ke.reduce_mean(ke.square(x)))
    with ke.name_scope("stats"):
        mx = ke.summary.scalar("max", ke.reduce_max(x))
        hist = ke.summary.histogram("x", x)
    merged = ke.summary.merge_all()
    assert ke.get_collection(ke.GraphKeys.SUMMARIES) == [loss, mx, hist]
    with ke.Session() as sess:
        for case in golden["cases"]:
            got = sess.run([loss, mx, hist, merged], {x: case["feed"]})
            assert all(isinstance(g, bytes) for g in got)
            assert [g.hex() for g in got] == [case["loss"], case["max"], case["histogram"], case["merged"]]


def _events(path):
    """[(step, kind, payload)] of an event file, wall time left out (it differs between runs)."""
    out = []
    for _, record in iter_records(path):
        step, kind, payload = 0, None, None
        for field, _, value, _ in iter_fields(record):
            if field == 2:
                step = value
            elif field in (3, 4, 5):
                kind, payload = field, bytes(value)
        out.append((step, kind, payload))
    return out


def test_filewriter_output_is_what_tensorboard_read(tmp_path):
    view = _load_json("ks_filewriter.tensorboard.json")
    committed = os.path.join(FIXTURES, "ks_filewriter.tfevents")
    # 1. our reader agrees with TensorBoard on the file TensorBoard parsed
    expected_scalars = {tag: [(s, v) for s, v in series] for tag, series in view["scalars"].items()}
    assert read_event_scalars(committed) == expected_scalars
    assert set(view["histograms"]) == {"stats/x"} and [h[0] for h in view["histograms"]["stats/x"]] == [0, 10, 20]
    names = {n["name"] for n in view["graph_nodes"]}
    assert {"x", "mse", "loss/ScalarSummary", "Merge/MergeSummary"} <= names
    # 2. today's FileWriter writes the same events (file version, graph, 3 summaries) as that file
    fresh = _generator().write_kestimator_events(str(tmp_path))
    assert _events(fresh) == _events(committed)
    kinds = [k for _, k, _ in _events(fresh)]
    assert kinds == [3, 4, 5, 5, 5]   # file_version, graph_def, then one summary per step


def test_histogram_values_match_tensorboard():
    view = _load_json("ks_filewriter.tensorboard.json")["histograms"]["stats/x"]
    feeds = _generator().FEEDS
    for (step, h), feed in zip(view, feeds):
        v = np.asarray(feed, np.float32).astype(np.float64)
        assert (h["min"], h["max"], h["num"]) == (v.min(), v.max(), len(v))
        assert h["sum"] == pytest.approx(v.sum(), rel=1e-12)
        assert sum(h["bucket"]) == len(v)


def test_filewriter_api(tmp_path, fresh_graph):
    x = ke.placeholder(ke.float32, [])
    s = ke.summary.scalar("value", x)
    writer = ke.summary.FileWriter(str(tmp_path / "run"))
    assert writer.get_logdir() == str(tmp_path / "run") and os.path.isfile(writer.event_file)
    with ke.Session() as sess:
        for step in range(4):
            writer.add_summary(sess.run(s, {x: step * 0.5}), global_step=step * 100)
    writer.flush()
    assert read_event_scalars(writer.event_file) == {"value": [(0, 0.0), (100, 0.5), (200, 1.0), (300, 1.5)]}
    with pytest.raises(InvalidArgumentError, match="bytes"):
        writer.add_summary(1.5, 0)
    writer.close()
    writer.close()   # twice is harmless
    with pytest.raises(InvalidArgumentError, match="closed"):
        writer.add_summary(b"", 1)
    with ke.summary.FileWriter(str(tmp_path / "ctx"), filename_suffix=".v2") as w2:
        w2.add_summary(np.array(b"", dtype=object), 1)   # a 0-d array holding the bytes is accepted
    assert w2.event_file.endswith(".v2")


def test_summary_errors_and_merge_all(fresh_graph):
    assert ke.summary.merge_all() is None
    with pytest.raises(InvalidArgumentError, match="scalar"):
        ke.summary.scalar("bad", ke.constant([1.0, 2.0]))
    with pytest.raises(InvalidArgumentError):
        ke.summary.merge([ke.constant(1.0)])
    with pytest.raises(InvalidArgumentError, match="at least one"):
        ke.summary.merge([])
    x = ke.placeholder(ke.float32, [None])
    h = ke.summary.histogram("weights", x)
    s = ke.summary.scalar("dyn", ke.reduce_sum(x), collections=["mine"])
    assert ke.get_collection("mine") == [s] and ke.summary.merge_all() is not None
    with ke.Session() as sess:
        with pytest.raises(InvalidArgumentError, match="weights"):
            sess.run(h, {x: [1.0, np.nan]})


def test_scalar_of_unknown_shape_checked_when_run(fresh_graph):
    x = ke.placeholder(ke.float32)
    s = ke.summary.scalar("v", x)
    with ke.Session() as sess:
        assert read_event_scalars_bytes(sess.run(s, {x: 2.0})) == {"v": 2.0}
        with pytest.raises(InvalidArgumentError, match="'v'"):
            sess.run(s, {x: [1.0, 2.0]})


def read_event_scalars_bytes(summary):
    """{tag: simple_value} of one serialized Summary, decoded field by field."""
    import struct
    out = {}
    for field, _, value, _ in iter_fields(summary):
        assert field == 1
        tag, number = None, None
        for f2, _, v2, _ in iter_fields(value):
            if f2 == 1:
                tag = bytes(v2).decode()
            elif f2 == 2:
                number = struct.unpack("<f", v2.to_bytes(4, "little"))[0]
        out[tag] = number
    return out
