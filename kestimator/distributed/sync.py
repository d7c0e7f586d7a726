"""Start every rank from the same state: broadcast variables (weights, optimizer slots, step counters) and
seeds from one rank, at start-up and again after a restore.

Variables are packed per dtype into one buffer and sent with one broadcast per dtype (not one per
variable); string variables travel as JSON. Before the first broadcast of a set of variables the ranks
check they list the same variables (name, shape, dtype, order) and fail naming the first difference.
"""
import hashlib
import os

import numpy as np

from ..errors import InvalidArgumentError
from . import collectives
from ._runtime import ensure_init


def _entries(variables):
    return [[v.name, [int(d) for d in tuple(v.shape)], np.dtype(v.dtype.np).str] for v in variables]


def _read_all(session, variables):
    if session is None:
        return [np.asarray(v.numpy()) for v in variables]
    return session.run(list(variables))


def _write(session, v, value):
    if session is None:
        v.assign(value)
    else:
        v.load(value, session)


def _strings_to_json(value):
    """A string tensor as JSON: bytes elements as latin-1 text (lossless), flagged so they come back as bytes."""
    flat = np.asarray(value, dtype=object).reshape(-1)
    is_bytes = [isinstance(x, bytes) for x in flat]
    return [[x.decode("latin-1") if b else str(x) for x, b in zip(flat, is_bytes)], is_bytes]


def _strings_from_json(payload, shape):
    texts, is_bytes = payload
    out = np.empty(len(texts), dtype=object)
    out[:] = [t.encode("latin-1") if b else t for t, b in zip(texts, is_bytes)]
    return out.reshape(shape)


def broadcast_variables(session, variables, root_rank=0):
    """Overwrite `variables` on every rank with their values on `root_rank`.

    Args:
        session: the ke.Session holding the values (None for eager variables). On other ranks the
            variables need not be initialized: they are after this call.
        variables: a list of ke.Variables (graph) or eager variables, in the same order on every rank.
        root_rank: the rank whose values win.

    Raises:
        InvalidArgumentError: ranks pass different variable lists (named), or root_rank is not a rank.
        FailedPreconditionError: a variable is uninitialized on the root rank.
    """
    st = ensure_init()
    variables = list(variables)
    collectives._check_root(root_rank, st.size)
    if not st.distributed or not variables:
        return
    entries = _entries(variables)
    digest = hashlib.blake2b(repr(entries).encode(), digest_size=6).hexdigest()
    collectives.check_consistent("broadcast variables", f"{len(variables)} variables #{digest}", entries)
    values = _read_all(session, variables) if st.rank == root_rank else None
    groups = {}
    for i, v in enumerate(variables):
        groups.setdefault(entries[i][2], []).append(i)
    for dtype_str, idx in groups.items():
        dtype = np.dtype(dtype_str)
        label = f"variables ({dtype.name}, {len(idx)} tensors)"
        if dtype.kind not in "biufc":
            strings = [_strings_to_json(values[i]) for i in idx] if st.rank == root_rank else None
            strings = collectives.broadcast(strings, root=root_rank, name=label)
            if st.rank != root_rank:
                for i, val in zip(idx, strings):
                    _write(session, variables[i], _strings_from_json(val, entries[i][1]))
            continue
        sizes = [int(np.prod(entries[i][1], dtype=np.int64)) for i in idx]
        flat = np.empty(sum(sizes), dtype)
        if st.rank == root_rank:
            off = 0
            for i, n in zip(idx, sizes):
                flat[off:off + n] = np.asarray(values[i], dtype).reshape(-1)
                off += n
        collectives.broadcast(flat, root=root_rank, name=label, inplace=True)
        if st.rank != root_rank:
            off = 0
            for i, n in zip(idx, sizes):
                _write(session, variables[i], flat[off:off + n].reshape(entries[i][1]))
                off += n


def broadcast_global_variables(session=None, root_rank=0):
    """broadcast_variables for every variable in the graph's GLOBAL_VARIABLES collection (weights,
    optimizer iterations / learning rate / slots, the global step).

    Args:
        session: the session (default: the default session).
        root_rank: the rank whose values win.

    Raises:
        FailedPreconditionError: no session given and no default session.
    """
    from ..engine.session import get_default_session_or_error
    session = session or get_default_session_or_error("broadcast_global_variables()")
    from ..engine.graph import GraphKeys
    variables = session.graph.get_collection(GraphKeys.GLOBAL_VARIABLES)
    broadcast_variables(session, variables, root_rank=root_rank)


def shared_seed(seed=None, root_rank=0):
    """A seed every rank agrees on: `seed` as given on root_rank, or a fresh random one drawn there.

    Use it for anything that must be identical across ranks (shuffling a file list before sharding it,
    graph-level seeds of initializers); keep per-rank randomness (dropout) per rank.

    Returns:
        An int in [0, 2**63).

    Raises:
        InvalidArgumentError: `seed` is not a non-negative int or None.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InvalidArgumentError(f"shared_seed: seed must be a non-negative int or None, got {seed!r}")
    st = ensure_init()
    value = int(seed) if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
    if not st.distributed:
        return value
    return int(collectives.broadcast(value if st.rank == root_rank else None, root=root_rank, name="seed"))
