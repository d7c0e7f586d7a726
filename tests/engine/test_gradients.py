"""Every differentiable op's gradient, and its gradient's gradient, against float64 central differences.

`test_every_differentiable_op_is_checked` walks the op registry: an op registered as differentiable that no
case below exercises (in a first- or second-order check) fails the suite.
"""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.engine.registry import registered_ops

from .gradcheck import check_gradients

R = np.random.default_rng(42)


def away(shape, low=0.3, high=1.5):
    """Values with |x| in [low, high] and random signs: away from kinks at 0."""
    return R.uniform(low, high, shape) * R.choice([-1.0, 1.0], shape)


def pos(shape, low=0.5, high=2.0):
    return R.uniform(low, high, shape)


def distinct(shape):
    """Distinct values, so max/min/argmax have no ties."""
    n = int(np.prod(shape))
    return (R.permutation(n) * 0.37 - n * 0.15).reshape(shape)


CASES = {
    # elementwise binary with broadcasting
    "add_bcast": (lambda a, b: a + b, [away((3, 4)), away((4,))]),
    "sub_bcast": (lambda a, b: a - b, [away((3, 1)), away((1, 4))]),
    "mul_bcast": (lambda a, b: a * b, [away((2, 3, 4)), away((3, 1))]),
    "div": (lambda a, b: a / b, [away((3, 4)), pos((3, 4))]),
    "pow": (lambda a, b: ke.pow(a, b), [pos((3, 4)), away((3, 4))]),
    "maximum": (lambda a, b: ke.maximum(a, b), [distinct((3, 4)), distinct((3, 4)) + 0.11]),
    "minimum": (lambda a, b: ke.minimum(a, b), [distinct((3, 4)), distinct((3, 4)) + 0.11]),
    "squared_difference": (lambda a, b: ke.squared_difference(a, b), [away((3, 4)), away((4,))]),
    "add_n": (lambda a, b, c: ke.add_n([a, b, c]), [away((2, 3)), away((2, 3)), away((2, 3))]),
    "where": (lambda a, b: ke.where(ke.greater(a, 0.0), a * b, b), [away((3, 4)), away((3, 4))]),
    "unknown_batch": (lambda a, b: ke.reshape(a, [-1, 4]) + b, [away((3, 4)), away((1, 4))]),
    # unary
    **{f"unary_{n}": (f, [x]) for n, f, x in [
        ("neg", ke.negative, away((3, 4))), ("exp", ke.exp, away((3, 4))), ("expm1", ke.expm1, away((3, 4))),
        ("log", ke.log, pos((3, 4))), ("log1p", ke.log1p, pos((3, 4))), ("sqrt", ke.sqrt, pos((3, 4))),
        ("rsqrt", ke.rsqrt, pos((3, 4))), ("square", ke.square, away((3, 4))), ("abs", ke.abs, away((3, 4))),
        ("reciprocal", ke.reciprocal, away((3, 4))), ("sin", ke.sin, away((3, 4))), ("cos", ke.cos, away((3, 4))),
        ("tanh", ke.tanh, away((3, 4))), ("sigmoid", ke.sigmoid, away((3, 4))),
        ("relu", lambda x: ke.nn.relu(x), away((3, 4))),
        ("relu6", lambda x: ke.nn.relu6(x * 5.0), away((3, 4))),
        ("softplus", lambda x: ke.nn.softplus(x), away((3, 4))),
        ("softsign", lambda x: ke.nn.softsign(x), away((3, 4))),
        ("elu", lambda x: ke.nn.elu(x), away((3, 4))), ("selu", lambda x: ke.nn.selu(x), away((3, 4))),
        ("gelu", lambda x: ke.nn.gelu(x), away((3, 4))),
        ("gelu_tanh", lambda x: ke.nn.gelu(x, approximate=True), away((3, 4))),
        ("leaky_relu", lambda x: ke.nn.leaky_relu(x, 0.3), away((3, 4))),
        ("identity", ke.identity, away((3, 4))),
    ]},
    # matmul and reductions
    "matmul": (lambda a, b: ke.matmul(a, b), [away((3, 4)), away((4, 5))]),
    "matmul_ta_tb": (lambda a, b: ke.matmul(a, b, transpose_a=True, transpose_b=True), [away((4, 3)), away((5, 4))]),
    "matmul_tb": (lambda a, b: ke.matmul(a, b, transpose_b=True), [away((3, 4)), away((5, 4))]),
    "matmul_ta": (lambda a, b: ke.matmul(a, b, transpose_a=True), [away((4, 3)), away((4, 5))]),
    "matmul_batched_bcast": (lambda a, b: ke.matmul(a, b), [away((2, 3, 4)), away((4, 2))]),
    "tensordot": (lambda a, b: ke.tensordot(a, b, [[1, 2], [0, 1]]), [away((2, 3, 4)), away((3, 4, 2))]),
    "sum_axis": (lambda a: ke.reduce_sum(a, axis=1), [away((3, 4, 2))]),
    "sum_keep": (lambda a: ke.reduce_sum(a, axis=[0, 2], keepdims=True), [away((3, 4, 2))]),
    "mean_all": (lambda a: ke.reduce_mean(a), [away((3, 4))]),
    "mean_axis": (lambda a: ke.reduce_mean(a, axis=-1), [away((3, 4))]),
    "max": (lambda a: ke.reduce_max(a, axis=1), [distinct((3, 4))]),
    "min": (lambda a: ke.reduce_min(a, axis=0, keepdims=True), [distinct((3, 4))]),
    "prod": (lambda a: ke.reduce_prod(a, axis=1), [away((3, 4))]),
    "logsumexp": (lambda a: ke.reduce_logsumexp(a, axis=1), [away((3, 4))]),
    # shapes and indexing
    "reshape": (lambda a: ke.reshape(a, [4, 3]) * 1.0, [away((3, 4))]),
    "dynamic_reshape": (lambda a, s: ke.reshape(a, ke.cast(ke.shape(a), ke.int32)[::-1]), [away((3, 4)), away((1,))]),
    "transpose": (lambda a: ke.transpose(a, [2, 0, 1]), [away((2, 3, 4))]),
    "expand_squeeze": (lambda a: ke.squeeze(ke.expand_dims(a, 1), [1]) * 2.0, [away((3, 4))]),
    "expand_unknown": (lambda a: ke.expand_dims(ke.placeholder_with_default(ke.reshape(a, [-1, 2]), [None, 2]), 0),
                       [away((2, 3, 2))]),
    "broadcast_to": (lambda a: ke.broadcast_to(a, [3, 4]), [away((1, 4))]),
    "concat": (lambda a, b: ke.concat([a, b], axis=1), [away((2, 3)), away((2, 2))]),
    "stack_unstack": (lambda a, b: ke.stack(ke.unstack(ke.stack([a, b], axis=1), axis=0), axis=0), [away((2, 3)),
                                                                                                     away((2, 3))]),
    "split": (lambda a: ke.split(a, [1, 3], axis=1), [away((2, 4))]),
    "split_equal": (lambda a: ke.split(a, 3, axis=0)[1] * ke.split(a, 3, axis=0)[2], [away((3, 4))]),
    "unstack_single": (lambda a: ke.unstack(a)[0] * 2.0, [away((1, 3))]),
    "unstack_steps": (lambda a: ke.unstack(a, axis=1)[1] * ke.unstack(a, axis=1)[3], [away((2, 4, 3))]),
    "slice": (lambda a: a[1:, ::2, ke.newaxis, 0], [away((3, 4, 2))]),
    "slice_fn": (lambda a: ke.slice(a, [0, 1], [2, -1]), [away((3, 4))]),
    "gather": (lambda a: ke.gather(a, ke.constant([2, 0, 2], dtype=ke.int32), axis=0), [away((3, 4))]),
    "gather_axis1": (lambda a: ke.gather(a, ke.constant([[1, 0], [3, 3]], dtype=ke.int32), axis=1), [away((2, 4))]),
    "gather_nd": (lambda a: ke.gather_nd(a, ke.constant([[0, 1], [2, 3], [0, 1]], dtype=ke.int64)), [away((3, 4))]),
    "scatter_nd": (lambda u: ke.scatter_nd(ke.constant([[0], [2], [0]], dtype=ke.int64), u, [4, 2]), [away((3, 2))]),
    "tile": (lambda a: ke.tile(a, [2, 3]), [away((2, 2))]),
    "pad": (lambda a: ke.pad(a, [[1, 0], [2, 1]]), [away((2, 3))]),
    "reverse": (lambda a: ke.reverse(a, [1]), [away((2, 3))]),
    # nn
    "softmax": (lambda a: ke.nn.softmax(a), [away((3, 4))]),
    "softmax_axis0": (lambda a: ke.nn.softmax(a, axis=0), [away((3, 4))]),
    "log_softmax": (lambda a: ke.nn.log_softmax(a), [away((3, 4))]),
    "sparse_xent": (lambda a: ke.nn.sparse_softmax_cross_entropy_with_logits(
        labels=ke.constant([1, 0, 3], dtype=ke.int32), logits=a), [away((3, 4))]),
    "dense_xent": (lambda a, b: ke.nn.softmax_cross_entropy_with_logits(labels=ke.nn.softmax(b), logits=a),
                   [away((3, 4)), away((3, 4))]),
    "sigmoid_xent": (lambda a, z: ke.nn.sigmoid_cross_entropy_with_logits(labels=ke.sigmoid(z), logits=a),
                     [away((3, 4)), away((3, 4))]),
    "moments": (lambda a: list(ke.nn.moments(a, axes=[0])), [away((5, 3))]),
    "l2_normalize": (lambda a: ke.nn.l2_normalize(a, axis=1), [away((3, 4))]),
    "conv2d_same_s2": (lambda x, w: ke.nn.conv2d(x, w, 2, "SAME"), [away((2, 5, 5, 2)), away((3, 3, 2, 3))]),
    "conv2d_valid_dil": (lambda x, w: ke.nn.conv2d(x, w, 1, "VALID", dilations=2), [away((1, 6, 6, 2)),
                                                                                    away((2, 2, 2, 2))]),
    "conv2d_transpose": (lambda x, w: ke.nn.conv2d_transpose(x, w, [2, 6, 6, 2], 2, "SAME"),
                         [away((2, 3, 3, 3)), away((3, 3, 2, 3))]),
    "depthwise": (lambda x, w: ke.nn.depthwise_conv2d(x, w, 1, "SAME"), [away((1, 4, 4, 2)), away((3, 3, 2, 2))]),
    "separable": (lambda x, d, p: ke.nn.separable_conv2d(x, d, p, 1, "VALID"),
                  [away((1, 4, 4, 2)), away((2, 2, 2, 1)), away((1, 1, 2, 3))]),
    "conv1d": (lambda x, w: ke.nn.conv1d(x, w, 1, "SAME"), [away((2, 5, 2)), away((3, 2, 2))]),
    "max_pool": (lambda x: ke.nn.max_pool(x, 2, 2, "SAME"), [distinct((1, 5, 5, 2))]),
    "max_pool_overlap": (lambda x: ke.nn.max_pool(x, 3, 1, "VALID"), [distinct((1, 4, 4, 1))]),
    "avg_pool": (lambda x: ke.nn.avg_pool(x, 3, 2, "SAME"), [away((1, 5, 5, 2))]),
    "sparse_to_dense": (lambda v: ke.sparse.to_dense(ke.SparseTensor([[0, 1], [2, 0]], v, [3, 2])), [away((2,))]),
    "sparse_dense_matmul": (lambda v, b: ke.sparse.sparse_dense_matmul(
        ke.SparseTensor([[0, 1], [2, 0], [2, 1]], v, [3, 2]), b), [away((3,)), away((2, 4))]),
    "sum_to_shape_dynamic": (lambda a, b: ke.placeholder_with_default(a, [None, 4]) * b, [away((3, 4)), away((3, 1))]),
}

SECOND_ORDER = [
    "add_bcast", "mul_bcast", "div", "pow", "maximum", "where", "unary_exp", "unary_log", "unary_sqrt",
    "unary_rsqrt", "unary_tanh", "unary_sigmoid", "unary_relu", "unary_softplus", "unary_gelu", "unary_elu",
    "unary_reciprocal", "matmul", "matmul_batched_bcast", "sum_axis", "mean_axis", "max", "prod", "transpose",
    "expand_unknown", "broadcast_to", "concat", "stack_unstack", "slice", "gather", "gather_axis1", "gather_nd",
    "scatter_nd", "tile", "softmax", "log_softmax", "conv2d_same_s2", "conv2d_transpose", "depthwise", "max_pool",
    "avg_pool", "sparse_dense_matmul", "sum_to_shape_dynamic", "unary_gelu_tanh", "unary_selu", "unary_leaky_relu",
    "unary_relu6", "unary_softsign", "unary_abs", "unary_square", "split", "squared_difference",
    "unstack_single", "unstack_steps", "split_equal",
]

_covered = set()


def _engine_op(opdef):
    """Ops the engine registers; other packages' ops (feature columns, layers, optimizers) are checked by
    those packages' own tests."""
    return getattr(opdef.kernel, "__module__", "").startswith("kestimator.engine")


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_order(name):
    build, inputs = CASES[name]
    _covered.update(check_gradients(build, inputs))


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order(name):
    build, inputs = CASES[name]
    _covered.update(check_gradients(build, inputs, order=2, rtol=1e-4, atol=1e-6))


def test_dropout_gradient_is_its_mask():
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float64, [200])
        y = ke.nn.dropout(x, rate=0.25, seed=1)
        (dx,) = ke.gradients(ke.reduce_sum(y), [x])
    with ke.Session(graph=g) as sess:
        xv = pos((200,))
        yv, dxv = sess.run([y, dx], {x: xv})
    # y = x * mask / 0.75, so d sum(y) / dx = mask / 0.75 = y / x elementwise
    np.testing.assert_allclose(dxv, yv / xv, rtol=1e-12)
    assert 0.6 < np.mean(dxv > 0) < 0.9
    _covered.update({"Dropout"})


def test_cast_passes_gradients_between_float_types():
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float64, [4])
        w = ke.constant([1.5, -2.0, 0.25, 3.0], dtype=ke.float32)
        (dx,) = ke.gradients(ke.reduce_sum(ke.cast(x, ke.float32) * w), [x])
        (none,) = ke.gradients(ke.reduce_sum(ke.cast(ke.cast(x, ke.int32), ke.float32)), [x])
    with ke.Session(graph=g) as sess:
        got = sess.run(dx, {x: np.ones(4)})
    assert dx.dtype == ke.float64 and none is None   # no gradient through an integer cast
    np.testing.assert_array_equal(got, [1.5, -2.0, 0.25, 3.0])
    _covered.add("Cast")


def test_add_n_into_a_reused_buffer_of_a_later_input():
    """Regression: the plan may give AddN the buffer of its second input; the sum must stay right."""
    g = ke.Graph()
    with g.as_default():
        a = ke.placeholder(ke.float64, (3,))
        b = ke.placeholder(ke.float64, (3,))
        total = ke.add_n([a * 2.0, b * 3.0, a * b])
    with ke.Session(graph=g) as sess:
        av, bv = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 2.0])
        np.testing.assert_allclose(sess.run(total, {a: av, b: bv}), av * 2 + bv * 3 + av * bv)


def test_every_differentiable_op_is_checked():
    """Runs last (file order): every op registered as differentiable appeared in a checked graph."""
    import kestimator.optimizers  # noqa: F401  (registers ApplyOptimizer)
    if len(_covered) < 10:
        pytest.skip("run the whole file: coverage is collected from the other tests in it")
    missing = sorted(n for n, op in registered_ops().items()
                     if _engine_op(op) and op.differentiable and n not in _covered)
    assert not missing, f"differentiable ops without a gradient check: {missing}"
