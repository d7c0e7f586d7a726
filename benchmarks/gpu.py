"""The GPU backend against PyTorch on the same card, same run.

Figures (one line each, `name kestimator_x=.. torch_x=.. ratio=..`):
  * mlp_b32 / mlp_b1024: the seed MLP (784 -> 128 relu -> 10, sparse softmax cross-entropy, Adam 1e-3),
    training steps per second over one epoch of 60,000 random rows; every step takes a host batch and
    returns the loss to the host (kestimator: make_callable([train, loss]); torch: loss.item());
  * cnn_b256: a small CNN on 28x28x1 inputs (conv 3x3x32 relu, max-pool 2, conv 3x3x64 relu, max-pool 2,
    dense 10), same loop, 60 steps;
  * hist_1M_x20: boosted-tree histograms of one node holding 1,000,000 rows x 20 features x 256 bins
    (gradient, hessian, count in float64), milliseconds per build: kestimator's atomic-add RawKernel
    against torch's index_add_ on the same card (and the CPU numba builder, for scale).

Timing: median of 3 rounds; device work is synchronized before a clock is read. Both sides start with
the data on the host, as a training loop fed from a dataset does.

Run on a machine with a CUDA GPU, CuPy (pip install kestimator[gpu]) and a CUDA build of torch in the
peer venv:   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gpu.py
Without a GPU it prints one line saying so. `--smoke` runs the kestimator side at toy sizes on the fake
CuPy of tests/gpu (numbers meaningless; it checks that the script itself works).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import PEERS_PYTHON, header  # noqa: E402

ROUNDS = 3

# Runs in the peer venv: argv = sizes as JSON; prints one JSON object with the torch figures (or an error).
PEER_CODE = r"""
import json, statistics, sys, time
import numpy as np
import torch

cfg = json.loads(sys.argv[1])
if not torch.cuda.is_available():
    print(json.dumps({"error": "torch sees no CUDA device (install a CUDA build of torch in the peer venv)"}))
    sys.exit(0)
dev = torch.device("cuda:0")
torch.backends.cudnn.benchmark = True
out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
rng = np.random.default_rng(0)

def epoch(model, X, Y, bs, steps):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    for i in range(3):   # warm-up (cuDNN autotuning, allocator)
        xb = torch.from_numpy(X[:bs]).to(dev); yb = torch.from_numpy(Y[:bs]).to(dev)
        opt.zero_grad(set_to_none=True); lossf(model(xb), yb).backward(); opt.step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(steps):
        j = (i * bs) % (len(X) - bs)
        xb = torch.from_numpy(X[j:j + bs]).to(dev); yb = torch.from_numpy(Y[j:j + bs]).to(dev)
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(xb), yb)
        loss.backward(); opt.step()
        loss.item()
    torch.cuda.synchronize()
    return steps / (time.perf_counter() - t)

X = rng.random((cfg["rows"], 784), dtype=np.float32)
Y = rng.integers(0, 10, cfg["rows"]).astype(np.int64)
for bs in cfg["mlp_batches"]:
    rates = []
    for _ in range(cfg["rounds"]):
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).to(dev)
        rates.append(epoch(m, X, Y, bs, cfg["rows"] // bs))
    out[f"mlp_b{bs}"] = statistics.median(rates)
XI = rng.random((cfg["cnn_rows"], 1, 28, 28), dtype=np.float32)
YI = rng.integers(0, 10, cfg["cnn_rows"]).astype(np.int64)
rates = []
for _ in range(cfg["rounds"]):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                            torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                            torch.nn.Flatten(), torch.nn.Linear(64 * 5 * 5, 10)).to(dev)
    rates.append(epoch(m, XI, YI, cfg["cnn_batch"], cfg["cnn_steps"]))
out[f"cnn_b{cfg['cnn_batch']}"] = statistics.median(rates)
n, f, b = cfg["hist_rows"], cfg["hist_features"], cfg["hist_bins"]
binned = torch.from_numpy(rng.integers(0, b, size=(f, n)).astype(np.int64)).to(dev)
g = torch.from_numpy(rng.normal(size=n).astype(np.float32)).to(dev)
h = torch.from_numpy(rng.uniform(0.1, 1, size=n).astype(np.float32)).to(dev)
rows = torch.from_numpy(rng.permutation(n).astype(np.int64)).to(dev)

def hist():
    gg, hh = g[rows].double(), h[rows].double()
    flat = (binned[:, rows] + torch.arange(f, device=dev)[:, None] * b).reshape(-1)
    out = torch.zeros(f * b, 3, dtype=torch.float64, device=dev)
    out[:, 0].index_add_(0, flat, gg.repeat(f))
    out[:, 1].index_add_(0, flat, hh.repeat(f))
    out[:, 2].index_add_(0, flat, torch.ones_like(gg).repeat(f))
    return out
hist(); torch.cuda.synchronize()
times = []
for _ in range(cfg["rounds"]):
    t = time.perf_counter(); hist(); torch.cuda.synchronize(); times.append(time.perf_counter() - t)
out["hist_ms"] = statistics.median(times) * 1e3
print(json.dumps(out))
"""


def _config(smoke):
    if smoke:
        return {"rows": 2048, "mlp_batches": [32, 1024], "cnn_rows": 512, "cnn_batch": 256, "cnn_steps": 2,
                "hist_rows": 20_000, "hist_features": 4, "hist_bins": 256, "rounds": 1}
    return {"rows": 60_000, "mlp_batches": [32, 1024], "cnn_rows": 15_360, "cnn_batch": 256, "cnn_steps": 60,
            "hist_rows": 1_000_000, "hist_features": 20, "hist_bins": 256, "rounds": ROUNDS}


def _sync():
    from kestimator.engine import devices
    backend = devices.gpu_backend()
    backend.synchronize(devices.physical_gpu(0))


def _mlp_rate(X, Y, bs):
    import kestimator as ks
    from kestimator import engine as ke
    g = ke.Graph()
    with g.as_default():
        ke.set_random_seed(0)
        x = ke.placeholder(ke.float32, [None, 784])
        y = ke.placeholder(ke.int32, [None])
        with ke.device("/gpu:0"):
            w1 = ke.get_variable("w1", [784, 128])
            b1 = ke.get_variable("b1", [128], initializer=ke.zeros_initializer)
            w2 = ke.get_variable("w2", [128, 10])
            b2 = ke.get_variable("b2", [10], initializer=ke.zeros_initializer)
            logits = ke.matmul(ke.nn.relu(ke.matmul(x, w1) + b1), w2) + b2
            loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            train = ks.optimizers.Adam(1e-3).minimize(loss)
        init = ke.global_variables_initializer()
    return _loop(g, init, x, y, train, loss, X, Y, bs, len(X) // bs)


def _cnn_rate(X, Y, bs, steps):
    import kestimator as ks
    from kestimator import engine as ke
    g = ke.Graph()
    with g.as_default():
        ke.set_random_seed(0)
        x = ke.placeholder(ke.float32, [None, 28, 28, 1])
        y = ke.placeholder(ke.int32, [None])
        with ke.device("/gpu:0"):
            k1 = ke.get_variable("k1", [3, 3, 1, 32])
            c1 = ke.get_variable("c1", [32], initializer=ke.zeros_initializer)
            k2 = ke.get_variable("k2", [3, 3, 32, 64])
            c2 = ke.get_variable("c2", [64], initializer=ke.zeros_initializer)
            w = ke.get_variable("w", [5 * 5 * 64, 10])
            h = ke.nn.max_pool(ke.nn.relu(ke.nn.conv2d(x, k1, 1, "VALID") + c1), 2, 2, "VALID")
            h = ke.nn.max_pool(ke.nn.relu(ke.nn.conv2d(h, k2, 1, "VALID") + c2), 2, 2, "VALID")
            logits = ke.matmul(ke.reshape(h, [-1, 5 * 5 * 64]), w)
            loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            train = ks.optimizers.Adam(1e-3).minimize(loss)
        init = ke.global_variables_initializer()
    return _loop(g, init, x, y, train, loss, X, Y, bs, steps)


def _loop(g, init, x, y, train, loss, X, Y, bs, steps):
    from kestimator import engine as ke
    sess = ke.Session(graph=g)
    sess.run(init)
    step = sess.make_callable([train, loss], [x, y])
    for _ in range(3):   # compile the plan and the kernels
        step(X[:bs], Y[:bs])
    _sync()
    t = time.perf_counter()
    for i in range(steps):
        j = (i * bs) % (len(X) - bs)
        step(X[j:j + bs], Y[j:j + bs])   # fetching the loss synchronizes, as torch's loss.item()
    _sync()
    return steps / (time.perf_counter() - t)


def _hist_ms(cfg, rounds):
    from kestimator.engine import devices
    from kestimator.engine.gpu import histogram
    xp = devices.gpu_backend().xp
    rng = np.random.default_rng(0)
    n, f, b = cfg["hist_rows"], cfg["hist_features"], cfg["hist_bins"]
    binned = xp.asarray(rng.integers(0, b, size=(f, n)).astype(np.uint8))
    g = xp.asarray(rng.normal(size=n).astype(np.float32))
    h = xp.asarray(rng.uniform(0.1, 1, size=n).astype(np.float32))
    rows = xp.asarray(rng.permutation(n).astype(np.int32))
    starts, stops, slots = np.array([0], np.int64), np.array([n], np.int64), np.array([0], np.int64)
    hist = xp.zeros((1, f, b, 3), dtype=np.float64)
    histogram.build_histograms(binned, g, h, rows, starts, stops, slots, hist)
    _sync()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        histogram.build_histograms(binned, g, h, rows, starts, stops, slots, hist)
        _sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _cpu_hist_ms(cfg):
    from kestimator.estimators.boosted_trees import _backend
    from kestimator.estimators.boosted_trees import histogram as cpu
    rng = np.random.default_rng(0)
    n, f, b = cfg["hist_rows"], cfg["hist_features"], cfg["hist_bins"]
    args = (rng.integers(0, b, size=(f, n)).astype(np.uint8), rng.normal(size=n).astype(np.float32),
            rng.uniform(0.1, 1, size=n).astype(np.float32), rng.permutation(n).astype(np.int32),
            np.array([0], np.int64), np.array([n], np.int64), np.array([0], np.int64), np.zeros((1, f, b, 3)))
    kernels = "numba" if _backend.numba_kernels() is not None else "numpy"
    cpu.build_histograms(*args, kernels=kernels)
    t = time.perf_counter()
    cpu.build_histograms(*args, kernels=kernels)
    return (time.perf_counter() - t) * 1e3, kernels


def _peer(cfg):
    if not os.path.exists(PEERS_PYTHON):
        return {"error": f"no peer interpreter at {PEERS_PYTHON}"}
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(PEER_CODE)
    try:
        out = subprocess.run([PEERS_PYTHON, f.name, json.dumps(cfg)], capture_output=True, text=True, timeout=3600)
    finally:
        os.remove(f.name)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _line(name, unit, ours, theirs, higher_is_better=True):
    ratio = "n/a" if not theirs else f"{(ours / theirs if higher_is_better else theirs / ours):.2f}"
    fmt = (lambda v: f"{v:.1f}") if unit == "ms" else (lambda v: f"{v:.0f}")
    print(f"{name} kestimator_{unit}={fmt(ours)} torch_{unit}={fmt(theirs) if theirs else 'n/a'} ratio={ratio}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="toy sizes on the fake CuPy of tests/gpu; no peer")
    args = parser.parse_args()
    header("gpu")
    from kestimator.engine import devices
    if args.smoke:
        from tests.gpu.fake_device import make_fake_cupy
        devices.register_backend("GPU", make_fake_cupy(1, kernels=True))
        print("# SMOKE RUN on the fake CuPy: the numbers say nothing about a GPU")
    backend = devices.gpu_backend()
    if backend is None:
        print("# no GPU: CuPy is missing or sees no CUDA device; nothing measured")
        return
    if not args.smoke:
        props = backend.module.cuda.runtime.getDeviceProperties(devices.physical_gpu(0))
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        print(f"# device: {name}, cupy {backend.module.__version__}, "
              f"CUDA runtime {backend.module.cuda.runtime.runtimeGetVersion()}")
    cfg = _config(args.smoke)
    peer = {} if args.smoke else _peer(cfg)
    if "error" in peer:
        print(f"# peer error: {peer['error']}")
    elif peer:
        print(f"# peer: torch {peer.get('torch')} on {peer.get('device')}")
    rng = np.random.default_rng(0)
    X = rng.random((cfg["rows"], 784), dtype=np.float32)
    Y = rng.integers(0, 10, cfg["rows"]).astype(np.int32)
    for bs in cfg["mlp_batches"]:
        rate = statistics.median([_mlp_rate(X, Y, bs) for _ in range(cfg["rounds"])])
        _line(f"mlp_b{bs}", "steps_per_s", rate, peer.get(f"mlp_b{bs}"))
    XI = rng.random((cfg["cnn_rows"], 28, 28, 1), dtype=np.float32)
    YI = rng.integers(0, 10, cfg["cnn_rows"]).astype(np.int32)
    bs = cfg["cnn_batch"]
    rate = statistics.median([_cnn_rate(XI, YI, bs, cfg["cnn_steps"]) for _ in range(cfg["rounds"])])
    _line(f"cnn_b{bs}", "steps_per_s", rate, peer.get(f"cnn_b{bs}"))
    ms = _hist_ms(cfg, cfg["rounds"])
    _line(f"hist_{cfg['hist_rows'] // 1000}k_x{cfg['hist_features']}", "ms", ms, peer.get("hist_ms"),
          higher_is_better=False)
    cpu_ms, kind = _cpu_hist_ms(cfg)
    print(f"# same histogram on the CPU ({kind}): {cpu_ms:.1f} ms")


if __name__ == "__main__":
    main()
