"""Eager execution and GradientTape, against NumPy values and hand-derived gradients."""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError


@pytest.fixture(autouse=True)
def eager():
    ke.enable_eager_execution()
    yield
    from kestimator.engine import eager as eager_mod
    eager_mod.disable_eager_execution()


R = np.random.default_rng(5)


def test_ops_run_at_once():
    assert ke.executing_eagerly()
    a = R.standard_normal((3, 4))
    b = R.standard_normal((4, 2))
    y = ke.matmul(ke.constant(a), ke.constant(b)) + 1.0
    assert isinstance(y, ke.EagerTensor) and isinstance(y.numpy(), np.ndarray)
    np.testing.assert_allclose(y.numpy(), a @ b + 1.0, rtol=1e-12)
    np.testing.assert_allclose(ke.reduce_mean(ke.constant(a), axis=0).numpy(), a.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(ke.nn.softmax(ke.constant(a)).numpy(),
                               np.exp(a) / np.exp(a).sum(axis=1, keepdims=True), rtol=1e-12)
    assert y.shape.as_list() == [3, 2] and float(ke.reduce_sum(ke.constant([1.0, 2.0]))) == 3.0


def test_gradient_of_a_small_network():
    """loss = sum(tanh(x @ w + b)^2): dL/dz = 2 t (1 - t^2) with t = tanh(z); dL/dw = x^T dL/dz."""
    x = R.standard_normal((5, 3))
    w0 = R.standard_normal((3, 2))
    b0 = R.standard_normal(2)
    w = ke.Variable(w0)
    b = ke.Variable(b0)
    with ke.GradientTape() as tape:
        t = ke.tanh(ke.matmul(ke.constant(x), w) + b)
        loss = ke.reduce_sum(ke.square(t))
    gw, gb = tape.gradient(loss, [w, b])
    tz = np.tanh(x @ w0 + b0)
    dz = 2 * tz * (1 - tz ** 2)
    np.testing.assert_allclose(gw.numpy(), x.T @ dz, rtol=1e-10)
    np.testing.assert_allclose(gb.numpy(), dz.sum(axis=0), rtol=1e-10)
    assert loss.numpy() == pytest.approx(np.sum(tz ** 2), rel=1e-12)


def test_watch_constants_persistent_and_unconnected():
    x = ke.constant(3.0)
    other = ke.constant(1.0)
    with ke.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x * x          # dy/dx = 3 x^2 = 27
        z = ke.exp(x)          # dz/dx = e^3
    assert tape.gradient(y, x).numpy() == pytest.approx(27.0)
    assert tape.gradient(z, x).numpy() == pytest.approx(np.exp(3.0))
    assert tape.gradient(y, other) is None
    with ke.GradientTape() as once:
        once.watch(x)
        y = x * 2.0
    once.gradient(y, x)
    with pytest.raises(InvalidArgumentError, match="only once"):
        once.gradient(y, x)


def test_reused_value_accumulates_gradients():
    # c = a*a + a (a used three times): dc/da = 2a + 1 = 7 at a = 3 (micrograd's node-reuse case)
    a = ke.Variable(3.0)
    with ke.GradientTape() as tape:
        c = a * a + a
    assert tape.gradient(c, a).numpy() == pytest.approx(7.0)


def test_stop_recording_and_not_trainable():
    v = ke.Variable(2.0)
    frozen = ke.Variable(5.0, trainable=False)
    with ke.GradientTape() as tape:
        y = v * frozen
        with tape.stop_recording():
            ignored = v * 100.0
        y = y + ignored * 0.0
    gv, gf = tape.gradient(y, [v, frozen])
    assert gv.numpy() == pytest.approx(5.0)   # only y = v * frozen was recorded
    assert gf is None                         # untrainable variables are not watched automatically


def test_variables_and_python_control_flow():
    v = ke.Variable([1.0, 2.0])
    v.assign_add([1.0, 1.0])
    v.assign_sub([0.5, 0.5])
    assert v.numpy().tolist() == [1.5, 2.5]
    rows = ke.constant([[1.0, 2.0], [3.0, 4.0]])
    total = sum(float(ke.reduce_sum(r)) for r in rows if float(ke.reduce_sum(r)) > 4)
    assert total == 7.0
    with pytest.raises(InvalidArgumentError):
        ke.matmul(ke.constant(np.ones((2, 3))), ke.constant(np.ones((2, 3))))
