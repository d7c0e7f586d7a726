"""Device placement of a Plan's ops, and of the Session's variables.

Rules, in order:

1. Const, Placeholder and NoOp have no device: constants are bound at compile time, feeds arrive on the
   host, and the Plan moves both to whichever device reads them.
2. A variable lives where the Session allocated it (`Session._variable_device`); a stateful op that takes
   variables (Assign, ApplyOptimizer, metric accumulators ...) runs where they live, since it writes them
   in place: its variables must share a device, and it must have a GPU kernel if that is a GPU.
3. Any other op goes where `op.device` (from `with ke.device(...)`) or, without one, the process default
   (`devices.set_default_device`, the CPU unless changed) says. A GPU that does not exist, or an op without
   a GPU kernel (see support.py), falls back to the CPU when `allow_soft_placement` is set (or when the GPU
   came from the default, not a pin) and is an InvalidArgumentError otherwise.

Nothing here imports CuPy; on a machine without a GPU every op lands on the CPU after one cheap check.
"""
import logging
import sys

from ...errors import InvalidArgumentError
from .. import devices as _devices
from . import support

_log = logging.getLogger("kestimator.engine.placement")
CPU0 = _devices.CPU0


def gpu_name(index):
    return f"/job:localhost/replica:0/task:0/device:GPU:{index}"


def _requested_gpu(spec):
    """The GPU index a canonical device string asks for, or None (CPU / no device)."""
    if not spec or "GPU" not in spec:
        return None
    return _devices.device_type_and_index(spec)[1]


def usable_gpus(config):
    """How many GPUs this session may place ops on (ConfigProto.device_count can hide them)."""
    n = _devices.gpu_count()
    cap = (config.device_count or {}).get("GPU")
    return n if cap is None else min(n, int(cap))


class Placement:
    """Where each op of a Plan runs.

    Attributes:
        gpu: op -> logical GPU index, for ops on a GPU (others are on the CPU / host).
        names: op -> canonical device string (what log_device_placement prints).
        physical: logical GPU index -> physical device index.
        backend: the GPU Backend, or None when no op is on a GPU.
    """

    def __init__(self):
        self.gpu, self.names, self.physical, self.backend = {}, {}, [], None


def place(ops, session):
    """Place `ops` (a Plan's ops, before folding) for `session`.

    Raises:
        InvalidArgumentError: a strict pin that cannot be met (missing GPU, no GPU kernel), or a stateful op
            whose variables live on different devices or on a GPU it cannot run on.
    """
    cfg = session.config
    result = Placement()
    default = _devices.get_default_device()
    wants_gpu = _requested_gpu(default) is not None or any(
        _requested_gpu(op.device) is not None for op in ops) or session._has_gpu_variables()
    n_gpu = usable_gpus(cfg) if wants_gpu else 0
    warned = set()
    for op in ops:
        if op.type in support.UNPLACED:
            _check_pin(op, op.device, n_gpu, cfg, None)
            index = None
        elif op.type == "VariableV2":
            _check_pin(op, op.device, n_gpu, cfg, None)
            index = session._variable_device(op)
        else:
            var_devices = {session._variable_device(t.op) for t in op.inputs if t.op.type == "VariableV2"}
            if op.opdef.stateful and var_devices:
                index = _colocate(op, var_devices)
            else:
                index = _choose(op, default, n_gpu, cfg, warned)
        if index is not None:
            result.gpu[op] = index
        result.names[op] = gpu_name(index) if index is not None else CPU0
        if cfg.log_device_placement and op.type not in ("Const", "NoOp"):
            print(f"{op.name}: ({op.type}): {result.names[op]}", file=sys.stderr)
    if result.gpu:
        result.backend = _devices.gpu_backend()
        result.physical = [_devices.physical_gpu(i) for i in range(max(result.gpu.values()) + 1)]
    return result


def _check_pin(op, spec, n_gpu, cfg, reason):
    index = _requested_gpu(spec)
    if index is None or cfg.allow_soft_placement:
        return
    if index >= n_gpu:
        raise InvalidArgumentError(
            f"cannot assign a device for operation {op.name} ({op.type}): {spec} was requested but this "
            f"machine has {n_gpu} GPUs; set allow_soft_placement=True to run it on the CPU")
    if reason is not None:
        raise InvalidArgumentError(
            f"cannot assign a device for operation {op.name} ({op.type}): {spec} was requested but the op has "
            f"no GPU kernel ({reason}); set allow_soft_placement=True to run it on the CPU")


def _choose(op, default, n_gpu, cfg, warned):
    pinned = _requested_gpu(op.device)
    index = pinned if pinned is not None else (None if op.device else _requested_gpu(default))
    if index is None:
        return None
    reason = support.gpu_unsupported_reason(op) if index < n_gpu else None
    if pinned is not None:
        _check_pin(op, op.device, n_gpu, cfg, reason)
    if index >= n_gpu:
        return None
    if reason is not None:
        if pinned is not None and op.type not in warned:   # a pin we could not honour: say so once per type
            warned.add(op.type)
            _log.warning("op %s (%s) was placed on %s but runs on the CPU: %s", op.name, op.type,
                         op.device, reason)
        return None
    return index


def _colocate(op, var_devices):
    if len(var_devices) > 1:
        names = sorted({t.op.name for t in op.inputs if t.op.type == "VariableV2"})
        where = sorted("CPU:0" if d is None else f"GPU:{d}" for d in var_devices)
        raise InvalidArgumentError(
            f"op {op.name} ({op.type}) updates variables that live on different devices ({', '.join(where)}): "
            f"{', '.join(names)}; create them under one ke.device(...)")
    index = var_devices.pop()
    if index is not None:
        reason = support.gpu_unsupported_reason(op)
        if reason is not None:
            raise InvalidArgumentError(
                f"op {op.name} ({op.type}) writes variables on {gpu_name(index)} but cannot run on a GPU: "
                f"{reason}")
    return index


def variable_devices(session, fresh):
    """Logical GPU index (or None) for each VariableV2 op in `fresh`, a list of Variables being allocated.

    A variable pinned to an existing GPU goes there. The others follow the variables they are written
    together with by one stateful op (optimizer slots, the step counter and the learning rate follow the
    weights): where one of the group already lives, else on the first GPU pinned by one of them or by the
    op, else on the default device's GPU; on the CPU when the group holds a string variable or an op
    without a GPU kernel (unless a variable was pinned explicitly).
    """
    cfg = session.config
    default_gpu = _requested_gpu(_devices.get_default_device())
    pins = [_requested_gpu(v.op.device) for v in fresh]
    if default_gpu is None and all(p is None for p in pins) and not session._has_gpu_variables():
        return {v.op: None for v in fresh}   # the CPU-only case: no graph scan
    n_gpu = usable_gpus(cfg)
    parent = {}

    def find(a):
        while parent.get(a, a) is not a:
            a = parent[a]
        return a

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra is not rb:
            parent[rb] = ra
    graph = session.graph
    writers = []
    for op in graph.get_operations():
        if op.opdef.stateful and op.type != "VariableV2":
            vins = [t.op for t in op.inputs if t.op.type == "VariableV2"]
            if vins:
                writers.append(op)
                for v in vins:
                    union(vins[0], v)
                union(vins[0], op)
    members = {}
    for node in list(parent) + [v.op for v in fresh]:
        members.setdefault(find(node), set()).add(node)
    out = {}
    for v, pin in zip(fresh, pins):
        if pin is not None and pin < n_gpu and not v.dtype.is_string:
            out[v.op] = pin   # an explicit pin wins; an op writing variables on two devices is then an error
            continue
        group = members.get(find(v.op), {v.op})
        out[v.op] = _group_device(session, group, default_gpu, n_gpu)
    return out


def _group_device(session, group, default_gpu, n_gpu):
    ordered = sorted(group, key=lambda o: o._id)
    for o in ordered:
        if o.type == "VariableV2" and o in session._values:
            return session._var_devices.get(o)
    explicit = next((_requested_gpu(o.device) for o in ordered if _requested_gpu(o.device) is not None), None)
    index = explicit if explicit is not None else default_gpu
    if index is None or index >= n_gpu:
        return None
    if explicit is None or not any(o.type == "VariableV2" and _requested_gpu(o.device) is not None
                                   for o in ordered):
        for o in ordered:
            if o.type != "VariableV2" and support.gpu_unsupported_reason(o) is not None:
                return None
    if any(o.type == "VariableV2" and o.outputs[0].dtype.is_string for o in ordered):
        return None
    return index
