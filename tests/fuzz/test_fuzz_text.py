"""Fuzzing the text readers: ks.data.CsvDataset, ks.data.TextLineDataset (plain, GZIP, ZLIB) and the CLI's csv
data source (kestimator.cli.sources).

Mutations: raw bytes (invalid UTF-8, NUL bytes, stray quotes and delimiters, truncation, huge fields) of the
plain file and of the uncompressed text before it is recompressed, and raw bytes of the compressed file.
"""
import gzip
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import seeds
from .harness import Inputs, budget_spent, ci_share, contract, write
from .mutators import apply_byte_ops, byte_ops

SLOW = settings.get_profile("slow")
_TEXT_OPS = st.lists(st.tuples(st.sampled_from(["insert", "overwrite"]), st.floats(0, 1), st.integers(0, 9),
                               st.sampled_from([b'"', b",", b"\x00", b"\r", b"\n", b"\xff\xfe", b'""', b"\\",
                                                b"9" * 5000, b"1e999", b"nan", b"-", b"\xe2\x82", b" "]),
                               st.just(0), st.just(False)), min_size=1, max_size=4)
_SUFFIX = {None: "", "GZIP": ".gz", "ZLIB": ".zz"}


def _compress(data, compression):
    if compression == "GZIP":
        return gzip.compress(data, mtime=0)
    if compression == "ZLIB":
        return zlib.compress(data)
    return data


def _csv_dataset(path, compression):
    from kestimator.data import CsvDataset
    ds = CsvDataset(path, [np.float32(0), np.float64(-1.0), "none", np.int64(0)], compression_type=compression,
                    header=True)
    rows = list(ds)
    for row in rows:
        assert len(row) == 4
    return rows


def _text_lines(path, compression):
    from kestimator.data import TextLineDataset
    lines = list(TextLineDataset(path, compression_type=compression, skip_header_lines=1))
    assert all(isinstance(line, bytes) for line in lines)
    return lines


def _cli_csv(path, compression):
    from kestimator.cli.sources import load_source
    features, labels = load_source({"csv": path, "label": "label", "shuffle": False})
    assert labels is None or len(labels) == len(next(iter(features.values())))
    return features


_READERS = {"CsvDataset": _csv_dataset, "TextLineDataset": _text_lines, "cli csv source": _cli_csv}


@pytest.fixture(scope="module")
def text_seed():
    data = seeds.CSV_TEXT.encode()
    return data


@pytest.fixture(scope="module")
def text_contracts(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("text_seed"))
    for compression in (None, "GZIP", "ZLIB"):   # warm-up: each reader on a valid file
        path = seeds.csv_file(folder, compression)
        rows = _csv_dataset(path, compression)
        assert [int(r[3]) for r in rows] == [0, 1, 0] and rows[1][1] == -1.0   # empty field -> the default
        assert _text_lines(path, compression)[0] == b'1,2.5,"x, y",0'
    features = _cli_csv(seeds.csv_file(folder), None)
    np.testing.assert_array_equal(features["a"], np.float32([1, 3, 5]))
    return {name: contract(f"text: {name}") for name in _READERS}


def _run(contracts, data, base, reader, item):
    compression, where, ops = item
    if reader == "cli csv source":
        compression = None            # the CLI reads plain CSV only
    text = apply_byte_ops(data, ops) if where == "text" else data
    raw = _compress(text, compression)
    if where == "file":
        raw = apply_byte_ops(raw, ops)
    with Inputs(base) as folder:
        path = write(folder, "data.csv" + _SUFFIX[compression], raw)
        contracts[reader].run(lambda: _READERS[reader](path, compression), path, watch=[folder])


_inputs = st.tuples(st.sampled_from([None, "GZIP", "ZLIB"]), st.sampled_from(["text", "file"]),
                    st.one_of(byte_ops, _TEXT_OPS))


@pytest.mark.parametrize("reader", sorted(_READERS))
@settings(ci_share(1))
@given(item=_inputs)
def test_text_readers(text_seed, text_contracts, tmp_path, reader, item):
    _run(text_contracts, text_seed, tmp_path, reader, item)


@pytest.mark.slow
@pytest.mark.parametrize("reader", sorted(_READERS))
@settings(SLOW)
@given(item=_inputs)
def test_text_readers_slow(text_seed, text_contracts, tmp_path, reader, item):
    if budget_spent(text_contracts[reader]):
        return
    _run(text_contracts, text_seed, tmp_path, reader, item)
