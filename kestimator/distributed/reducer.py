"""Gradient reduction for data-parallel training: fused buckets, a fixed order, optional fp16 on the wire.

A `GradientReducer` belongs to one optimizer update (one set of variables). Each call of `reduce(grads)`

1. finds the gradients of each dtype as one flat span: the Plan already writes the gradients an
   optimizer update reads back to back in one buffer (`contiguous_inputs`), so usually there is nothing
   to copy; otherwise they are packed into a send buffer allocated once;
2. splits each dtype's span into buckets of at most `bucket_bytes` (64 MB) and starts one non-blocking
   allreduce per bucket, in the same order on every rank (dtype groups in order of first appearance,
   then element offset), then waits for all of them: one MPI call per bucket, never one per tensor;
3. scales the sums into averages in the receive buffer and returns views of it shaped like the
   gradients, which the wrapped optimizer update then reads as one slab.

The first call compares (name, shape, dtype, position) of the reduced tensors across ranks and fails
naming the first tensor that differs, before any bucket is exchanged. With `backward_passes_per_step=k`
the local gradients of k calls are summed first and only every k-th call communicates (the others
return None: no update). With `compression="fp16"` floating gradients are pre-scaled, rounded to
float16, summed as float16 and converted back (`_fp16`: numba kernels, bit-identical to NumPy's casts):
half the bytes on the wire, and pre-scaling keeps the float16 sum of averages from overflowing.
"""
import time

import numpy as np

from ..errors import InvalidArgumentError
from . import _fp16, collectives
from ._runtime import ensure_init

DEFAULT_BUCKET_BYTES = 64 << 20
COMPRESSIONS = ("none", "fp16")


def flat_span(arrays):
    """One 1-D array covering `arrays` when they lie back to back in one C-contiguous buffer, else None."""
    if not arrays:
        return None
    first = arrays[0]
    base = first
    while isinstance(base.base, np.ndarray):
        base = base.base
    if base.ndim != 1 or not base.flags.c_contiguous or base.dtype != first.dtype:
        return None
    base_ptr = base.__array_interface__["data"][0]
    ptr = start = first.__array_interface__["data"][0]
    for a in arrays:
        if a.dtype != first.dtype or not a.flags.c_contiguous or a.__array_interface__["data"][0] != ptr:
            return None
        ptr += a.nbytes
    off, n = (start - base_ptr) // first.itemsize, (ptr - start) // first.itemsize
    if off < 0 or off + n > base.size:
        return None
    return base[off:off + n]


class _Group:
    """The tensors of one dtype: their positions, offsets, buffers and buckets."""

    def __init__(self, dtype, indices, sizes):
        self.dtype = dtype
        self.indices = indices
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.total = int(self.offsets[-1])
        self.recv = np.empty(self.total, dtype)
        self.send = None          # packing / accumulation buffer, allocated on first need
        self.wire_send = self.wire_recv = None   # float16 buffers when compressing (see _fp16)
        self.scratch32 = None
        self.buckets = []         # (start, stop) element ranges


class GradientReducer:
    """Averages (or sums) one fixed list of gradients over all ranks.

    Args:
        names: the variables' names, in the order gradients are passed (used in checks and stall reports).
        op: "average" (default) or "sum".
        compression: "none" or "fp16".
        backward_passes_per_step: local passes summed before one communication (>= 1).
        bucket_bytes: largest allreduce message (default 64 MB).
        label: how errors and stall reports name this reducer.

    Raises:
        InvalidArgumentError: an unknown op or compression, or a non-positive count.
    """

    def __init__(self, names, op="average", compression="none", backward_passes_per_step=1,
                 bucket_bytes=DEFAULT_BUCKET_BYTES, label="gradients"):
        if op not in ("average", "sum"):
            raise InvalidArgumentError(f"{label}: gradient reduction op must be 'average' or 'sum', got {op!r}")
        if compression not in COMPRESSIONS:
            raise InvalidArgumentError(f"{label}: compression must be one of {list(COMPRESSIONS)}, "
                                       f"got {compression!r}")
        k = backward_passes_per_step
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidArgumentError(f"{label}: backward_passes_per_step must be an int >= 1, got {k!r}")
        if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, (int, np.integer)) or bucket_bytes < 16:
            raise InvalidArgumentError(f"{label}: bucket_bytes must be an int >= 16, got {bucket_bytes!r}")
        self.names = list(names)
        self.op, self.compression = op, compression
        self.passes, self.bucket_bytes, self.label = int(k), int(bucket_bytes), label
        self._groups = None
        self._shapes = None
        self._views = None
        self._pass = 0
        self._source_key = None
        self._sources = None
        self.calls = 0            # reductions performed (communicating calls)
        self.messages = 0         # allreduce messages sent (one per bucket per call)
        self.comm_seconds = 0.0   # time spent in the allreduce waits (benchmarks read it)

    # -- layout ---------------------------------------------------------------------------------------------
    def _build(self, grads):
        if len(grads) != len(self.names):
            raise InvalidArgumentError(f"{self.label}: got {len(grads)} gradients for {len(self.names)} variables")
        self._shapes = [g.shape for g in grads]
        order = {}
        for i, g in enumerate(grads):
            order.setdefault(g.dtype, []).append(i)
        self._groups = []
        self._views = [None] * len(grads)
        for dtype, idx in order.items():
            grp = _Group(dtype, idx, [grads[i].size for i in idx])
            for j, i in enumerate(idx):
                self._views[i] = grp.recv[grp.offsets[j]:grp.offsets[j + 1]].reshape(grads[i].shape)
            wire_itemsize = 2 if self._compressed(dtype) else dtype.itemsize
            step = max(1, self.bucket_bytes // wire_itemsize)
            grp.buckets = [(s, min(s + step, grp.total)) for s in range(0, grp.total, step)]
            self._groups.append(grp)
        self._description = self._describe()

    def _compressed(self, dtype):
        return self.compression == "fp16" and dtype.kind == "f" and dtype.itemsize > 2

    def metadata(self):
        """[[name, shape, dtype], ...] in reduction order, plus the settings every rank must share."""
        entries = [[n, list(s), np.dtype(g.dtype).str] for g in self._groups for n, s in
                   ((self.names[i], self._shapes[i]) for i in g.indices)]
        entries.append(["<settings>", [self.passes, self.bucket_bytes], f"{self.op}/{self.compression}"])
        return entries

    def _sources_for(self, grads):
        """Per dtype group: the flat span of the gradients when contiguous, else None (pack them).

        Cached while the same array objects come back (a Plan's buffers do, step after step). The cache
        holds the arrays themselves, not their ids: a freed array's id can be reused by a new one."""
        cached = self._source_key
        if cached is None or len(cached) != len(grads) or any(a is not b for a, b in zip(cached, grads)):
            self._check_layout(grads)
            self._sources = [flat_span([grads[i] for i in g.indices]) for g in self._groups]
            self._source_key = tuple(grads)
        return self._sources

    def _check_layout(self, grads):
        if len(grads) != len(self._shapes):
            raise InvalidArgumentError(f"{self.label}: got {len(grads)} gradients for {len(self._shapes)} variables")
        for grp in self._groups:
            for i in grp.indices:
                if grads[i].shape != self._shapes[i] or grads[i].dtype != grp.dtype:
                    raise InvalidArgumentError(
                        f"{self.label}: gradient of {self.names[i]} changed from {grp.dtype} {self._shapes[i]} to "
                        f"{grads[i].dtype} {grads[i].shape}")

    # -- the step -------------------------------------------------------------------------------------------
    def reduce(self, grads):
        """Reduce `grads` (arrays, in `names` order) over all ranks.

        Returns:
            A list of arrays shaped like `grads` holding the average (or sum) over ranks and passes, or
            None on a pass that only accumulates (backward_passes_per_step > 1). The returned arrays are
            reused by the next call.

        Raises:
            InvalidArgumentError: gradients change shape or dtype between calls, or ranks disagree on
                what they reduce (first call).
        """
        st = ensure_init()
        if self._groups is None:
            self._build(grads)
            if st.distributed:
                collectives.check_consistent("gradient reduction", self.label, self.metadata())
        sources = self._sources_for(grads)     # checks shapes and dtypes whenever the arrays are new
        self._pass += 1
        if self.passes > 1:
            self._accumulate(grads, sources)
            if self._pass < self.passes:
                return None
            sources = [g.send for g in self._groups]
        self._pass = 0
        if not st.distributed and self.passes == 1:
            return grads     # one rank, one pass: the average is the gradient itself
        scale = 1.0 / (st.size * self.passes) if self.op == "average" else 1.0
        self._exchange(st, sources, grads, scale)
        return self._views

    def _pack(self, grp, grads):
        if grp.send is None:
            grp.send = np.empty(grp.total, grp.dtype)
        for j, i in enumerate(grp.indices):
            grp.send[grp.offsets[j]:grp.offsets[j + 1]] = grads[i].reshape(-1)
        return grp.send

    def _accumulate(self, grads, sources):
        for grp, src in zip(self._groups, sources):
            if grp.send is None:
                grp.send = np.empty(grp.total, grp.dtype)
            if self._pass == 1:
                if src is not None:
                    np.copyto(grp.send, src)
                else:
                    self._pack(grp, grads)
            elif src is not None:
                grp.send += src
            else:
                for j, i in enumerate(grp.indices):
                    grp.send[grp.offsets[j]:grp.offsets[j + 1]] += grads[i].reshape(-1)

    def _exchange(self, st, sources, grads, scale):
        MPI = st.MPI
        requests = []      # (send, recv, op) per bucket, in the fixed order
        for grp, src in zip(self._groups, sources):
            if src is None:
                src = self._pack(grp, grads)
            if self._compressed(grp.dtype):
                if grp.wire_send is None:
                    grp.wire_send = np.empty(grp.total, _fp16.wire_dtype())
                    grp.wire_recv = np.empty_like(grp.wire_send)
                    grp.scratch32 = np.empty(grp.total, np.float32)
                # pre-scale while encoding: the float16 sum is then already the average (no overflow)
                _fp16.encode(src, scale, grp.scratch32, grp.wire_send)
                send, recv = grp.wire_send, grp.wire_recv
                datatype, op = _fp16.sum_op(MPI) if st.distributed else (None, None)
            else:
                send, recv, datatype, op = src, grp.recv, None, MPI.SUM if st.distributed else None
            if st.distributed:
                for a, b in grp.buckets:
                    s_, r_ = send[a:b], recv[a:b]
                    requests.append(([s_, datatype], [r_, datatype], op) if datatype is not None else (s_, r_, op))
            else:
                np.copyto(recv, send)
        t0 = time.perf_counter()
        if requests:
            comm = st.comm
            collectives.run_collective("allreduce", self.label, self._description,
                                       lambda: [comm.Iallreduce(s_, r_, op=op) for s_, r_, op in requests])
        self.comm_seconds += time.perf_counter() - t0
        self.calls += 1
        self.messages += len(requests)
        for grp in self._groups:
            if self._compressed(grp.dtype):
                _fp16.decode(grp.wire_recv, grp.recv)
            elif scale != 1.0:
                grp.recv *= grp.dtype.type(scale)

    def _describe(self):
        n_buckets = sum(len(g.buckets) for g in self._groups)
        shown = ", ".join(self.names[:4]) + (f", +{len(self.names) - 4} more" if len(self.names) > 4 else "")
        dts = "/".join(np.dtype(g.dtype).name for g in self._groups)
        return f"{n_buckets} bucket{'s' if n_buckets != 1 else ''}, {dts}, {len(self.names)} tensors: {shown}"
