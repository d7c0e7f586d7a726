"""Graph: names and scopes, lookups, collections, control dependencies, devices, and deep graphs."""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError, NotFoundError


def test_unique_names_and_nested_scopes(fresh_graph):
    a = ke.constant(1.0)
    b = ke.constant(2.0)
    c = ke.constant(3.0, name="c")
    c2 = ke.constant(3.0, name="c")
    assert [t.op.name for t in (a, b, c, c2)] == ["Const", "Const_1", "c", "c_1"]
    with ke.name_scope("outer"):
        with ke.name_scope("inner") as scope:
            d = ke.add(a, b, name="sum")
        with ke.name_scope("inner"):       # re-opening a scope name makes it unique
            e = ke.add(a, b, name="sum")
    assert scope == "outer/inner/"
    assert d.name == "outer/inner/sum:0" and e.name == "outer/inner_1/sum:0"
    with ke.name_scope(scope):              # a name ending in "/" re-enters that exact scope
        f = ke.add(a, b, name="sum")
    assert f.name == "outer/inner/sum_1:0"
    assert fresh_graph.get_name_scope() == ""


def test_lookups(fresh_graph):
    x = ke.placeholder(ke.float32, name="x")
    y = ke.identity(x, name="y")
    assert fresh_graph.get_tensor_by_name("y:0") is y
    assert fresh_graph.get_operation_by_name("x") is x.op
    assert y.op.inputs == (x,) and x.consumers == [y.op]
    with pytest.raises(NotFoundError, match="'nope'"):
        fresh_graph.get_operation_by_name("nope")
    with pytest.raises(NotFoundError, match="no output 3"):
        fresh_graph.get_tensor_by_name("y:3")
    with pytest.raises(InvalidArgumentError, match="op_name:index"):
        fresh_graph.get_tensor_by_name("y")


def test_collections(fresh_graph):
    ke.add_to_collection("things", 1)
    ke.add_to_collections(["things", "more"], 2)
    assert ke.get_collection("things") == [1, 2] and ke.get_collection("more") == [2]
    ref = ke.get_collection_ref("things")
    ref.append(3)
    assert ke.get_collection("things") == [1, 2, 3]
    copy = ke.get_collection("things")
    copy.append(4)                           # get_collection returns a copy
    assert ke.get_collection("things") == [1, 2, 3]
    with ke.name_scope("s1"):
        v1 = ke.Variable(1.0, name="v")
    with ke.name_scope("s2"):
        v2 = ke.Variable(1.0, name="v")
    assert ke.get_collection(ke.GraphKeys.GLOBAL_VARIABLES, scope="s1") == [v1]
    assert ke.global_variables() == [v1, v2]
    assert ke.get_collection("empty") == []


def test_control_dependencies_order_side_effects(fresh_graph):
    v = ke.Variable(0.0)
    inc = v.assign_add(5.0)
    with ke.control_dependencies([inc]):
        after = ke.identity(v._as_tensor()) * 1.0
        with ke.control_dependencies(None):   # clears the dependencies inside
            free = ke.constant(1.0) + 0.0
    assert inc.op in after.op.control_inputs or any(inc.op in op.control_inputs for op in
                                                     [after.op] + [t.op for t in after.op.inputs])
    assert free.op.control_inputs == ()
    with ke.Session() as sess:
        sess.run(v.initializer)
        assert sess.run(after) == 5.0
        assert sess.run(after) == 10.0       # each run re-runs the assign first
        assert sess.run(v) == 10.0


def test_ops_from_another_graph_cannot_be_inputs(fresh_graph):
    a = ke.constant(1.0)
    with ke.Graph().as_default():
        b = ke.constant(2.0)
        with pytest.raises(InvalidArgumentError):
            ke.add(a, b)


def test_finalized_graph_refuses_new_ops():
    g = ke.Graph()
    with g.as_default():
        ke.constant(1.0)
        g.finalize()
        with pytest.raises(InvalidArgumentError, match="finalized"):
            ke.constant(2.0)


def test_device_scopes(fresh_graph):
    with ke.device("/cpu:0"):
        a = ke.constant(1.0)
        with ke.device("/device:GPU:1"):
            b = a + 1.0
    c = a * 2.0
    assert a.device == "/job:localhost/replica:0/task:0/device:CPU:0"
    assert b.device == "/job:localhost/replica:0/task:0/device:GPU:1"
    assert c.device == ""
    with pytest.raises(InvalidArgumentError, match="unknown device"):
        ke.device("/tpu:0")


def test_shapes(fresh_graph):
    x = ke.placeholder(ke.float32, [None, 3])
    assert x.shape.as_list() == [None, 3] and x.shape.ndims == 2 and not x.shape.is_fully_defined()
    assert ke.placeholder(ke.float32).shape.ndims is None
    y = ke.matmul(x, ke.constant(np.ones((3, 4), np.float32)))
    assert y.shape.as_list() == [None, 4]
    with pytest.raises(InvalidArgumentError):
        ke.matmul(x, ke.constant(np.ones((2, 4), np.float32)))
    x.set_shape([5, 3])
    assert x.shape.as_list() == [5, 3]
    with pytest.raises(InvalidArgumentError):
        x.set_shape([4, 3])
    assert ke.TensorShape([2, None]).merge_with([None, 7]).as_list() == [2, 7]


def test_ten_thousand_op_chain_through_gradients():
    """A 10,000-op chain: graph building, autodiff and the compiler walk it without recursion.
    y = x * 1.0001^10000 (as 10,000 multiplies), so dy/dx = 1.0001^10000."""
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float64, [], name="x")
        y = x
        for _ in range(10_000):
            y = y * np.float64(1.0001)
        (dx,) = ke.gradients(y, [x])
        with ke.Session() as sess:
            val, grad = sess.run([y, dx], {x: 2.0})
    # reference: the same 10,000 float64 multiplies in NumPy order
    ref = np.float64(2.0)
    gref = np.float64(1.0)
    for _ in range(10_000):
        ref = ref * np.float64(1.0001)
        gref = gref * np.float64(1.0001)
    assert val == pytest.approx(ref, rel=1e-12) and grad == pytest.approx(gref, rel=1e-12)
    assert gref == pytest.approx(1.0001 ** 10_000, rel=1e-9)
