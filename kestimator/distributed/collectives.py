"""Collectives over all ranks: allreduce, broadcast, allgather, barrier, and the metadata check.

Arrays travel through MPI's buffer interface (the uppercase mpi4py methods: no pickling); small objects
travel as JSON (`_codec`). Every collective is non-blocking underneath (Iallreduce, Ibcast, ...) and is
waited for inside `run_collective`, which tells the stall inspector what this rank is waiting on so a
deadlock is reported by name. In a one-process run every function returns its local answer at once.
"""
import hashlib
import json
import struct

import numpy as np

from ..errors import InvalidArgumentError
from . import _codec
from ._runtime import ensure_init

REDUCE_OPS = ("sum", "average", "min", "max", "prod")
_MPI_OP_NAMES = {"sum": "SUM", "average": "SUM", "min": "MIN", "max": "MAX", "prod": "PROD"}
_HEADER_BYTES = 512          # broadcast header: kind, length, and small payloads inline
_HEADER_PAYLOAD = _HEADER_BYTES - 9


def run_collective(kind, name, detail, start):
    """Start the requests `start()` returns and wait for them, registered with the stall inspector.

    Args:
        kind / name / detail: how the stall report names this collective ("allreduce", "loss", "float32 (3,)").
        start: a function issuing non-blocking MPI calls and returning their requests.
    """
    st = ensure_init()
    insp = st.inspector
    if insp is not None:
        insp.enter(kind, name, detail)
    try:
        requests = start()
        st.MPI.Request.Waitall(requests)
    finally:
        if insp is not None:
            insp.leave()


def mpi_op(op):
    if op not in _MPI_OP_NAMES:
        raise InvalidArgumentError(f"unknown reduction op {op!r}; expected one of {list(REDUCE_OPS)}")
    st = ensure_init()
    return getattr(st.MPI, _MPI_OP_NAMES[op]) if st.MPI is not None else None


def _numeric_array(value, what):
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype.kind not in "iufc":
        raise InvalidArgumentError(f"{what}: needs a numeric array, got dtype {arr.dtype}"
                                   + (" (cast bool to an integer type first)" if arr.dtype.kind == "b" else ""))
    return arr


def _finish(out, like):
    """Python scalars in, Python scalars out; arrays otherwise."""
    if isinstance(like, (int, float, complex)) and not isinstance(like, bool) and out.ndim == 0:
        return out.item()
    return out


def allreduce(value, op="sum", name=None, inplace=False):
    """Combine `value` elementwise over all ranks; every rank gets the result.

    Args:
        value: a NumPy array, a number, or anything np.asarray accepts (numeric).
        op: "sum", "average" (sum / number of ranks; floating dtypes only), "min", "max" or "prod".
        name: names the reduction in stall reports; the first reduction under a given name also checks
            that every rank passes the same shape and dtype.
        inplace: reduce into `value` itself (a writable C-contiguous NumPy array) instead of a new array.

    Returns:
        The reduced array (or Python scalar for a scalar input); `value` itself when `inplace`.

    Raises:
        InvalidArgumentError: unknown op, non-numeric value, average of integers, an unusable in-place
            buffer, or (with `name`) ranks disagreeing on shape or dtype.
    """
    st = ensure_init()
    what = f"allreduce {name!r}" if name else "allreduce"
    arr = _numeric_array(value, what)
    if op not in _MPI_OP_NAMES:
        raise InvalidArgumentError(f"{what}: unknown op {op!r}; expected one of {list(REDUCE_OPS)}")
    if op == "average" and arr.dtype.kind not in "fc":
        raise InvalidArgumentError(f"{what}: op='average' needs a floating dtype, got {arr.dtype}; use op='sum'")
    if inplace:
        if arr is not value or not arr.flags.c_contiguous or not arr.flags.writeable:
            raise InvalidArgumentError(f"{what}: inplace=True needs a writable C-contiguous NumPy array")
    elif not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    if not st.distributed:
        out = arr if inplace else arr.copy()
        return _finish(out, value)
    if name is not None:
        check_consistent("allreduce", name, [[name, list(arr.shape), arr.dtype.str]])
    out = arr if inplace else np.empty_like(arr)
    send = st.MPI.IN_PLACE if inplace else arr
    run_collective("allreduce", name or "<unnamed>", f"{arr.dtype} {tuple(arr.shape)}",
                   lambda: [st.comm.Iallreduce(send, out, op=mpi_op(op))])
    if op == "average":
        np.divide(out, st.size, out=out)
    return _finish(out, value)


def broadcast(value, root=0, name=None, inplace=False):
    """Every rank gets rank `root`'s `value`.

    A numeric NumPy array travels as raw bytes; anything else must be JSON-able (None, bool, int,
    float, str, lists, dicts with string keys, NumPy arrays inside them) and travels as JSON. The value
    given on other ranks is ignored, except as the receive buffer when `inplace`.

    Args:
        value: on `root`, what to send.
        root: the sending rank.
        name: names the broadcast in stall reports.
        inplace: (arrays) write the result into `value` on every rank; it must match root's shape and dtype.

    Returns:
        Root's value: a new array (or `value` when inplace), or the decoded JSON object (lists for tuples).

    Raises:
        InvalidArgumentError: `root` out of range, a value that is neither an array nor JSON-able, or an
            in-place buffer that does not match root's array.
    """
    st = ensure_init()
    _check_root(root, st.size)
    label = name or "<unnamed>"
    is_array = isinstance(value, np.ndarray) and value.dtype.kind in "biufc"
    if not st.distributed:
        if is_array:
            return value if inplace else value.copy()
        return _codec.decode(_codec.encode(value, f"broadcast {label}"))
    header = bytearray(_HEADER_BYTES)
    payload = None
    if st.rank == root:
        if is_array:
            meta = json.dumps([value.dtype.str, list(value.shape)]).encode()
            kind = b"A"
        else:
            meta = payload = _codec.encode(value, f"broadcast {label}")
            kind = b"J"
        header[:9] = kind + struct.pack("<q", len(meta))
        if len(meta) <= _HEADER_PAYLOAD:
            header[9:9 + len(meta)] = meta
        elif kind == b"A":
            raise InvalidArgumentError(f"broadcast {label}: array of rank {value.ndim} has too many dimensions")
    run_collective("broadcast", label, "header", lambda: [st.comm.Ibcast([header, st.MPI.BYTE], root=root)])
    kind, n = bytes(header[:1]), struct.unpack("<q", bytes(header[1:9]))[0]
    if kind == b"J":
        if n <= _HEADER_PAYLOAD:
            data = bytes(header[9:9 + n])
        else:
            buf = bytearray(payload) if st.rank == root else bytearray(n)
            run_collective("broadcast", label, f"{n} bytes of JSON",
                           lambda: [st.comm.Ibcast([buf, st.MPI.BYTE], root=root)])
            data = bytes(buf)
        return _codec.decode(data)
    dtype_str, shape = _codec.decode(bytes(header[9:9 + n]))
    dtype, shape = np.dtype(dtype_str), tuple(int(s) for s in shape)
    if st.rank == root:
        src = np.ascontiguousarray(value)
        out = value if inplace and src is value else src.copy()
    elif inplace and not (isinstance(value, np.ndarray) and value.dtype == dtype and value.shape == shape and
                          value.flags.c_contiguous and value.flags.writeable):
        # receive anyway (the root is already sending), then fail: no rank is left waiting
        run_collective("broadcast", label, f"{dtype} {shape}",
                       lambda: [st.comm.Ibcast(np.empty(shape, dtype), root=root)])
        got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
        raise InvalidArgumentError(f"broadcast {label}: rank {root} sends {dtype} {shape}, the in-place "
                                   f"buffer on rank {st.rank} is {got}")
    else:
        out = value if inplace else np.empty(shape, dtype)
    run_collective("broadcast", label, f"{dtype} {shape}", lambda: [st.comm.Ibcast(out, root=root)])
    if inplace and st.rank == root and out is not value:
        value[...] = out
        return value
    return out


def allgather(value, name=None):
    """Concatenate every rank's array along axis 0, in rank order (first dimensions may differ).

    Args:
        value: a numeric array (a 0-d value counts as shape (1,)).
        name: names the gather in stall reports.

    Returns:
        An array whose first dimension is the sum of the ranks' first dimensions.

    Raises:
        InvalidArgumentError: ranks disagree on dtype or on the dimensions after the first.
    """
    st = ensure_init()
    label = name or "<unnamed>"
    arr = np.ascontiguousarray(_numeric_array(value, f"allgather {label}"))
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if not st.distributed:
        return arr.copy()
    metas = allgather_object([arr.dtype.str, list(arr.shape)], name=f"{label} (shapes)")
    for r, (dt, shape) in enumerate(metas):
        if dt != arr.dtype.str or list(shape[1:]) != list(arr.shape[1:]):
            raise InvalidArgumentError(
                f"allgather {label}: ranks disagree: rank {st.rank} has {np.dtype(arr.dtype)} {tuple(arr.shape)}, "
                f"rank {r} has {np.dtype(dt)} {tuple(shape)} (dtype and all dimensions but the first must match)")
    row = int(np.prod(arr.shape[1:], dtype=np.int64))
    counts = [int(shape[0]) * row for _, shape in metas]
    displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
    out = np.empty((sum(int(s[0]) for _, s in metas),) + arr.shape[1:], arr.dtype)
    run_collective("allgather", label, f"{arr.dtype} {tuple(arr.shape)}",
                   lambda: [st.comm.Iallgatherv(arr, [out, (counts, displs)])])
    return out


def allgather_object(obj, name=None):
    """Every rank's JSON-able `obj`, as a list indexed by rank.

    Raises:
        InvalidArgumentError: `obj` is not JSON-able (see `broadcast`).
    """
    st = ensure_init()
    label = name or "<unnamed>"
    payload = _codec.encode(obj, f"allgather_object {label}")
    if not st.distributed:
        return [_codec.decode(payload)]
    mine = np.array([len(payload)], np.int64)
    lengths = np.empty(st.size, np.int64)
    run_collective("allgather", label, "lengths", lambda: [st.comm.Iallgather(mine, lengths)])
    counts = [int(n) for n in lengths]
    displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
    buf = bytearray(sum(counts))
    send = bytearray(payload)
    run_collective("allgather", label, f"{len(payload)} bytes of JSON",
                   lambda: [st.comm.Iallgatherv([send, st.MPI.BYTE], [buf, (counts, displs), st.MPI.BYTE])])
    return [_codec.decode(buf[d:d + c]) for d, c in zip(displs, counts)]


def barrier(name="barrier"):
    """Wait until every rank reaches this point (under the collective deadline)."""
    st = ensure_init()
    if st.distributed:
        run_collective("barrier", name, "", lambda: [st.comm.Ibarrier()])


def _check_root(root, size):
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise InvalidArgumentError(f"root rank {root!r} is not a rank of this job (0..{size - 1})")


# -- metadata check ---------------------------------------------------------------------------------------
def check_consistent(kind, name, entries):
    """Verify that every rank passes the same `entries` (e.g. [name, shape, dtype] per tensor, in order);
    done once per (kind, name, entries). A digest is compared first (one small allgather); only when digests
    differ are the full lists gathered to name the first difference.

    Raises:
        InvalidArgumentError: on every rank, naming the first position where ranks differ.
    """
    st = ensure_init()
    if not st.distributed:
        return
    text = json.dumps(entries, separators=(",", ":"))
    raw = hashlib.blake2b(text.encode(), digest_size=8).digest()
    # Skip only what was verified with these very entries: a later check under the same name with other
    # entries (another optimizer with the same name, a rebuilt model) is compared again.
    key = (kind, name, raw)
    if key in st.checked:
        return
    digest = np.frombuffer(raw, np.int64).copy()
    digests = np.empty(st.size, np.int64)
    run_collective("metadata check", f"{kind} {name}", f"{len(entries)} entries",
                   lambda: [st.comm.Iallgather(digest, digests)])
    if np.all(digests == digests[0]):
        st.checked.add(key)
        return
    lists = allgather_object(entries, name=f"{kind} {name} (metadata)")
    raise InvalidArgumentError(first_difference(lists, f"{kind} {name!r}"))


def _show(entry):
    if entry is None:
        return "nothing (its list ended)"
    if isinstance(entry, list) and len(entry) == 3:
        nm, shape, dt = entry
        try:
            dt = np.dtype(dt).name
        except TypeError:
            pass
        return f"{nm!r} shape {tuple(shape)} {dt}"
    return repr(entry)


def first_difference(lists, what):
    """The message naming the first position where the per-rank `lists` differ (pure: unit-tested)."""
    longest = max(len(x) for x in lists)
    for i in range(longest):
        items = [x[i] if i < len(x) else None for x in lists]
        if any(it != items[0] for it in items):
            groups = {}
            for r, it in enumerate(items):
                groups.setdefault(json.dumps(it), []).append(r)
            parts = []
            for enc, ranks in groups.items():
                who = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {ranks}"
                parts.append(f"{who}: {_show(json.loads(enc))}")
            return (f"{what}: ranks pass different tensors; first difference at position {i}: " + "; ".join(parts)
                    + ". Every rank must reduce the same tensors (name, shape, dtype) in the same order.")
    return f"{what}: ranks pass different metadata"
