"""Data-parallel scaling of the seed MLP (784 -> 128 relu -> 10, Adam 1e-3, sparse softmax CE) on 1 vs 2
MPI ranks of this machine (graph mode + ks.distributed.DistributedOptimizer), against PyTorch
DistributedDataParallel (gloo) on 1 vs 2 processes in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/distributed.py

Figures (one line each):
* weak scaling, b rows per rank (each rank 1 BLAS thread): efficiency = samples/s on 2 ranks / (2 x
  samples/s on 1 rank); 1.0 is perfect;
* strong scaling, a global batch of 256: 1 process with 2 BLAS threads vs 2 ranks x 128 rows x 1 thread
  (what the 2 cores of this machine can do either way);
* communication per step: the time the gradient allreduce waits per step (includes waiting for the
  slower rank), and a bare allreduce of the 101,770-float gradient slab.

The script launches itself under `mpiexec -n N ... --worker` (kestimator) and under the peers' Python
with `--torch-worker` (PyTorch; nothing from kestimator is imported there).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ROWS = 8192          # distinct rows cycled through (the speed does not depend on the values)
PORT = 29517


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((ROWS, 784), dtype=np.float32), rng.integers(0, 10, ROWS).astype(np.int32)


def _median_rate(times, steps):
    return steps / statistics.median(times)


# -- kestimator worker (runs under mpiexec) ---------------------------------------------------------------------
def kestimator_worker(batch, steps, repeats, threads, fp16=0):
    sys.path.insert(0, ROOT)
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)
    import kestimator as ks
    import kestimator.distributed as kd
    from kestimator import engine as ke
    kd.init()
    r, n = kd.rank(), kd.size()
    X, Y = _data()
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
        opt = kd.DistributedOptimizer(ks.optimizers.Adam(1e-3), compression="fp16" if fp16 else "none")
        train = opt.minimize(loss)
        sess = ke.Session(graph=g)
        sess.run(ke.global_variables_initializer())
        kd.broadcast_global_variables(sess)
    step = sess.make_callable([train], [x, y])
    per_epoch = ROWS // (batch * n)
    batches = [(X[i * batch * n + r * batch:][:batch], Y[i * batch * n + r * batch:][:batch])
               for i in range(per_epoch)]
    for i in range(50):
        step(*batches[i % per_epoch])
    times, comm = [], []
    (reducer,) = opt._reducers.values()
    for _ in range(repeats):
        kd.barrier()
        c0, k0 = reducer.comm_seconds, reducer.calls
        t = time.perf_counter()
        for i in range(steps):
            step(*batches[i % per_epoch])
        times.append(time.perf_counter() - t)
        comm.append((reducer.comm_seconds - c0) / max(1, reducer.calls - k0))
    # a bare allreduce of the gradient slab, ranks lined up by a barrier first
    slab = np.ones(101770, np.float32)
    bare = []
    for _ in range(repeats):
        kd.barrier()
        t = time.perf_counter()
        for _ in range(200):
            kd.allreduce(slab, op="sum")
        bare.append((time.perf_counter() - t) / 200)
    if r == 0:
        rate = _median_rate(times, steps)
        print(json.dumps({"steps_per_s": rate, "samples_per_s": rate * batch * n,
                          "comm_us": statistics.median(comm) * 1e6, "allreduce_us": statistics.median(bare) * 1e6}))


def run_kestimator(nranks, batch, steps, repeats, threads, fp16=False):
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = mpiexec if os.path.exists(mpiexec) else shutil.which("mpiexec")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=ROOT)
    out = subprocess.run([mpiexec, "-n", str(nranks), sys.executable, __file__, "--worker", str(batch), str(steps),
                          str(repeats), str(threads), str(int(fp16))], capture_output=True, text=True, env=env,
                         timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"kestimator worker failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- PyTorch DDP worker (runs under the peers' Python) ------------------------------------------------------------
def _torch_rank(rank, nranks, batch, steps, repeats, threads, queue):
    import torch
    import torch.distributed as dist
    torch.set_num_threads(threads)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(PORT + nranks))
    dist.init_process_group("gloo", rank=rank, world_size=nranks)
    X, Y = _data()
    X, Y = torch.from_numpy(X), torch.from_numpy(Y.astype(np.int64))
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(
        torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    per_epoch = ROWS // (batch * nranks)
    batches = [(X[i * batch * nranks + rank * batch:][:batch], Y[i * batch * nranks + rank * batch:][:batch])
               for i in range(per_epoch)]

    def one(i):
        xb, yb = batches[i % per_epoch]
        opt.zero_grad(set_to_none=True)
        lossf(model(xb), yb).backward()
        opt.step()

    for i in range(50):
        one(i)
    times = []
    for _ in range(repeats):
        dist.barrier()
        t = time.perf_counter()
        for i in range(steps):
            one(i)
        times.append(time.perf_counter() - t)
    slab = torch.ones(101770)
    bare = []
    for _ in range(repeats):
        dist.barrier()
        t = time.perf_counter()
        for _ in range(200):
            dist.all_reduce(slab)
        bare.append((time.perf_counter() - t) / 200)
    if rank == 0:
        rate = _median_rate(times, steps)
        queue.put({"steps_per_s": rate, "samples_per_s": rate * batch * nranks,
                   "allreduce_us": statistics.median(bare) * 1e6})
    dist.destroy_process_group()


def torch_worker(nranks, batch, steps, repeats, threads):
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_torch_rank, args=(r, nranks, batch, steps, repeats, threads, queue))
             for r in range(nranks)]
    for p in procs:
        p.start()
    result = queue.get(timeout=900)
    for p in procs:
        p.join()
    print(json.dumps(result))


def run_torch(nranks, batch, steps, repeats, threads):
    peers = os.environ.get("KESTIMATOR_PEERS_PYTHON", "/root/peers/bin/python")
    if not os.path.exists(peers):
        return None
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    out = subprocess.run([peers, __file__, "--torch-worker", str(nranks), str(batch), str(steps), str(repeats),
                          str(threads)], capture_output=True, text=True, env=env, timeout=900)
    if out.returncode != 0:
        print(f"# torch peer failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- orchestration ------------------------------------------------------------------------------------------------
def _fmt(x):
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def main():
    sys.path.insert(0, HERE)
    from _common import header
    header("distributed (seed MLP, DistributedOptimizer over MPI vs PyTorch DDP/gloo)")
    import mpi4py
    from mpi4py import MPI
    print(f"# mpi4py {mpi4py.__version__}, {MPI.Get_library_version().splitlines()[0].strip()}; load average "
          f"{os.getloadavg()[0]:.1f} (other processes on this machine distort every figure)")
    repeats = 3
    two_ranks = {}
    for batch, steps in ((32, 1500), (256, 300)):
        k1, k2 = run_kestimator(1, batch, steps, repeats, 1), run_kestimator(2, batch, steps, repeats, 1)
        two_ranks[batch] = k2
        t1, t2 = run_torch(1, batch, steps, repeats, 1), run_torch(2, batch, steps, repeats, 1)
        keff = k2["samples_per_s"] / (2 * k1["samples_per_s"])
        line = f"dist_weak_b{batch}_per_rank kestimator_efficiency={keff:.2f}"
        if t1 and t2:
            teff = t2["samples_per_s"] / (2 * t1["samples_per_s"])
            line += f" torch_efficiency={teff:.2f} ratio={keff / teff:.2f}"
        print(line)
        line = (f"dist_weak_b{batch}_2ranks kestimator_samples_per_s={_fmt(k2['samples_per_s'])} "
                f"(1 rank {_fmt(k1['samples_per_s'])})")
        if t1 and t2:
            line += (f" torch_samples_per_s={_fmt(t2['samples_per_s'])} (1 rank {_fmt(t1['samples_per_s'])}) "
                     f"ratio={k2['samples_per_s'] / t2['samples_per_s']:.2f}")
        print(line)
        line = (f"dist_comm_b{batch} kestimator_comm_us_per_step={_fmt(k2['comm_us'])} "
                f"kestimator_step_us={_fmt(1e6 / k2['steps_per_s'])} "
                f"kestimator_allreduce_us={_fmt(k2['allreduce_us'])}")
        if t2:
            line += (f" torch_allreduce_us={_fmt(t2['allreduce_us'])} "
                     f"ratio={t2['allreduce_us'] / k2['allreduce_us']:.2f}")
        print(line)
    # float16 on the wire: half the bytes, plus the conversions (no peer: DDP's fp16 hook needs a GPU here)
    h2 = run_kestimator(2, 32, 1500, repeats, 1, fp16=True)
    print(f"dist_comm_b32_fp16 kestimator_comm_us_per_step={_fmt(h2['comm_us'])} "
          f"kestimator_step_us={_fmt(1e6 / h2['steps_per_s'])} "
          f"float32_comm_us_per_step={_fmt(two_ranks[32]['comm_us'])}")
    # strong scaling: global batch 256 on the machine's 2 cores, either as 1 process x 2 threads or 2 x 1
    k1, k2 = run_kestimator(1, 256, 300, repeats, 2), run_kestimator(2, 128, 300, repeats, 1)
    t1, t2 = run_torch(1, 256, 300, repeats, 2), run_torch(2, 128, 300, repeats, 1)
    line = (f"dist_strong_global256 kestimator_speedup={k2['samples_per_s'] / k1['samples_per_s']:.2f} "
            f"(2x128: {_fmt(k2['samples_per_s'])} vs 1x256 2 threads: {_fmt(k1['samples_per_s'])} samples/s)")
    if t1 and t2:
        line += (f" torch_speedup={t2['samples_per_s'] / t1['samples_per_s']:.2f} "
                 f"ratio={k2['samples_per_s'] / t2['samples_per_s']:.2f}")
    print(line)


# -- boosted trees: histogram allreduce per tree level --------------------------------------------------------------
TREES_ROWS, TREES_FEATURES, TREES_ROUNDS, TREES_DEPTH = 200_000, 20, 20, 6


def trees_worker(n_rows):
    """One rank of a GradientBoostedTrees fit on its block of the rows (BENCHMARKS.md's problem shape, 20
    rounds); prints the rank's fit seconds and its time inside the per-level histogram allreduces."""
    sys.path.insert(0, ROOT)
    import kestimator.distributed as kd
    from kestimator.estimators.boosted_trees import GradientBoostedTrees
    from kestimator.estimators.boosted_trees.distributed import TreeCollectives
    kd.init()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n_rows, TREES_FEATURES)).astype(np.float32)
    y = ((x[:, :5].sum(axis=1) + 0.5 * rng.normal(size=n_rows)) > 0).astype(np.int64)
    block = np.array_split(np.arange(n_rows), kd.size())[kd.rank()]
    x, y = x[block], y[block]
    GradientBoostedTrees(n_trees=1, max_depth=2).fit(x[:5000], y[:5000])      # numba compile outside the timing
    comm = TreeCollectives()
    kd.barrier(name="trees start")
    t0 = time.perf_counter()
    GradientBoostedTrees(n_trees=TREES_ROUNDS, max_depth=TREES_DEPTH, learning_rate=0.1).fit(x, y, collectives=comm)
    seconds = time.perf_counter() - t0
    stats = {"seconds": seconds, "comm_s": comm.histogram_seconds, "levels": comm.histogram_calls,
             "bytes": comm.histogram_bytes, "setup_comm_s": comm.other_seconds}
    every = kd.allgather(np.array([seconds]), name="trees seconds")
    if kd.rank() == 0:
        stats["slowest_rank_s"] = float(every.max())
        print(json.dumps(stats))


def run_trees(nranks, threads, n_rows=TREES_ROWS):
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = mpiexec if os.path.exists(mpiexec) else shutil.which("mpiexec")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads), PYTHONPATH=ROOT)
    out = subprocess.run([mpiexec, "-n", str(nranks), sys.executable, __file__, "--trees-worker", str(n_rows)],
                         capture_output=True, text=True, env=env, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"boosted-trees worker failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def boosted_trees_scaling():
    """1 vs 2 ranks on the same 200,000 x 20 rows (strong scaling), 1 numba thread per rank; and 1 process
    with 2 threads, what the machine's 2 cores give without MPI. No peer: LightGBM's distributed mode needs
    its own socket setup and benchmarks/boosted_trees.py already compares the one-process fit with it."""
    k1, k2, k1t2 = run_trees(1, 1), run_trees(2, 1), run_trees(1, 2)
    eff = k1["slowest_rank_s"] / (2 * k2["slowest_rank_s"])
    speedup = k1["slowest_rank_s"] / k2["slowest_rank_s"]
    print(f"dist_trees_200k_strong kestimator_efficiency={eff:.2f} speedup={speedup:.2f} "
          f"(2 ranks x 1 thread: {k2['slowest_rank_s']:.2f} s; 1 rank x 1 thread: {k1['slowest_rank_s']:.2f} s; "
          f"1 rank x 2 threads: {k1t2['slowest_rank_s']:.2f} s; {TREES_ROUNDS} trees, depth {TREES_DEPTH})")
    print(f"dist_trees_comm kestimator_comm_ms_per_level={1e3 * k2['comm_s'] / k2['levels']:.2f} "
          f"allreduces={k2['levels']} ({k2['levels'] // TREES_ROUNDS} per tree) "
          f"kb_per_level={k2['bytes'] / k2['levels'] / 1024:.0f} comm_share={k2['comm_s'] / k2['seconds']:.2f} "
          f"bin_edges_and_baseline_ms={1e3 * k2['setup_comm_s']:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=5, type=int)
    parser.add_argument("--torch-worker", nargs=5, type=int)
    parser.add_argument("--trees-worker", type=int)
    parser.add_argument("--trees-only", action="store_true", help="run only the boosted-trees lines")
    args = parser.parse_args()
    if args.worker:
        kestimator_worker(*args.worker)
    elif args.torch_worker:
        torch_worker(*args.torch_worker)
    elif args.trees_worker:
        trees_worker(args.trees_worker)
    elif args.trees_only:
        sys.path.insert(0, HERE)
        from _common import header
        header("distributed boosted trees (histogram allreduce per level over MPI)")
        print(f"# load average {os.getloadavg()[0]:.1f}")
        boosted_trees_scaling()
    else:
        main()
        boosted_trees_scaling()
