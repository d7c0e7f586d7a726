"""A debugging Session wrapper (TF1's tfdbg, without the terminal UI).

    sess = ke.debug.DebugWrapperSession(ke.Session(), check_numerics=True)
    sess.run(loss, feed)            # InvalidArgumentError naming the FIRST op whose output held nan/inf
    sess.last_run_tensors()         # {"log_x:0": array(...), ...}: every intermediate value of the last run

Runs use a traced Plan: no constant folding, no merging of duplicate ops and no in-place buffer reuse,
so every op of the graph runs and its output is kept. That makes a debug run slower than a normal one.
"""
import contextlib

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["DebugWrapperSession", "LocalCLIDebugWrapperSession", "has_inf_or_nan"]


def _non_finite(value):
    """(n_nan, n_inf) of a floating array, or None for other values or when all are finite."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fc":
            return None
    elif isinstance(value, (float, np.floating, np.complexfloating)):
        value = np.asarray(value)
    else:
        return None
    if value.size == 0 or np.isfinite(value).all():
        return None
    n_nan = int(np.isnan(value).sum())
    return n_nan, int(value.size - n_nan - np.isfinite(value).sum())


def has_inf_or_nan(datum, tensor):
    """The tensor filter tfdbg users know: True when `tensor` holds a nan or an inf."""
    return _non_finite(tensor) is not None


class DebugWrapperSession:
    """Wrap a Session: each `run` records every op's outputs and (optionally) stops at the first nan/inf.

    Args:
        sess: the Session to wrap.
        check_numerics: raise when an op produces nan or inf.

    Attributes other than `run`, `make_callable` and `last_run_tensors` are the wrapped session's.
    """

    def __init__(self, sess, check_numerics=True, ui_type=None, dump_root=None, thread_name_filter=None):
        self._sess = sess
        self.check_numerics = check_numerics
        self._plans = {}
        self._dump = {}
        self._filters = {}

    # -- delegation --------------------------------------------------------------------------------------
    def __getattr__(self, name):
        return getattr(self._sess, name)

    def __enter__(self):
        self._sess.__enter__()
        return self

    def __exit__(self, *exc):
        return self._sess.__exit__(*exc)

    @property
    def session(self):
        return self._sess

    def add_tensor_filter(self, filter_name, tensor_filter):
        """Register `tensor_filter(datum, value) -> bool`; `run` raises when one is true for an output."""
        self._filters[filter_name] = tensor_filter

    # -- running -----------------------------------------------------------------------------------------
    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        """Session.run with every intermediate value recorded.

        Raises:
            InvalidArgumentError: with check_numerics, a feed or an op output holds nan or inf; the message
                names the first op (in execution order) that produced it, and its tensor.
            Anything Session.run raises.
        """
        sess = self._sess
        rebuild, tensors, targets, slots = sess._split_fetches(fetches)
        feed_tensors, feed_values = sess._prepare_feeds(feed_dict)
        plan, ops_by_id = self._plan(tensors, targets, feed_tensors, feed_values)
        self._dump = {}
        if self.check_numerics:
            for t, v in zip(feed_tensors, feed_values):
                bad = _non_finite(v)
                if bad is not None:
                    raise InvalidArgumentError(f"feed {t.name} holds {self._describe(bad, v)} before any op ran")
        for t, v in zip(feed_tensors, feed_values):
            self._dump[t.name] = np.array(v, copy=True)
        for op in plan.ops:
            if op.type == "VariableV2":
                self._dump[op.outputs[0].name] = np.array(sess._variable_array(op), copy=True)
        seen = {}

        def on_value(op_id, value):
            op = ops_by_id[op_id]
            index = seen.get(op_id, 0)
            seen[op_id] = index + 1
            tensor = op.outputs[index] if index < len(op.outputs) else None
            name = tensor.name if tensor is not None else f"{op.name}:{index}"
            self._dump[name] = value.copy() if isinstance(value, np.ndarray) else value
            if self.check_numerics:
                bad = _non_finite(value)
                if bad is not None:
                    raise InvalidArgumentError(
                        f"op {op.name} ({op.type}) produced {self._describe(bad, value)} in its output {name}: "
                        "the first op of this run to produce a non-finite value")
            for filter_name, fn in self._filters.items():
                if fn(None, value):
                    raise InvalidArgumentError(f"tensor filter {filter_name!r} matched output {name} of op "
                                               f"{op.name} ({op.type})")

        plan.on_value = on_value
        plan.traced.clear()
        try:
            # the wrapper reports non-finite values itself, naming the op; NumPy's warnings would only repeat it
            with np.errstate(all="ignore") if self.check_numerics else contextlib.nullcontext():
                values = plan.run(feed_values)
        finally:
            plan.on_value = None
        return rebuild([None if s is None else values[s] for s in slots])

    @staticmethod
    def _describe(bad, value):
        n_nan, n_inf = bad
        parts = []
        if n_nan:
            parts.append(f"{n_nan} nan")
        if n_inf:
            parts.append(f"{n_inf} inf")
        return " and ".join(parts) + f" of {np.size(value)} values"

    def _plan(self, tensors, targets, feed_tensors, feed_values):
        sess = self._sess
        key = (tuple(map(id, tensors)), tuple(map(id, targets)), tuple(map(id, feed_tensors)),
               tuple(v.shape for v in feed_values), sess.graph._version)
        entry = self._plans.get(key)
        if entry is None:
            plan = sess._plan_for(tensors, targets, feed_tensors, feed_values, trace=True)
            entry = self._plans[key] = (plan, {op._id: op for op in plan.ops})
        return entry

    def make_callable(self, fetches, feed_list=None):
        """A function `f(*feed_values)` that runs `fetches` through this debugging wrapper."""
        feed_list = list(feed_list or [])

        def call(*values):
            return self.run(fetches, dict(zip(feed_list, values)))
        return call

    def last_run_tensors(self):
        """{tensor name: value} of every feed, variable read and op output of the last run (up to the op
        that failed, when it failed)."""
        return dict(self._dump)


LocalCLIDebugWrapperSession = DebugWrapperSession
