"""CRC-32C: golden values, the three kernels against a bit-by-bit reference, and TFRecord masking."""
import importlib
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kestimator.errors import InvalidArgumentError
from kestimator.io.crc32c import crc32c, mask, masked_crc, set_backend, unmask

# the package exports the function crc32c, which shadows the module of the same name as an attribute
crcmod = importlib.import_module("kestimator.io.crc32c")

TF_RECORDS = Path(__file__).resolve().parents[1] / "fixtures" / "tf" / "tf_examples.tfrecord"
BACKENDS = ["python", "numpy", "numba"]


def bitwise_crc32c(data):
    """The definition, one bit at a time: reflected polynomial 0x82F63B78, init and xorout 0xFFFFFFFF."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param == "numba":
        pytest.importorskip("numba")
    set_backend(request.param)
    yield request.param
    set_backend("auto")


# check value from the CRC catalogue, and the iSCSI test vectors of RFC 3720 appendix B.4
GOLDEN = [
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"", 0x0),
]


@pytest.mark.parametrize("data,expected", GOLDEN)
def test_golden_values(backend, data, expected):
    assert crc32c(data) == expected
    assert bitwise_crc32c(data) == expected       # the reference itself agrees with the catalogue


def test_kernels_match_bitwise_reference_over_lengths(backend):
    rng = np.random.default_rng(1)
    # lengths around every kernel's edges: word tails, the numpy cut-over (2048), chunk sizes
    for n in [1, 3, 4, 7, 8, 9, 63, 64, 65, 255, 1000, 2047, 2048, 2049, 4099, 9000]:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(data) == bitwise_crc32c(data), n


def test_kernels_agree_on_a_megabyte():
    data = np.random.default_rng(2).integers(0, 256, (1 << 20) + 13, dtype=np.uint8).tobytes()
    results = {}
    try:
        for name in ["python", "numpy"] + (["numba"] if crcmod._load_numba() else []):
            set_backend(name)
            results[name] = crc32c(data)
    finally:
        set_backend("auto")
    assert len(set(results.values())) == 1, results


@settings(max_examples=60, deadline=None)
@given(a=st.binary(max_size=300), b=st.binary(max_size=300))
def test_continuation_equals_crc_of_concatenation(a, b):
    assert crc32c(b, crc32c(a)) == crc32c(a + b) == bitwise_crc32c(a + b)


def test_accepts_any_contiguous_buffer():
    raw = bytes(range(200))
    expected = bitwise_crc32c(raw)
    assert crc32c(bytearray(raw)) == expected
    assert crc32c(memoryview(raw)) == expected
    assert crc32c(np.frombuffer(raw, np.uint8)) == expected
    assert crc32c(np.frombuffer(raw, np.float32)) == expected   # a non-byte view is read as its bytes


def test_mask_matches_tensorflow_written_records():
    # every record TF wrote carries masked_crc32c(length bytes) and masked_crc32c(data)
    raw = TF_RECORDS.read_bytes()
    pos, seen = 0, 0
    while pos < len(raw):
        length, length_crc = struct.unpack_from("<QI", raw, pos)
        assert masked_crc(raw[pos:pos + 8]) == length_crc
        data = raw[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack_from("<I", raw, pos + 12 + length)
        assert masked_crc(data) == data_crc
        assert unmask(data_crc) == crc32c(data)
        pos += 16 + length
        seen += 1
    assert seen == 4


def test_mask_golden_and_inverse():
    # rotating 0 gives 0, so mask(0) is the delta itself
    assert mask(0) == 0xA282EAD8
    # 0x00008000 rotated right by 15 is 1; 1 + 0xA282EAD8 = 0xA282EAD9
    assert mask(0x00008000) == 0xA282EAD9
    for value in [0, 1, 0xFFFFFFFF, 0xE3069283, 0x80000000]:
        assert unmask(mask(value)) == value


def test_auto_backend_switches_to_numba_after_enough_work(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(crcmod, "_active_jit", None)
    monkeypatch.setitem(crcmod._numba_state, "kernel", None)
    monkeypatch.setitem(crcmod._numba_state, "tried", False)
    monkeypatch.setitem(crcmod._numba_state, "spent", 0.0)
    # below the threshold: still the python kernel
    assert crc32c(b"123456789") == 0xE3069283 and crcmod._active_jit is None
    monkeypatch.setitem(crcmod._numba_state, "spent", crcmod._JIT_AFTER_SECONDS + 1)
    assert crc32c(b"123456789") == 0xE3069283
    assert crcmod._active_jit is not None and crcmod._active_jit[0].__name__ == "_slicing_by_8"
    assert crc32c(bytes(32)) == 0x8A9136AA       # answered by the compiled kernel


def test_unknown_backend_is_refused():
    with pytest.raises(InvalidArgumentError, match="bogus"):
        set_backend("bogus")
