"""Max-pooling kernels (numba loops, the NumPy block path, the general path) against a loop reference.

The reference walks every window in Python with TF's geometry and gives each window's gradient to its first
maximum in row-major order (TensorFlow's MaxPoolGrad); ties are forced with small integer values.
"""
import subprocess
import sys
import types

import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.engine import intra_op
from kestimator.engine.ops import _pool_kernels as pk
from kestimator.engine.registry import get_opdef

R = np.random.default_rng(7)


def _out_pad(size, k, s, padding):
    if padding == "VALID":
        return (size - k) // s + 1, 0
    out = -(-size // s)
    return out, max((out - 1) * s + k - size, 0) // 2


def reference(x, dy, ksize, strides, padding):
    """(max pool, its gradient) by loops over windows; padding positions never win."""
    n, h, w, c = x.shape
    oh, pt = _out_pad(h, ksize[0], strides[0], padding)
    ow, pl = _out_pad(w, ksize[1], strides[1], padding)
    y = np.zeros((n, oh, ow, c), x.dtype)
    dx = np.zeros(x.shape, dy.dtype if dy is not None else x.dtype)
    for b in range(n):
        for r in range(oh):
            for s in range(ow):
                for ch in range(c):
                    best, at = None, None
                    for i in range(ksize[0]):
                        for j in range(ksize[1]):
                            hi, wj = r * strides[0] - pt + i, s * strides[1] - pl + j
                            if 0 <= hi < h and 0 <= wj < w:
                                v = x[b, hi, wj, ch]
                                if best is None or v > best:   # strict: the first maximum stays
                                    best, at = v, (hi, wj)
                    y[b, r, s, ch] = best
                    if dy is not None:
                        dx[b, at[0], at[1], ch] += dy[b, r, s, ch]
    return y, dx


@pytest.fixture(params=["numba", "numpy", "batch split in 3"])
def path(request, monkeypatch):
    """Run the kernels with the numba loops, or as if numba were not installed, or with the numba loops and
    NumPy blocks run on up to three chunks of the batch at once (intra-op workers)."""
    if request.param != "numpy":
        assert pk.numba_kernels() is not None   # numba is a test dependency here: the fast path must run
        if "split" in request.param:
            intra_op.set_workers(3)
            monkeypatch.setattr(intra_op, "MIN_ELEMENTS", 0)
            request.addfinalizer(lambda: intra_op.set_workers(1))
    else:
        monkeypatch.setattr(pk.numba_kernels, "kernels", {})
        monkeypatch.setattr(pk.numba_kernels, "unavailable", True)
        assert pk.numba_kernels() is None
    return request.param


GEOMETRIES = [((2, 2), (2, 2), "VALID", (26, 26)), ((2, 2), (2, 2), "VALID", (11, 11)),
              ((2, 2), (2, 2), "SAME", (11, 11)), ((3, 3), (3, 3), "SAME", (7, 8)),
              ((2, 3), (2, 3), "VALID", (7, 8)), ((3, 3), (1, 1), "VALID", (6, 5)),
              ((3, 3), (2, 2), "SAME", (7, 6)), ((2, 2), (3, 3), "VALID", (8, 8))]


@pytest.mark.parametrize("ksize,strides,padding,hw", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_and_grad_match_the_loop_reference(path, ksize, strides, padding, hw, dtype, ties):
    c = 5
    x = (R.integers(0, 3, (2,) + hw + (c,)) if ties else R.standard_normal((2,) + hw + (c,))).astype(dtype)
    attrs = {"ksize": ksize, "strides": strides, "padding": padding}
    y_ref, _ = reference(x, None, ksize, strides, padding)
    dy = R.standard_normal(y_ref.shape).astype(dtype)
    _, dx_ref = reference(x, dy, ksize, strides, padding)
    fwd, grad = get_opdef("MaxPool").kernel(np, attrs), get_opdef("MaxPoolGrad").kernel(np, attrs)
    np.testing.assert_array_equal(fwd(x), y_ref)
    tol = dict(rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(grad(x, dy), dx_ref, **tol)
    # into a Plan's buffers, which hold the previous step's values: every element is overwritten
    y_buf = np.full(y_ref.shape, 99.0, dtype)
    dx_buf = np.full(x.shape, 99.0, dtype)
    assert fwd(x, out=y_buf) is y_buf and grad(x, dy, out=dx_buf) is dx_buf
    np.testing.assert_array_equal(y_buf, y_ref)
    np.testing.assert_allclose(dx_buf, dx_ref, **tol)


def test_ties_go_to_the_first_maximum_in_row_major_order(path):
    # one 2x2 window per channel: channel 0 [[1, 1], [1, 0]] -> (0, 0); channel 1 [[0, 2], [2, 1]] -> (0, 1);
    # channel 2 [[0, 0], [3, 3]] -> (1, 0)
    x = np.zeros((1, 2, 2, 3), np.float32)
    x[0, :, :, 0] = [[1, 1], [1, 0]]
    x[0, :, :, 1] = [[0, 2], [2, 1]]
    x[0, :, :, 2] = [[0, 0], [3, 3]]
    dy = np.array([10.0, 20.0, 30.0], np.float32).reshape(1, 1, 1, 3)
    attrs = {"ksize": (2, 2), "strides": (2, 2), "padding": "VALID"}
    dx = get_opdef("MaxPoolGrad").kernel(np, attrs)(x, dy)
    expected = np.zeros((1, 2, 2, 3), np.float32)
    expected[0, 0, 0, 0], expected[0, 0, 1, 1], expected[0, 1, 0, 2] = 10.0, 20.0, 30.0
    np.testing.assert_array_equal(dx, expected)


def test_a_nan_is_the_maximum_and_its_first_occurrence_gets_the_gradient(path):
    # window [[1, nan], [nan, 5]]: forward NaN (as np.max), gradient to (0, 1) (as np.argmax)
    x = np.array([1.0, np.nan, np.nan, 5.0]).reshape(1, 2, 2, 1)
    attrs = {"ksize": (2, 2), "strides": (2, 2), "padding": "VALID"}
    assert np.isnan(get_opdef("MaxPool").kernel(np, attrs)(x)[0, 0, 0, 0])
    dx = get_opdef("MaxPoolGrad").kernel(np, attrs)(x, np.full((1, 1, 1, 1), 2.0))
    np.testing.assert_array_equal(dx.ravel(), [0.0, 2.0, 0.0, 0.0])


def test_other_array_modules_take_the_generic_code():
    # a namespace that is not `numpy` itself (as the CuPy backend's is) must not reach the numba loops
    xp = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    assert not pk.use_numba(xp, np.zeros(3, np.float32))
    x = R.standard_normal((2, 6, 6, 3)).astype(np.float32)
    dy = R.standard_normal((2, 3, 3, 3)).astype(np.float32)
    for attrs in ({"ksize": (2, 2), "strides": (2, 2), "padding": "SAME"},
                  {"ksize": (3, 3), "strides": (1, 1), "padding": "VALID"}):
        y_ref, _ = reference(x, None, attrs["ksize"], attrs["strides"], attrs["padding"])
        dyi = R.standard_normal(y_ref.shape).astype(np.float32)
        _, dx_ref = reference(x, dyi, attrs["ksize"], attrs["strides"], attrs["padding"])
        np.testing.assert_array_equal(get_opdef("MaxPool").kernel(xp, attrs)(x), y_ref)
        out = np.full(x.shape, 5.0, np.float32)
        get_opdef("MaxPoolGrad").kernel(xp, attrs)(x, dyi, out=out)
        np.testing.assert_allclose(out, dx_ref, rtol=1e-6, atol=1e-6)
    assert dy.shape == (2, 3, 3, 3)


def test_integer_and_float16_inputs_use_numpy():
    x = R.integers(-50, 50, (2, 4, 4, 3)).astype(np.int32)
    attrs = {"ksize": (2, 2), "strides": (2, 2), "padding": "VALID"}
    assert not pk.use_numba(np, x)
    np.testing.assert_array_equal(get_opdef("MaxPool").kernel(np, attrs)(x), x.reshape(2, 2, 2, 2, 2, 3).max((2, 4)))
    h = R.standard_normal((2, 4, 4, 3)).astype(np.float16)
    dy = R.standard_normal((2, 2, 2, 3)).astype(np.float16)
    _, dx_ref = reference(h, dy, (2, 2), (2, 2), "VALID")
    np.testing.assert_array_equal(get_opdef("MaxPoolGrad").kernel(np, attrs)(h, dy), dx_ref)


def test_the_training_plan_gives_pool_ops_buffers_and_numba_stays_unimported_until_used():
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 6, 6, 2])
        y = ke.nn.max_pool(x, 2, 2, "VALID")
        dx = ke.gradients(ke.reduce_sum(y * y), [x])[0]
    sess = ke.Session(graph=g)
    xv = R.standard_normal((3, 6, 6, 2)).astype(np.float32)
    got = sess.run(dx, {x: xv})
    y_ref, _ = reference(xv, None, (2, 2), (2, 2), "VALID")
    _, dx_ref = reference(xv, 2 * y_ref, (2, 2), (2, 2), "VALID")
    np.testing.assert_allclose(got, dx_ref, rtol=1e-6)
    plan = next(iter(sess._plans.values()))
    lines = plan.source.splitlines()
    by_type = {op.type: lines[n - 1] for n, op in plan._line_ops.items()}
    assert "out=" in by_type["MaxPool"]   # writes into a buffer allocated once (the fetched gradient cannot)
    code = "import sys, kestimator.engine.ops.conv_ops; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_strided_output_buffer_gets_the_whole_gradient(path):
    # the block view of a non-contiguous buffer would be a copy: the kernel must still fill the buffer
    x = R.standard_normal((2, 6, 6, 3))
    dy = R.standard_normal((2, 3, 3, 3))
    _, dx_ref = reference(x, dy, (2, 2), (2, 2), "VALID")
    backing = np.full((2, 6, 6, 6), 7.0)
    out = backing[:, :, :, ::2]
    attrs = {"ksize": (2, 2), "strides": (2, 2), "padding": "VALID"}
    assert get_opdef("MaxPoolGrad").kernel(np, attrs)(x, dy, out=out) is out
    np.testing.assert_allclose(out, dx_ref, rtol=1e-12)
    np.testing.assert_array_equal(backing[:, :, :, 1::2], 7.0)   # nothing outside the view was touched
