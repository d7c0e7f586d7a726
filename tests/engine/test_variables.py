"""Variables, get_variable and variable_scope: naming, reuse rules and their errors, initializers,
collections, assignment, and the session's slab storage."""
import math

import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError


def test_get_variable_names_and_reuse_errors(fresh_graph):
    with ke.variable_scope("layer"):
        w = ke.get_variable("w", [2, 3])
        with pytest.raises(InvalidArgumentError, match="layer/w already exists"):
            ke.get_variable("w", [2, 3])
    assert w.name == "layer/w:0" and w.op.name == "layer/w"
    with ke.variable_scope("layer", reuse=True):
        assert ke.get_variable("w", [2, 3]) is w
        assert ke.get_variable("w") is w                 # shape may be omitted on reuse
        with pytest.raises(InvalidArgumentError, match="layer/missing does not exist"):
            ke.get_variable("missing", [1])
        with pytest.raises(InvalidArgumentError, match=r"layer/w has shape.*\(3, 2\)"):
            ke.get_variable("w", [3, 2])
    with ke.variable_scope("auto", reuse=ke.AUTO_REUSE):
        a1 = ke.get_variable("a", [1])
        a2 = ke.get_variable("a", [1])
    assert a1 is a2 and a1.name == "auto/a:0"
    with pytest.raises(InvalidArgumentError, match="needs a shape"):
        ke.get_variable("noshape")


def test_scope_object_reentry_and_nesting(fresh_graph):
    with ke.variable_scope("outer") as outer:
        with ke.variable_scope("inner"):
            v = ke.get_variable("v", [1])
            op = ke.add(v._as_tensor(), 1.0, name="plus")
    assert v.name == "outer/inner/v:0" and op.name == "outer/inner/plus:0"
    with ke.variable_scope(outer, reuse=True):
        with ke.variable_scope("inner"):
            assert ke.get_variable("v") is v
    with ke.variable_scope(None, default_name="block"):
        b1 = ke.get_variable("k", [1])
    with ke.variable_scope(None, default_name="block"):
        b2 = ke.get_variable("k", [1])
    assert (b1.name, b2.name) == ("block/k:0", "block_1/k:0")
    with ke.variable_scope("r") as scope:
        ke.get_variable("x", [1])
        scope.reuse_variables()
        assert ke.get_variable("x").name == "r/x:0"


def test_initializers(fresh_graph):
    ke.set_random_seed(3)
    z = ke.get_variable("z", [2, 3], initializer=ke.zeros_initializer)
    o = ke.get_variable("o", [4], initializer=ke.ones_initializer())
    c = ke.get_variable("c", initializer=ke.constant([[1, 2]], dtype=ke.float32))
    k = ke.get_variable("k", [3], initializer=ke.constant_initializer(7.5))
    g = ke.get_variable("g", [40, 60])   # default: Glorot uniform for floats
    i = ke.get_variable("i", [3], dtype=ke.int32)   # default for integers: zeros
    with ke.Session() as sess:
        sess.run(ke.global_variables_initializer())
        zv, ov, cv, kv, gv, iv = sess.run([z, o, c, k, g, i])
    assert zv.tolist() == [[0, 0, 0]] * 2 and ov.tolist() == [1] * 4 and cv.tolist() == [[1, 2]]
    assert kv.tolist() == [7.5] * 3 and iv.tolist() == [0, 0, 0] and iv.dtype == np.int32
    limit = math.sqrt(6.0 / (40 + 60))   # Glorot uniform bound
    assert np.abs(gv).max() <= limit and np.abs(gv).max() > 0.9 * limit
    assert abs(gv.std() - limit / math.sqrt(3)) < 0.02   # U(-l, l) has std l/sqrt(3) = 0.1414
    assert c.shape.as_list() == [1, 2]


def test_collections_trainable_local_and_regularizer(fresh_graph):
    t = ke.get_variable("t", [2])
    n = ke.get_variable("n", [2], trainable=False)
    loc = ke.get_variable("loc", [], collections=[ke.GraphKeys.LOCAL_VARIABLES])
    r = ke.get_variable("r", [3], initializer=ke.constant_initializer(2.0),
                        regularizer=lambda w: 0.5 * ke.reduce_sum(ke.square(w)))
    assert ke.trainable_variables() == [t, r]
    assert ke.global_variables() == [t, n, r] and ke.local_variables() == [loc]
    (reg,) = ke.get_collection(ke.GraphKeys.REGULARIZATION_LOSSES)
    with ke.Session() as sess:
        sess.run([ke.global_variables_initializer(), ke.local_variables_initializer()])
        assert sess.run(reg) == pytest.approx(0.5 * 3 * 4.0)   # 0.5 * sum(2^2 over 3 elements)
        assert ke.report_uninitialized_variables() == []


def test_variable_api(fresh_graph):
    v = ke.Variable([1.0, 2.0], name="v")
    assert v.dtype == ke.float32 and v.shape.as_list() == [2] and v.trainable
    assert ke.Variable(np.zeros(2)).dtype == ke.float64      # an ndarray keeps its dtype
    assert ke.Variable(3).dtype == ke.int32
    with ke.Session() as sess:
        assert ke.report_uninitialized_variables([v], session=sess) == ["v"]
        sess.run(v.initializer)
        assert sess.run(v.assign([5.0, 6.0])).tolist() == [5.0, 6.0]
        sess.run(v.assign_add([1.0, 1.0]))
        sess.run(v.assign_sub([0.5, 0.5]))
        assert sess.run(v).tolist() == [5.5, 6.5]
        v.load([9.0, 8.0], sess)
        assert v.eval(sess).tolist() == [9.0, 8.0]
        with pytest.raises(InvalidArgumentError, match="shape"):
            v.load([1.0, 2.0, 3.0], sess)
        assert sess.run(v.initialized_value()).tolist() == [1.0, 2.0]
    with pytest.raises(InvalidArgumentError):
        v.assign([1.0, 2.0, 3.0])
    with pytest.raises(InvalidArgumentError, match="fully defined"):
        ke.Variable(ke.placeholder(ke.float32, [None]))


def test_trainable_variables_share_one_slab(fresh_graph):
    a = ke.Variable(np.ones((2, 3), np.float32))
    b = ke.Variable(np.zeros(4, np.float32))
    frozen = ke.Variable(np.zeros(2, np.float32), trainable=False)
    with ke.Session() as sess:
        sess.run(ke.global_variables_initializer())
        va, vb, vf = sess._values[a.op], sess._values[b.op], sess._values[frozen.op]
        assert va.base is not None and va.base is vb.base and va.base.size == 10
        assert not np.shares_memory(vf, va.base)
        # the slab is laid out back to back: writing through the slab is visible in each variable
        va.base[...] = np.arange(10)
        assert sess.run(a).ravel().tolist() == [0, 1, 2, 3, 4, 5] and sess.run(b).tolist() == [6, 7, 8, 9]


def test_variables_are_per_session(fresh_graph):
    v = ke.Variable(1.0)
    s1, s2 = ke.Session(), ke.Session()
    s1.run(v.initializer)
    s2.run(v.initializer)
    s1.run(v.assign(5.0))
    assert s1.run(v) == 5.0 and s2.run(v) == 1.0
