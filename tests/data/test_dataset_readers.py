"""Readers: record files, text lines, CSV, make_csv_dataset; and the shared input-pipeline example."""
import csv
import gzip
import os
import pathlib
import subprocess
import sys
import zlib

import numpy as np
import pytest

from kestimator.data import (CsvDataset, Dataset, RecordDataset, RecordWriter, TextLineDataset, TFRecordDataset,
                             experimental)
from kestimator.errors import DataLossError, InvalidArgumentError, NotFoundError

from .data_helpers import plain

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_records(path, records, compression=None):
    with RecordWriter(path, compression_type=compression) as w:
        for r in records:
            w.write(r)


@pytest.mark.parametrize("compression", [None, "GZIP", "ZLIB"])
def test_record_files_read_in_order(tmp_path, compression):
    files = []
    for shard in range(3):
        path = str(tmp_path / f"r{shard}")
        _write_records(path, [b"%d:%d" % (shard, i) for i in range(4 + shard)], compression)
        files.append(path)
    got = list(RecordDataset(files, compression_type=compression))
    assert got == [b"%d:%d" % (s, i) for s in range(3) for i in range(4 + s)]
    assert TFRecordDataset is RecordDataset


def test_parallel_reads_interleave_one_record_per_file(tmp_path):
    files = []
    for shard in range(3):
        path = str(tmp_path / f"r{shard}")
        _write_records(path, [b"%d:%d" % (shard, i) for i in range(2 + shard)])
        files.append(path)
    got = list(RecordDataset(files, num_parallel_reads=3))
    # round robin over the three files, each leaving the cycle when it ends
    assert got == [b"0:0", b"1:0", b"2:0", b"0:1", b"1:1", b"2:1", b"1:2", b"2:2", b"2:3"]
    from_dataset = list(RecordDataset(Dataset.from_tensor_slices(files)))
    assert from_dataset == [b"%d:%d" % (s, i) for s in range(3) for i in range(2 + s)]


def test_missing_and_corrupt_record_files(tmp_path):
    with pytest.raises(NotFoundError, match="nope"):
        list(RecordDataset(str(tmp_path / "nope")))
    path = str(tmp_path / "bad")
    _write_records(path, [b"first", b"second record"])
    data = bytearray(pathlib.Path(path).read_bytes())
    second = 12 + len(b"first") + 4
    data[second + 12 + 2] ^= 0x01
    pathlib.Path(path).write_bytes(bytes(data))
    it = iter(RecordDataset(path))
    assert next(it) == b"first"
    with pytest.raises(DataLossError, match=f"offset {second}.*{os.path.basename(path)}"):
        next(it)


def test_shared_input_pipeline_example_runs():
    proc = subprocess.run([sys.executable, os.path.join(REPO, "examples", "11_input_pipeline.py")],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "OK"


@pytest.mark.parametrize("compression", [None, "GZIP", "ZLIB"])
def test_text_lines_with_headers_and_compression(tmp_path, compression):
    contents = [b"h1\nline a\r\nline b\n\nlast", b"h2\nonly\n"]
    files = []
    for i, text in enumerate(contents):
        path = str(tmp_path / f"t{i}.txt")
        raw = {None: lambda b: b, "GZIP": gzip.compress, "ZLIB": zlib.compress}[compression](text)
        pathlib.Path(path).write_bytes(raw)
        files.append(path)
    assert list(TextLineDataset(files, compression_type=compression)) == \
        [b"h1", b"line a", b"line b", b"", b"last", b"h2", b"only"]
    assert list(TextLineDataset(files, compression_type=compression, header=True)) == \
        [b"line a", b"line b", b"", b"last", b"only"]
    assert list(TextLineDataset(files, compression_type=compression, skip_header_lines=2)) == \
        [b"line b", b"", b"last"]


def test_csv_against_the_csv_module(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "data.csv")
    rows = [[int(rng.integers(-1000, 1000)), float(rng.normal()), f"name, {i}", float(rng.normal())]
            for i in range(50)]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "c", "d"])
        writer.writerows(rows)
    ds = CsvDataset(path, [np.int64(0), np.float64(0), "", np.float32(0)], header=True)
    got = list(ds)
    assert [(int(a), float(b), c.decode(), float(d)) for a, b, c, d in got] == \
        [(a, b, c, float(np.float32(d))) for a, b, c, d in rows]
    excluded = list(CsvDataset(path, [np.int64(0), ""], header=True, exclude_cols=[1, 3]))
    assert [(int(a), c.decode()) for a, c in excluded] == [(r[0], r[2]) for r in rows]


def test_csv_errors_name_file_line_and_column(tmp_path):
    path = str(tmp_path / "e.csv")
    pathlib.Path(path).write_text("1,2\n3,\n5,x\n6\n")
    required = CsvDataset(path, [np.int64(0), np.int64])
    it = iter(required)
    assert plain(next(it)) == (1, 2)
    with pytest.raises(InvalidArgumentError, match=r"e.csv:2: column 1 is empty and has no default"):
        next(it)
    it = iter(CsvDataset(path, [np.int64(0), np.int64(-1)]).skip(2))
    with pytest.raises(InvalidArgumentError, match=r"e.csv:3: column 1: cannot parse 'x' as int64"):
        next(it)
    it = iter(CsvDataset(path, [np.int64(0), "z"]).skip(3))
    with pytest.raises(InvalidArgumentError, match=r"e.csv:4: expected 2 fields, found 1"):
        next(it)


def test_csv_delimiters_quotes_and_gzip(tmp_path):
    path = str(tmp_path / "t.tsv.gz")
    with gzip.open(path, "wt") as f:
        f.write('x\t"q"\n')
    assert list(CsvDataset(path, ["", ""], field_delim="\t", compression_type="GZIP")) == [(b"x", b"q")]
    assert list(CsvDataset(path, ["", ""], field_delim="\t", compression_type="GZIP", use_quote_delim=False)) == \
        [(b"x", b'"q"')]
    with pytest.raises(InvalidArgumentError, match="field_delim"):
        CsvDataset(path, [""], field_delim="ab")


def test_make_csv_dataset_features_label_and_epochs(tmp_path):
    for part in range(2):
        with open(tmp_path / f"p{part}.csv", "w") as f:
            f.write("x,y,label\n")
            for i in range(5):
                f.write(f"{part * 5 + i},{(part * 5 + i) / 2},{i % 2}\n")
    pattern = str(tmp_path / "p*.csv")
    ds = experimental.make_csv_dataset(pattern, batch_size=4, label_name="label", shuffle=False, num_epochs=1)
    batches = list(ds)
    assert [len(lbl) for _, lbl in batches] == [4, 4, 2]
    xs = np.concatenate([f["x"] for f, _ in batches])
    assert xs.tolist() == list(range(10)) and xs.dtype == np.int32
    assert np.concatenate([f["y"] for f, _ in batches]).dtype == np.float32
    assert set(batches[0][0]) == {"x", "y"}
    forever = experimental.make_csv_dataset(pattern, batch_size=4, select_columns=["x", "label"], shuffle=True,
                                            shuffle_seed=3, num_epochs=None)
    it = iter(forever)
    seen = [next(it) for _ in range(5)]            # 20 rows: two epochs, every batch full
    assert all(len(b["x"]) == 4 for b in seen)
    assert sorted(np.concatenate([b["x"] for b in seen]).tolist()) == sorted(list(range(10)) * 2)
    with pytest.raises(InvalidArgumentError, match="label_name 'nope'"):
        experimental.make_csv_dataset(pattern, batch_size=2, label_name="nope")
