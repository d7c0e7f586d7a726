"""The CPU Plan's fusion pass (engine/cpu_fusion.py): each fused kernel against NumPy formulas, fused and
unfused plans computing the same bits, and the cases that must not fuse (fetched values, traced plans)."""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator import optimizers as kopt
from kestimator.engine import cpu_fusion
from kestimator.errors import InvalidArgumentError

R = np.random.default_rng(11)

pytestmark = pytest.mark.skipif(not cpu_fusion.enabled(), reason="numba is not installed")


@pytest.fixture
def unfused(monkeypatch):
    """A context in which Plans compile without the pass (the reference path)."""
    class _Off:
        def __enter__(self):
            monkeypatch.setattr(cpu_fusion, "enabled", lambda: False)

        def __exit__(self, *exc):
            monkeypatch.undo()
    return _Off


def _mlp_step(dtype=np.float32, n=16, d=12, h=9, k=5, seed=3):
    """A one-hidden-layer classifier graph: (graph, x, y, loss, train op, variables)."""
    rng = np.random.default_rng(seed)
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.as_dtype(dtype), [None, d])
        y = ke.placeholder(ke.int64, [None])
        w1 = ke.Variable(rng.standard_normal((d, h)).astype(dtype) * 0.5, name="w1")
        b1 = ke.Variable(rng.standard_normal(h).astype(dtype) * 0.1, name="b1")
        w2 = ke.Variable(rng.standard_normal((h, k)).astype(dtype) * 0.5, name="w2")
        b2 = ke.Variable(rng.standard_normal(k).astype(dtype) * 0.1, name="b2")
        hidden = ke.nn.relu(ke.matmul(x, w1) + b1)
        logits = ke.matmul(hidden, w2) + b2
        loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        train = kopt.Adam(0.01).minimize(loss)
        init = ke.global_variables_initializer()
    return g, x, y, loss, train, [w1, b1, w2, b2], init


def _train(steps=4, dtype=np.float32, n=16):
    g, x, y, loss, train, variables, init = _mlp_step(dtype)
    rng = np.random.default_rng(5)
    sess = ke.Session(graph=g)
    sess.run(init)
    step = sess.make_callable([loss, train], feed_list=[x, y])
    losses = []
    for _ in range(steps):
        xb = rng.standard_normal((n, 12)).astype(dtype)
        yb = rng.integers(0, 5, n)
        losses.append(step(xb, yb)[0])
    plan = next(p for p in sess._plans.values() if "ApplyOptimizer" in p.kernel_types)
    return np.array(losses), [sess.run(v) for v in variables], plan


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_training_step_fuses_and_computes_the_same_bits(unfused, dtype):
    losses, weights, plan = _train(dtype=dtype)
    with unfused():
        ref_losses, ref_weights, ref_plan = _train(dtype=dtype)
    assert "CpuFused(Add, Relu)" in plan.kernel_types
    assert "CpuFused(ReluGrad, Sum)" in plan.kernel_types
    assert "CpuFused(SparseSoftmaxCrossEntropyWithLogits, Mul)" in plan.kernel_types
    # the mean's gradient (SumGrad -> ExpandDims) was folded with the plan's batch size
    assert "SumGrad" in ref_plan.kernel_types and "SumGrad" not in plan.kernel_types
    assert plan.num_kernels < ref_plan.num_kernels
    np.testing.assert_array_equal(losses, ref_losses)
    for a, b in zip(weights, ref_weights):
        np.testing.assert_array_equal(a, b)


def test_the_bias_gradient_is_written_into_the_optimizer_slab():
    from kestimator.optimizers.base import _UpdateKernel
    _, _, plan = _train(steps=2)
    fused = next(op for op in plan.ops if op.type == "CpuFused(ReluGrad, Sum)")
    update = next(v for v in plan._fn.__globals__.values() if isinstance(v, _UpdateKernel))
    _, total = fused.opdef.kernel(np, {})(np.ones((16, 9), np.float32), np.ones((16, 9), np.float32))
    np.testing.assert_array_equal(total, np.full(9, 16.0, np.float32))   # 16 rows of ones
    grads = update._fast[0][4:8]   # (variables, gradients, m, v) of the last step
    assert any(gr is total for gr in grads)
    assert update._fast[1] is not None   # the gradients still form one flat slab


def _run(build, feeds, fetch_extra=False):
    g = ke.Graph()
    with g.as_default():
        phs = [ke.placeholder(ke.as_dtype(v.dtype), [None] + list(v.shape[1:])) for v in feeds]
        out = build(*phs)
    sess = ke.Session(graph=g)
    got = sess.run(out, dict(zip(phs, feeds)))
    return got, list(sess._plans.values())[-1]


def test_bias_relu_keeps_nan_and_matches_numpy():
    x = R.standard_normal((7, 6)).astype(np.float32)
    x[0, 0], x[1, 1] = np.nan, -np.inf
    b = R.standard_normal(6).astype(np.float32)

    def build(a):
        bias = ke.constant(b)
        return ke.nn.relu(a + bias) * 2.0   # the Mul keeps the relu output unfetched
    got, plan = _run(build, [x])
    assert "CpuFused(Add, Relu)" in plan.kernel_types
    want = np.maximum(x + b, 0) * np.float32(2.0)
    np.testing.assert_array_equal(got, want)   # NaN where x was NaN, 0 for -inf
    assert np.isnan(got[0, 0]) and got[1, 1] == 0


def test_a_fetched_add_is_not_fused():
    x = R.standard_normal((5, 4)).astype(np.float32)
    b = R.standard_normal(4).astype(np.float32)

    def build(a):
        s = a + ke.constant(b)
        return [s, ke.nn.relu(s)]
    (s, r), plan = _run(build, [x])
    assert "CpuFused(Add, Relu)" not in plan.kernel_types
    np.testing.assert_array_equal(s, x + b)
    np.testing.assert_array_equal(r, np.maximum(x + b, 0))


def test_cross_entropy_loss_and_gradient_against_numpy_float64():
    logits = (R.standard_normal((9, 12)) * 4).astype(np.float64)
    labels = R.integers(0, 12, 9)

    def build(a, y):
        loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=a))
        return [loss * 1.0, ke.gradients(loss, [a])[0] * 1.0]
    (loss, grad), plan = _run(build, [logits, labels])
    assert "CpuFused(SparseSoftmaxCrossEntropyWithLogits, Mul)" in plan.kernel_types
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    want_loss = -np.mean(np.log(p[np.arange(9), labels]))
    onehot = np.eye(12)[labels]
    np.testing.assert_allclose(loss, want_loss, rtol=1e-13)
    np.testing.assert_allclose(grad, (p - onehot) / 9, rtol=1e-12, atol=1e-15)


def test_a_label_out_of_range_is_an_error_naming_it():
    logits = R.standard_normal((3, 4)).astype(np.float32)

    def build(a, y):
        loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=a))
        return ke.gradients(loss, [a])[0] * 1.0
    with pytest.raises(InvalidArgumentError, match=r"label 7 is outside the 4 classes"):
        _run(build, [logits, np.array([1, 7, 0], np.int64)])


def test_column_sums_add_rows_in_numpys_order():
    x = (R.standard_normal((300, 7)) * 1e3).astype(np.float32)

    def build(a):
        return ke.reduce_sum(a * 1.0, axis=0) * 1.0
    got, plan = _run(build, [x])
    np.testing.assert_array_equal(got, np.sum(x, axis=0))   # NumPy sums axis 0 row after row


def test_traced_plans_are_not_fused():
    g, x, y, loss, train, variables, init = _mlp_step()
    sess = ke.Session(graph=g)
    sess.run(init)
    xb = np.ones((4, 12), np.float32)
    yb = np.array([0, 1, 2, 3], np.int64)
    plan = sess._plan_for([loss], [train], [x, y], [xb, yb], trace=True)
    assert not any(t.startswith("CpuFused") for t in plan.kernel_types)


def test_adam_kernel_computes_in_float32():
    # the fused loop must not widen to float64: one step equals NumPy's float32 arithmetic in the same order
    from kestimator.optimizers import fused
    kernel = fused.get("adam")
    if kernel is None:
        pytest.skip("numba is not installed")
    n = 4096
    var, g, m, v = (R.standard_normal(n).astype(np.float32) for _ in range(4))
    v = np.abs(v)
    f32 = np.float32
    lr_t, b1, b2, eps = f32(0.01), f32(0.9), f32(0.999), f32(1e-7)
    want_m = b1 * m + (f32(1) - b1) * g
    want_v = b2 * v + (f32(1) - b2) * g * g
    want_var = var * f32(1) - lr_t * want_m / (np.sqrt(want_v) + eps)
    kernel(var, g, m, v, lr_t, b1, b2, eps, f32(1), np.finfo(np.float32).tiny)
    np.testing.assert_array_equal(m, want_m)
    np.testing.assert_array_equal(v, want_v)
    np.testing.assert_array_equal(var, want_var)


def test_make_callable_fast_path_still_converts_and_checks():
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 3])
        out = x * 2.0
    sess = ke.Session(graph=g)
    f = sess.make_callable([out], feed_list=[x])
    np.testing.assert_array_equal(f(np.ones((2, 3), np.float32))[0], np.full((2, 3), 2.0, np.float32))
    got = f(np.ones((2, 3), np.float64))[0]   # converted, same plan
    assert got.dtype == np.float32 and np.all(got == 2.0)
    with pytest.raises(InvalidArgumentError, match="shape"):
        f(np.ones((2, 4), np.float32))


def test_a_full_mean_is_numpys_mean_bit_for_bit():
    x = (R.standard_normal(1001) * 1e3).astype(np.float32)

    def build(a):
        return ke.reduce_mean(a * 1.0) * 1.0   # the Mean's output is an inner value with a buffer
    got, plan = _run(build, [x])
    assert any(isinstance(op, cpu_fusion.CpuFusedOp) and op.type == "Mean" for op in plan.ops)
    assert got == np.mean(x) and got.dtype == np.float32


def test_a_compiled_training_step_allocates_no_arrays():
    # gradient matmuls read transposed views (no ascontiguousarray copies) and every kernel writes into
    # buffers made when the plan was compiled: a copy of x.T alone would be 64 * 600 * 4 = 153,600 bytes
    import tracemalloc
    rng = np.random.default_rng(2)
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 600])
        y = ke.placeholder(ke.int64, [None])
        w1 = ke.Variable(rng.standard_normal((600, 50)).astype(np.float32) * 0.05)
        b1 = ke.Variable(np.zeros(50, np.float32))
        w2 = ke.Variable(rng.standard_normal((50, 10)).astype(np.float32) * 0.1)
        b2 = ke.Variable(np.zeros(10, np.float32))
        logits = ke.matmul(ke.nn.relu(ke.matmul(x, w1) + b1), w2) + b2
        loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        train = kopt.Adam(0.01).minimize(loss)
        init = ke.global_variables_initializer()
    sess = ke.Session(graph=g)
    sess.run(init)
    step = sess.make_callable([train], feed_list=[x, y])
    xb = rng.standard_normal((64, 600)).astype(np.float32)
    yb = rng.integers(0, 10, 64)
    step(xb, yb)
    step(xb, yb)
    tracemalloc.start()
    try:
        step(xb, yb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16_000, peak


# -- N-D tensors (conv layers, NHWC) and the pooling gradient ------------------------------------------------
def test_bias_relu_and_relu_grad_sum_on_nhwc_tensors_compute_the_same_bits(unfused):
    x = R.standard_normal((3, 5, 4, 6)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan
    c = R.standard_normal((3, 5, 4, 6)).astype(np.float32)
    b = R.standard_normal(6).astype(np.float32)

    def build(a):
        bias = ke.Variable(b, name="b")
        y = ke.nn.relu(a + bias)
        loss = ke.reduce_sum(y * ke.constant(c))
        return [y * 1.0, ke.gradients(loss, [bias])[0] * 1.0]

    def run():
        g = ke.Graph()
        with g.as_default():
            a = ke.placeholder(ke.float32, [None, 5, 4, 6])
            fetches = build(a)
            sess = ke.Session(graph=g)
            sess.run(ke.global_variables_initializer())
            got = sess.run(fetches, {a: x})
        return got, list(sess._plans.values())[-1]
    (y, db), plan = run()
    with unfused():
        (ref_y, ref_db), ref_plan = run()
    assert "CpuFused(Add, Relu)" in plan.kernel_types
    assert "CpuFused(ReluGrad, Sum)" in plan.kernel_types
    assert "ReluGrad" in ref_plan.kernel_types
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(db, ref_db)
    # and against NumPy: relu(x + b); the bias gradient is the sum of c where x + b > 0 (NaN: no gradient)
    np.testing.assert_array_equal(y, np.maximum(x + b, 0))
    want = np.sum(np.where(x + b > 0, c, 0).astype(np.float64), axis=(0, 1, 2))
    np.testing.assert_allclose(db, want, rtol=1e-5, atol=1e-5)


def test_column_sums_over_leading_axes_of_a_4d_tensor_match_numpy_bitwise():
    x = (R.standard_normal((4, 9, 7, 5)) * 1e3).astype(np.float32)

    def build(a):
        return ke.reduce_sum(a * 1.0, axis=[0, 1, 2]) * 1.0
    got, plan = _run(build, [x])
    assert "Sum" in plan.kernel_types
    # NumPy reduces the three leading axes of a contiguous array as one axis, row after row
    np.testing.assert_array_equal(got, np.sum(x, axis=(0, 1, 2)))


def _pool_grad_reference(x, dy, k, s):
    """MaxPoolGrad by hand (VALID): each window's dy goes to its first maximum (row-major), accumulated."""
    n, h, w, c = x.shape
    dx = np.zeros(x.shape, np.float64)
    for b in range(n):
        for r in range(dy.shape[1]):
            for q in range(dy.shape[2]):
                win = x[b, r * s:r * s + k, q * s:q * s + k, :].reshape(k * k, c)
                first = np.argmax(win, axis=0)   # np.argmax picks the first of tied maxima
                for ch in range(c):
                    i, j = divmod(int(first[ch]), k)
                    dx[b, r * s + i, q * s + j, ch] += dy[b, r, q, ch]
    return dx


@pytest.mark.parametrize("k,s", [(2, 2), (3, 2)])
def test_pool_grad_with_relu_mask_is_exact_with_zeros_and_ties(k, s):
    from kestimator.engine.ops import _pool_kernels as pk
    kernels = pk.numba_kernels()
    # ReLU outputs: a third zeros (whole zero windows among them), small integers so windows tie
    x = np.maximum(R.integers(-2, 3, (2, 9, 7, 3)), 0).astype(np.float32)
    x[0, :4, :4, :] = 0   # all-zero windows: the max is 0, the gradient there is 0
    x[1, 2:6, 2:6, 1] = 2  # ties at a positive max: only the first position gets dy
    oh, ow = (9 - k) // s + 1, (7 - k) // s + 1
    dy = R.standard_normal((2, oh, ow, 3)).astype(np.float32)
    dx = np.full(x.shape, 7.0, np.float32)   # stale values must be overwritten
    total = np.empty(3, np.float32)
    kernels["max_pool_grad_relu"](x, dy, k, k, s, s, 0, 0, dx, total, True)
    want = _pool_grad_reference(x, dy, k, s) * (x > 0)
    np.testing.assert_allclose(dx, want, rtol=1e-6, atol=0)
    # the unfused ops: MaxPoolGrad, then ReluGrad (g * (y > 0)); bitwise for non-overlapping windows
    plain = np.empty(x.shape, np.float32)
    kernels["max_pool_grad"](x, dy, k, k, s, s, 0, 0, plain)
    unfused_dx = plain * (x > 0)
    if k == s:
        np.testing.assert_array_equal(dx, unfused_dx)
    else:
        np.testing.assert_allclose(dx, unfused_dx, rtol=1e-6)
    assert np.all(dx[0, :4, :4, :] == 0)
    # the bias gradient: float64 per-window accumulation, so within float32 rounding of the float64 sum
    np.testing.assert_allclose(total, want.sum(axis=(0, 1, 2)), rtol=2e-7, atol=1e-7)
    assert abs(float(total[0]) - float(np.sum(unfused_dx, axis=(0, 1, 2))[0])) <= 1e-5


def _cnn_step(fused_off=None, opt="sgd"):
    rng = np.random.default_rng(21)
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 11, 11, 2])
        y = ke.placeholder(ke.int64, [None])
        k1 = ke.Variable((rng.standard_normal((3, 3, 2, 4)) * 0.5).astype(np.float32), name="k1")
        b1 = ke.Variable((rng.standard_normal(4) * 0.1).astype(np.float32), name="b1")
        k2 = ke.Variable((rng.standard_normal((3, 3, 4, 5)) * 0.5).astype(np.float32), name="k2")
        b2 = ke.Variable((rng.standard_normal(5) * 0.1).astype(np.float32), name="b2")
        w = ke.Variable((rng.standard_normal((5, 3)) * 0.5).astype(np.float32), name="w")
        h = ke.nn.max_pool(ke.nn.relu(ke.nn.conv2d(x, k1, 1, "VALID") + b1), 2, 2, "VALID")   # 9x9 -> 4x4
        h = ke.nn.max_pool(ke.nn.relu(ke.nn.conv2d(h, k2, 1, "VALID") + b2), 2, 2, "VALID")   # 2x2 -> 1x1
        logits = ke.matmul(ke.reshape(h, [-1, 5]), w)
        loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        train = kopt.SGD(0.5).minimize(loss)
        init = ke.global_variables_initializer()
    sess = ke.Session(graph=g)
    sess.run(init)
    step = sess.make_callable([loss, train], feed_list=[x, y])
    xb = rng.standard_normal((6, 11, 11, 2)).astype(np.float32)
    step(xb, rng.integers(0, 3, 6))
    plan = next(p for p in sess._plans.values() if "ApplyOptimizer" in p.kernel_types)
    return {v.op.name: sess.run(v) for v in (k1, b1, k2, b2, w)}, plan


def test_a_conv_training_step_fuses_the_pool_gradient_with_the_relu_gradient(unfused):
    got, plan = _cnn_step()
    with unfused():
        want, ref_plan = _cnn_step()
    assert plan.kernel_types.count("CpuFused(MaxPoolGrad, ReluGrad, Sum)") == 2
    assert plan.kernel_types.count("CpuFused(Add, Relu, MaxPool)") == 2
    assert "ReluGrad" not in plan.kernel_types and "ReluGrad" in ref_plan.kernel_types
    # the weights' gradients are the same bits; the biases' sums are taken per window (float32 rounding)
    for name in ("k1", "k2", "w"):
        np.testing.assert_array_equal(got[name], want[name])
    for name in ("b1", "b2"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7)


def test_a_conv_training_step_split_across_intra_op_workers_matches_the_whole_batch_step(monkeypatch):
    from kestimator.engine import intra_op
    want, _ = _cnn_step()
    monkeypatch.setattr(intra_op, "MIN_ELEMENTS", 0)   # every conv, pool, fused pool gradient and bias+ReLU
    monkeypatch.setattr(intra_op, "MIN_ELEMENTWISE", 0)   # splits
    intra_op.set_workers(4)   # 6 images: chunks of 2, 2, 1, 1
    try:
        got, plan = _cnn_step()
    finally:
        intra_op.set_workers(1)
    assert plan.kernel_types.count("CpuFused(MaxPoolGrad, ReluGrad, Sum)") == 2
    # the second conv's input and filter gradients run at once, one per worker
    assert plan.kernel_types.count("CpuFused(Conv2DBackpropInput, Conv2DBackpropFilter)") == 1
    # per-chunk filter-gradient partials and bias sums are added in another order: float32 rounding apart
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("split", [False, True])
def test_relu_max_pool_and_its_gradient_without_a_bias_sum_are_the_unfused_bits(unfused, monkeypatch, k, split):
    if split:   # the fused kernels run on chunks of the batch (2 images and 1)
        from kestimator.engine import intra_op
        monkeypatch.setattr(intra_op, "MIN_ELEMENTS", 0)
        monkeypatch.setattr(intra_op, "MIN_ELEMENTWISE", 0)
        monkeypatch.setattr(intra_op, "_state", dict(intra_op._state, workers=2))
    x = R.standard_normal((3, 10, 8, 5)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan    # np.maximum spreads a NaN to its window's max
    x[1, :4, :4, :] = -5.0    # windows that ReLU turns all-zero
    b = R.standard_normal(5).astype(np.float32)

    def run():
        g = ke.Graph()
        with g.as_default():
            a = ke.placeholder(ke.float32, [None, 10, 8, 5])
            r = ke.nn.relu(a + ke.constant(b))
            p = ke.nn.max_pool(r, k, k, "VALID")
            loss = ke.reduce_sum(p * p)
            fetches = [p * 1.0, ke.gradients(loss, [a])[0] * 1.0]
        sess = ke.Session(graph=g)
        got = [sess.run(fetches, {a: x}) for _ in range(2)]   # a second run reuses the plan's buffers
        return got[-1], list(sess._plans.values())[-1]
    (p, dx), plan = run()
    with unfused():
        (ref_p, ref_dx), ref_plan = run()
    assert "CpuFused(Add, Relu, MaxPool)" in plan.kernel_types and "CpuFused(MaxPoolGrad, ReluGrad)" in plan.kernel_types
    assert "ReluGrad" in ref_plan.kernel_types
    np.testing.assert_array_equal(p, ref_p)
    np.testing.assert_array_equal(dx, ref_dx)
    # and against NumPy: max over the VALID k x k blocks of relu(x + b)
    rl = np.maximum(x + b, 0)
    oh, ow = 10 // k, 8 // k
    want = rl[:, :oh * k, :ow * k, :].reshape(3, oh, k, ow, k, 5).max(axis=(2, 4))
    np.testing.assert_array_equal(p, want)
    assert np.isnan(p[0, 0, 0, 0]) and np.all(p[1, :4 // k, :4 // k, :] == 0)


@pytest.mark.parametrize("hw,k", [((7, 9), 2), ((10, 8), 3)])
def test_bias_relu_and_same_padded_pooling_in_one_pass_match_numpy(hw, k):
    # SAME pooling: the last windows hang over the edge, and padding never wins (all-negative windows give 0)
    x = R.standard_normal((2,) + hw + (4,)).astype(np.float32)
    x[0, -1, -1, :] = np.nan   # alone in its overhanging window when the size is odd
    b = R.standard_normal(4).astype(np.float32)
    g = ke.Graph()
    with g.as_default():
        a = ke.placeholder(ke.float32, [None, hw[0], hw[1], 4])
        r = ke.nn.relu(a + ke.constant(b))
        fetches = [r * 1.0, ke.nn.max_pool(r, k, k, "SAME") * 1.0]
    sess = ke.Session(graph=g)
    got_r, got_p = sess.run(fetches, {a: x})
    assert "CpuFused(Add, Relu, MaxPool)" in list(sess._plans.values())[-1].kernel_types
    rl = np.maximum(x + b, np.float32(0))
    oh, ow = -(-hw[0] // k), -(-hw[1] // k)
    padded = np.full((2, oh * k, ow * k, 4), -np.inf, np.float32)
    top, left = (oh * k - hw[0]) // 2, (ow * k - hw[1]) // 2
    padded[:, top:top + hw[0], left:left + hw[1], :] = rl
    np.testing.assert_array_equal(got_r, rl)
    np.testing.assert_array_equal(got_p, padded.reshape(2, oh, k, ow, k, 4).max(axis=(2, 4)))

