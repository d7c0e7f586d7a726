"""ke.debug.DebugWrapperSession: naming the first op that produced inf/nan, and the per-run tensor dump."""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.engine import debug
from kestimator.errors import InvalidArgumentError


def _graph():
    x = ke.placeholder(ke.float32, [None], name="x")
    logs = ke.log(x, name="log_x")
    scaled = ke.multiply(logs, 2.0, name="scaled")
    recip = ke.divide(1.0, x, name="recip")
    total = ke.reduce_sum(scaled + recip, name="total")
    return x, total


def test_first_nan_is_named_not_its_consumers(fresh_graph):
    x, total = _graph()
    with ke.Session() as raw:
        sess = debug.DebugWrapperSession(raw)
        with pytest.raises(InvalidArgumentError) as e:
            sess.run(total, {x: [1.0, -1.0]})
        msg = str(e.value)
        # log(-1) = nan is produced first; "scaled" and "total" only inherit it
        assert "log_x (Log)" in msg and "nan" in msg and "log_x:0" in msg
        assert "scaled" not in msg and "total" not in msg
        dump = sess.last_run_tensors()
        assert dump["x:0"].tolist() == [1.0, -1.0]
        assert dump["log_x:0"][0] == 0.0 and np.isnan(dump["log_x:0"][1])
        assert "total:0" not in dump   # the run stopped at the failing op


def test_inf_is_reported_as_inf(fresh_graph):
    x, total = _graph()
    recip_only = ke.reduce_sum(fresh_graph.get_tensor_by_name("recip:0"))
    with ke.Session() as raw:
        sess = debug.DebugWrapperSession(raw)
        with pytest.raises(InvalidArgumentError, match=r"recip \(.*\) produced 1 inf of 2 values"):
            sess.run(recip_only, {x: [0.0, 2.0]})


def test_dump_holds_every_intermediate_value(fresh_graph):
    x, total = _graph()
    v = ke.Variable([1.0, 3.0], name="v")
    out = total + ke.reduce_sum(v._as_tensor())
    feed = np.array([1.0, 4.0], np.float32)
    with ke.Session() as raw:
        raw.run(v.initializer)
        sess = debug.DebugWrapperSession(raw)
        got = sess.run(out, {x: feed})
        plain = raw.run(out, {x: feed})
        assert got == pytest.approx(plain)
        dump = sess.last_run_tensors()
    log = np.log(feed)
    np.testing.assert_allclose(dump["log_x:0"], log)
    np.testing.assert_allclose(dump["scaled:0"], 2 * log)
    np.testing.assert_allclose(dump["recip:0"], 1 / feed)
    assert dump["total:0"] == pytest.approx(np.sum(2 * log + 1 / feed), rel=1e-6)
    assert dump["v:0"].tolist() == [1.0, 3.0]
    # constants are not folded away in a debug run: they appear too
    assert any(name.startswith("Const") for name in dump)


def test_nan_in_a_feed_is_named_before_any_op(fresh_graph):
    x, total = _graph()
    with ke.Session() as raw:
        sess = debug.DebugWrapperSession(raw)
        with pytest.raises(InvalidArgumentError, match="feed x:0 holds 1 nan"):
            sess.run(total, {x: [np.nan, 1.0]})


def test_check_numerics_off_returns_the_nan(fresh_graph):
    x, total = _graph()
    with ke.Session() as raw:
        sess = debug.DebugWrapperSession(raw, check_numerics=False)
        with np.errstate(invalid="ignore", divide="ignore"):
            assert np.isnan(sess.run(total, {x: [-1.0]}))
        assert np.isnan(sess.last_run_tensors()["log_x:0"][0])


def test_structure_delegation_filters_and_plan_reuse(fresh_graph, monkeypatch):
    x, total = _graph()
    a = ke.identity(x, name="a")
    with ke.Session() as raw:
        sess = debug.DebugWrapperSession(raw)
        out = sess.run({"t": total, "pair": [a, (a,)]}, {x: [1.0]})
        assert out["t"] == pytest.approx(1.0) and out["pair"][1][0].tolist() == [1.0]
        assert sess.graph is raw.graph   # other attributes are the wrapped session's
        compiled = []
        real = raw._plan_for

        def counting(*args, **kwargs):
            compiled.append(kwargs.get("trace"))
            return real(*args, **kwargs)
        monkeypatch.setattr(raw, "_plan_for", counting)
        for _ in range(3):
            sess.run(total, {x: [2.0]})
        assert compiled == [True]   # one traced plan, reused
        sess.add_tensor_filter("big", lambda datum, value: np.any(np.asarray(value) > 100))
        with pytest.raises(InvalidArgumentError, match="'big'.*recip"):
            sess.run(total, {x: [0.001]})
        f = sess.make_callable(total, [x])
        assert f([1.0]) == pytest.approx(1.0)
    assert debug.has_inf_or_nan(None, np.array([1.0, np.inf])) and not debug.has_inf_or_nan(None, np.ones(2))
