"""Record files: round trips, TensorFlow-written files, truncation and corruption at every byte."""
import gzip
import json
import os
import struct
import zlib
from pathlib import Path

import pytest

from kestimator.errors import DataLossError, InvalidArgumentError, NotFoundError
from kestimator.io.crc32c import masked_crc
from kestimator.io.records import RecordWriter, encode_record, iter_records

TF_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "tf"
RECORDS = [b"", b"a", b"hello world" * 300, bytes(range(256)) * 400]


def write(path, records, compression_type=None):
    with RecordWriter(path, compression_type) as w:
        for r in records:
            w.write(r)
    return path


def expected_offsets(records):
    # each record takes 8 (length) + 4 (crc) + len + 4 (crc) bytes
    offsets, pos = [], 0
    for r in records:
        offsets.append(pos)
        pos += 16 + len(r)
    return offsets


@pytest.mark.parametrize("ctype", [None, "GZIP", "ZLIB"])
def test_round_trip(tmp_path, ctype):
    path = write(tmp_path / "r", RECORDS, ctype)
    got = list(iter_records(path, ctype))
    assert [d for _, d in got] == RECORDS
    assert [o for o, _ in got] == expected_offsets(RECORDS)   # uncompressed offsets, also when compressed


def test_plain_layout_is_length_crc_data_crc(tmp_path):
    raw = (write(tmp_path / "r", [b"abc"])).read_bytes()
    assert raw[:8] == struct.pack("<Q", 3)
    assert raw[8:12] == struct.pack("<I", masked_crc(struct.pack("<Q", 3)))
    assert raw[12:15] == b"abc"
    assert raw[15:] == struct.pack("<I", masked_crc(b"abc"))
    assert raw == encode_record(b"abc")


@pytest.mark.parametrize("ctype,opener", [("GZIP", gzip.decompress), ("ZLIB", zlib.decompress)])
def test_compressed_files_are_one_standard_stream(tmp_path, ctype, opener):
    path = write(tmp_path / "r", RECORDS, ctype)
    assert opener(path.read_bytes()) == b"".join(encode_record(r) for r in RECORDS)


def test_start_offset_resumes(tmp_path):
    for ctype in (None, "GZIP"):
        path = write(tmp_path / f"r{ctype}", RECORDS, ctype)
        offsets = expected_offsets(RECORDS)
        assert [d for _, d in iter_records(path, ctype, start_offset=offsets[2])] == RECORDS[2:]
    with pytest.raises(DataLossError, match="offset 5"):         # not a record boundary
        list(iter_records(tmp_path / "rNone", start_offset=5))
    with pytest.raises(DataLossError, match="past the end"):
        list(iter_records(tmp_path / "rNone", start_offset=10 ** 9))
    with pytest.raises(InvalidArgumentError):
        list(iter_records(tmp_path / "rNone", start_offset=-1))


@pytest.mark.parametrize("name,ctype", [("tf_examples.tfrecord", None), ("tf_examples.tfrecord.gz", "gzip"),
                                        ("tf_examples.tfrecord.zlib", "ZLIB")])
def test_reads_tensorflow_written_files(name, ctype):
    doc = json.loads((TF_DIR / "tf_examples.json").read_text())
    expected = [bytes.fromhex(r["serialized_hex"]) for r in doc["records"]]
    assert [d for _, d in iter_records(TF_DIR / name, ctype)] == expected
    assert expected[-1] == b""       # TF's empty Example: a zero-length record


def test_writer_output_is_byte_identical_to_tensorflow(tmp_path):
    doc = json.loads((TF_DIR / "tf_examples.json").read_text())
    payloads = [bytes.fromhex(r["serialized_hex"]) for r in doc["records"]]
    ours = write(tmp_path / "r", payloads).read_bytes()
    assert ours == (TF_DIR / "tf_examples.tfrecord").read_bytes()


def small_file(tmp_path):
    records = [b"", b"hello", bytes(range(20))]
    return write(tmp_path / "small.rec", records), records


def test_truncation_at_every_byte_is_reported_with_file_and_offset(tmp_path):
    path, records = small_file(tmp_path)
    raw = path.read_bytes()
    starts = expected_offsets(records)
    ends = [s + 16 + len(r) for s, r in zip(starts, records)]
    cut_path = tmp_path / "cut.rec"
    for cut in range(len(raw)):
        cut_path.write_bytes(raw[:cut])
        if cut in [0] + ends:            # a cut between records leaves a valid, shorter file
            complete = sum(1 for end in ends if end <= cut)
            assert [d for _, d in iter_records(cut_path)] == records[:complete]
            continue
        broken = max(s for s in starts if s <= cut)   # the record the cut falls into
        with pytest.raises(DataLossError) as info:
            list(iter_records(cut_path))
        message = str(info.value)
        assert str(cut_path) in message and f"offset {broken}" in message and "truncated" in message, (cut, message)


def test_every_single_bit_flip_is_detected(tmp_path):
    path, records = small_file(tmp_path)
    raw = path.read_bytes()
    starts = expected_offsets(records)
    bad = tmp_path / "flip.rec"
    for pos in range(len(raw)):
        for bit in (0, 7):
            flipped = bytearray(raw)
            flipped[pos] ^= 1 << bit
            bad.write_bytes(bytes(flipped))
            broken = max(s for s in starts if s <= pos)
            with pytest.raises(DataLossError) as info:
                list(iter_records(bad))
            assert str(bad) in str(info.value) and f"offset {broken}" in str(info.value), (pos, bit)


def test_huge_declared_length_is_refused_before_reading(tmp_path):
    length = struct.pack("<Q", 1 << 62)
    path = tmp_path / "liar.rec"
    path.write_bytes(length + struct.pack("<I", masked_crc(length)) + b"tiny")
    with pytest.raises(DataLossError, match=r"declares 4611686018427387904 bytes"):
        list(iter_records(path))


def test_huge_declared_length_in_compressed_file_fails_without_allocating_it(tmp_path):
    length = struct.pack("<Q", 1 << 62)
    path = tmp_path / "liar.gz"
    path.write_bytes(gzip.compress(length + struct.pack("<I", masked_crc(length)) + b"tiny"))
    with pytest.raises(DataLossError, match="truncated"):   # reads what exists, then reports the truncation
        list(iter_records(path, "GZIP"))


@pytest.mark.parametrize("ctype", ["GZIP", "ZLIB"])
def test_truncated_or_corrupt_compressed_files(tmp_path, ctype):
    path = write(tmp_path / "r", RECORDS, ctype)
    raw = path.read_bytes()
    bad = tmp_path / "bad"
    for cut in range(1, len(raw), max(1, len(raw) // 40)):
        bad.write_bytes(raw[:cut])
        with pytest.raises(DataLossError, match=str(bad)):
            list(iter_records(bad, ctype))
    corrupt = bytearray(raw)
    corrupt[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(corrupt))
    with pytest.raises(DataLossError, match=rf"{bad}.*offset \d+|offset \d+.*{bad}"):
        list(iter_records(bad, ctype))


def test_concatenated_gzip_members_are_one_file(tmp_path):
    a = write(tmp_path / "a", RECORDS[:2], "GZIP").read_bytes()
    b = write(tmp_path / "b", RECORDS[2:], "GZIP").read_bytes()
    (tmp_path / "ab").write_bytes(a + b)
    assert [d for _, d in iter_records(tmp_path / "ab", "GZIP")] == RECORDS


def test_zlib_trailing_bytes_are_corruption(tmp_path):
    raw = write(tmp_path / "z", RECORDS[:2], "ZLIB").read_bytes()
    (tmp_path / "z2").write_bytes(raw + b"junk")
    with pytest.raises(DataLossError, match="after the end"):
        list(iter_records(tmp_path / "z2", "ZLIB"))


def test_empty_files_hold_no_records(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    for ctype in (None, "GZIP", "ZLIB"):
        assert list(iter_records(tmp_path / "empty", ctype)) == []
        assert list(iter_records(write(tmp_path / f"e{ctype}", [], ctype), ctype)) == []


def test_flush_makes_records_readable_while_writing(tmp_path):
    w = RecordWriter(tmp_path / "live")
    w.write(b"one")
    w.flush()
    assert [d for _, d in iter_records(tmp_path / "live")] == [b"one"]
    w.write(b"two")
    w.close()
    assert [d for _, d in iter_records(tmp_path / "live")] == [b"one", b"two"]


def test_gzip_flush_exposes_records_before_the_missing_trailer(tmp_path):
    w = RecordWriter(tmp_path / "live.gz", "GZIP")
    w.write(b"one")
    w.flush()
    got = []
    with pytest.raises(DataLossError, match="without its trailer"):
        for _, d in iter_records(tmp_path / "live.gz", "GZIP"):
            got.append(d)
    assert got == [b"one"]
    w.close()
    assert [d for _, d in iter_records(tmp_path / "live.gz", "GZIP")] == [b"one"]


def test_writer_argument_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match="compression_type"):
        RecordWriter(tmp_path / "x", "BZIP2")
    w = RecordWriter(tmp_path / "x")
    with pytest.raises(InvalidArgumentError, match="needs bytes"):
        w.write(12)
    w.write("text")             # str is UTF-8 encoded
    w.close()
    w.close()                   # twice is harmless
    with pytest.raises(InvalidArgumentError, match="closed"):
        w.write(b"late")
    assert [d for _, d in iter_records(tmp_path / "x")] == [b"text"]


def test_missing_file(tmp_path):
    with pytest.raises(NotFoundError, match="nope"):
        list(iter_records(tmp_path / "nope"))


def test_file_growing_while_read_is_followed(tmp_path):
    path = tmp_path / "grow"
    path.write_bytes(encode_record(b"first"))
    records = iter_records(path)
    assert next(records)[1] == b"first"
    with open(path, "ab") as f:
        f.write(encode_record(b"second"))
    assert next(records)[1] == b"second"
    assert os.path.getsize(path) == 2 * 16 + 11
