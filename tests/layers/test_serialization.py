"""The registry's safety rules and the Keras-facing initializers, regularizers, constraints and
activations modules; the TF1 functional `dense` helper."""
import numpy as np
import pytest

import kestimator.layers as L
from kestimator import activations, constraints, initializers, regularizers
from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError, UnsafeFileError
from kestimator.layers import registry


def test_registry_refuses_unknown_and_module_path_classes():
    with pytest.raises(UnsafeFileError, match=r"layer 'evil'.*module path"):
        registry.deserialize({"class_name": "os.system", "config": {"name": "evil"}})
    with pytest.raises(UnsafeFileError, match=r"layer 'x'.*unknown class 'MyLayer'"):
        registry.deserialize({"class_name": "MyLayer", "config": {"name": "x"}})
    with pytest.raises(UnsafeFileError, match=r"layer 'mine'.*keras.src.layers.Dense"):
        registry.deserialize({"class_name": "keras.src.layers.Dense", "config": {"name": "mine"}})


class MyLayer(L.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return dict(super().get_config(), factor=self.factor)


def test_registry_custom_objects_and_register():
    layer = registry.deserialize({"class_name": "MyLayer", "config": {"name": "m", "factor": 3.0}},
                                 custom_objects={"MyLayer": MyLayer})
    assert isinstance(layer, MyLayer) and layer.factor == 3.0
    registry.register("MyLayer", MyLayer)
    assert registry.get_layer_class("MyLayer") is MyLayer


def test_nested_unknown_objects_in_a_file_are_unsafe():
    cfg = registry.serialize(L.Dense(2))
    cfg["config"]["kernel_initializer"] = {"class_name": "Evil", "config": {}}
    with pytest.raises(UnsafeFileError, match="Evil"):
        registry.deserialize(cfg)
    cfg = registry.serialize(L.Dense(2))
    cfg["config"]["activation"] = "builtins.eval"
    with pytest.raises(UnsafeFileError, match="builtins.eval"):
        registry.deserialize(cfg)
    # in user code the same mistake is an InvalidArgumentError
    with pytest.raises(InvalidArgumentError, match="unknown activation"):
        L.Dense(2, activation="no_such")


def test_initializers_round_trip_and_values():
    for name in ("glorot_uniform", "he_normal", "orthogonal", "zeros", "lecun_uniform", "truncated_normal"):
        init = initializers.get(name)
        again = initializers.deserialize(initializers.serialize(init))
        assert type(again) is type(init) and again.get_config() == init.get_config()
    assert initializers.serialize(initializers.Identity(gain=2.0))["config"] == {"gain": 2.0}
    # he_uniform: limit sqrt(6 / fan_in) = sqrt(6 / 50) for a (50, 10) kernel
    sample = initializers.HeUniform().sample(np.random.default_rng(0), (50, 10), np.float32)
    assert np.abs(sample).max() <= np.sqrt(6 / 50) and np.abs(sample).max() > 0.9 * np.sqrt(6 / 50)
    with pytest.raises(UnsafeFileError, match="nope"):
        initializers.deserialize({"class_name": "nope", "config": {}})


def test_regularizers_values():
    x = np.array([[1.0, -2.0], [3.0, 0.5]], np.float32)
    ke.enable_eager_execution()
    try:
        # l1: 0.1 * (1 + 2 + 3 + 0.5) = 0.65; l2: 0.2 * (1 + 4 + 9 + 0.25) = 2.85
        np.testing.assert_allclose(regularizers.L1(0.1)(x).numpy(), 0.65, rtol=1e-6)
        np.testing.assert_allclose(regularizers.l2(0.2)(x).numpy(), 2.85, rtol=1e-6)
        np.testing.assert_allclose(regularizers.l1_l2(0.1, 0.2)(x).numpy(), 3.5, rtol=1e-6)
    finally:
        from kestimator.engine import eager
        eager.disable_eager_execution()
    cfg = regularizers.serialize(regularizers.L1L2(l1=0.01, l2=0.02))
    assert cfg["class_name"] == "L1L2" and cfg["config"] == {"l1": float(np.float32(0.01)),
                                                              "l2": float(np.float32(0.02))}
    assert regularizers.deserialize(cfg).get_config() == cfg["config"]
    assert regularizers.get("l2").get_config() == {"l2": float(np.float32(0.01))}


def test_constraints_project_numpy_arrays():
    w = np.array([[3.0, 0.1], [4.0, -0.2]], np.float32)
    # MaxNorm(2) per column (axis 0): column norms 5 and ~0.224 -> first column scaled to norm 2
    out = constraints.MaxNorm(2)(w)
    np.testing.assert_allclose(np.linalg.norm(out, axis=0), [2.0, np.hypot(0.1, 0.2)], rtol=1e-5)
    np.testing.assert_allclose(constraints.NonNeg()(w), [[3.0, 0.1], [4.0, 0.0]])
    np.testing.assert_allclose(np.linalg.norm(constraints.UnitNorm()(w), axis=0), [1.0, 1.0], rtol=1e-5)
    mm = constraints.MinMaxNorm(min_value=1.0, max_value=1.5)(w)
    np.testing.assert_allclose(np.linalg.norm(mm, axis=0), [1.5, 1.0], rtol=1e-5)
    cfg = constraints.serialize(constraints.max_norm(3, axis=1))
    assert cfg["class_name"] == "MaxNorm" and constraints.deserialize(cfg).get_config() == {"max_value": 3, "axis": 1}


def test_constraint_applied_after_optimizer_step():
    from kestimator import optimizers
    layer = L.Dense(1, kernel_initializer="ones", use_bias=False, kernel_constraint="non_neg")
    layer.build((None, 2))
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(ke.float32, [None, 2])
        loss = ke.reduce_sum(layer(ph))
        train = optimizers.SGD(learning_rate=2.0).minimize(loss, var_list=[layer.kernel.variable(g)])
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            sess.run(train, {ph: [[1.0, 0.25]]})
            # kernel - 2 * (1, 0.25) = (-1, 0.5) -> projected to (0, 0.5)
            np.testing.assert_allclose(sess.run(layer.kernel.variable(g)), [[0.0], [0.5]])


def test_activations_get_and_serialize():
    assert activations.serialize(ke.nn.relu) == "relu"
    assert activations.serialize(ke.nn.softmax) == "softmax"
    assert activations.serialize(activations.get("gelu")) == "gelu"
    assert activations.serialize(None) == "linear"
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    ke.enable_eager_execution()
    try:
        def run(name, **kw):
            return activations.get(name)(ke.constant(x, ke.float64), **kw).numpy()
        np.testing.assert_allclose(run("relu"), np.maximum(x, 0))
        np.testing.assert_allclose(run("elu"), np.where(x > 0, x, np.expm1(x)), rtol=1e-12)
        np.testing.assert_allclose(run("selu"), 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 *
                                                                              np.expm1(x)), rtol=1e-12)
        np.testing.assert_allclose(run("softplus"), np.log1p(np.exp(x)), rtol=1e-12)
        np.testing.assert_allclose(run("softsign"), x / (1 + np.abs(x)), rtol=1e-12)
        np.testing.assert_allclose(run("swish"), x / (1 + np.exp(-x)), rtol=1e-12)
        np.testing.assert_allclose(run("hard_sigmoid"), np.clip(0.2 * x + 0.5, 0, 1), rtol=1e-12)
        np.testing.assert_allclose(run("leaky_relu"), np.where(x > 0, x, 0.2 * x), rtol=1e-12)
        np.testing.assert_allclose(run("linear"), x)
        # gelu (exact): x * Phi(x); Phi(0.5) = 0.691462461274013, Phi(-0.5) = 0.308537538725987
        np.testing.assert_allclose(run("gelu")[1], -0.5 * 0.308537538725987, rtol=1e-7)
        np.testing.assert_allclose(run("gelu")[3], 0.5 * 0.691462461274013, rtol=1e-7)
    finally:
        from kestimator.engine import eager
        eager.disable_eager_execution()
    with pytest.raises(UnsafeFileError):
        activations.deserialize("os.system")


def test_tf1_dense_helper_creates_named_graph_variables():
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 4])
        h = L.dense(x, 8, activation=ke.nn.relu)
        y = L.dense(h, 3)
        names = sorted(v.op.name for v in ke.global_variables())
        assert names == ["dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"]
        assert tuple(y.shape) == (None, 3)
        again = L.dense(x, 8, activation=ke.nn.relu, name="dense", reuse=True)
        assert len(ke.global_variables()) == 4
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            xv = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
            kh, bh, k1, b1 = (sess.run(g.get_tensor_by_name(n + ":0")) for n in
                              ("dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"))
            expected = np.maximum(xv @ kh + bh, 0) @ k1 + b1
            np.testing.assert_allclose(sess.run(y, {x: xv}), expected, rtol=1e-5)
            np.testing.assert_allclose(sess.run(again, {x: xv}), np.maximum(xv @ kh + bh, 0), rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match="last dimension"):
        with ke.Graph().as_default():
            L.dense(ke.placeholder(ke.float32, [None, None]), 2)


@pytest.mark.parametrize("module, kind, name, cls", [(constraints, "constraint", "non_neg", constraints.NonNeg),
                                                     (regularizers, "regularizer", "l2", regularizers.L2)])
def test_constraints_and_regularizers_share_the_keras_serialization_rules(module, kind, name, cls):
    # a plain string builds the default object; an instance round-trips through Keras's JSON form
    assert type(module.get(name)) is cls and type(module.deserialize(name)) is cls
    obj = module.get(name)
    cfg = module.serialize(obj)
    assert cfg == {"module": f"keras.{kind}s", "class_name": cls.__name__, "config": obj.get_config(),
                   "registered_name": None}
    assert module.get(cfg).get_config() == obj.get_config() and module.get(obj) is obj
    assert module.serialize(None) is None and module.get(None) is None

    # functions serialize by name; custom objects resolve by name (a class is instantiated, a function kept)
    def scale_down(w):
        return w
    assert module.serialize(scale_down) == "scale_down" and module.get(scale_down) is scale_down
    assert module.deserialize("scale_down", custom_objects={"scale_down": scale_down}) is scale_down
    assert type(module.deserialize({"class_name": "Mine", "config": {}}, custom_objects={"Mine": cls})) is cls
    assert type(module.deserialize(name, custom_objects={name: cls})) is cls

    # unknown names: UnsafeFileError from deserialize (file contents), InvalidArgumentError from get (user code)
    with pytest.raises(UnsafeFileError, match=f"unknown {kind} 'os.system'"):
        module.deserialize("os.system")
    with pytest.raises(UnsafeFileError, match=f"unknown {kind} class 'Evil'"):
        module.deserialize({"class_name": "Evil", "config": {}})
    with pytest.raises(InvalidArgumentError, match=f"unknown {kind} 'nope'"):
        module.get("nope")
    with pytest.raises(InvalidArgumentError, match=f"{kind} config must be a name"):
        module.deserialize({"config": {}})
    with pytest.raises(InvalidArgumentError, match=f"as a {kind}"):
        module.get(3)
    with pytest.raises(InvalidArgumentError, match=f"cannot serialize {kind}"):
        module.serialize(object())
