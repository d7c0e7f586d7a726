"""tf.train.Example: golden bytes, TensorFlow fixtures both ways, parsing specs, hostile input."""
import gzip
import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kestimator.data.example import (Example, Feature, FixedLenFeature, SparseTensorValue, VarLenFeature,
                                     parse_example, parse_single_example)
from kestimator.engine import dtypes
from kestimator.errors import DataLossError, InvalidArgumentError
from kestimator.io.records import RecordWriter, iter_records

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TF_DIR = FIXTURES / "tf"
TF_DOC = json.loads((TF_DIR / "tf_examples.json").read_text())


def load_maker():
    spec = importlib.util.spec_from_file_location("make_tf_records", FIXTURES / "make_tf_records.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def f32_bits(values):
    return np.asarray(values, np.float32).view(np.uint32).tolist()


def feature_json(feature):
    """Our Feature in the JSON form make_tf_records.py records TensorFlow's view in."""
    if feature.kind is None:
        return {"kind": None}
    name = {1: "bytes_list", 2: "float_list", 3: "int64_list"}[feature.kind]
    if feature.kind == 1:
        return {"kind": name, "values": [v.hex() for v in feature.values]}
    if feature.kind == 2:
        return {"kind": name, "f32_bits": f32_bits(feature.values)}
    return {"kind": name, "values": feature.values.tolist()}


# ---- serialization ---------------------------------------------------------------------------------
def test_golden_bytes_by_hand():
    # Int64List{value: [1]}: packed field 1 = 0a 01 01; Feature.int64_list (3) = 1a 03 <that>;
    # map entry {key "a" = 0a 01 61, value (2) = 12 05 <feature>} is 10 bytes: Features = 0a 0a <entry>;
    # Example.features (1) = 0a 0c <features>.
    assert Example({"a": 1}).serialize().hex() == "0a0c" + "0a0a" + "0a0161" + "1205" + "1a03" + "0a0101"
    # FloatList{value: [1.0]}: packed 0a 04 0000803f; Feature.float_list (2) = 12 06 <that>
    assert Example({"f": 1.0}).serialize().hex() == "0a0f0a0d0a0166" + "1208" + "1206" + "0a040000803f"
    assert Example().serialize() == b"" and Example({}).serialize() == b"\x0a\x00"


def test_serialization_is_byte_identical_to_tensorflow_deterministic():
    for record in TF_DOC["records"]:
        features = {}
        for key, f in record["features"].items():
            if f["kind"] == "bytes_list":
                features[key] = Feature(bytes_list=[bytes.fromhex(v) for v in f["values"]])
            elif f["kind"] == "float_list":
                features[key] = Feature(float_list=np.array(f["f32_bits"], np.uint32).view(np.float32))
            else:
                features[key] = Feature(int64_list=f["values"])
        example = Example(features) if record["has_features"] else Example()
        assert example.serialize().hex() == record["deterministic_hex"]


def test_tensorflow_keeps_entries_in_its_deterministic_order():
    # measured with TF 2.21 (upb): keys e, n, neg serialize as e, neg, n (a key sorts before its prefix)
    got = Example({"n": Feature(), "neg": [-1, 0], "e": Feature(float_list=[])}).serialize()
    assert got.hex() == "0a280a070a0165120212000a160a036e6567120f1a0d0a0bffffffffffffffffff01000a050a016e1200"


def test_value_inference():
    ex = Example({"s": "héllo", "b": b"\x00", "i": np.int32(3), "flag": True, "x": 0.1,
                  "arr_f": np.ones((2, 2), np.float64), "arr_i": np.arange(3, dtype=np.uint8),
                  "list_s": ["a", b"b"], "nested": [[1, 2], [3, 4]], "mixed_num": [1, 2.5]}).to_dict()
    assert ex["s"] == ["héllo".encode()] and ex["b"] == [b"\x00"]
    assert ex["i"].tolist() == [3] and ex["flag"].tolist() == [1]
    assert ex["x"].dtype == np.float32 and ex["x"][0] == np.float32(0.1)
    assert ex["arr_f"].tolist() == [1.0] * 4 and ex["arr_i"].tolist() == [0, 1, 2]
    assert ex["list_s"] == [b"a", b"b"] and ex["nested"].tolist() == [1, 2, 3, 4]
    assert ex["mixed_num"].dtype == np.float32
    assert Example({"t": [b"ab\x00\x00"]}).to_dict()["t"] == [b"ab\x00\x00"]   # trailing NULs kept


@pytest.mark.parametrize("value,pattern", [
    ({"k": 1}, "cannot make a feature"), (None, "None"), ([], "empty list"), (2 ** 63, "int64 range"),
    (np.array([2 ** 64 - 1], np.uint64), "int64 range"), ([1, "a"], "one kind"), (["a", 1], "bytes or str"),
])
def test_bad_values_name_the_key(value, pattern):
    with pytest.raises(InvalidArgumentError, match=rf"bad_key.*{pattern}|{pattern}.*bad_key|Key: bad_key"):
        Example({"bad_key": value})


def test_feature_kinds_and_tf_like_access():
    f = Feature(int64_list=[1, 2])
    assert f.int64_list.value.tolist() == [1, 2] and f.float_list.value.size == 0 and f.bytes_list.value == []
    with pytest.raises(InvalidArgumentError, match="one kind"):
        Feature(int64_list=[1], float_list=[1.0])
    with pytest.raises(InvalidArgumentError, match="integer"):
        Feature(int64_list=[1.5])
    with pytest.raises(InvalidArgumentError, match="str"):
        Example({1: 2})


# ---- TensorFlow fixtures ---------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["serialized_hex", "deterministic_hex"])
def test_parses_tensorflow_serialized_examples(which):
    for record in TF_DOC["records"]:
        example = Example.parse(bytes.fromhex(record[which]))
        got = {k: feature_json(f) for k, f in example.features.items()} if example.features is not None else {}
        assert got == record["features"]
        assert (example.features is not None) == record["has_features"]


def spec_from_doc():
    specs = {}
    for key, s in TF_DOC["parse_spec"].items():
        if s[0] == "fixed":
            default = bytes.fromhex(s[3]) if s[2] == "string" else s[3]
            specs[key] = FixedLenFeature(tuple(s[1]), getattr(dtypes, s[2]), default)
        else:
            specs[key] = VarLenFeature(getattr(dtypes, s[1]))
    return specs


def array_json(arr):
    arr = np.asarray(arr)
    if arr.dtype == object:
        return {"shape": list(arr.shape), "hex": [bytes(v).hex() for v in arr.ravel()]}
    if arr.dtype == np.float32:
        return {"shape": list(arr.shape), "f32_bits": arr.view(np.uint32).ravel().tolist()}
    return {"shape": list(arr.shape), "values": arr.ravel().tolist()}


def test_parse_example_matches_tensorflow_parse_example():
    serialized = [bytes.fromhex(r["serialized_hex"]) for r in TF_DOC["records"]]
    ours = parse_example(serialized, spec_from_doc())
    for key, expected in TF_DOC["parse_example"].items():
        value = ours[key]
        if isinstance(value, SparseTensorValue):
            got = {"indices": array_json(value.indices), "values": array_json(value.values),
                   "dense_shape": array_json(value.dense_shape)}
        else:
            got = array_json(value)
        assert got == expected, key


def test_parse_single_example_matches_rows_of_tensorflow_batch():
    specs = spec_from_doc()
    tf_batch = TF_DOC["parse_example"]
    for i, record in enumerate(TF_DOC["records"]):
        parsed = parse_single_example(bytes.fromhex(record["serialized_hex"]), specs)
        assert parsed["label"] == tf_batch["label"]["values"][i] and isinstance(parsed["label"], np.int64)
        assert parsed["image"] == bytes.fromhex(tf_batch["image"]["hex"][i])
        for key in ("floats", "bytes"):
            rows = np.array(tf_batch[key]["indices"]["values"]).reshape(-1, 2)[:, 0]
            expected = tf_batch[key]["values"]
            field = "f32_bits" if key == "floats" else "hex"
            mine = [e for e, r in zip(expected[field], rows) if r == i]
            sparse = parsed[key]
            got = f32_bits(sparse.values) if key == "floats" else [v.hex() for v in sparse.values]
            assert got == mine
            assert sparse.indices.tolist() == [[j] for j in range(len(mine))]
            assert sparse.dense_shape.tolist() == [len(mine)]


def test_tensorflow_read_our_record_files_exactly(tmp_path):
    # ks_examples.tfrecord(.gz) were written by kestimator from kestimator_examples(); TF parsed them
    # into ks_examples.tf_parsed.json. Rewriting them today must give the same bytes, and what TF saw
    # must be what we meant.
    maker = load_maker()
    specs = maker.kestimator_examples()
    tf_parsed = json.loads((TF_DIR / "ks_examples.tf_parsed.json").read_text())

    def build(spec):
        return Example({k: Feature(float_list=v[1]) if isinstance(v, tuple) else v for k, v in spec.items()})

    for name, ctype in (("ks_examples.tfrecord", None), ("ks_examples.tfrecord.gz", "GZIP")):
        with RecordWriter(tmp_path / name, ctype) as w:
            for spec in specs:
                w.write(build(spec).serialize())
        mine, committed = (tmp_path / name).read_bytes(), (TF_DIR / name).read_bytes()
        if ctype == "GZIP":     # compare the stream's content: deflate output may vary across zlib builds
            mine, committed = gzip.decompress(mine), gzip.decompress(committed)
        assert mine == committed
        assert [{k: feature_json(f) for k, f in build(s).features.items()} for s in specs] == \
            [r["features"] for r in tf_parsed[name]]
        ours = [Example.parse(d) for _, d in iter_records(TF_DIR / name, ctype)]
        assert ours == [build(s) for s in specs]
    # the values TF saw, spelled out for the first record
    first = tf_parsed["ks_examples.tfrecord"][0]["features"]
    assert first["label"] == {"kind": "int64_list", "values": [0]}
    assert first["name"] == {"kind": "bytes_list", "values": ["café".encode().hex()]}
    assert first["weights"]["f32_bits"] == f32_bits([0.5, -2.0, 1e-3])


# ---- parsing specs ---------------------------------------------------------------------------------
def test_pipeline_usage_from_example_11():
    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    record = Example({"image": image.tobytes(), "label": 42}).serialize()
    fmt = {"image": FixedLenFeature((), dtypes.string, b""), "label": FixedLenFeature((), dtypes.int64, -1)}
    parsed = parse_single_example(record, fmt)
    assert isinstance(parsed["image"], bytes)
    assert np.array_equal(np.frombuffer(parsed["image"], np.uint8).reshape(8, 8), image)
    assert parsed["label"] == 42 and parsed["label"].dtype == np.int64 and parsed["label"].shape == ()
    missing = parse_single_example(Example({"other": 1}).serialize(), fmt)
    assert missing == {"image": b"", "label": -1}


def test_fixed_len_shapes_dtypes_and_defaults():
    record = Example({"m": np.arange(6, dtype=np.float32), "s": [b"a", b"b"], "i": [1, 2, 3]}).serialize()
    parsed = parse_single_example(record, {
        "m": FixedLenFeature((2, 3), np.float32),
        "s": FixedLenFeature([2], "string"),
        "i": FixedLenFeature(3, np.int64),
        "d": FixedLenFeature((2,), dtypes.float32, default_value=[0.5, 1.5]),
        "ds": FixedLenFeature((2,), dtypes.string, default_value=["x", b"y"]),
    })
    assert parsed["m"].shape == (2, 3) and parsed["m"].dtype == np.float32 and parsed["m"][1, 2] == 5
    assert parsed["s"].dtype == object and parsed["s"].tolist() == [b"a", b"b"]
    assert parsed["i"].tolist() == [1, 2, 3] and parsed["i"].dtype == np.int64
    assert parsed["d"].tolist() == [0.5, 1.5] and parsed["d"].dtype == np.float32
    assert parsed["ds"].tolist() == [b"x", b"y"]
    parsed["m"][0, 0] = 9.0    # results are writable copies


def test_var_len_features():
    record = Example({"v": [1.5, 2.5], "t": [b"x"]}).serialize()
    parsed = parse_single_example(record, {"v": VarLenFeature(dtypes.float32), "t": VarLenFeature(np.bytes_),
                                           "none": VarLenFeature(dtypes.int64)})
    assert parsed["v"].values.tolist() == [1.5, 2.5] and parsed["v"].indices.tolist() == [[0], [1]]
    assert parsed["v"].dense_shape.tolist() == [2]
    assert parsed["t"].values.tolist() == [b"x"]
    assert parsed["none"].values.dtype == np.int64 and parsed["none"].values.size == 0
    assert parsed["none"].indices.shape == (0, 1) and parsed["none"].dense_shape.tolist() == [0]


def test_parse_example_batches_var_len_and_fixed():
    batch = [Example({"v": [1, 2, 3], "l": 1}).serialize(), Example({"l": 2}).serialize(),
             Example({"v": [4], "l": 3}).serialize()]
    out = parse_example(np.array(batch, object), {"v": VarLenFeature(dtypes.int64),
                                                  "l": FixedLenFeature((), dtypes.int64)})
    assert out["l"].tolist() == [1, 2, 3]
    assert out["v"].indices.tolist() == [[0, 0], [0, 1], [0, 2], [2, 0]]
    assert out["v"].values.tolist() == [1, 2, 3, 4] and out["v"].dense_shape.tolist() == [3, 3]
    empty = parse_example([], {"v": VarLenFeature(dtypes.string), "l": FixedLenFeature((2,), dtypes.float32)})
    assert empty["l"].shape == (0, 2) and empty["v"].dense_shape.tolist() == [0, 0]
    with pytest.raises(InvalidArgumentError, match="Index: 1. Feature: v .*required"):
        parse_example([batch[2], batch[1]], {"v": FixedLenFeature((1,), dtypes.int64)})


@pytest.mark.parametrize("spec,pattern", [
    (FixedLenFeature((), dtypes.int64), "Feature: missing .*required"),
    (FixedLenFeature((), dtypes.float32), "Key: label. Data types don't match. Data type: int64 but expected "
                                          "type: float32"),
    (FixedLenFeature((2,), dtypes.int64), "Key: label.*expected 2 values"),
    (VarLenFeature(dtypes.string), "Key: label. Data types don't match"),
])
def test_parse_errors_name_the_key(spec, pattern):
    key = "missing" if "missing" in pattern else "label"
    with pytest.raises(InvalidArgumentError, match=pattern):
        parse_single_example(Example({"label": 1, "empty": Feature()}).serialize(), {key: spec})


def test_empty_feature_counts_as_missing_and_typed_empty_does_not():
    # TensorFlow: a Feature with no kind uses the default; an empty float_list is still a float_list
    record = Example({"none": Feature(), "floats": Feature(float_list=[])}).serialize()
    assert parse_single_example(record, {"none": FixedLenFeature((), dtypes.int64, 7)}) == {"none": 7}
    with pytest.raises(InvalidArgumentError, match="Key: floats. Data types don't match"):
        parse_single_example(record, {"floats": FixedLenFeature((0,), dtypes.int64)})
    assert parse_single_example(record, {"floats": FixedLenFeature((0,), dtypes.float32)})["floats"].shape == (0,)


@pytest.mark.parametrize("make", [
    lambda: FixedLenFeature((), np.int32), lambda: VarLenFeature("float64"),
    lambda: FixedLenFeature((-1,), dtypes.int64), lambda: FixedLenFeature((2,), dtypes.int64, default_value=1),
    lambda: FixedLenFeature((), dtypes.string, default_value=3),
])
def test_bad_specs(make):
    with pytest.raises(InvalidArgumentError):
        make()
    with pytest.raises(InvalidArgumentError, match="Key: k. spec"):
        parse_single_example(b"", {"k": "not a spec"})


def test_input_types():
    record = Example({"a": 5}).serialize()
    spec = {"a": FixedLenFeature((), dtypes.int64)}
    for form in (record, bytearray(record), memoryview(record), np.array(record, object)):
        assert parse_single_example(form, spec)["a"] == 5
    with pytest.raises(InvalidArgumentError, match="bytes"):
        parse_single_example("text", spec)


def test_wire_variants_tensorflow_must_accept():
    # unpacked int64 and float values, duplicate map keys (last wins), unknown fields, entries split
    # over two Features messages: all legal protobuf encodings of an Example
    def field(num, wire, payload):
        return bytes([(num << 3) | wire]) + payload

    def ld(num, payload):
        return field(num, 2, bytes([len(payload)]) + payload)

    unpacked_ints = ld(3, field(1, 0, b"\x05") + field(1, 0, b"\x07"))
    unpacked_floats = ld(2, field(1, 5, struct.pack("<f", 1.5)) + ld(1, struct.pack("<ff", 2.5, 3.5)))
    entry = lambda key, feat: ld(1, ld(1, key) + ld(2, feat))   # noqa: E731
    raw = (ld(1, entry(b"i", ld(3, ld(1, b"\x01"))) + entry(b"f", unpacked_floats) + field(9, 0, b"\x01"))
           + ld(1, entry(b"i", unpacked_ints)) + field(15, 5, b"abcd"))
    parsed = parse_single_example(raw, {"i": VarLenFeature(dtypes.int64), "f": VarLenFeature(dtypes.float32)})
    assert parsed["i"].values.tolist() == [5, 7]
    assert parsed["f"].values.tolist() == [1.5, 2.5, 3.5]


# ---- hostile input and property tests ---------------------------------------------------------------
def test_truncations_of_a_valid_example_are_data_loss():
    record = Example({"image": bytes(range(40)), "label": [1, -2 ** 63], "w": [0.5, 1.5]}).serialize()
    spec = {"image": VarLenFeature(dtypes.string), "label": VarLenFeature(dtypes.int64),
            "w": VarLenFeature(dtypes.float32)}
    # the whole Example is one length-delimited field, so every strict prefix is short of its length
    for cut in range(1, len(record)):
        with pytest.raises(DataLossError, match="malformed"):
            Example.parse(record[:cut])
        with pytest.raises(DataLossError, match="malformed"):
            parse_single_example(record[:cut], spec)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_data_loss_or_parse(raw):
    try:
        Example.parse(raw)
        parse_single_example(raw, {"a": VarLenFeature(dtypes.float32), "": VarLenFeature(dtypes.string)})
    except (DataLossError, InvalidArgumentError):
        pass


def reference_serialize(features):
    """Straight from the .proto definitions, independent of kestimator's encoder."""
    def varint(n):
        n &= (1 << 64) - 1
        out = b""
        while True:
            out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out

    def ld(num, payload):
        return varint(num << 3 | 2) + varint(len(payload)) + payload

    entries = b""
    for key in sorted(features, key=lambda k: list(k.encode()) + [256]):
        kind, values = features[key]
        if kind == "bytes":
            inner = b"".join(ld(1, v) for v in values)
            feat = ld(1, inner)
        elif kind == "float":
            packed = b"".join(struct.pack("<f", v) for v in values)
            feat = ld(2, ld(1, packed) if packed else b"")
        else:
            packed = b"".join(varint(v) for v in values)
            feat = ld(3, ld(1, packed) if packed else b"")
        entries += ld(1, ld(1, key.encode()) + ld(2, feat))
    return ld(1, entries)


FLOATS32 = st.floats(width=32, allow_nan=False)
FEATURE = st.one_of(
    st.tuples(st.just("bytes"), st.lists(st.binary(max_size=20), max_size=4)),
    st.tuples(st.just("int64"), st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), max_size=70)),
    st.tuples(st.just("float"), st.lists(FLOATS32, max_size=6)),
)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.text(max_size=6), FEATURE, max_size=5))
def test_round_trip_and_reference_encoding(features):
    def make(kind, values):
        return Feature(**{f"{kind}_list": values})

    example = Example({k: make(*v) for k, v in features.items()})
    serialized = example.serialize()
    assert serialized == reference_serialize(features)
    back = Example.parse(serialized)
    assert back == example
    specs = {k: VarLenFeature({"bytes": dtypes.string, "int64": dtypes.int64, "float": dtypes.float32}[kind])
             for k, (kind, _) in features.items()}
    parsed = parse_single_example(serialized, specs)
    for key, (kind, values) in features.items():
        got = parsed[key].values
        assert (list(got) if kind == "bytes" else got.tolist()) == \
            (values if kind != "float" else np.asarray(values, np.float32).tolist())
