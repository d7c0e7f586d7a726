"""Session: fetch structures, feeds and their errors, make_callable, plan caching, and what the plan
compiler keeps (CSE, constant folding, pruning)."""
import collections

import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.engine import session as session_mod
from kestimator.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError


def _plan(sess, fetches, feed_dict=None):
    """The compiled Plan Session.run uses for these fetches and feeds."""
    tensors = [sess._as_fetch(f) for f in fetches]
    keys, vals = sess._prepare_feeds(feed_dict)
    return sess._plan_for([t for t in tensors if isinstance(t, ke.Tensor)],
                          [t for t in tensors if isinstance(t, ke.Operation)], keys, vals)


@pytest.fixture
def counted_plans(monkeypatch):
    """Counts Plan compilations."""
    built = []
    real = session_mod.Plan

    def counting(*args, **kwargs):
        built.append(args[1])
        return real(*args, **kwargs)
    monkeypatch.setattr(session_mod, "Plan", counting)
    return built


def test_nested_fetches_keep_their_structure(fresh_graph):
    Pair = collections.namedtuple("Pair", "first second")
    a = ke.constant(1.0)
    b = ke.constant([2, 3])
    with ke.Session() as sess:
        out = sess.run({"a": a, "nest": [b, (a, {"deep": b})], "pair": Pair(a, b), "op": ke.no_op()})
    assert out["a"] == 1.0 and out["op"] is None
    assert isinstance(out["nest"], list) and isinstance(out["nest"][1], tuple)
    assert out["nest"][0].tolist() == [2, 3] and out["nest"][1][1]["deep"].tolist() == [2, 3]
    assert isinstance(out["pair"], Pair) and out["pair"].second.tolist() == [2, 3]


def test_feeds_placeholders_and_intermediate_tensors(fresh_graph):
    x = ke.placeholder(ke.float32, [None, 2], name="x")
    h = x * 2.0
    y = ke.reduce_sum(h + 1.0)
    with ke.Session() as sess:
        assert sess.run(y, {x: [[1, 2], [3, 4]]}) == pytest.approx(2 * 10 + 4)
        # feeding an intermediate tensor replaces its computation: sum(h + 1) with h = ones(1, 2)
        assert sess.run(y, {h: np.ones((1, 2), np.float32)}) == pytest.approx(4.0)
        assert sess.run(y, {"x:0": [[0.5, 0.5]]}) == pytest.approx(4.0)   # feed by tensor name


def test_feed_errors_name_the_tensor(fresh_graph):
    x = ke.placeholder(ke.float32, [None, 2], name="inputs")
    i = ke.placeholder(ke.int32, [3], name="ids")
    y = ke.reduce_sum(x)
    with ke.Session() as sess:
        with pytest.raises(InvalidArgumentError, match=r"shape \(2, 3\).*inputs:0"):
            sess.run(y, {x: np.zeros((2, 3))})
        with pytest.raises(InvalidArgumentError, match="inputs:0"):
            sess.run(y, {x: [["a", "b"]]})
        with pytest.raises(InvalidArgumentError, match="non-integer.*ids:0"):
            sess.run(i, {i: [1.5, 2.0, 3.0]})
        assert sess.run(i, {i: [1.0, 2.0, 3.0]}).tolist() == [1, 2, 3]   # integral floats are fine
        with pytest.raises(InvalidArgumentError, match="must feed a value for placeholder tensor inputs:0"):
            sess.run(y)
        with pytest.raises(NotFoundError, match="nothere"):
            sess.run("nothere:0")


def test_fetch_or_feed_from_another_graph_is_refused(fresh_graph):
    other = ke.Graph()
    with other.as_default():
        alien = ke.constant(1.0, name="alien")
        alien_ph = ke.placeholder(ke.float32, name="alien_ph")
    mine = ke.constant(2.0)
    with ke.Session() as sess:
        with pytest.raises(InvalidArgumentError, match="alien:0"):
            sess.run(alien)
        with pytest.raises(InvalidArgumentError, match="alien_ph:0"):
            sess.run(mine, {alien_ph: 1.0})


def test_uninitialized_variable_and_closed_session(fresh_graph):
    v = ke.Variable(1.0, name="weights")
    sess = ke.Session()
    with pytest.raises(FailedPreconditionError, match="weights"):
        sess.run(v)
    sess.run(v.initializer)
    assert sess.run(v) == 1.0
    sess.close()
    with pytest.raises(FailedPreconditionError, match="closed"):
        sess.run(v)


def test_runtime_kernel_error_names_the_op(fresh_graph):
    a = ke.placeholder(ke.float32, [None, None], name="a")
    b = ke.placeholder(ke.float32, [None, None], name="b")
    c = ke.matmul(a, b, name="the_product")
    with ke.Session() as sess:
        with pytest.raises(InvalidArgumentError, match="the_product"):
            sess.run(c, {a: np.ones((2, 3)), b: np.ones((4, 5))})


def test_fetches_are_copies_not_live_buffers(fresh_graph):
    x = ke.placeholder(ke.float32, [2])
    y = x + 1.0
    v = ke.Variable([1.0, 2.0])
    with ke.Session() as sess:
        sess.run(v.initializer)
        first = sess.run(y, {x: [0, 0]})
        sess.run(y, {x: [5, 5]})
        assert first.tolist() == [1.0, 1.0]        # the second run did not overwrite the first result
        val = sess.run(v)
        val[0] = 99.0
        assert sess.run(v).tolist() == [1.0, 2.0]  # mutating a fetched value leaves the variable alone


def test_make_callable_matches_run_and_compiles_once_per_shape(fresh_graph, counted_plans):
    x = ke.placeholder(ke.float32, [None, 3])
    w = ke.constant(np.arange(3, dtype=np.float32))
    y = ke.reduce_sum(x * w, axis=1)
    m = ke.reduce_max(x)
    with ke.Session() as sess:
        f = sess.make_callable([y, m], feed_list=[x])
        data = np.arange(6, dtype=np.float32).reshape(2, 3)
        got = f(data)
        assert isinstance(got, list)
        np.testing.assert_allclose(got[0], data @ np.arange(3))
        assert got[1] == 5.0
        f(data + 1)
        assert len(counted_plans) == 1
        f(np.ones((4, 3), np.float32))              # a new batch size: one more plan
        f(np.ones((4, 3), np.float32))
        assert len(counted_plans) == 2
        single = sess.make_callable(m, feed_list=[x])
        assert single(data) == 5.0


def test_run_reuses_its_plan_until_the_graph_changes(fresh_graph, counted_plans):
    x = ke.placeholder(ke.float32, [None])
    y = ke.reduce_sum(x * 3.0)
    with ke.Session() as sess:
        for _ in range(3):
            sess.run(y, {x: [1.0, 2.0]})
        assert len(counted_plans) == 1
        ke.constant(0.0)   # any new op bumps the graph version: plans are recompiled
        sess.run(y, {x: [1.0, 2.0]})
        assert len(counted_plans) == 2


# -- what the compiler keeps --------------------------------------------------------------------------------
def test_cse_merges_identical_subexpressions(fresh_graph):
    x = ke.placeholder(ke.float32, [None], name="x")
    a = ke.exp(x * 2.0)
    b = ke.exp(x * 2.0)   # the same computation, built twice
    total = a + b
    with ke.Session() as sess:
        plan = _plan(sess, [total], {x: np.ones(3, np.float32)})
        assert sorted(plan.kernel_types) == ["Add", "Exp", "Mul"] and plan.num_kernels == 3
        assert plan.num_graph_ops == 7   # placeholder is fed; 2 Consts, 2 Mul, 2 Exp, Add
        np.testing.assert_allclose(sess.run(total, {x: [0.0, 1.0]}), 2 * np.exp([0.0, 2.0]), rtol=1e-6)


def test_constant_subgraph_folds_to_zero_kernels(fresh_graph):
    c = ke.reduce_sum(ke.constant([1.0, 2.0]) * 3.0 + ke.constant(1.0))
    with ke.Session() as sess:
        plan = _plan(sess, [c])
        assert plan.num_kernels == 0 and plan.kernel_types == []
        assert sess.run(c) == 11.0   # (1*3+1) + (2*3+1)


def test_pruning_runs_only_what_the_fetch_needs(fresh_graph):
    x = ke.placeholder(ke.float32, [None])
    wanted = ke.square(x)
    ke.matmul(ke.reshape(x, [1, -1]), ke.reshape(x, [-1, 1]))   # unrelated work
    ke.exp(x) + ke.log(x)
    with ke.Session() as sess:
        plan = _plan(sess, [wanted], {x: np.ones(2, np.float32)})
        assert plan.kernel_types == ["Square"]


def test_variables_and_stateful_ops_are_not_folded(fresh_graph):
    v = ke.Variable(2.0)
    r = ke.random_uniform([3], seed=1)
    y = v * 3.0
    with ke.Session() as sess:
        sess.run(v.initializer)
        assert "Mul" in _plan(sess, [y]).kernel_types
        assert sess.run(y) == 6.0
        sess.run(v.assign(5.0))
        assert sess.run(y) == 15.0          # the plan reads the live value, not a folded constant
        assert not np.array_equal(sess.run(r), sess.run(r))   # a random op draws anew each run


def test_default_session_eval_and_interactive(fresh_graph):
    c = ke.constant([1, 2])
    with pytest.raises(FailedPreconditionError):
        c.eval()
    with ke.Session():
        assert c.eval().tolist() == [1, 2]
    sess = ke.InteractiveSession()
    try:
        assert ke.get_default_session() is sess and (c * 2).eval().tolist() == [2, 4]
    finally:
        sess.close()
    assert ke.get_default_session() is None
