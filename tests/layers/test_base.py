"""The Layer base: weights and their graph variables, live values, naming, freezing, nested layers,
losses and updates, the functional API's KerasTensors and Nodes, eager use."""
import numpy as np
import pytest

import kestimator.layers as L
from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError
from kestimator.layers import base


def test_names_are_unique_per_class_and_reset():
    base.reset_uids()
    assert [L.Dense(1).name, L.Dense(1).name, L.Conv2D(1, 1).name, L.LeakyReLU().name] == \
        ["dense", "dense_1", "conv2d", "leaky_re_lu"]
    assert [L.InputLayer(input_shape=(2,)).name, L.Input((3,)).name] == ["input_1", "input_2"]
    base.reset_uids()
    assert L.Dense(1).name == "dense"


def test_direct_build_names_weights_and_marks_built():
    layer = L.Dense(3, name="d")
    layer.build((None, 4))
    assert layer.built and [w.name for w in layer.weights] == ["d/kernel:0", "d/bias:0"]
    assert layer.count_params() == 15
    with pytest.raises(InvalidArgumentError, match="not built"):
        L.Dense(2).count_params()


def test_weight_variable_per_graph_reads_value_at_initialization():
    layer = L.Dense(2, name="dd")
    layer.build((None, 3))
    g = ke.Graph()
    with g.as_default():
        var = layer.kernel.variable()
        assert var is layer.kernel.variable(g)          # one Variable per graph
        assert var.op.name == "dd/kernel" and var.trainable and var.slab_group == "trainable"
        layer.kernel.assign(np.full((3, 2), 7.0))       # set after the graph was built, before init
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            np.testing.assert_array_equal(sess.run(var), np.full((3, 2), 7.0))
    g2 = ke.Graph()
    assert layer.kernel.variable(g2) is not var
    bn = L.BatchNormalization()
    bn.build((None, 2))
    mv = bn.moving_mean.variable(g)
    assert not mv.trainable and mv.slab_group is None


def test_attached_weight_reads_and_writes_the_session():
    layer = L.Dense(1, kernel_initializer="ones", use_bias=False)
    layer.build((None, 2))
    g = ke.Graph()
    with g.as_default():
        var = layer.kernel.variable(g)
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            layer.kernel._attach(sess, var)
            var.load(np.array([[2.0], [3.0]]), sess)
            np.testing.assert_array_equal(layer.get_weights()[0], [[2.0], [3.0]])
            layer.set_weights([np.array([[5.0], [6.0]])])
            np.testing.assert_array_equal(sess.run(var), [[5.0], [6.0]])
            layer.kernel._detach()
    np.testing.assert_array_equal(layer.kernel.numpy(), [[5.0], [6.0]])


def test_set_weights_errors_name_layer_and_weight():
    layer = L.Dense(2, name="head")
    layer.build((None, 3))
    with pytest.raises(InvalidArgumentError, match=r"'head'.*head/kernel:0.*\(3, 2\).*\(2, 3\)"):
        layer.set_weights([np.zeros((2, 3)), np.zeros(2)])
    with pytest.raises(InvalidArgumentError, match=r"'head' expects 2 weights"):
        layer.set_weights([np.zeros((3, 2))])


def test_set_random_seed_makes_weights_repeatable():
    base.set_random_seed(42)
    a = L.Dense(4)
    a.build((None, 3))
    base.set_random_seed(42)
    b = L.Dense(4)
    b.build((None, 3))
    np.testing.assert_array_equal(a.kernel.numpy(), b.kernel.numpy())
    c = L.Dense(4, kernel_initializer=ke.initializers.GlorotUniform(seed=3))
    d = L.Dense(4, kernel_initializer=ke.initializers.GlorotUniform(seed=3))
    c.build((None, 3))
    d.build((None, 3))
    np.testing.assert_array_equal(c.kernel.numpy(), d.kernel.numpy())


class Block(L.Layer):
    """A layer holding layers: its weights are its sub-layers' weights."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = L.Dense(3)
        self.norm = L.BatchNormalization()
        self.scale = None

    def build(self, input_shape):
        self.scale = self.add_weight("scale", (1,), initializer="ones")

    def call(self, inputs, training=None):
        return self.norm(self.inner(inputs), training=training) * self.scale


def test_nested_layers_track_weights_in_keras_order():
    block = Block(name="block")
    out = block(L.Input((2,)))
    assert tuple(out.shape) == (None, 3)
    names = [w.name for w in block.weights]
    # own trainable, then the sub-layers' trainable, then the non-trainable ones
    assert names[0] == "block/scale:0"
    assert [n.split("/")[-1] for n in names] == ["scale:0", "kernel:0", "bias:0", "gamma:0", "beta:0",
                                                 "moving_mean:0", "moving_variance:0"]
    assert len(block.trainable_weights) == 5
    block.trainable = False
    assert block.trainable_weights == [] and not block.inner.trainable and len(block.non_trainable_weights) == 7
    block.trainable = True
    assert block.norm.trainable


def test_nested_updates_and_losses_are_collected():
    block = Block()
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(ke.float32, [None, 2])
        block(ph, training=True)
        assert len(block.graph_updates(g)) == 2
    assert block.graph_updates(ke.Graph()) == []


def test_regularizer_and_activity_losses():
    layer = L.Dense(2, kernel_initializer="ones", kernel_regularizer=L.base and "l1",
                    activity_regularizer="l2", use_bias=False)
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(ke.float32, [None, 3])
        y = layer(ph)
        losses = layer.graph_losses(g)
        assert len(losses) == 2
        assert layer.graph_losses(g)[0] is losses[0]     # regularizer ops are made once per graph
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            x = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], np.float32)
            kernel_l1, activity = sess.run(losses, {ph: x})
    # l1: 0.01 * sum|ones(3, 2)| = 0.06; activity l2: 0.01 * sum(y^2) / batch, y rows (6, 6), (1, 1)
    np.testing.assert_allclose(kernel_l1, 0.06, rtol=1e-6)
    np.testing.assert_allclose(activity, 0.01 * (36 + 36 + 1 + 1) / 2, rtol=1e-6)


def test_functional_nodes_record_calls():
    base.reset_uids()
    a, b = L.Input((4,), name="a"), L.Input((4,), name="b")
    shared = L.Dense(2, name="shared")
    ya, yb = shared(a), shared(b)
    merged = L.Add()([ya, yb])
    assert ya._keras_history == (shared, 0, 0) and yb._keras_history == (shared, 1, 0)
    node = merged.node
    assert node.layer.name == "add" and node.input_tensors == [ya, yb]
    assert node.inbound_layers == [shared, shared]
    assert [n.layer.name for n in node.parent_nodes] == ["shared", "shared"]
    args, kwargs = node.map_arguments({ya: "A", yb: "B"}.__getitem__)
    assert args == [["A", "B"]] and kwargs == {}
    assert shared.get_output_at(1) is yb and shared.input is not None
    assert len(a._keras_history[0]._outbound_nodes) == 1


def test_keras_tensor_operators_make_layers():
    x = L.Input((3,))
    y = (x * 2.0 + 1.0)[:, 1:]
    assert tuple(y.shape) == (None, 2)
    layer = y.node.layer
    assert isinstance(layer, L.TFOpLambda) and layer.get_config()["function"] == "__operators__.getitem"
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(ke.float32, [None, 3])
        # replay the recorded chain on an engine tensor
        out = ph
        chain = []
        node = y.node
        while node.layer is not x.node.layer:
            chain.append(node)
            node = node.parent_nodes[0]
        for node in reversed(chain):
            args, kwargs = node.map_arguments(lambda kt: out)
            out = node.layer(*args, **kwargs)
        with ke.Session(graph=g) as sess:
            np.testing.assert_allclose(sess.run(out, {ph: [[1.0, 2.0, 3.0]]}), [[5.0, 7.0]])


def test_symbolic_call_leaves_no_ops_in_default_graph():
    g = ke.Graph()
    with g.as_default():
        L.Dense(2)(L.Input((3,)))
        assert g.get_operations() == []


def test_input_spec_errors_name_layer_and_shapes():
    with pytest.raises(InvalidArgumentError, match=r"layer 'lstm_x'.*expected ndim=3, found ndim=2.*\(None, 4\)"):
        L.LSTM(2, name="lstm_x")(L.Input((4,)))


def test_eager_call_and_gradient_tape_over_weights():
    layer = L.Dense(1, kernel_initializer="ones", bias_initializer="zeros")
    x = np.array([[1.0, 2.0]], np.float32)
    ke.enable_eager_execution()
    try:
        with ke.GradientTape() as tape:
            y = layer(x)
            loss = ke.reduce_sum(y * y)
        grads = tape.gradient(loss, layer.trainable_weights)
    finally:
        from kestimator.engine import eager
        eager.disable_eager_execution()
    # y = 3; d(y^2)/dkernel = 2 y x = (6, 12); d/dbias = 6
    np.testing.assert_allclose(grads[0].numpy(), [[6.0], [12.0]])
    np.testing.assert_allclose(grads[1].numpy(), [6.0])


def test_input_layer_config_and_batch_input_shape():
    layer = L.InputLayer(input_shape=(3, 4), name="pixels", dtype="int32")
    # tf_keras 2.21's keys, "optional" included
    assert layer.get_config() == {"batch_input_shape": [None, 3, 4], "dtype": "int32", "sparse": False,
                                  "ragged": False, "name": "pixels", "optional": False}
    kt = layer._inbound_nodes[0].outputs
    assert kt.name == "pixels" and kt.dtype == ke.int32
    d = L.Dense(2, input_shape=(5,))
    assert d.get_config()["batch_input_shape"] == [None, 5]
    with pytest.raises(InvalidArgumentError, match="sparse"):
        L.Input((2,), sparse=True)


def test_learning_phase_reaches_nested_calls():
    drop = L.Dropout(0.99, seed=1)
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(ke.float32, [None, 100])
        with base.learning_phase_scope(True):
            y = drop(ph)
        with ke.Session(graph=g) as sess:
            out = sess.run(y, {ph: np.ones((4, 100), np.float32)})
    assert (out == 0).mean() > 0.9
