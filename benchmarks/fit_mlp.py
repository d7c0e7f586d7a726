"""Seed MLP training throughput: kestimator's fit() against PyTorch and Keras-on-TensorFlow (same model,
optimizer, batch size, data), the BLAS floor at batch 256, predict() against Keras, and fit()'s peak memory.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fit_mlp.py [--rounds 3] [--epochs 3]

Model: Flatten 28x28 -> Dense 128 relu -> Dense 10 softmax, Adam 1e-3, sparse categorical crossentropy,
metrics=["accuracy"] (--metrics; PyTorch then keeps the same running accuracy), 60,000 synthetic samples.
Each framework trains `epochs` epochs per round; the first epoch (plan compilation / tracing) is dropped
and steps/s is the median of the others. The peers run in subprocesses of /root/peers/bin/python, one
at a time. Ratios are computed round by round; the medians are printed. The machine is shared: figures
drift between runs, ratios within a round are what counts.

`--profile` prints instead where one compiled training step's time goes: each line of the generated plan
timed alone (CPU time of this thread, best of 15 x 200 calls, one BLAS thread so other processes on the
machine disturb it less), the whole step, the make_callable wrapper, and the batch gather.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from _common import blas_libraries, run_peer_code  # noqa: E402
N = 60000

TORCH = textwrap.dedent("""
    import json, sys, time, numpy as np, torch
    X = torch.from_numpy(np.load(sys.argv[1])).reshape(-1, 784); Y = torch.from_numpy(np.load(sys.argv[2]))
    bs, epochs, with_acc = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "accuracy"
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()   # on logits: softmax + sparse crossentropy in one op
    steps = -(-X.shape[0] // bs); rates = []
    for epoch in range(epochs):
        perm = torch.randperm(X.shape[0]); t = time.perf_counter(); correct = torch.zeros(())
        for i in range(steps):
            idx = perm[i * bs:(i + 1) * bs]
            opt.zero_grad(set_to_none=True)
            yb = Y[idx]; out = model(X[idx])
            loss = lossf(out, yb); loss.backward(); opt.step()
            if with_acc:   # the running accuracy Keras's metrics=["accuracy"] keeps
                with torch.no_grad():
                    correct += (out.argmax(1) == yb).sum()
        rates.append(steps / (time.perf_counter() - t))
    print(json.dumps({"rates": rates, "threads": torch.get_num_threads()}))
""")

KERAS = textwrap.dedent("""
    import os, json, sys, time
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, keras
    X = np.load(sys.argv[1]); Y = np.load(sys.argv[2]); bs, epochs = int(sys.argv[3]), int(sys.argv[4])
    metrics = [m for m in sys.argv[5].split(",") if m]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=metrics)
    times = []
    class T(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
        def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
    model.fit(X, Y, batch_size=bs, epochs=epochs, verbose=0, callbacks=[T()])
    steps = -(-X.shape[0] // bs)
    pred = []
    for _ in range(3):
        t = time.perf_counter(); model.predict(X, batch_size=1024, verbose=0); pred.append(time.perf_counter() - t)
    print(json.dumps({"rates": [steps / t for t in times], "predict_s": pred}))
""")

MEMORY = textwrap.dedent("""
    import json, sys, tracemalloc
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    from kestimator import keras
    tracemalloc.start()
    X = np.random.default_rng(0).random((60000, 784), dtype=np.float32); Y = np.random.default_rng(1).integers(0, 10, 60000)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    model.fit(X, Y, batch_size=32, epochs=1, verbose=0)
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"before": before, "peak": peak, "data": X.nbytes + Y.nbytes,
                      "model": sum(int(np.prod(w.shape)) * 4 for w in model.weights)}))
""")


def ours(x, y, bs, epochs, metrics):
    from kestimator import keras
    from kestimator.layers.base import set_random_seed
    set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=metrics)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)
    model.fit(x, y, batch_size=bs, epochs=epochs, verbose=0, callbacks=[Timer()])
    steps = -(-len(x) // bs)
    pred = []
    for _ in range(3):
        t = time.perf_counter()
        model.predict(x, batch_size=1024)
        pred.append(time.perf_counter() - t)
    return [steps / t for t in times], pred, model._blas_threads


def blas_floor_epoch(bs, reps=200):
    """Seconds per epoch of the step's GEMMs alone: forward x@W1, h@W2; backward h^T@g, g@W2^T, x^T@gh."""
    rng = np.random.default_rng(0)
    x, h, g = (rng.random((bs, 784), dtype=np.float32), rng.random((bs, 128), dtype=np.float32),
               rng.random((bs, 10), dtype=np.float32))
    w1, w2 = rng.random((784, 128), dtype=np.float32), rng.random((128, 10), dtype=np.float32)
    outs = [np.empty((bs, 128), np.float32), np.empty((bs, 10), np.float32), np.empty((128, 10), np.float32),
            np.empty((bs, 128), np.float32), np.empty((784, 128), np.float32)]

    def step():
        np.matmul(x, w1, out=outs[0])
        np.matmul(h, w2, out=outs[1])
        np.matmul(h.T, g, out=outs[2])
        np.matmul(g, w2.T, out=outs[3])
        np.matmul(x.T, h, out=outs[4])
    for _ in range(20):
        step()
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            step()
        samples.append((time.perf_counter() - t) / reps)
    return float(np.median(samples)) * (-(-N // bs))


def profile_step(x, y, bs, metrics):
    """Print the CPU time of each kernel call of the compiled training step (see the module docstring)."""
    from threadpoolctl import threadpool_limits
    from kestimator import keras
    from kestimator.models import data_adapter
    threadpool_limits(1)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=metrics)
    model.fit(x[:bs * 50], y[:bs * 50], batch_size=bs, epochs=1, verbose=0)
    plan = next(p for key, p in model._runtime.session._plans.items()   # key[3]: the feed shapes
                if "ApplyOptimizer" in p.kernel_types and key[3][0][0] == bs)
    idx = np.sort(np.random.default_rng(1).permutation(len(x))[:bs])
    feeds = [x[idx], y[idx]]
    env = dict(plan._fn.__globals__, **{f"f{i}": v for i, v in enumerate(feeds)})
    lines = [ln.strip() for ln in plan.source.splitlines()[1:-1]]
    for ln in lines:
        exec(ln, env)   # our own generated plan source, run line by line to time each kernel

    def best(fn, reps=200):
        fn()
        samples = []
        for _ in range(15):
            t = time.thread_time()
            for _ in range(reps):
                fn()
            samples.append((time.thread_time() - t) / reps)
        return min(samples) * 1e6
    print(f"profile batch {bs}: CPU us per call, one BLAS thread")
    kinds = [op.type for op in plan.ops if op.type not in ("VariableV2", "NoOp")]
    total = 0.0
    for ln, kind in zip(lines, kinds):
        exec(f"def _line():\n    {ln}\n", env)
        us = best(env["_line"])
        total += us
        print(f"  {us:8.2f}  {kind:55s} {ln[:60]}")
    print(f"  {total:8.2f}  sum of the lines")
    print(f"  {best(lambda: plan._fn(*feeds)):8.2f}  the generated step function")
    step = model._runtime.train_function(model._signature([feeds[1]], None))
    print(f"  {best(lambda: step(*feeds)):8.2f}  make_callable step (feeds checked, plan looked up)")
    source = data_adapter.ArrayBatches([x, y], bs, shuffle=True, seed=1)
    samples = []
    for epoch in range(3):
        t, n = time.thread_time(), 0
        for _ in source.epoch(epoch):
            n += 1
        samples.append((time.thread_time() - t) / n * 1e6)
    print(f"  {min(samples):8.2f}  shuffled batch gather (x and y)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batches", default="32,256")
    ap.add_argument("--no-keras", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--profile", action="store_true", help="time each kernel of one training step instead")
    ap.add_argument("--metrics", default="accuracy",
                    help='compile() metrics of kestimator and Keras, comma separated ("" for none); PyTorch '
                         'keeps the same running accuracy when "accuracy" is given')
    args = ap.parse_args()
    metrics = [m for m in args.metrics.split(",") if m]
    print(f"blas: {blas_libraries()}")
    print(f"metrics: {metrics}; load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    rng = np.random.default_rng(0)
    x = rng.random((N, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, N).astype(np.int64)
    tmp = tempfile.mkdtemp()
    xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    if args.profile:
        for bs in [int(b) for b in args.batches.split(",")]:
            profile_step(x, y, bs, metrics)
        return
    np.save(xp, x)
    np.save(yp, y)
    results = {}
    for bs in [int(b) for b in args.batches.split(",")]:
        rows = []
        for r in range(args.rounds):
            mine, pred, threads = ours(x, y, bs, args.epochs, metrics)
            row = {"ours": float(np.median(mine[1:] or mine)), "ours_predict": float(np.median(pred)),
                   "ours_blas_threads": threads or 0}
            if not args.no_torch:
                t = run_peer_code(TORCH, [xp, yp, bs, args.epochs, args.metrics])
                row["torch"] = float(np.median(t["rates"][1:] or t["rates"]))
                row["torch_threads"] = t["threads"]
            if not args.no_keras:
                k = run_peer_code(KERAS, [xp, yp, bs, args.epochs, args.metrics])
                row["keras"] = float(np.median(k["rates"][1:] or k["rates"]))
                row["keras_predict"] = float(np.median(k["predict_s"]))
            if bs == 256:
                row["floor_epoch_s"] = blas_floor_epoch(bs)
            rows.append(row)
            print(f"  round {r + 1} batch {bs}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True)
        results[bs] = rows

    def med(values):
        return float(np.median(values))
    for bs, rows in results.items():
        line = f"mlp_b{bs} kestimator_steps_per_s={med([r['ours'] for r in rows]):.0f}"
        if "torch" in rows[0]:
            line += (f" torch_steps_per_s={med([r['torch'] for r in rows]):.0f} "
                     f"ratio_vs_torch={med([r['ours'] / r['torch'] for r in rows]):.2f}")
        if "keras" in rows[0]:
            line += (f" keras_steps_per_s={med([r['keras'] for r in rows]):.0f} "
                     f"ratio_vs_keras={med([r['ours'] / r['keras'] for r in rows]):.2f}")
        print(line)
        if "floor_epoch_s" in rows[0]:
            steps = -(-N // bs)
            ratios = [(steps / r["ours"]) / r["floor_epoch_s"] for r in rows]
            print(f"mlp_b{bs}_blas_floor kestimator_epoch_s={med([steps / r['ours'] for r in rows]):.3f} "
                  f"floor_epoch_s={med([r['floor_epoch_s'] for r in rows]):.3f} ratio_to_floor={med(ratios):.2f}")
    last = results[max(results)]
    if "keras_predict" in last[0]:
        print(f"predict_60000_b1024 kestimator_s={med([r['ours_predict'] for r in last]):.3f} "
              f"keras_s={med([r['keras_predict'] for r in last]):.3f} "
              f"speedup={med([r['keras_predict'] / r['ours_predict'] for r in last]):.2f}")
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    mem = subprocess.run([sys.executable, "-c", MEMORY, ROOT], capture_output=True, text=True, timeout=900)
    if mem.returncode == 0:
        m = json.loads(mem.stdout.strip().splitlines()[-1])
        limit = 2 * m["data"] + m["model"]
        print(f"fit_memory_60000x784 peak_mb={m['peak'] / 2**20:.1f} data_mb={m['data'] / 2**20:.1f} "
              f"limit_mb={limit / 2**20:.1f} ratio_to_limit={m['peak'] / limit:.2f}")
    else:
        print("fit_memory failed:", mem.stderr[-1000:])


if __name__ == "__main__":
    main()
