"""Conv2D forward / input-gradient / filter-gradient kernels against loop references, on every code path.

The references are written from the definition y[n, r, s, o] = sum_{i, j, c} xpad[n, r*sh + i*dh, s*sw + j*dw, c]
* w[i, j, c, o] (TF's cross-correlation with TF's SAME padding split), in float64 loops over kernel
positions; the gradients are the same sums read the other way (scatter into x, contraction over positions).
"""
import types

import numpy as np
import pytest

import kestimator as ks
from kestimator import engine as ke
from kestimator.engine import intra_op
from kestimator.engine.ops import _conv_kernels as ck
from kestimator.engine.registry import get_opdef

R = np.random.default_rng(11)


def _out_pads(size, k, stride, dilation, padding):
    eff = (k - 1) * dilation + 1
    if padding == "VALID":
        return (size - eff) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2, total - total // 2


def reference(x, w, dy, strides, dilations, padding):
    """(y, dx, dw) in float64 by one loop over kernel positions."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    oh, pt, pb = _out_pads(h, kh, strides[0], dilations[0], padding)
    ow, pl, pr = _out_pads(wd, kw, strides[1], dilations[1], padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    y = np.zeros((n, oh, ow, co))
    dxp = np.zeros(xp.shape)
    dw = np.zeros(w.shape)
    for i in range(kh):
        for j in range(kw):
            hs, ws = i * dilations[0], j * dilations[1]
            rows = slice(hs, hs + strides[0] * (oh - 1) + 1, strides[0])
            cols = slice(ws, ws + strides[1] * (ow - 1) + 1, strides[1])
            patch = xp[:, rows, cols, :]                      # (n, oh, ow, c)
            y += np.tensordot(patch, w[i, j], axes=([3], [0]))
            if dy is not None:
                dxp[:, rows, cols, :] += np.tensordot(dy, w[i, j], axes=([3], [1]))
                dw[i, j] = np.tensordot(patch, dy, axes=([0, 1, 2], [0, 1, 2]))
    return y, dxp[:, pt:pt + h, pl:pl + wd, :], dw


@pytest.fixture(params=["numba", "numpy", "numba, one-image blocks", "numba, batch split in 3, one-image blocks"])
def path(request, monkeypatch):
    """col2im with the numba loop, or as if numba were not installed; the patch matrix one image at a time;
    or each kernel's batch split into up to three chunks run on intra-op worker threads."""
    if request.param.startswith("numba"):
        assert ck.numba_kernels() is not None
        if "blocks" in request.param:
            monkeypatch.setattr(ck, "_BLOCK_BYTES", 1)
        if "split" in request.param:
            intra_op.set_workers(3)
            monkeypatch.setattr(intra_op, "MIN_ELEMENTS", 0)   # the test shapes are small
            request.addfinalizer(lambda: intra_op.set_workers(1))
    else:
        monkeypatch.setattr(ck.numba_kernels, "kernels", {})
        monkeypatch.setattr(ck.numba_kernels, "unavailable", True)
        assert ck.numba_kernels() is None
    return request.param


CASES = [  # (x shape, w shape, strides, dilations, padding)
    ((2, 10, 10, 1), (3, 3, 1, 4), (1, 1), (1, 1), "VALID"),    # one input channel: im2col per kernel position
    ((2, 7, 7, 5), (3, 3, 5, 6), (1, 1), (1, 1), "VALID"),
    ((2, 7, 6, 3), (3, 3, 3, 4), (1, 1), (1, 1), "SAME"),
    ((2, 7, 8, 2), (3, 2, 2, 3), (2, 2), (1, 1), "SAME"),       # asymmetric SAME padding
    ((1, 9, 8, 2), (2, 3, 2, 2), (1, 1), (2, 2), "VALID"),      # dilation
    ((2, 8, 8, 3), (3, 3, 3, 2), (2, 1), (1, 1), "VALID"),
    ((2, 5, 5, 4), (1, 1, 4, 3), (1, 1), (1, 1), "VALID"),      # 1x1: no patch copy
    ((1, 6, 6, 1), (3, 3, 1, 2), (2, 2), (1, 1), "SAME"),
    ((5, 6, 6, 3), (3, 3, 3, 4), (1, 1), (1, 1), "SAME"),     # chunks of 2, 2 and 1 images when split
    ((7, 9, 9, 1), (3, 3, 1, 3), (1, 1), (1, 1), "VALID"),    # per-image GEMMs (small filter), split 3/2/2
]


@pytest.mark.parametrize("xs,ws,strides,dilations,padding", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_kernels_match_the_loop_reference(path, xs, ws, strides, dilations, padding, dtype):
    x = R.standard_normal(xs).astype(dtype)
    w = R.standard_normal(ws).astype(dtype)
    attrs = {"strides": strides, "dilations": dilations, "padding": padding}
    y_ref, _, _ = reference(x, w, None, strides, dilations, padding)
    dy = R.standard_normal(y_ref.shape).astype(dtype)
    _, dx_ref, dw_ref = reference(x, w, dy, strides, dilations, padding)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    fwd = get_opdef("Conv2D").kernel(np, attrs)
    d_in = get_opdef("Conv2DBackpropInput").kernel(np, attrs)
    d_w = get_opdef("Conv2DBackpropFilter").kernel(np, attrs)
    for _ in range(2):   # the second call reuses the kernels' scratch buffers
        np.testing.assert_allclose(fwd(x, w), y_ref, **tol)
        np.testing.assert_allclose(d_in(x, w, dy), dx_ref, **tol)
        np.testing.assert_allclose(d_w(x, w, dy), dw_ref, **tol)
    # into a Plan's buffers, which hold the previous step's values
    for fn, args, ref in ((fwd, (x, w), y_ref), (d_in, (x, w, dy), dx_ref), (d_w, (x, w, dy), dw_ref)):
        buf = np.full(ref.shape, 123.0, dtype)
        assert fn(*args, out=buf) is buf
        np.testing.assert_allclose(buf, ref, **tol)
        assert fn(*args).dtype == dtype


def test_scratch_buffers_follow_changing_shapes():
    # eager code calls one kernel with many shapes: each call must use a buffer of its own shape
    attrs = {"strides": (1, 1), "dilations": (1, 1), "padding": "SAME"}
    fwd = get_opdef("Conv2D").kernel(np, attrs)
    w = R.standard_normal((3, 3, 2, 3))
    for hw in [(5, 5), (6, 4), (5, 5), (7, 3), (4, 4), (8, 8), (5, 5)]:
        x = R.standard_normal((2,) + hw + (2,))
        np.testing.assert_allclose(fwd(x, w), reference(x, w, None, (1, 1), (1, 1), "SAME")[0], rtol=1e-12)
    scratch = ck.Scratch()
    first = scratch.get((2, 3), np.float32)
    assert scratch.get((2, 3), np.float32) is first and scratch.get((2, 3), np.float64) is not first
    for k in range(5):
        scratch.get((k + 1,), np.float32)
    assert len(scratch._buffers) <= 4   # bounded
    big = (ck.Scratch.KEEP_BYTES // 4 + 1,)   # float32 elements: one element over the limit
    assert scratch.get(big, np.float32) is not scratch.get(big, np.float32)   # not kept: fresh each call


def test_other_array_modules_take_the_generic_code():
    # the CuPy backend's namespace is not `numpy` itself: no scratch buffers, no numba, same values
    xp = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    attrs = {"strides": (2, 2), "dilations": (1, 1), "padding": "SAME"}
    x = R.standard_normal((2, 7, 7, 3)).astype(np.float32)
    w = R.standard_normal((3, 3, 3, 4)).astype(np.float32)
    y_ref, _, _ = reference(x, w, None, (2, 2), (1, 1), "SAME")
    dy = R.standard_normal(y_ref.shape).astype(np.float32)
    _, dx_ref, dw_ref = reference(x, w, dy, (2, 2), (1, 1), "SAME")
    out = np.zeros(x.shape, np.float32)
    get_opdef("Conv2DBackpropInput").kernel(xp, attrs)(x, w, dy, out=out)
    np.testing.assert_allclose(out, dx_ref, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(get_opdef("Conv2D").kernel(xp, attrs)(x, w), y_ref, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(get_opdef("Conv2DBackpropFilter").kernel(xp, attrs)(x, w, dy), dw_ref,
                               rtol=2e-5, atol=2e-5)


def test_the_training_plan_skips_the_first_convs_input_gradient_and_fills_the_gradient_slab(monkeypatch):
    from kestimator.engine import cpu_fusion
    monkeypatch.setattr(cpu_fusion, "enabled", lambda: False)   # the plain plan's ops, each on its own line
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 8, 8, 1])
        labels = ke.placeholder(ke.int64, [None])
        w1 = ke.Variable(R.standard_normal((3, 3, 1, 4)).astype(np.float32) * 0.3)
        w2 = ke.Variable(R.standard_normal((3, 3, 4, 5)).astype(np.float32) * 0.3)
        h = ke.nn.max_pool(ke.nn.relu(ke.nn.conv2d(x, w1, 1, "VALID")), 2, 2, "VALID")    # 6x6 -> 3x3
        h = ke.reshape(ke.nn.conv2d(h, w2, 1, "VALID"), [-1, 5])                           # 1x1x5
        loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=h))
        train = ks.optimizers.SGD(0.1).minimize(loss, var_list=[w1, w2])
        init = ke.global_variables_initializer()
    sess = ke.Session(graph=g)
    sess.run(init)
    xv = R.standard_normal((4, 8, 8, 1)).astype(np.float32)
    yv = np.array([0, 1, 2, 3])
    w1_0, w2_0 = sess.run(w1), sess.run(w2)
    step = sess.make_callable([train], feed_list=[x, labels])
    step(xv, yv)
    plan = next(p for p in sess._plans.values() if "ApplyOptimizer" in p.kernel_types)
    assert plan.kernel_types.count("Conv2DBackpropInput") == 1   # only the second conv's; x needs none
    assert plan.kernel_types.count("Conv2DBackpropFilter") == 2
    lines = plan.source.splitlines()
    filter_lines = [lines[n - 1] for n, op in plan._line_ops.items() if op.type == "Conv2DBackpropFilter"]
    assert all("out=" in line for line in filter_lines)   # written straight into the optimizer's gradient slab
    # the update equals plain SGD with gradients from the float64 references
    c1, _, _ = reference(xv, w1_0, None, (1, 1), (1, 1), "VALID")
    r1 = np.maximum(c1, 0)
    p1 = r1.reshape(4, 3, 2, 3, 2, 4).max(axis=(2, 4))
    logits = reference(p1, w2_0, None, (1, 1), (1, 1), "VALID")[0].reshape(4, 5)
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    dlogits = (prob - np.eye(5)[yv]) / 4
    _, dp1, dw2 = reference(p1, w2_0, dlogits.reshape(4, 1, 1, 5), (1, 1), (1, 1), "VALID")
    blocks = r1.reshape(4, 3, 2, 3, 2, 4)
    first = (blocks == p1[:, :, None, :, None, :])   # no ties with random normal inputs
    dr1 = (first * dp1[:, :, None, :, None, :]).reshape(r1.shape) * (c1 > 0)
    _, _, dw1 = reference(xv, w1_0, dr1, (1, 1), (1, 1), "VALID")
    np.testing.assert_allclose(sess.run(w1), w1_0 - 0.1 * dw1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sess.run(w2), w2_0 - 0.1 * dw2, rtol=1e-4, atol=1e-6)
