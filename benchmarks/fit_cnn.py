"""Small CNN training throughput: kestimator's fit() against PyTorch and Keras-on-TensorFlow.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fit_cnn.py [--rounds 3] [--epochs 3]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fit_cnn.py --profile 200 [--threads 1] [--workers 2]

Model: Conv 3x3x32 relu -> MaxPool 2 -> Conv 3x3x64 relu -> MaxPool 2 -> Flatten -> Dense 10 (softmax /
logits + crossentropy), Adam 1e-3, batch 64, 12,800 synthetic 28x28x1 samples (200 steps per epoch).
The first epoch is dropped (compilation / tracing); steps/s is the median of the others. Peers run in
subprocesses of /root/peers/bin/python, one at a time; ratios are computed round by round.
`--profile STEPS` runs only kestimator and prints each kernel's CPU and wall ms per step (no peers), with the
given BLAS threads and intra-op workers (engine/intra_op.py; fit() itself picks both by timing); at most the
200 steps the data holds.
"""
import argparse
import os
import re
import sys
import tempfile
import textwrap
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from _common import blas_libraries, run_peer_code  # noqa: E402
N, BATCH = 12800, 64

TORCH = textwrap.dedent("""
    import json, sys, time, numpy as np, torch
    X = torch.from_numpy(np.load(sys.argv[1])).permute(0, 3, 1, 2).contiguous(); Y = torch.from_numpy(np.load(sys.argv[2]))
    bs, epochs = int(sys.argv[3]), int(sys.argv[4])
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    lossf = nn.CrossEntropyLoss()
    steps = -(-X.shape[0] // bs); rates = []
    for epoch in range(epochs):
        perm = torch.randperm(X.shape[0]); t = time.perf_counter()
        for i in range(steps):
            idx = perm[i * bs:(i + 1) * bs]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(X[idx]), Y[idx]); loss.backward(); opt.step()
        rates.append(steps / (time.perf_counter() - t))
    print(json.dumps({"rates": rates, "threads": torch.get_num_threads()}))
""")

KERAS = textwrap.dedent("""
    import os, json, sys, time
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, keras
    X = np.load(sys.argv[1]); Y = np.load(sys.argv[2]); bs, epochs = int(sys.argv[3]), int(sys.argv[4])
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
                              L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
                              L.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    times = []
    class T(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
        def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
    model.fit(X, Y, batch_size=bs, epochs=epochs, verbose=0, callbacks=[T()])
    steps = -(-X.shape[0] // bs)
    print(json.dumps({"rates": [steps / t for t in times]}))
""")


def small_cnn():
    """kestimator's compiled small CNN, seeded (the model the peers build too)."""
    from kestimator import keras
    from kestimator.layers.base import set_random_seed
    set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
                              L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
                              L.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def ours(x, y, epochs):
    from kestimator import keras
    model = small_cnn()
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[Timer()])
    return [-(-len(x) // BATCH) / t for t in times], (model._blas_threads, model._intra_op_workers)


def profile(x, y, steps, threads, workers=1):
    """Per-op milliseconds of one training step: every kernel of the compiled train Plan is wrapped in a timer.

    fit()'s own BLAS-thread trial is switched off (it would mix both thread counts into the figures); the
    steps run with `threads` BLAS threads and `workers` intra-op workers (engine/intra_op.py)."""
    from threadpoolctl import threadpool_limits

    from kestimator.engine import intra_op
    from kestimator.engine import session as _session
    from kestimator.models import threads as _threads
    steps = min(steps, len(x) // BATCH)   # the per-step means divide by the steps that ran
    _threads.BlasThreads.available = lambda self: False
    limit = threadpool_limits(threads, user_api="blas")
    plans, plan_for = [], _session.Session._plan_for

    def recording(self, *a, **kw):
        plan = plan_for(self, *a, **kw)
        if plan not in plans:
            plans.append(plan)
        return plan
    _session.Session._plan_for = recording
    try:
        model = small_cnn()
        model.fit(x[:BATCH * 4], y[:BATCH * 4], batch_size=BATCH, epochs=1, verbose=0)
    finally:
        _session.Session._plan_for = plan_for
    plan = max(plans, key=lambda p: len(p.source))
    ns = plan._fn.__globals__
    totals = {}
    for lineno, line in enumerate(plan.source.splitlines(), 1):
        m = re.search(r"\b(k\d+)\(", line)
        if not m or lineno not in plan._line_ops:
            continue
        op, name = plan._line_ops[lineno], m.group(1)
        label = f"{op.type} {op.name}"

        def timed(*a, _fn=ns[name], _label=label, **kw):
            t, c = time.perf_counter(), time.process_time()
            r = _fn(*a, **kw)
            wall, cpu = totals.get(_label, (0.0, 0.0))
            totals[_label] = (wall + time.perf_counter() - t, cpu + time.process_time() - c)
            return r
        ns[name] = timed
    intra_op.set_workers(workers)
    t, c = time.perf_counter(), time.process_time()
    model.fit(x[:BATCH * steps], y[:BATCH * steps], batch_size=BATCH, epochs=1, verbose=0)
    intra_op.set_workers(1)
    wall, cpu = (time.perf_counter() - t) / steps * 1e3, (time.process_time() - c) / steps * 1e3
    # process CPU time counts every thread (BLAS workers too) and is what load from other processes inflates
    # least; wall time is what a step costs on this machine right now
    limit.restore_original_limits()
    print(f"per-op ms per step (mean of {steps} steps, {threads} BLAS thread(s), {workers} intra-op worker(s)), "
          f"load {os.getloadavg()[0]:.2f}:\n  {'cpu_ms':>8}  {'wall_ms':>8}  op")
    for label, (w, u) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"  {u / steps * 1e3:8.3f}  {w / steps * 1e3:8.3f}  {label}")
    print(f"  {sum(u for _, u in totals.values()) / steps * 1e3:8.3f}  "
          f"{sum(w for w, _ in totals.values()) / steps * 1e3:8.3f}  kernels total; "
          f"fit() cpu {cpu:.3f} ms/step, wall {wall:.3f} ms/step")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--profile", type=int, default=0, metavar="STEPS",
                    help="only print kestimator's per-op ms per training step, averaged over STEPS steps")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads for --profile")
    ap.add_argument("--workers", type=int, default=1, help="intra-op workers for --profile")
    args = ap.parse_args()
    print(f"blas: {blas_libraries()}")
    rng = np.random.default_rng(0)
    x = rng.random((N, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, N).astype(np.int64)
    if args.profile:
        profile(x, y, args.profile, args.threads, args.workers)
        return
    tmp = tempfile.mkdtemp()
    xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xp, x)
    np.save(yp, y)
    rows = []
    for r in range(args.rounds):
        mine, (threads, workers) = ours(x, y, args.epochs)
        t = run_peer_code(TORCH, [xp, yp, BATCH, args.epochs])
        k = run_peer_code(KERAS, [xp, yp, BATCH, args.epochs])
        row = {"ours": float(np.median(mine[1:] or mine)), "torch": float(np.median(t["rates"][1:] or t["rates"])),
               "keras": float(np.median(k["rates"][1:] or k["rates"])), "ours_blas_threads": threads or 0,
               "ours_intra_op_workers": workers or 0,
               "load": os.getloadavg()[0]}   # steps/s under other engineers' load: read ratios per round
        rows.append(row)
        print(f"  round {r + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True)

    def med(values):
        return float(np.median(values))
    print(f"cnn_b{BATCH} kestimator_steps_per_s={med([r['ours'] for r in rows]):.1f} "
          f"torch_steps_per_s={med([r['torch'] for r in rows]):.1f} "
          f"keras_steps_per_s={med([r['keras'] for r in rows]):.1f} "
          f"ratio_vs_torch={med([r['ours'] / r['torch'] for r in rows]):.2f} "
          f"ratio_vs_keras={med([r['ours'] / r['keras'] for r in rows]):.2f} "
          f"ratio_vs_faster={med([r['ours'] / max(r['torch'], r['keras']) for r in rows]):.2f} "
          f"best_round_ratio_vs_faster={max(r['ours'] / max(r['torch'], r['keras']) for r in rows):.2f} "
          f"load={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
