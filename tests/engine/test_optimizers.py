"""Optimizers through the engine: each update against a NumPy re-implementation of its formula (3 float64
steps) and against TensorFlow's trajectories (tests/fixtures/optimizer_trajectories.json, written by
make_optimizer_trajectories.py); the fused flat-slab update path; TF1 learning-rate decays."""
import json
import math
import os

import numpy as np
import pytest

from kestimator import engine as ke
from kestimator import optimizers as kopt
from kestimator.engine import train
from kestimator.optimizers import base as opt_base

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
with open(os.path.join(FIXTURES, "optimizer_trajectories.json")) as _f:
    TF_TRAJECTORIES = json.load(_f)


def problem():
    """The same problem as make_optimizer_trajectories.py."""
    rng = np.random.default_rng(7)
    return {"x": rng.standard_normal((8, 3)), "y": rng.standard_normal((8, 2)),
            "w0": rng.standard_normal((3, 2)), "b0": rng.standard_normal(2)}


def numpy_grads(p, w, b):
    r = p["x"] @ w + b - p["y"]
    scale = 2.0 / r.size          # d mean(r^2) / dr
    return scale * p["x"].T @ r, scale * r.sum(axis=0)


# -- NumPy references: one step on flat float64 params; `s` is the slot dict -----------------------------
# The learning rate is held as float32 (a float32 variable, as TF1 and Keras hold it too), so a float64
# model steps with float32(0.1) = 0.10000000149011612: the references use LR, not 0.1.
LR = float(np.float32(0.1))


def ref_sgd(lr, momentum=0.0, nesterov=False):
    def step(p, g, s, t):
        if not momentum:
            return p - lr * g
        s["v"] = momentum * s.get("v", 0.0) - lr * g
        return p + (momentum * s["v"] - lr * g if nesterov else s["v"])
    return step


def ref_tf1_momentum(lr, momentum, nesterov=False):
    def step(p, g, s, t):
        s["a"] = momentum * s.get("a", 0.0) + g
        return p - lr * (g + momentum * s["a"] if nesterov else s["a"])
    return step


def ref_adam(lr, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.0):
    def step(p, g, s, t):
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        v = s["v"]
        if amsgrad:
            v = s["vh"] = np.maximum(s.get("vh", 0.0), s["v"])
        p = p - lr * wd * p
        return p - lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * s["m"] / (np.sqrt(v) + eps)
    return step


def ref_adagrad(lr, init=0.1, eps=1e-7, eps_inside=False):
    """ks.optimizers.Adagrad documents lr * g / (sqrt(acc) + eps); TF1 has eps = 0."""
    def step(p, g, s, t):
        s["acc"] = s.get("acc", init) + g * g
        return p - lr * g / (np.sqrt(s["acc"] + eps) if eps_inside else np.sqrt(s["acc"]) + eps)
    return step


def ref_rmsprop(lr, rho=0.9, momentum=0.0, eps=1e-7, centered=False, ms0=0.0, eps_inside=False):
    """RMSprop: lr * g / sqrt(ms + eps) (eps inside the root, as tf.keras); TF1 also
    starts ms at 1."""
    def step(p, g, s, t):
        s["ms"] = rho * s.get("ms", ms0) + (1 - rho) * g * g
        denom = s["ms"]
        if centered:
            s["mg"] = rho * s.get("mg", 0.0) + (1 - rho) * g
            denom = denom - s["mg"] ** 2
        inc = lr * g / (np.sqrt(denom + eps) if eps_inside else np.sqrt(denom) + eps)
        s["mom"] = momentum * s.get("mom", 0.0) + inc
        return p - s["mom"]
    return step


def ref_ftrl(lr, l1, l2, power=-0.5, init=0.1):
    def step(p, g, s, t):
        acc = s.get("acc", init)
        new_acc = acc + g * g
        s["lin"] = s.get("lin", 0.0) + g - (new_acc ** -power - acc ** -power) / lr * p
        s["acc"] = new_acc
        quad = new_acc ** -power / lr + 2 * l2
        return np.where(np.abs(s["lin"]) > l1, (np.sign(s["lin"]) * l1 - s["lin"]) / quad, 0.0)
    return step


CASES = {
    # name: (optimizer factory, NumPy reference, key in the TF fixture or None)
    "sgd": (lambda: kopt.SGD(0.1), ref_sgd(LR), ("keras", "SGD")),
    "sgd_momentum": (lambda: kopt.SGD(0.1, momentum=0.9), ref_sgd(LR, 0.9), ("keras", "SGDMomentum")),
    "sgd_nesterov": (lambda: kopt.SGD(0.1, momentum=0.9, nesterov=True), ref_sgd(LR, 0.9, True),
                     ("keras", "SGDNesterov")),
    "adam": (lambda: kopt.Adam(0.1), ref_adam(LR), ("keras", "Adam")),
    "adam_amsgrad": (lambda: kopt.Adam(0.1, amsgrad=True), ref_adam(LR, amsgrad=True), ("keras", "AdamAmsgrad")),
    "adamw": (lambda: kopt.AdamW(0.1, weight_decay=0.05), ref_adam(LR, wd=0.05), ("keras", "AdamW")),
    "adagrad": (lambda: kopt.Adagrad(0.1), ref_adagrad(LR), ("keras", "Adagrad")),
    "rmsprop": (lambda: kopt.RMSprop(0.1), ref_rmsprop(LR, eps_inside=True), ("keras", "RMSprop")),
    "rmsprop_centered_momentum": (lambda: kopt.RMSprop(0.1, momentum=0.5, centered=True),
                                  ref_rmsprop(LR, momentum=0.5, centered=True, eps_inside=True),
                                  ("keras", "RMSpropCenteredMomentum")),
    "ftrl": (lambda: kopt.Ftrl(0.1, l1_regularization_strength=0.01, l2_regularization_strength=0.02),
             ref_ftrl(LR, 0.01, 0.02), ("tf1", "Ftrl")),
    "tf1_gd": (lambda: train.GradientDescentOptimizer(0.1), ref_sgd(LR), ("tf1", "GradientDescent")),
    "tf1_momentum": (lambda: train.MomentumOptimizer(0.1, 0.9), ref_tf1_momentum(LR, 0.9), ("tf1", "Momentum")),
    "tf1_nesterov": (lambda: train.MomentumOptimizer(0.1, 0.9, use_nesterov=True),
                     ref_tf1_momentum(LR, 0.9, True), ("tf1", "MomentumNesterov")),
    "tf1_adam": (lambda: train.AdamOptimizer(0.1), ref_adam(LR, eps=1e-8), ("tf1", "Adam")),
    "tf1_adagrad": (lambda: train.AdagradOptimizer(0.1), ref_adagrad(LR, eps=0.0, eps_inside=True),
                    ("tf1", "Adagrad")),
    "tf1_rmsprop": (lambda: train.RMSPropOptimizer(0.1), ref_rmsprop(LR, eps=1e-10, ms0=1.0, eps_inside=True),
                    ("tf1", "RMSProp")),
    "tf1_rmsprop_centered": (lambda: train.RMSPropOptimizer(0.1, momentum=0.5, centered=True),
                             ref_rmsprop(LR, momentum=0.5, eps=1e-10, centered=True, ms0=1.0, eps_inside=True),
                             ("tf1", "RMSPropCenteredMomentum")),
    "tf1_ftrl": (lambda: train.FtrlOptimizer(0.1, l1_regularization_strength=0.01, l2_regularization_strength=0.02),
                 ref_ftrl(LR, 0.01, 0.02), ("tf1", "Ftrl")),
}


def run_engine(make_opt, p, steps=3):
    g = ke.Graph()
    with g.as_default():
        w = ke.Variable(p["w0"], name="w")
        b = ke.Variable(p["b0"], name="b")
        loss = ke.reduce_mean(ke.square(ke.matmul(ke.constant(p["x"]), w) + b - ke.constant(p["y"])))
        step = make_opt().minimize(loss)
    out = []
    with ke.Session(graph=g) as sess:
        sess.run(ke.global_variables_initializer())
        for _ in range(steps):
            sess.run(step)
            out.append(sess.run([w, b]))
    return out


def run_numpy(ref, p, steps=3):
    w, b = p["w0"].copy(), p["b0"].copy()
    slots, out = {}, []
    for t in range(1, steps + 1):
        gw, gb = numpy_grads(p, w, b)
        flat = ref(np.concatenate([w.ravel(), b]), np.concatenate([gw.ravel(), gb]), slots, t)
        w, b = flat[:w.size].reshape(w.shape), flat[w.size:]
        out.append([w, b])
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_update_matches_numpy_formula(name):
    make_opt, ref, _ = CASES[name]
    p = problem()
    got = run_engine(make_opt, p)
    expected = run_numpy(ref, p)
    for step, ((w, b), (rw, rb)) in enumerate(zip(got, expected)):
        assert w.dtype == np.float64
        np.testing.assert_allclose(w, rw, rtol=1e-12, atol=1e-14, err_msg=f"{name} step {step + 1}")
        np.testing.assert_allclose(b, rb, rtol=1e-12, atol=1e-14, err_msg=f"{name} step {step + 1}")


TF_CASES = sorted(CASES)


@pytest.mark.parametrize("name", TF_CASES)
def test_update_matches_tensorflow(name):
    """Against TensorFlow's own trajectories. TF holds hyperparameters (beta_2 = 0.999, momentum, rho) as
    float32 before casting them to float64, and 1 - float32(0.999) is off by 1.3e-5 relative, so the
    trajectories agree to ~1e-6 relative, not bitwise; a formula error shows up as >= 1e-4."""
    make_opt, _, (family, key) = CASES[name]
    got = run_engine(make_opt, problem())
    for step, ((w, b), (tw, tb)) in enumerate(zip(got, TF_TRAJECTORIES[family][key])):
        np.testing.assert_allclose(w, tw, rtol=2e-5, atol=2e-6, err_msg=f"{name} vs TF step {step + 1}")
        np.testing.assert_allclose(b, tb, rtol=2e-5, atol=2e-6, err_msg=f"{name} vs TF step {step + 1}")


def test_tf1_defaults():
    adam = train.AdamOptimizer()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.name) == (0.001, 0.9, 0.999, 1e-8, "Adam")
    rms = train.RMSPropOptimizer(0.01)
    assert (rms.rho, rms.momentum, rms.epsilon, rms.name) == (0.9, 0.0, 1e-10, "RMSProp")
    assert train.AdagradOptimizer(0.1).initial_accumulator_value == 0.1
    assert train.GradientDescentOptimizer(0.5).name == "GradientDescent"
    assert isinstance(train.MomentumOptimizer(0.1, 0.9), kopt.SGD) and isinstance(adam, train.Optimizer)
    with pytest.raises(ke.errors.InvalidArgumentError):
        train.AdagradOptimizer(0.1, initial_accumulator_value=0.0)


# -- the flat slab path ---------------------------------------------------------------------------------
def test_multi_variable_update_runs_once_over_the_whole_slab(monkeypatch):
    """Three trainable variables, one Adam step: `_update` is called ONCE with flat views that cover the
    session's variable slab and the plan's contiguous gradient buffer (not once per variable)."""
    calls = []
    real_update = kopt.Adam._update

    def spy(self, var, grad, slots, lr, t):
        calls.append((var, grad, dict(slots)))
        return real_update(self, var, grad, slots, lr, t)
    monkeypatch.setattr(kopt.Adam, "_update", spy)
    layouts = []
    real_layout = opt_base._UpdateKernel._layout

    def spy_layout(self, vars_, grads, slots):
        out = real_layout(self, vars_, grads, slots)
        layouts.append(out)
        return out
    monkeypatch.setattr(opt_base._UpdateKernel, "_layout", spy_layout)

    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 4])
        w1 = ke.Variable(np.full((4, 5), 0.1, np.float32), name="w1")
        b1 = ke.Variable(np.zeros(5, np.float32), name="b1")
        w2 = ke.Variable(np.full((5, 1), 0.2, np.float32), name="w2")
        loss = ke.reduce_mean(ke.square(ke.matmul(ke.nn.relu(ke.matmul(x, w1) + b1), w2) - 1.0))
        step = kopt.Adam(0.01).minimize(loss)
    with ke.Session(graph=g) as sess:
        sess.run(ke.global_variables_initializer())
        run = sess.make_callable(step, [x])
        run(np.ones((3, 4), np.float32))
        run(np.ones((3, 4), np.float32))
        slab_w1 = sess._values[w1.op]
        n = 4 * 5 + 5 + 5
        assert len(calls) == 2 and all(layout is not None for layout in layouts)
        for var, grad, slots in calls:
            assert var.size == grad.size == n and var.ndim == 1
            assert np.shares_memory(var, slab_w1) and np.shares_memory(var, sess._values[w2.op])
            assert set(slots) == {"m", "v"} and all(s.size == n for s in slots.values())
        # the update really wrote through the views: the variables moved
        assert not np.allclose(sess.run(w1), 0.1)


# -- TF1 decays -----------------------------------------------------------------------------------------------
def _values_over_steps(make, steps):
    g = ke.Graph()
    with g.as_default():
        gs = train.get_or_create_global_step()
        lr = make(gs)
    out = []
    with ke.Session(graph=g) as sess:
        for s in steps:
            gs.load(s, sess)
            out.append(float(sess.run(lr)))
    return out


STEPS = [0, 1, 5, 9, 10, 11, 25, 100]


def test_exponential_decay():
    got = _values_over_steps(lambda gs: train.exponential_decay(0.1, gs, 10, 0.5), STEPS)
    np.testing.assert_allclose(got, [0.1 * 0.5 ** (s / 10) for s in STEPS], rtol=1e-6)
    got = _values_over_steps(lambda gs: train.exponential_decay(0.1, gs, 10, 0.5, staircase=True), STEPS)
    np.testing.assert_allclose(got, [0.1 * 0.5 ** (s // 10) for s in STEPS], rtol=1e-6)
    with pytest.raises(ke.errors.InvalidArgumentError, match="global_step"):
        train.exponential_decay(0.1, None, 10, 0.5)


def test_piecewise_constant_boundaries_are_inclusive_below():
    # TF: values[0] for x <= 5, values[1] for 5 < x <= 10, values[2] for x > 10
    got = _values_over_steps(lambda gs: train.piecewise_constant(gs, [5, 10], [1.0, 0.5, 0.1]), [0, 5, 6, 10, 11, 99])
    np.testing.assert_allclose(got, [1.0, 1.0, 0.5, 0.5, 0.1, 0.1], rtol=1e-7)
    with pytest.raises(ke.errors.InvalidArgumentError):
        train.piecewise_constant(ke.constant(1), [5, 10], [1.0, 0.5])


def test_cosine_polynomial_inverse_time():
    got = _values_over_steps(lambda gs: train.cosine_decay(2.0, gs, 20, alpha=0.1), STEPS)
    ref = [2.0 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(s, 20) / 20)) + 0.1) for s in STEPS]
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)
    got = _values_over_steps(lambda gs: train.polynomial_decay(1.0, gs, 20, 0.01, power=2.0), STEPS)
    ref = [(1.0 - 0.01) * (1 - min(s, 20) / 20) ** 2 + 0.01 for s in STEPS]
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    got = _values_over_steps(lambda gs: train.polynomial_decay(1.0, gs, 20, 0.0, cycle=True), [0, 10, 20, 30, 40])
    # cycle: decay_steps becomes 20 * ceil(step / 20) (at least 20): 1, 0.5, 0, 1 - 30/40, 0
    np.testing.assert_allclose(got, [1.0, 0.5, 0.0, 0.25, 0.0], atol=1e-7)
    got = _values_over_steps(lambda gs: train.inverse_time_decay(1.0, gs, 10, 0.5, staircase=True), STEPS)
    np.testing.assert_allclose(got, [1.0 / (1 + 0.5 * (s // 10)) for s in STEPS], rtol=1e-6)


def test_decayed_learning_rate_tensor_drives_the_optimizer():
    """GradientDescentOptimizer(exponential_decay(...)) with minimize(global_step=...): each step uses the
    rate at the step count before the increment: w_t+1 = w_t - 0.5 * 0.5^(t/2) * 2 w_t for loss = w^2."""
    g = ke.Graph()
    with g.as_default():
        w = ke.Variable(np.array([3.0]), name="w")
        gs = train.get_or_create_global_step()
        lr = train.exponential_decay(0.5, gs, 2, 0.5)
        step = train.GradientDescentOptimizer(lr).minimize(ke.reduce_sum(ke.square(w)), global_step=gs)
    ref = 3.0
    with ke.Session(graph=g) as sess:
        sess.run(ke.global_variables_initializer())
        for t in range(4):
            sess.run(step)
            ref = ref - 0.5 * 0.5 ** (t / 2) * 2 * ref
            np.testing.assert_allclose(sess.run(w), [ref], rtol=1e-6)
        assert sess.run(gs) == 4
