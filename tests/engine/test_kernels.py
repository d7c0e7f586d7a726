"""Every op's forward kernel against a plain NumPy expression.

`test_every_op_kernel_is_checked` walks the registry: an op type that no case below runs (and that is not
an internal gradient op, whose values test_gradients.py checks) fails the suite.
"""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.engine.registry import registered_ops

R = np.random.default_rng(7)
A = R.normal(size=(3, 4))
B = R.normal(size=(3, 4))
P = R.uniform(0.5, 2.0, size=(3, 4))
I = R.integers(-5, 6, size=(3, 4))


def _erf(x):
    import math
    return np.vectorize(math.erf)(x)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


CASES = {
    "add": (lambda a, b: a + b, [A, B], lambda a, b: a + b),
    "sub": (lambda a, b: a - b, [A, B], lambda a, b: a - b),
    "mul": (lambda a, b: a * b, [A, B], lambda a, b: a * b),
    "div": (lambda a, b: a / b, [A, P], lambda a, b: a / b),
    "int_div_promotes": (lambda a, b: ke.divide(a, b), [I, I * 0 + 3], lambda a, b: a / b),
    "floordiv": (lambda a, b: a // b, [I, I * 0 + 3], lambda a, b: a // b),
    "floormod": (lambda a, b: a % b, [I, I * 0 + 3], lambda a, b: a % b),
    "pow": (lambda a, b: ke.pow(a, b), [P, A], np.power),
    "maximum": (ke.maximum, [A, B], np.maximum), "minimum": (ke.minimum, [A, B], np.minimum),
    "squared_difference": (ke.squared_difference, [A, B], lambda a, b: (a - b) ** 2),
    "compare": (lambda a, b: ke.stack([ke.cast(f(a, b), ke.int32) for f in (ke.equal, ke.not_equal, ke.less,
                                                                          ke.less_equal, ke.greater,
                                                                          ke.greater_equal)]),
                [I, I.T.reshape(3, 4)],
                lambda a, b: np.stack([f(a, b).astype(np.int32) for f in (np.equal, np.not_equal, np.less,
                                                                           np.less_equal, np.greater,
                                                                           np.greater_equal)])),
    "logical": (lambda a, b: ke.stack([ke.logical_and(a > 0, b > 0), ke.logical_or(a > 0, b > 0),
                                       ke.logical_xor(a > 0, b > 0), ke.logical_not(a > 0)]), [A, B],
                lambda a, b: np.stack([(a > 0) & (b > 0), (a > 0) | (b > 0), (a > 0) ^ (b > 0), ~(a > 0)])),
    "select": (lambda a, b: ke.where(a > b, a, b * 2.0), [A, B], lambda a, b: np.where(a > b, a, b * 2)),
    "where_indices": (lambda a: ke.where(a > 0), [A], lambda a: np.argwhere(a > 0)),
    "add_n": (lambda a, b: ke.add_n([a, b, a]), [A, B], lambda a, b: 2 * a + b),
    "is_nan_inf_finite": (lambda a: ke.stack([ke.is_nan(ke.log(a)), ke.is_inf(ke.log(a * 0.0)),
                                              ke.is_finite(ke.log(a))]), [A],
                          lambda a: np.stack([np.isnan(np.log(a)), np.isinf(np.log(a * 0.0)),
                                              np.isfinite(np.log(a))])),
    **{f"unary_{name}": (f, [x], ref) for name, f, x, ref in [
        ("neg", ke.negative, A, np.negative), ("exp", ke.exp, A, np.exp), ("expm1", ke.expm1, A, np.expm1),
        ("log", ke.log, P, np.log), ("log1p", ke.log1p, P, np.log1p), ("sqrt", ke.sqrt, P, np.sqrt),
        ("rsqrt", ke.rsqrt, P, lambda x: 1 / np.sqrt(x)), ("square", ke.square, A, np.square),
        ("abs", ke.abs, A, np.abs), ("sign", ke.sign, A, np.sign), ("reciprocal", ke.reciprocal, P, np.reciprocal),
        ("sin", ke.sin, A, np.sin), ("cos", ke.cos, A, np.cos), ("floor", ke.floor, A * 3, np.floor),
        ("ceil", ke.ceil, A * 3, np.ceil), ("round", ke.round, A * 3, np.rint), ("tanh", ke.tanh, A, np.tanh),
        ("sigmoid", ke.sigmoid, A * 30, lambda x: 1 / (1 + np.exp(-x))),
        ("relu", ke.nn.relu, A, lambda x: np.maximum(x, 0)),
        ("relu6", ke.nn.relu6, A * 10, lambda x: np.clip(x, 0, 6)),
        ("elu", ke.nn.elu, A, lambda x: np.where(x > 0, x, np.expm1(x))),
        ("selu", ke.nn.selu, A, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))),
        ("softplus", ke.nn.softplus, A * 30, lambda x: np.logaddexp(0, x)),
        ("softsign", ke.nn.softsign, A, lambda x: x / (1 + np.abs(x))),
        ("gelu", ke.nn.gelu, A * 3, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
        ("gelu_tanh", lambda x: ke.nn.gelu(x, approximate=True), A,
         lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
        ("leaky_relu", lambda x: ke.nn.leaky_relu(x, 0.1), A, lambda x: np.where(x > 0, x, 0.1 * x)),
        ("swish", ke.nn.swish, A, lambda x: x / (1 + np.exp(-x))),
        ("identity", ke.identity, A, lambda x: x), ("stop_gradient", ke.stop_gradient, A, lambda x: x),
        ("cast", lambda x: ke.cast(x * 3, ke.int32), A, lambda x: (x * 3).astype(np.int32)),
    ]},
    "matmul": (lambda a, b: ke.matmul(a, b, transpose_b=True), [A, B], lambda a, b: a @ b.T),
    "matmul_batched": (ke.matmul, [R.normal(size=(2, 3, 4)), R.normal(size=(2, 4, 5))], np.matmul),
    "tensordot": (lambda a, b: ke.tensordot(a, b, 1), [A, B.T], lambda a, b: np.tensordot(a, b, 1)),
    "reductions": (lambda a: ke.stack([ke.reduce_sum(a, 1), ke.reduce_mean(a, 1), ke.reduce_max(a, 1),
                                       ke.reduce_min(a, 1), ke.reduce_prod(a, 1), ke.reduce_logsumexp(a, 1)]),
                   [A], lambda a: np.stack([a.sum(1), a.mean(1), a.max(1), a.min(1), a.prod(1),
                                            np.log(np.exp(a).sum(1))])),
    "all_any": (lambda a: ke.stack([ke.reduce_all(a > -1.0, 0), ke.reduce_any(a > 1.0, 0)]), [A],
                lambda a: np.stack([(a > -1).all(0), (a > 1).any(0)])),
    "argmax_argmin": (lambda a: ke.stack([ke.argmax(a, 1), ke.argmin(a, 1)]), [A],
                      lambda a: np.stack([a.argmax(1), a.argmin(1)])),
    "shape_rank_size": (lambda a: ke.concat([ke.shape(a), ke.reshape(ke.rank(a), [1]), ke.reshape(ke.size(a), [1])],
                                            0), [A], lambda a: np.array([3, 4, 2, 12])),
    "fill_zeros_ones": (lambda a: ke.stack([ke.zeros_like(a), ke.ones_like(a), ke.fill([3, 4], np.float64(2.5)) + a * 0,
                                            ke.zeros([3, 4], ke.float64), ke.ones([3, 4], ke.float64)]), [A],
                        lambda a: np.stack([a * 0, a * 0 + 1, a * 0 + 2.5, a * 0, a * 0 + 1])),
    "range": (lambda a: ke.range(1, 10, 3), [A], lambda a: np.arange(1, 10, 3)),
    "reshape_transpose": (lambda a: ke.transpose(ke.reshape(a, [2, 6]), [1, 0]), [A],
                          lambda a: a.reshape(2, 6).T),
    "dynamic_reshape": (lambda a: ke.reshape(a, ke.shape(a)[::-1]), [A], lambda a: a.reshape(4, 3)),
    "expand_squeeze": (lambda a: ke.squeeze(ke.expand_dims(ke.placeholder_with_default(a, [None, 4]), 0), [0]), [A],
                       lambda a: a),
    "broadcast_to": (lambda a: ke.broadcast_to(a[:1], [3, 4]), [A], lambda a: np.broadcast_to(a[:1], (3, 4))),
    "concat_stack_unstack": (lambda a, b: ke.concat([ke.stack(ke.unstack(a)), b], 1), [A, B],
                             lambda a, b: np.concatenate([a, b], 1)),
    "split": (lambda a: ke.split(a, 2, axis=1)[1], [A], lambda a: a[:, 2:]),
    "unstack_single": (lambda a: ke.unstack(a[:1])[0], [A], lambda a: a[0]),
    "slicing": (lambda a: a[::-1, ke.newaxis, 1:3], [A], lambda a: a[::-1, None, 1:3]),
    "gather": (lambda a: ke.gather(a, [2, 0], axis=1), [A], lambda a: a[:, [2, 0]]),
    "gather_nd": (lambda a: ke.gather_nd(a, [[0, 1], [2, 3]]), [A], lambda a: a[[0, 2], [1, 3]]),
    "scatter_nd": (lambda a: ke.scatter_nd([[1], [1], [3]], a[:3, 0], [5]), [A],
                   lambda a: np.array([0, a[0, 0] + a[1, 0], 0, a[2, 0], 0])),
    "one_hot": (lambda a: ke.one_hot(ke.argmax(a, 1), 4), [A], lambda a: np.eye(4)[a.argmax(1)]),
    "tile": (lambda a: ke.tile(a, [2, 1]), [A], lambda a: np.tile(a, (2, 1))),
    "pad_modes": (lambda a: ke.stack([ke.pad(a, [[1, 1], [2, 2]], m) for m in ("CONSTANT", "REFLECT", "SYMMETRIC")]),
                  [A], lambda a: np.stack([np.pad(a, ((1, 1), (2, 2)), mode=m) for m in ("constant", "reflect",
                                                                                          "symmetric")])),
    "softmax": (ke.nn.softmax, [A], _softmax),
    "log_softmax": (ke.nn.log_softmax, [A], lambda a: np.log(_softmax(a))),
    "sparse_xent": (lambda a: ke.nn.sparse_softmax_cross_entropy_with_logits(labels=[1, 0, 3], logits=a), [A],
                    lambda a: -np.log(_softmax(a))[[0, 1, 2], [1, 0, 3]]),
    "dense_xent": (lambda a, b: ke.nn.softmax_cross_entropy_with_logits(labels=ke.nn.softmax(b), logits=a), [A, B],
                   lambda a, b: -(_softmax(b) * np.log(_softmax(a))).sum(1)),
    "sigmoid_xent": (lambda a, b: ke.nn.sigmoid_cross_entropy_with_logits(labels=ke.sigmoid(b), logits=a * 40),
                     [A, B], lambda a, b: np.maximum(a * 40, 0) - a * 40 / (1 + np.exp(-b))
                     + np.log1p(np.exp(-np.abs(a * 40)))),
    "sparse": (lambda a: ke.sparse.sparse_dense_matmul(ke.SparseTensor([[0, 1], [2, 3]], a[0, :2], [3, 4]), ke.transpose(a))
               + ke.reduce_sum(ke.sparse.to_dense(ke.SparseTensor([[0, 1]], a[0, :1], [3, 4]))), [A],
               lambda a: np.array([[0, a[0, 0], 0, 0], [0] * 4, [0, 0, 0, a[0, 1]]]) @ a.T + a[0, 0]),
    "conv_pool": (lambda x, w: ke.nn.avg_pool(ke.nn.max_pool(ke.nn.conv2d(x, w, 1, "SAME"), 2, 2, "VALID"),
                                              2, 1, "SAME"),
                  [R.normal(size=(1, 4, 4, 1)), R.normal(size=(3, 3, 1, 1))], None),
    "assign_ops": (lambda a: _assigns(a), [A], lambda a: np.stack([a, 2 * a, a])),
}


def _assigns(a):
    v = ke.Variable(np.zeros((3, 4)), dtype=ke.float64)
    first = ke.identity(v.assign(a))
    with ke.control_dependencies([first]):
        second = ke.identity(v.assign_add(a))
    with ke.control_dependencies([second]):
        third = ke.identity(v.assign_sub(a))
    return ke.stack([first, second, third])


def _conv_pool_reference(x, w):
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = np.zeros((1, 4, 4, 1))
    for i in range(4):
        for j in range(4):
            conv[0, i, j, 0] = np.sum(xp[0, i:i + 3, j:j + 3, 0] * w[:, :, 0, 0])
    pooled = conv.reshape(1, 2, 2, 2, 2, 1).max(axis=(2, 4))   # 2x2 windows, stride 2
    padded = np.pad(pooled, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=np.nan)   # SAME: pad after
    out = np.zeros((1, 2, 2, 1))
    for i in range(2):
        for j in range(2):
            out[0, i, j, 0] = np.nanmean(padded[0, i:i + 2, j:j + 2, 0])   # average over valid cells only
    return out


CASES["conv_pool"] = CASES["conv_pool"][:2] + (_conv_pool_reference,)
_ran = set()


def _engine_op(opdef):
    """Ops the engine registers; other packages' ops (feature columns, layers, optimizers) are checked by
    those packages' own tests."""
    return getattr(opdef.kernel, "__module__", "").startswith("kestimator.engine")


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_matches_numpy(name):
    build, inputs, ref = CASES[name]
    g = ke.Graph()
    with g.as_default():
        xs = [ke.placeholder(ke.as_dtype(np.asarray(x).dtype), shape=np.shape(x)) for x in inputs]
        out = build(*xs)
        init = ke.global_variables_initializer()
    with ke.Session(graph=g) as sess:
        sess.run(init)
        got = sess.run(out, {x: v for x, v in zip(xs, inputs)})
    want = ref(*inputs)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64),
                               rtol=1e-7, atol=1e-9)
    _ran.update(op.type for op in g.get_operations())


def test_random_ops_have_the_requested_distribution():
    g = ke.Graph()
    with g.as_default():
        u = ke.random_uniform([20000], -2.0, 3.0, seed=1)
        n = ke.random_normal([20000], 1.0, 2.0, seed=2)
        t = ke.truncated_normal([20000], 0.0, 1.0, seed=3)
        s = ke.random_shuffle(ke.range(100), seed=4)
        ui = ke.random_uniform([1000], 0, 5, dtype=ke.int32, seed=5)
    with ke.Session(graph=g) as sess:
        uv, nv, tv, sv, uiv = sess.run([u, n, t, s, ui])
        uv2 = sess.run(u)
    assert -2 <= uv.min() and uv.max() < 3 and abs(uv.mean() - 0.5) < 0.05
    assert abs(nv.mean() - 1.0) < 0.05 and abs(nv.std() - 2.0) < 0.05
    assert np.abs(tv).max() <= 2.0 and abs(tv.std() - 0.8796) < 0.02   # std of a normal truncated at 2 sigma
    assert sorted(sv.tolist()) == list(range(100)) and sv.tolist() != list(range(100))
    assert set(uiv.tolist()) == {0, 1, 2, 3, 4}
    assert not np.array_equal(uv, uv2)   # the op's stream advances between runs
    _ran.update(op.type for op in g.get_operations())


def test_every_op_kernel_is_checked():
    import kestimator.optimizers  # noqa: F401
    if len(_ran) < 10:
        pytest.skip("run the whole file: coverage is collected from the other tests in it")
    from . import test_gradients
    # Ops that only exist inside gradients (their values are checked by test_gradients.py), ops checked by
    # other files (Dropout and Initializer in test_gradients / test_variables, ApplyOptimizer in
    # test_optimizers), and graph plumbing without a kernel of its own.
    elsewhere = {"SumToShapeOf", "BroadcastToShapeOf", "ReluGrad", "SumGrad", "ReshapeLike", "ExpandDims",
                 "TakeIndexGrad", "StridedSliceGrad", "GatherGrad", "GatherNdGrad", "TileGrad", "ConcatGradPart",
                 "ConcatGradPartGrad", "Conv2DBackpropInput", "Conv2DBackpropFilter", "Conv2DTranspose",
                 "DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropInput",
                 "DepthwiseConv2dNativeBackpropFilter", "MaxPoolGrad", "MaxPoolGradGrad", "AvgPoolGrad", "Erf",
                 "Dropout", "Initializer", "ApplyOptimizer", "Const", "Placeholder", "NoOp", "VariableV2",
                 "ScalarSummary", "HistogramSummary", "MergeSummary"}   # byte-compared with TF1 in test_summary
    missing = sorted(n for n, op in registered_ops().items()
                     if _engine_op(op) and n not in _ran and n not in elsewhere)
    assert not missing, f"ops whose kernel no test compares with NumPy: {missing}"
    assert test_gradients  # the gradient-only ops above are covered there
