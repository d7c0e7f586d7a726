"""The copies a Plan emits between the host and GPUs (a no-op on a CPU-only plan).

A value read on another device than the one holding it gets one copy per (value, device), made in the
generated function at its first reader: a feed read by several GPU ops is copied once per run. Folded
constants are copied once per session, at compile time. Variables are copied afresh for each reader,
since a run may assign them in between (ops that write variables run where the variables live).
"""
import numpy as np

from ...errors import ResourceExhaustedError
from .placement import gpu_name


class Transfers:
    """Emits the copies values need to reach the devices of the ops reading them (see the module doc).

    Args:
        plan: the Plan being built (its backend, physical device map and session).
        names / where: tensor -> generated name / logical GPU of its value (absent: the host).
        constants: folded tensor -> host value.
        bind: binds a Python object to a new name of the generated function's namespace.
        lines: the generated (op, source line) list; copies are appended before the reading op's line.
    """

    def __init__(self, plan, names, where, constants, bind, lines):
        self.plan, self.names, self.where, self.constants = plan, names, where, constants
        self.bind, self.lines = bind, lines
        self.cache, self.count, self.current = {}, 0, None   # count: copies made at run time (per step)
        self.fns = {}

    def _fn(self, kind, dev):
        key = (kind, dev)
        name = self.fns.get(key)
        if name is None:
            backend, phys = self.plan._backend, self.plan._physical
            if kind == "use":
                fn = backend.activator(phys[dev])
            elif kind == "h2d":
                fn = backend.module.asarray   # the target device is current (activate ran)
            elif kind == "d2h":
                fn = backend.to_host
            else:
                fn = (lambda index: lambda v: backend.move(v, index))(phys[dev])
            name = self.fns[key] = self.bind(fn, f"_{kind}")
        return name

    def _constant_on(self, op, value, dev):
        """`value` on `dev`, shared by the session's plans (plans for other feed shapes reuse the copy)."""
        backend, phys = self.plan._backend, self.plan._physical
        if dev is None:
            return backend.to_host(value)
        cache = self.plan.session._device_constants
        hit = cache.get((id(value), phys[dev]))
        if hit is not None and hit[0] is value:
            return hit[1]
        try:
            copy = backend.to_device(value, phys[dev])
        except backend.OutOfMemoryError as e:
            raise ResourceExhaustedError(
                f"out of memory on {gpu_name(dev)} copying a constant of shape {np.shape(value)} "
                f"{np.asarray(value).dtype.name} ({np.asarray(value).nbytes} bytes) for op {op.name} ({op.type}): "
                f"{e}") from None
        cache[(id(value), phys[dev])] = (value, copy)   # holding `value` keeps its id from being reused
        return copy

    def activate(self, op, dev):
        """Make `dev` current before `op`'s copies and kernel when another device (or none) was."""
        if self.current != dev:
            self.lines.append((op, f"{self._fn('use', dev)}()"))
            self.current = dev

    def get(self, op, r, dev):
        """The name holding tensor `r`'s value on `dev` (None: the host), emitting a copy when needed."""
        nm = self.names[r]
        src = self.where.get(r)
        if src == dev:
            return nm
        key = (r, dev)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        value = self.constants.get(r)
        if value is not None and nm.startswith("c"):   # a folded constant: copy it now, once per session
            moved = self.cache[key] = self.bind(self._constant_on(op, value, dev), "c")
            return moved
        kind = "h2d" if src is None else ("d2h" if dev is None else "d2d")
        self.count += 1
        moved = f"m{self.count}"
        self.lines.append((op, f"{moved} = {self._fn(kind, dev)}({nm})"))
        if r.op.type != "VariableV2":
            self.cache[key] = moved
        return moved
