"""The seed MLP (784 -> 128 relu -> 10, softmax cross-entropy, Adam) trained through Session.run,
against the same model in PyTorch (CPU) in the same run; plus the BLAS floor and the per-run overhead
of a cached 10-op plan.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/engine_mlp.py
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import header, median, run_peer  # noqa: E402

import kestimator as ks  # noqa: E402
from kestimator import engine as ke  # noqa: E402

REPEATS = 3
ROWS = 60000


def build():
    g = ke.Graph()
    with g.as_default():
        ke.set_random_seed(0)
        x = ke.placeholder(ke.float32, [None, 784])
        y = ke.placeholder(ke.int32, [None])
        w1 = ke.get_variable("w1", [784, 128])
        b1 = ke.get_variable("b1", [128], initializer=ke.zeros_initializer)
        w2 = ke.get_variable("w2", [128, 10])
        b2 = ke.get_variable("b2", [10], initializer=ke.zeros_initializer)
        logits = ke.matmul(ke.nn.relu(ke.matmul(x, w1) + b1), w2) + b2
        loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        train = ks.optimizers.Adam(1e-3).minimize(loss)
        init = ke.global_variables_initializer()
    return g, x, y, train, loss, init


def epoch_rate(bs, X, Y):
    g, x, y, train, loss, init = build()
    sess = ke.Session(graph=g)
    sess.run(init)
    step = sess.make_callable([train, loss], [x, y])
    n = ROWS // bs
    step(X[:bs], Y[:bs])   # compile the plan
    t = time.perf_counter()
    for i in range(n):
        step(X[i * bs:(i + 1) * bs], Y[i * bs:(i + 1) * bs])
    return n / (time.perf_counter() - t)


def blas_floor(bs, X):
    """Seconds per epoch of this step's matrix products alone (forward and backward GEMMs)."""
    rng = np.random.default_rng(1)
    w1, w2 = rng.random((784, 128), np.float32), rng.random((128, 10), np.float32)
    h, g2, g1 = np.empty((bs, 128), np.float32), rng.random((bs, 10), np.float32), rng.random((bs, 128), np.float32)
    o, dw1, dw2, dh = np.empty((bs, 10), np.float32), np.empty_like(w1), np.empty_like(w2), np.empty_like(h)
    n = ROWS // bs
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        for i in range(n):
            xb = X[i * bs:(i + 1) * bs]
            np.matmul(xb, w1, out=h)
            np.matmul(h, w2, out=o)
            np.matmul(h.T, g2, out=dw2)
            np.matmul(g2, w2.T, out=dh)
            np.matmul(xb.T, g1, out=dw1)
        times.append(time.perf_counter() - t)
    return median(times)


def run_overhead():
    """Microseconds per Session.run of a cached plan with 10 tiny kernels."""
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [4])
        y = x
        for i in range(10):
            y = y * float(i + 2) if i % 2 else y + float(i)
    sess = ke.Session(graph=g)
    plan_kernels = None
    feed = np.ones(4, np.float32)
    sess.run(y, {x: feed})
    plan_kernels = list(sess._plans.values())[0].num_kernels
    n = 20000
    best = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(n):
            sess.run(y, {x: feed})
        best.append((time.perf_counter() - t) / n * 1e6)
    step = sess.make_callable(y, [x])
    fast = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(n):
            step(feed)
        fast.append((time.perf_counter() - t) / n * 1e6)
    return median(best), median(fast), plan_kernels


def main():
    header("engine_mlp")
    rng = np.random.default_rng(0)
    X = rng.random((ROWS, 784), dtype=np.float32)
    Y = rng.integers(0, 10, ROWS).astype(np.int32)
    peer = run_peer(os.path.join(os.path.dirname(__file__), "peers", "torch_mlp.py"), "32,256", REPEATS)
    for bs in (32, 256):
        rate = median([epoch_rate(bs, X, Y) for _ in range(REPEATS)])
        torch_rate = peer.get(str(bs))
        ratio = f"{rate / torch_rate:.2f}" if torch_rate else "n/a"
        line = f"mlp_b{bs} kestimator_steps_per_s={rate:.0f} torch_steps_per_s={torch_rate and round(torch_rate)} " \
               f"ratio={ratio}"
        if bs == 256:
            floor = blas_floor(bs, X)
            epoch = (ROWS // bs) / rate
            line += f" epoch_s={epoch:.3f} blas_floor_s={floor:.3f} vs_floor={epoch / floor:.2f}"
        print(line)
    if "error" in peer:
        print(f"# peer error: {peer['error']}")
    us, fast_us, k = run_overhead()
    print(f"session_run_overhead kernels={k} session_run_us={us:.1f} make_callable_us={fast_us:.1f}")


if __name__ == "__main__":
    main()
