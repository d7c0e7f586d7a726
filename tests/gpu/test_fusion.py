"""The GPU Plan passes: elementwise trees and moments fused into one kernel, checked against the CPU.

The fused kernels are real CUDA C from kestimator/engine/gpu/fusion.py, compiled and run by the CPU
emulator (tests/gpu/cuda_emulator.py) behind the fake CuPy, so the generated sources are tested for what
they compute; how fast they are on a GPU is not (see docs/GPU.md).
"""
import numpy as np
import pytest

import kestimator as ks
from kestimator import engine as ke
from kestimator.engine.gpu import fusion

from .test_backend_seam import X, _train

R = np.random.default_rng(11)


def _run(build, inputs, device):
    """build(*placeholders) on `device`; returns (result, plan)."""
    g = ke.Graph()
    with g.as_default():
        xs = [ke.placeholder(ke.as_dtype(v.dtype), shape=v.shape) for v in inputs]
        with ke.device(device):
            out = build(*xs)
    with ke.Session(graph=g) as sess:
        got = sess.run(out, dict(zip(xs, inputs)))
        return got, list(sess._plans.values())[-1]


def _fused(plan):
    return [op for op in plan.ops if isinstance(op, fusion.FusedOp)]


# op type -> (attrs, which inputs): "x" any real, "y" a second real, "p" positive
_TEMPLATE_CASES = {name: ({}, "x") for name in fusion.TEMPLATES}
_TEMPLATE_CASES.update({
    "Log": ({}, "p"), "Log1p": ({}, "p"), "Sqrt": ({}, "p"), "Rsqrt": ({}, "p"), "Reciprocal": ({}, "p"),
    "LeakyRelu": ({"alpha": 0.3}, "x"), "ReluGrad": ({}, "xy"), "Pow": ({}, "py"), "AddN": ({}, "xyp"),
    **{b: ({}, "xy") for b in ("Add", "Sub", "Mul", "RealDiv", "Maximum", "Minimum", "SquaredDifference")},
})


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-13), (np.float32, 2e-6)])
def test_every_template_matches_the_cpu_kernel(fake_gpu_kernels, dtype, rtol):
    """All of fusion.TEMPLATES in one ElementwiseKernel (one output per op), against each op's CPU kernel."""
    from kestimator.engine.registry import get_opdef
    n = 64
    values = {"x": (R.normal(size=n) * 4).astype(dtype), "y": R.normal(size=n).astype(dtype),
              "p": R.uniform(0.1, 3.0, size=n).astype(dtype)}
    values["x"][:8] = [0.0, -0.0, 0.5, -0.5, 1.5, -2.5, 6.5, 40.0]   # kinks, ties for rint, relu6's top
    values["y"][:2] = [np.nan, 0.0]                                    # a NaN must propagate
    names = sorted(_TEMPLATE_CASES)
    body = [f"out{k} = {fusion.TEMPLATES[op](['in_' + c for c in args], attrs)};"
            for k, (op, (attrs, args)) in enumerate((op, _TEMPLATE_CASES[op]) for op in names)]
    kernel = fake_gpu_kernels.ElementwiseKernel("T in_x, T in_y, T in_p", ", ".join(f"T out{k}" for k in
                                                                                  range(len(names))),
                                                "\n".join(body), "all_templates")
    dev = [fake_gpu_kernels.asarray(values[c]) for c in "xyp"]
    outs = kernel(*dev)
    assert len(outs) == len(names) == len(fusion.TEMPLATES)
    for op, got in zip(names, outs):
        attrs, args = _TEMPLATE_CASES[op]
        with np.errstate(all="ignore"):   # NaN inputs make NaN outputs, on purpose
            want = get_opdef(op).kernel(np, attrs)(*[values[c] for c in args])
            np.testing.assert_allclose(got.get(), want, rtol=rtol, atol=rtol, equal_nan=True, err_msg=op)


def test_binary_ops_nan_propagation_and_broadcast_inputs(fake_gpu_kernels):
    a = R.normal(size=(4, 6))
    b = R.normal(size=(4, 6))
    a[0, 0], b[1, 1] = np.nan, np.nan   # maximum / minimum must propagate a NaN from either side
    bias = R.normal(size=(6,))
    p = R.uniform(0.5, 2.0, size=(4, 6))

    def build(x, y, c, q):
        z = ke.maximum(x, y) - ke.minimum(x, y) + c
        return ke.add_n([z / q, ke.squared_difference(x, c), ke.pow(q, y)]) * 0.25
    want, _ = _run(build, [a, b, bias, p], "")
    got, plan = _run(build, [a, b, bias, p], "/gpu:0")
    [op] = plan.ops                          # all nine ops in one kernel
    assert len(op.members) == 9 and len(op.inputs) == 4   # the (6,) bias is broadcast by the kernel
    assert "(T)(0.25)" in op.source                                      # a scalar constant is a literal
    np.testing.assert_allclose(got, want, rtol=1e-13, equal_nan=True)
    assert np.isnan(got[0, 0]) and np.isnan(got[1, 1])


def test_fetched_and_shared_intermediates_stay_materialized(fake_gpu_kernels):
    x = R.normal(size=(3, 4))

    def build(a):
        h = ke.exp(a) * 2.0          # `h` has two readers: it cannot be absorbed
        return [h, ke.tanh(h) + 1.0, ke.sqrt(ke.abs(h - 1.0))]
    want, _ = _run(build, [x], "")
    got, plan = _run(build, [x], "/gpu:0")
    for g_, w in zip(got, want):
        np.testing.assert_allclose(g_, w, rtol=1e-13)
    assert sorted(len(op.members) for op in _fused(plan)) == [2, 2, 3]


def test_the_cpu_plan_is_never_fused(fake_gpu_kernels):
    _, plan = _run(lambda a: ke.nn.relu(a * 2.0 + 1.0), [X], "")
    assert not _fused(plan) and "_use" not in plan.source and plan.kernel_types == ["Mul", "Add", "Relu"]


@pytest.mark.parametrize("shape,axes,keepdims", [((4, 3, 3, 5), [0, 1, 2], False), ((6, 9), [1], True),
                                                  ((7, 300), [0], False)],
                         ids=["batchnorm_nhwc", "layernorm", "more_rows_than_threads"])
def test_moments_become_one_kernel(fake_gpu_kernels, shape, axes, keepdims):
    x = (R.normal(size=shape) * 3 + 1).astype(np.float32)
    gamma = R.uniform(0.5, 1.5, size=[shape[i] for i in range(len(shape)) if i not in axes]).astype(np.float32)

    def build(a):
        mean, var = ke.nn.moments(a, axes, keepdims=keepdims)
        if not keepdims:
            return [mean, var, ke.nn.batch_normalization(a, mean, var, 0.1, gamma, 1e-3)]
        return [mean, var, ke.nn.batch_normalization(a, mean, var, 0.1, ke.reshape(gamma, mean.shape), 1e-3)]
    want, _ = _run(build, [x], "")
    got, plan = _run(build, [x], "/gpu:0")
    assert any(t.startswith("FusedMoments") for t in plan.kernel_types), plan.kernel_types
    for g_, w in zip(got, want):   # float32; the kernel sums in float64, the CPU pairwise in float32
        np.testing.assert_allclose(g_, w, rtol=2e-5, atol=2e-5)


def test_training_with_fused_kernels_matches_the_cpu(fake_gpu_kernels):
    # fused Add+Relu, the fused cross-entropy kernel, and the fused Adam ElementwiseKernel
    _, cpu_losses, cpu_weights, _ = _train("", steps=5)
    sess, gpu_losses, gpu_weights, _ = _train("/gpu:0", steps=5)
    plan = next(p for p in sess._plans.values() if "ApplyOptimizer" in p.kernel_types)
    assert "FusedElementwise(Add, Relu)" in plan.kernel_types
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-6)
    for a, b in zip(gpu_weights, cpu_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_fused_cross_entropy_gives_nan_for_a_bad_label_as_tf_on_gpu(fake_gpu_kernels):
    logits = R.normal(size=(3, 4)).astype(np.float32)
    labels = np.array([1, 7, 0], np.int64)
    got, plan = _run(lambda a, b: ke.nn.sparse_softmax_cross_entropy_with_logits(labels=b, logits=a),
                     [logits, labels], "/gpu:0")
    assert np.isnan(got[1]) and not np.isnan(got[[0, 2]]).any()
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(got[[0, 2]], -np.log((e / e.sum(1, keepdims=True))[[0, 2], [1, 0]]), rtol=1e-6)
    with pytest.raises(ks.errors.InvalidArgumentError, match="label 7"):   # the CPU kernel raises
        _run(lambda a, b: ke.nn.sparse_softmax_cross_entropy_with_logits(labels=b, logits=a), [logits, labels], "")
