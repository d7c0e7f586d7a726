"""kestimator.data against what TensorFlow's tf.data itself produced (tests/fixtures/tfdata/golden.json,
written by tests/fixtures/make_tfdata_golden.py with TF 2.21)."""
import os

import numpy as np
import pytest

from kestimator.data import CsvDataset, Dataset, RecordDataset, TextLineDataset, experimental
from kestimator.engine import dtypes

from .data_helpers import FIXTURES, from_golden, plain


def _ranged(lengths):
    """Input element i -> a dataset of lengths[i] values 100*i + j (as in the generator)."""
    return Dataset.range(len(lengths)), lambda i: Dataset.range(lengths[i]).map(lambda j: 100 * i + j)


def _kestimator_cases():
    cases = {}
    for cycle, block in [(1, 1), (2, 1), (2, 3), (3, 2), (4, 1)]:
        src, fn = _ranged([3, 0, 5, 1, 4, 2])
        cases[f"interleave_c{cycle}_b{block}"] = src.interleave(fn, cycle_length=cycle, block_length=block)
    ragged = Dataset.range(1, 6).map(lambda n: np.full([n], n, np.float32))
    cases["padded_batch_default"] = ragged.padded_batch(2)
    cases["padded_batch_fixed"] = ragged.padded_batch(2, padded_shapes=[6], padding_values=-1.0)
    cases["padded_batch_drop"] = ragged.padded_batch(2, drop_remainder=True)
    pairs = Dataset.range(1, 5).map(lambda n: (np.arange(n), np.full([2, n], b"ab", dtype=object)))
    cases["padded_batch_tuple"] = pairs.padded_batch(3, padding_values=(7, b"z"))
    for n, k in [(10, 3), (11, 4), (2, 5)]:
        for index in range(min(k, 3)):
            cases[f"shard_{n}_{k}_{index}"] = Dataset.range(n).shard(k, index)
    cases["batch_drop"] = Dataset.range(10).batch(4, drop_remainder=True)
    cases["batch_keep"] = Dataset.range(10).batch(4)
    cases["unbatch"] = Dataset.range(7).batch(3).unbatch()
    cases["take_skip"] = Dataset.range(10).skip(3).take(4)
    cases["take_all"] = Dataset.range(4).take(-1)
    cases["skip_all"] = Dataset.range(4).skip(-1)
    cases["repeat_3"] = Dataset.range(3).repeat(3)
    cases["enumerate"] = Dataset.range(3).map(lambda x: x * 2).enumerate(5)
    cases["flat_map"] = Dataset.range(4).flat_map(lambda x: Dataset.range(x))
    cases["zip_dict"] = Dataset.zip({"a": Dataset.range(3), "b": Dataset.range(10, 15)})
    cases["concatenate"] = Dataset.range(2).concatenate(Dataset.range(5, 7))
    cases["filter_map_batch"] = Dataset.range(20).filter(lambda x: x % 3 == 0).map(lambda x: (x, x * x)).batch(3)
    cases["slices_nested"] = Dataset.from_tensor_slices(
        {"x": np.arange(6, dtype=np.float32).reshape(3, 2),
         "y": (np.array([1, 2, 3]), np.array([b"a", b"b", b"c"]))})
    return cases


CASES = _kestimator_cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_elements_match_tf(name, golden):
    expected = [from_golden(v) for v in golden["elements"][name]]
    assert [plain(e) for e in CASES[name]] == expected


@pytest.mark.parametrize("size,shift,stride,drop", [(3, None, 1, False), (3, 1, 1, False), (3, 2, 2, False),
                                                    (2, 3, 1, True), (4, 1, 2, True), (5, 5, 1, False)])
def test_window_matches_tf(size, shift, stride, drop, golden):
    expected = golden["elements"][f"window_{size}_{shift}_{stride}_{int(drop)}"]
    windows = Dataset.range(11).window(size, shift, stride, drop)
    assert [[int(v) for v in w] for w in windows] == expected
    assert windows.cardinality() == len(expected)


def test_cardinality_matches_tf(golden):
    r = Dataset.range
    pipelines = {
        "range": r(10), "batch_keep": r(10).batch(3), "batch_drop": r(10).batch(3, True),
        "repeat_inf": r(3).repeat(), "repeat_2": r(3).repeat(2), "repeat_empty": r(0).repeat(),
        "filter": r(10).filter(lambda x: x > 2), "take_inf": r(3).repeat().take(7),
        "skip": r(10).skip(4), "skip_past": r(3).skip(5), "shard": r(10).shard(3, 2),
        "zip": Dataset.zip((r(4), r(9))), "zip_inf": Dataset.zip((r(4), r(2).repeat())),
        "concat": r(4).concatenate(r(2)), "concat_inf": r(4).concatenate(r(2).repeat()),
        "shuffle": r(10).shuffle(4), "window_drop": r(10).window(3, 2, 1, True),
        "window_keep": r(10).window(3, 2), "take_minus1": r(5).take(-1),
        "filter_repeat": r(5).filter(lambda x: x > 1).repeat(),
    }
    assert {name: ds.cardinality() for name, ds in pipelines.items()} == golden["cardinality"]


def test_text_lines_match_tf(golden):
    lines = [plain(e) for e in TextLineDataset(os.path.join(FIXTURES, "lines_crlf.txt"))]
    assert lines == [from_golden(v) for v in golden["files"]["text_lines"]]


@pytest.mark.parametrize("name,compression", [("plain.tfrecord", None), ("plain.tfrecord.gz", "GZIP")])
def test_tf_written_records(name, compression, golden):
    key = "records" if compression is None else "records_gz"
    got = list(RecordDataset(os.path.join(FIXTURES, name), compression_type=compression))
    assert got == [from_golden(v) for v in golden["files"][key]]


def test_csv_with_defaults_matches_tf(golden):
    ds = CsvDataset(os.path.join(FIXTURES, "rows.csv"), [np.int64(0), -9.0, "?", 0], header=True, na_value="NA")
    rows = list(ds)
    assert [plain(r) for r in rows] == [from_golden(v) for v in golden["files"]["csv_defaults"]]
    # dtypes as TF: int64 from an int64 default, Python float -> float32, str -> bytes, Python int -> int32
    assert [type(v) for v in rows[0]] == [np.int64, np.float32, bytes, np.int32]


def test_csv_select_cols_matches_tf(golden):
    ds = CsvDataset(os.path.join(FIXTURES, "rows.csv"), [np.int64(0), "?"], header=True, select_cols=[0, 2])
    assert [plain(r) for r in ds] == [from_golden(v) for v in golden["files"]["csv_select"]]


def test_make_csv_dataset_infers_tf_types(golden):
    ds = experimental.make_csv_dataset(os.path.join(FIXTURES, "rows.csv"), batch_size=5, shuffle=False,
                                       num_epochs=1, na_value="NA")
    features = next(iter(ds))
    assert {k: dtypes.as_dtype(v.dtype).name for k, v in features.items()} == golden["files"]["make_csv_types"]
    expected = {k: from_golden(v) for k, v in golden["files"]["make_csv_values"].items()}
    assert {k: plain(v) for k, v in features.items()} == expected
