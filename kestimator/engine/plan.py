"""The compiled execution Plan: for one (fetches, feed signature) an ordered list of kernel calls.

Compilation prunes the graph to what the fetches need, folds constants, merges duplicates, places ops on
devices, gives out= capable ops a buffer allocated once (updating in place where an elementwise op is
the only reader of its input), and generates one straight-line Python function over local variables.
Each `run` is then a single call of that function: no dict look-ups, allocation or checks per op.

Ops placed on a GPU (gpu/placement.py) get kernels compiled against the GPU backend's array module and
buffers allocated on their device; the generated function copies a feed to a device once, at its first
GPU reader, moves values across a CPU/GPU or GPU/GPU edge with one explicit copy, and copies fetched
device values back to NumPy. Without GPU ops the generated code is exactly the CPU code.
"""
import itertools
import sys
import traceback

import numpy as np

from ..errors import InvalidArgumentError, KestimatorError, ResourceExhaustedError
from . import cpu_fusion as _cpu_fusion
from . import passes
from .gpu import placement as _placement
from .gpu import support as _support
from .gpu.transfers import Transfers

_plan_ids = itertools.count()


class _Meta:
    """Stand-in for a tensor during concrete shape inference."""
    __slots__ = ("shape", "dtype", "op")

    def __init__(self, shape, dtype, op=None):
        from .graph import TensorShape
        self.shape = shape if isinstance(shape, TensorShape) else TensorShape(shape)
        self.dtype = dtype
        self.op = op


class Plan:
    """A compiled, reusable step. Call `run(feed_arrays)` with arrays in `feed_tensors` order."""

    def __init__(self, session, fetch_tensors, target_ops, feed_tensors, feed_shapes, trace=False):
        self.session = session
        self.fetch_tensors = list(fetch_tensors)
        self.feed_tensors = list(feed_tensors)
        self.trace = trace
        graph = session.graph
        fed = set(feed_tensors)
        for t in self.fetch_tensors:
            if t.graph is not graph:
                raise InvalidArgumentError(f"fetch {t.name} belongs to another graph than this session's")
        for op in target_ops:
            if op.graph is not graph:
                raise InvalidArgumentError(f"fetch {op.name} belongs to another graph than this session's")
        needed = passes.prune(self.fetch_tensors, target_ops, fed)
        order = passes.topo_order(needed, fed)
        self.num_graph_ops = len(order)
        self._place(order)   # before folding: an op pinned to a missing GPU fails even when it would fold
        self._oom = None
        kept, alias, constants = passes.fold_and_merge(order, fed, np, fold=not trace, cse=not trace)
        self._alias = alias
        self.ops = kept
        self._check_feeds(kept, fed)
        self.variables_read, self.variables_written = self._variable_usage(kept)
        self.variables_read |= {t.op for t in self.fetch_tensors if t.op.type == "VariableV2"}   # fetched as is
        shapes = self._concrete_shapes(kept, alias, constants, dict(zip(feed_tensors, feed_shapes)))
        self._build(kept, alias, constants, shapes)
        self.verified = False
        self._marked = False

    # -- compile stages ----------------------------------------------------------------------------------
    def _place(self, ops):
        placed = _placement.place(ops, self.session)
        self.devices = placed.names              # op -> canonical device string
        self._gpu = placed.gpu                   # op -> logical GPU index (GPU ops only)
        self._physical = placed.physical
        self._backend = placed.backend

    def _check_feeds(self, ops, fed):
        for op in ops:
            if op.type == "Placeholder" and op.outputs[0] not in fed:
                raise InvalidArgumentError(
                    f"you must feed a value for placeholder tensor {op.outputs[0].name} with dtype "
                    f"{op.attrs['dtype'].name} and shape {op.attrs['shape']} (needed by this run's fetches)")

    @staticmethod
    def _variable_usage(ops):
        read, written = set(), set()
        for op in ops:
            for i, t in enumerate(op.inputs):
                if t.op.type == "VariableV2":
                    if op.opdef.writes_input == i:
                        written.add(t.op)
                        if op.type != "Assign":
                            read.add(t.op)
                    else:
                        read.add(t.op)
        return read, written

    def _concrete_shapes(self, ops, alias, constants, feed_shapes):
        """Output shapes with the fed dims filled in (None where still unknown)."""
        def resolve(t):
            while t in alias:
                t = alias[t]
            return t
        meta = {}
        for t, s in feed_shapes.items():
            meta[t] = _Meta(s, t.dtype)
        for t, v in constants.items():
            meta[t] = _Meta(np.shape(v), t.dtype, op=t.op)
        out = {t: (tuple(m.shape) if m.shape.is_fully_defined() else None) for t, m in meta.items()}
        for op in ops:
            ins = []
            for t in op.inputs:
                r = resolve(t)
                ins.append(meta.get(r) or _Meta(r.shape, r.dtype, r.op))
            try:
                specs = op.opdef.infer(ins, op.attrs)
            except Exception:
                specs = [(t.shape, t.dtype) for t in op.outputs]
            for t, (s, dt) in zip(op.outputs, specs):
                m = _Meta(s if s is not None else None, dt, op)
                if s is None:
                    m = _Meta(t.shape, dt, op)
                meta[t] = m
                out[t] = m.shape if m.shape.is_fully_defined() else None
        return out

    def _build(self, ops, alias, constants, shapes):
        sess = self.session
        gpu = self._gpu
        self._shapes = shapes

        def resolve(t):
            while t in alias:
                t = alias[t]
            return t

        ns = {}
        names = {}
        where = {}            # tensor -> logical GPU index of its value (absent: on the host)
        fetched = {resolve(t) for t in self.fetch_tensors}
        for i, t in enumerate(self.feed_tensors):
            names[t] = f"f{i}"
        counter = itertools.count()

        def bind(value, prefix):
            key = f"{prefix}{next(counter)}"
            ns[key] = value
            return key

        contiguous = self._contiguous_requests(ops, resolve, shapes)
        if not self.trace:   # CPU ops: fold what the feed shapes fix, fuse a dense layer's small ops
            ops = _cpu_fusion.fuse(ops, gpu, shapes, constants, fetched, contiguous, resolve)
        for t, v in constants.items():
            if t not in names:
                names[t] = bind(v, "c")
        if gpu and not self.trace:
            from .gpu import fusion
            ops = fusion.fuse(ops, gpu, shapes, constants, fetched, set(contiguous), resolve, self._backend)
            for op in ops:
                if isinstance(op, fusion.FusedOp):
                    gpu[op] = gpu[op.members[-1]]
        readers = {}
        for op in ops:
            for t in op.inputs:
                r = resolve(t)
                readers[r] = readers.get(r, 0) + 1
        buffers = {}          # tensor -> buffer name
        inplace_ok = not self.trace
        lines = []
        moves = Transfers(self, names, where, constants, bind, lines)
        self._line_ops = {}
        self.kernel_types = []
        self.ops = ops
        for op in ops:
            dev = gpu.get(op)
            if op.type == "VariableV2":
                names[op.outputs[0]] = bind(sess._variable_array(op), "v")
                if dev is not None:
                    where[op.outputs[0]] = dev
                continue
            if op.type == "NoOp":
                continue
            attrs = op.attrs
            if "seeds" in attrs:
                attrs = dict(attrs, _rng=sess._rng_for(op))
            if dev is None:
                fn = op.opdef.kernel(np, attrs)
            else:
                moves.activate(op, dev)
                fn = self._gpu_kernel(op, attrs, dev)
            k = bind(fn, "k")
            args = []
            shape_only, host_only = _support.shape_only_inputs(op.type), _support.host_inputs(op.type)
            for i, t in enumerate(op.inputs):
                r = resolve(t)
                if r not in names:
                    raise InvalidArgumentError(f"op {op.name} needs {r.name}, which this plan does not compute")
                if i in shape_only:
                    args.append(names[r])
                elif op.opdef.stateful and r.op.type == "VariableV2":
                    args.append(names[r])   # written in place: the placement put the op where it lives
                else:
                    args.append(moves.get(op, r, None if i in host_only else dev))
            outs = []
            for t in op.outputs:
                names[t] = f"t{next(counter)}"
                outs.append(names[t])
                if dev is not None:
                    where[t] = dev
            call = f"{k}({', '.join(args)})"
            self.kernel_types.append(op.type)
            out_t = op.outputs[0] if len(op.outputs) == 1 else None
            if (op.opdef.out_arg and out_t is not None and shapes.get(out_t) is not None
                    and out_t not in fetched):
                buf = None
                if out_t in contiguous:
                    buf = bind(contiguous[out_t], "b")
                elif inplace_ok and op.opdef.elementwise:
                    for t in op.inputs:   # reuse an input's buffer when this op is its only reader
                        r = resolve(t)
                        if (r in buffers and readers.get(r) == 1 and r not in fetched
                                and shapes.get(r) == shapes[out_t] and r.dtype == out_t.dtype
                                and r not in contiguous.values() and where.get(r) == dev):
                            buf = buffers.pop(r)
                            break
                if buf is None:
                    buf = bind(self._allocate(op, shapes[out_t], out_t.dtype.np, dev), "b")
                buffers[out_t] = buf
                call = f"{k}({', '.join(args + ['out=' + buf])})"
            lines.append((op, f"{', '.join(outs)}{',' if len(outs) == 1 and len(op.outputs) > 1 else ''} = {call}"
                          if outs else call))
            if self.trace and outs:
                for t in op.outputs:
                    lines.append((op, f"_trace({op._id}, {names[t]})"))
        ret = []
        for t in self.fetch_tensors:
            r = resolve(t)
            if r not in names:
                raise InvalidArgumentError(f"fetch {t.name} cannot be computed by this plan")
            nm = names[r]
            if r in where:   # a device value: copied back to NumPy (always a fresh array)
                ret.append(f"_fetch({nm})")
                continue
            needs_copy = (nm.startswith(("c", "v", "f")) or r in buffers or r.op.opdef.views_input
                          or r.op.opdef.writes_input is not None)
            ret.append(f"_copy({nm})" if needs_copy else nm)
        self.buffer_names = set(buffers.values())
        self.num_kernels = len(self.kernel_types)
        self.transfers = moves.count
        src = ["def _plan(" + ", ".join(f"f{i}" for i in range(len(self.feed_tensors))) + "):"]
        for i, (op, line) in enumerate(lines):
            self._line_ops[len(src) + 1] = op
            src.append("    " + line)
        src.append("    return (" + "".join(r + ", " for r in ret) + ")")
        self.source = "\n".join(src)
        self._filename = f"<kestimator-plan-{next(_plan_ids)}>"
        ns["_copy"] = _copy
        ns["_trace"] = self._trace_hook
        if self._backend is not None:
            ns["_fetch"] = self._backend.to_host
            self._oom = self._backend.OutOfMemoryError
        code = compile(self.source, self._filename, "exec")
        exec(code, ns)   # our own generated source: identifiers only, no user strings
        self._fn = ns["_plan"]
        self.traced = {}

    def _gpu_kernel(self, op, attrs, dev):
        """The kernel of `op` on GPU `dev`: a hand-written override where one exists, else the xp-generic one
        compiled against the backend's namespace (inside the device, for kernels that allocate up front)."""
        from .gpu import kernels
        backend = self._backend
        with backend.device(self._physical[dev]):
            factory = kernels.OVERRIDES.get(op.type)
            fn = factory(backend, op, attrs) if factory is not None else None
            return fn if fn is not None else op.opdef.kernel(backend.xp, attrs)

    def _allocate(self, op, shape, dtype, dev):
        if dev is None:
            return np.empty(shape, dtype=dtype)
        try:
            return self._backend.empty(shape, dtype, self._physical[dev])
        except self._backend.OutOfMemoryError as e:
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            raise ResourceExhaustedError(
                f"out of memory on {_placement.gpu_name(dev)} allocating the output buffer of op {op.name} "
                f"({op.type}): shape {tuple(shape)} {np.dtype(dtype).name} = {nbytes} bytes ({e})") from None

    def _contiguous_requests(self, ops, resolve, shapes):
        """Place gradients that an optimizer update reads as one slab in one contiguous buffer."""
        placed = {}
        for op in ops:
            group = getattr(op.opdef, "contiguous_inputs", None)
            if group is None:
                continue
            start, stop = group(op.attrs)
            tensors = [resolve(t) for t in op.inputs[start:stop]]
            if len(set(tensors)) != len(tensors) or any(t in placed for t in tensors):
                continue
            if any(shapes.get(t) is None or not t.op.opdef.out_arg or len(t.op.outputs) != 1 or
                   t.op.type in ("VariableV2",) for t in tensors):
                continue
            dts = {t.dtype for t in tensors}
            devs = {self._gpu.get(t.op) for t in tensors}
            if len(dts) != 1 or len(devs) != 1 or devs != {self._gpu.get(op)}:
                continue   # one dtype, made and consumed on one device
            sizes = [int(np.prod(shapes[t])) for t in tensors]
            slab = self._allocate(op, (sum(sizes),), tensors[0].dtype.np, devs.pop())
            off = 0
            for t, n in zip(tensors, sizes):
                placed[t] = slab[off:off + n].reshape(shapes[t])
                off += n
        return placed

    def _trace_hook(self, op_id, value):
        if type(value) is not np.ndarray and self._backend is not None and self._backend.is_device_array(value):
            value = self._backend.to_host(value)
        self.traced[op_id] = value if not isinstance(value, np.ndarray) else value.copy()
        hook = getattr(self, "on_value", None)
        if hook is not None:
            hook(op_id, value)

    # -- running -------------------------------------------------------------------------------------------
    def run(self, feeds):
        if not self.verified:
            self.session._check_initialized(self)
            self.verified = True
        try:
            out = self._fn(*feeds)
        except KestimatorError as e:
            op = self._failing_op(sys.exc_info()[2])
            if op is not None and op.name not in str(e):
                raise type(e)(f"op {op.name} ({op.type}): {e}") from e
            raise
        except Exception as e:
            op = self._failing_op(sys.exc_info()[2])
            if op is None:
                raise
            if self._oom is not None and isinstance(e, self._oom):
                raise ResourceExhaustedError(self._oom_message(op, e)) from e
            raise InvalidArgumentError(f"op {op.name} ({op.type}) failed: {type(e).__name__}: {e}") from e
        if self.variables_written and not self._marked:   # nothing un-initializes a variable: once is enough
            self.session._mark_initialized(self.variables_written)
            self._marked = True
        return out

    def _oom_message(self, op, error):
        def describe(t):
            while t in self._alias:
                t = self._alias[t]
            shape = self._shapes.get(t)
            if shape is None:
                shape = tuple(t.shape) if t.shape.ndims is not None else "?"
            return f"{tuple(shape) if shape != '?' else shape} {t.dtype.name}"
        ins = ", ".join(f"{t.name} {describe(t)}" for t in op.inputs)
        outs = ", ".join(describe(t) for t in op.outputs)
        return (f"out of memory on {self.devices.get(op, getattr(op, 'device', ''))} running op {op.name} "
                f"({op.type}) with inputs [{ins}] and outputs [{outs}]: {error}")

    def _failing_op(self, tb):
        for frame, lineno in traceback.walk_tb(tb):
            if frame.f_code.co_filename == self._filename:
                op = self._line_ops.get(lineno)
                if op is not None:
                    return op
        return None


def _copy(x):
    if isinstance(x, np.ndarray):
        return x.copy()
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return x
