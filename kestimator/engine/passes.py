"""Graph passes run when a Plan is compiled: prune, constant folding, common-subexpression elimination.

The passes never change the user's Graph; they compute, for the ops one fetch needs, which ops to run
and which tensor stands in for which (`alias`).
"""
import heapq

import numpy as np

from ..errors import InvalidArgumentError

_FOLD_MAX_ELEMENTS = 1 << 20   # don't bake huge intermediate results into a plan


def prune(fetch_tensors, target_ops, fed):
    """Ops needed to compute the fetches and run the targets, given the fed tensors (explicit stack)."""
    needed, order_hint = set(), []
    stack = [t.op for t in fetch_tensors if t not in fed] + list(target_ops)
    while stack:
        op = stack.pop()
        if op in needed:
            continue
        needed.add(op)
        order_hint.append(op)
        for t in op.inputs:
            if t not in fed:
                stack.append(t.op)
        stack.extend(op.control_inputs)
    return needed


def topo_order(ops, fed):
    """Kahn's algorithm; ops that write state run as late as their dependencies allow, so reads of a
    variable in the same run see the value from before the run's updates."""
    ops = set(ops)
    deps = {op: set() for op in ops}
    users = {op: [] for op in ops}
    for op in ops:
        for t in op.inputs:
            if t not in fed and t.op in ops and t.op is not op:
                deps[op].add(t.op)
        for c in op.control_inputs:
            if c in ops:
                deps[op].add(c)
        for d in deps[op]:
            users[d].append(op)
    remaining = {op: len(d) for op, d in deps.items()}
    # heaps keyed by creation id: the lowest-id ready op runs next (a re-sort per step was quadratic)
    normal = [(op._id, op) for op, n in remaining.items() if n == 0]
    heapq.heapify(normal)
    late = []
    order = []
    while normal or late:
        op = heapq.heappop(normal if normal else late)[1]
        order.append(op)
        for u in users[op]:
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(late if u.opdef.writes_input is not None else normal, (u._id, u))
    if len(order) != len(ops):
        raise InvalidArgumentError("the graph has a cycle among the ops this fetch needs")
    return order


def _attr_key(value):
    if isinstance(value, np.ndarray):
        return ("nd", value.dtype.str, value.shape, value.tobytes() if value.size <= 4096 else id(value))
    if isinstance(value, (list, tuple)):
        return tuple(_attr_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _attr_key(v)) for k, v in value.items()))
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    try:
        hash(value)
        return value
    except TypeError:
        return ("id", id(value))


def fold_and_merge(order, fed, xp, fold=True, cse=True):
    """Constant-fold pure ops whose inputs are all constant and merge duplicate pure ops.

    Returns (kept_ops, alias, constants): `alias` maps a tensor to the tensor that replaces it;
    `constants` maps tensors to values computed now.
    """
    alias, constants, seen, kept = {}, {}, {}, []

    def resolve(t):
        while t in alias:
            t = alias[t]
        return t

    for op in order:
        ins = [resolve(t) for t in op.inputs]
        pure = not op.opdef.stateful and op.opdef.writes_input is None and op.type not in ("NoOp",)
        if op.type == "Const" and fold:
            constants[op.outputs[0]] = op.attrs["value"]
            key = ("Const", _attr_key(op.attrs["value"]), op.attrs["dtype"].name)
            if cse and key in seen:
                alias[op.outputs[0]] = seen[key].outputs[0]
            else:
                seen[key] = op
            continue
        if fold and pure and op.outputs and ins and all(t in constants and t not in fed for t in ins) \
                and not op.control_inputs:
            try:
                result = op.opdef.kernel(xp, op.attrs)(*[constants[t] for t in ins])
            except Exception:   # leave it to run time, where the error names the op
                result = None
            if result is not None:
                results = result if len(op.outputs) > 1 else (result,)
                if all(np.size(r) <= _FOLD_MAX_ELEMENTS for r in results):
                    for t, r in zip(op.outputs, results):
                        constants[t] = r
                    continue
        if cse and pure and op.outputs:
            key = (op.type, tuple(id(t) for t in ins), _attr_key(op.attrs),
                   tuple(id(c) for c in op.control_inputs))
            prev = seen.get(key)
            if prev is not None:
                for a, b in zip(op.outputs, prev.outputs):
                    alias[a] = b
                continue
            seen[key] = op
        kept.append(op)
    return kept, alias, constants
