"""CRC-32C (Castagnoli), the checksum of TFRecord framing.

The CRC is the reflected CRC-32 with polynomial 0x1EDC6F41 (0x82F63B78 bit-reversed), initial value and
final XOR 0xFFFFFFFF; its check value (the CRC of b"123456789") is 0xE3069283.

Three kernels compute the same function:

* **python** — one table lookup per byte. Fastest for short inputs (a record header, a small Example),
  where NumPy's per-call overhead would dominate.
* **numpy** — for long inputs. A CRC is sequential, so NumPy cannot vectorize it along the data; instead
  the data is cut into K chunks of L bytes whose CRCs are computed side by side (one vectorized step per
  4-byte word across all chunks, with two 65,536-entry tables that consume 16 bits each), and the chunk
  CRCs are then chained. Chaining uses linearity over GF(2): running the CRC register over L more bytes
  equals ``shift_L(register) XOR crc_of_chunk_from_zero``, where ``shift_L`` (the effect of L zero bytes)
  is a fixed linear map, tabulated once per L as four 256-entry byte tables.
* **numba** — slicing-by-8 compiled with numba. Loading it costs 0.2-0.5 s, so it is used only once a
  process has spent about that much time in the other kernels (a long run reading or writing many
  records), and only when numba is installed; otherwise the NumPy/Python kernels stay in use.
"""
import threading

import numpy as np

_POLY = 0x82F63B78          # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8    # TFRecord's mask constant

# Inputs at least this long take the chunked NumPy kernel (below it the Python loop is faster: measured
# ~60 ns/byte for the loop against ~45 MB/s for NumPy at 4 KiB, ~650 MB/s at 1 MB).
_NUMPY_MIN_BYTES = 2048


def _byte_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _byte_table()        # CRC register update for one byte, as Python ints (fast to index)
_tables_lock = threading.Lock()
_wide = None                  # (slicing-by-8 tables as int64 [8, 256], 16-bit tables lo, hi) built lazily
_shift_tables = {}            # L -> four 256-entry lists tabulating the "L zero bytes" linear map


def _wide_tables():
    """Slicing-by-8 byte tables and the two 16-bit tables derived from them (built on first use)."""
    global _wide
    if _wide is None:
        with _tables_lock:
            if _wide is None:
                t = np.zeros((8, 256), np.int64)
                t[0] = _TABLE
                for k in range(1, 8):   # t[k][b]: byte b followed by k zero bytes
                    t[k] = (t[k - 1] >> 8) ^ t[0][t[k - 1] & 0xFF]
                v = np.arange(65536)
                # One 4-byte little-endian word x = register ^ data consumes 16 bits through each table.
                lo = (t[3][v & 0xFF] ^ t[2][v >> 8]).astype(np.uint32)
                hi = (t[1][v & 0xFF] ^ t[0][v >> 8]).astype(np.uint32)
                _wide = (t, lo, hi)
    return _wide


def _shift_table(length):
    """Four byte tables for the linear map "run the register over `length` zero bytes"."""
    tabs = _shift_tables.get(length)
    if tabs is None:
        _, lo, hi = _wide_tables()
        images = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
        for _ in range(length // 4):
            images = lo[images & 0xFFFF] ^ hi[images >> 16]
        bits = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(bool)
        tabs = []
        for j in range(4):  # table j maps byte j of the register to its image
            img = images[8 * j:8 * j + 8].astype(np.int64)
            tabs.append(np.bitwise_xor.reduce(np.where(bits, img[None, :], 0), axis=1).tolist())
        _shift_tables[length] = tabs
    return tabs


def _update_python(reg, data):
    table = _TABLE
    for b in data:
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def _update_numpy(reg, data):
    n = len(data)
    # chunk length: about sqrt(n)/4 balances per-step NumPy overhead against the Python chaining loop
    length = 1 << int(np.clip(round(np.log2(max(np.sqrt(n) / 4, 1))), 4, 11))
    k = n // length
    head = n - k * length
    reg = _update_python(reg, data[:head])
    _, lo, hi = _wide_tables()
    words = np.frombuffer(data, np.uint8, count=k * length, offset=head).view("<u4")
    words = np.ascontiguousarray(words.reshape(k, length // 4).T)   # row j: word j of every chunk
    crcs, x, t = np.zeros(k, np.uint32), np.empty(k, np.uint32), np.empty(k, np.uint32)
    idx_lo, idx_hi = np.empty(k, np.intp), np.empty(k, np.intp)
    for row in words:
        np.bitwise_xor(crcs, row, out=x)
        np.bitwise_and(x, 0xFFFF, out=idx_lo)
        np.right_shift(x, 16, out=idx_hi)
        np.take(lo, idx_lo, out=crcs)
        np.take(hi, idx_hi, out=t)
        np.bitwise_xor(crcs, t, out=crcs)
    s0, s1, s2, s3 = _shift_table(length)
    for c in crcs.tolist():
        reg = s0[reg & 0xFF] ^ s1[(reg >> 8) & 0xFF] ^ s2[(reg >> 16) & 0xFF] ^ s3[reg >> 24] ^ c
    return reg


# ---- numba kernel, compiled only after enough work has been done without it -------------------------
# Compile once the other kernels have cost about what loading numba costs (import ~0.2 s plus the
# cached kernel, ~0.5 s on a cold cache). Measured on 80-byte records: write 6.1 -> 1.7 us and read
# 5.8 -> 1.5 us per record once the kernel is in; 64 MB at ~2 GB/s against ~0.7 GB/s for numpy.
_JIT_AFTER_SECONDS = 0.25       # estimated seconds spent in python/numpy kernels before compiling
_numba_state = {"kernel": None, "tried": False, "spent": 0.0}
_numba_lock = threading.Lock()
_backend = "auto"
_active_jit = None             # (kernel, table) while the numba kernel is loaded and the backend allows it


def _slicing_by_8(reg, data, t):
    """Slicing-by-8 register update; plain Python here, compiled by numba in :func:`_load_numba`."""
    n = data.shape[0]
    i = 0
    while i + 8 <= n:
        w = reg ^ (np.int64(data[i]) | (np.int64(data[i + 1]) << 8) | (np.int64(data[i + 2]) << 16)
                   | (np.int64(data[i + 3]) << 24))
        reg = (t[7, w & 0xFF] ^ t[6, (w >> 8) & 0xFF] ^ t[5, (w >> 16) & 0xFF] ^ t[4, w >> 24]
               ^ t[3, data[i + 4]] ^ t[2, data[i + 5]] ^ t[1, data[i + 6]] ^ t[0, data[i + 7]])
        i += 8
    while i < n:
        reg = t[0, (reg ^ data[i]) & 0xFF] ^ (reg >> 8)
        i += 1
    return reg


def _load_numba():
    """Compile the numba kernel once; None when numba is missing or compiling fails."""
    global _active_jit
    with _numba_lock:
        if not _numba_state["tried"]:
            _numba_state["tried"] = True
            table = _wide_tables()[0]
            check = np.frombuffer(b"123456789", np.uint8)
            for cache in (True, False):   # the on-disk cache needs a writable __pycache__; fine without
                try:
                    import numba  # lazy: heavy import, optional dependency
                    kernel = numba.njit(nogil=True, cache=cache)(_slicing_by_8)
                    if kernel(0xFFFFFFFF, check, table) ^ 0xFFFFFFFF != 0xE3069283:   # compiles now
                        continue
                except Exception:   # noqa: BLE001 - numba absent, no compiler, cache unusable: no numba
                    continue
                _numba_state["kernel"] = (kernel, table)
                if _backend in ("auto", "numba"):
                    _active_jit = _numba_state["kernel"]
                break
    return _numba_state["kernel"]


def set_backend(name):
    """Choose the CRC kernel: "auto" (default), "python", "numpy" or "numba" (mainly for tests).

    Raises:
        InvalidArgumentError: unknown name, or "numba" when numba cannot be loaded.
    """
    from ..errors import InvalidArgumentError
    global _backend, _active_jit
    if name not in ("auto", "python", "numpy", "numba"):
        raise InvalidArgumentError(f"unknown crc32c backend {name!r}; use auto, python, numpy or numba")
    if name == "numba" and _load_numba() is None:
        raise InvalidArgumentError("crc32c backend 'numba' is not available (numba missing or failed)")
    _backend = name
    _active_jit = _numba_state["kernel"] if name in ("auto", "numba") else None


def _as_buffer(data):
    if isinstance(data, (bytes, bytearray)):
        return data
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def crc32c(data, crc=0):
    """CRC-32C of `data`, optionally continuing from a previous value.

    Args:
        data: bytes-like object (bytes, bytearray, memoryview, contiguous NumPy array).
        crc: the CRC of the preceding data, so that ``crc32c(b, crc32c(a)) == crc32c(a + b)``.

    Returns:
        The CRC as an int in [0, 2**32).
    """
    reg = (crc & 0xFFFFFFFF) ^ 0xFFFFFFFF
    jit = _active_jit
    if jit is not None:     # the common case of a long run: straight to the compiled kernel
        try:
            array = np.frombuffer(data, np.uint8)
        except (TypeError, ValueError):
            array = np.frombuffer(_as_buffer(data), np.uint8)
        return int(jit[0](reg, array, jit[1])) ^ 0xFFFFFFFF
    data = _as_buffer(data)
    n = len(data)
    backend = _backend
    if backend == "auto":
        state = _numba_state
        if not state["tried"] and state["spent"] > _JIT_AFTER_SECONDS:
            backend = "numba" if _load_numba() is not None else "numpy"
        else:
            # cost model of the other kernels (measured: ~1 us per call, 60 ns/byte loop, ~1.5 ns/byte numpy)
            state["spent"] += 1e-6 + n * (60e-9 if n < _NUMPY_MIN_BYTES else 1.5e-9)
            backend = "python" if n < _NUMPY_MIN_BYTES else "numpy"
    if backend == "numba":
        kernel, table = _numba_state["kernel"]
        reg = int(kernel(reg, np.frombuffer(data, np.uint8), table))
    elif backend == "numpy" and n >= 64:
        reg = _update_numpy(reg, data)
    else:
        reg = _update_python(reg, data)
    return reg ^ 0xFFFFFFFF


def mask(crc):
    """TFRecord's masking of a CRC: rotate right by 15 bits and add 0xA282EAD8 (mod 2**32).

    Masking exists because computing the CRC of a string that contains embedded CRCs is problematic.
    """
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked):
    """Inverse of :func:`mask`."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def masked_crc(data):
    """``mask(crc32c(data))``: the checksum stored in TFRecord framing."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF
