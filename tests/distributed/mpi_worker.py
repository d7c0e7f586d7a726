"""Programs the MPI tests launch with `mpiexec -n N python mpi_worker.py SCENARIO OUTDIR`.

Each scenario writes what the test checks into OUTDIR (rank<r>_*.npz / .json) or prints it; the
failure scenarios are expected to end the job with an abort. `train_mlp` is also imported by the tests
to compute the one-process reference in the pytest process itself (no launcher: rank 0 of 1).
"""
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))   # the repository root: import kestimator

import kestimator.distributed as kd  # noqa: E402
from kestimator import engine as ke  # noqa: E402
from kestimator import optimizers  # noqa: E402

N_IN, N_HID, N_OUT = 20, 16, 3
GLOBAL_BATCH = 32


def make_data(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_IN)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.int64) + (x[:, 3] > 1).astype(np.int64)
    return x, y


def build_mlp(init_seed, optimizer):
    """A 20-16-3 MLP with a sparse softmax cross-entropy loss; returns (graph, x, y, train_op, loss)."""
    g = ke.Graph()
    with g.as_default():
        ke.set_random_seed(init_seed)
        x = ke.placeholder(ke.float32, [None, N_IN], name="x")
        y = ke.placeholder(ke.int64, [None], name="y")
        w1 = ke.Variable(ke.random_normal([N_IN, N_HID], seed=1) * 0.3, name="w1")
        b1 = ke.Variable(ke.zeros([N_HID]), name="b1")
        w2 = ke.Variable(ke.random_normal([N_HID, N_OUT], seed=2) * 0.3, name="w2")
        b2 = ke.Variable(ke.zeros([N_OUT]), name="b2")
        logits = ke.matmul(ke.nn.relu(ke.matmul(x, w1) + b1), w2) + b2
        loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        gs = ke.train.get_or_create_global_step()
        train = optimizer.minimize(loss, global_step=gs)
    return g, x, y, train, loss


def train_mlp(steps=12, compression="none", passes=1, bucket_bytes=1024, lr=0.01, init_seed=None):
    """Train with DistributedOptimizer(Adam); rank r feeds rows r::size of each global batch.

    Every rank starts from different random weights (seed 100 + rank) unless init_seed is given: the
    broadcast from rank 0 must make them equal. Returns {variable name: value} of every global variable.
    """
    r, n = kd.rank(), kd.size()
    opt = kd.DistributedOptimizer(optimizers.Adam(lr), compression=compression, backward_passes_per_step=passes,
                                  bucket_bytes=bucket_bytes)
    g, x, y, train, loss = build_mlp(100 + r if init_seed is None else init_seed, opt)
    X, Y = make_data()
    with g.as_default(), ke.Session(graph=g) as sess:
        sess.run(ke.global_variables_initializer())
        kd.broadcast_global_variables(sess)
        step = sess.make_callable([train, loss], feed_list=[x, y])
        for i in range(steps):
            rows = np.arange(i * GLOBAL_BATCH, (i + 1) * GLOBAL_BATCH)[r::n]
            step(X[rows], Y[rows])
        variables = g.get_collection(ke.GraphKeys.GLOBAL_VARIABLES)
        out = {v.op.name: np.asarray(val) for v, val in zip(variables, sess.run(variables))}
    (reducer,) = opt._reducers.values()
    out["stats"] = np.array([reducer.calls, reducer.messages, sum(len(g.buckets) for g in reducer._groups)])
    return out


def fit_keras(epochs=3, seed=None):
    """Keras fit with DistributedOptimizer, BroadcastGlobalVariablesCallback and MetricAverageCallback;
    rank r fits rows r::size in batches of 16 // size: together the ranks' i-th batches are the i-th
    16-row batch of a one-process fit. Ranks start from different weights (seed 1 + rank) unless seed is given.
    Returns (weights, history dict)."""
    from kestimator import initializers, keras
    from kestimator.distributed.callbacks import BroadcastGlobalVariablesCallback, MetricAverageCallback
    r, n = kd.rank(), kd.size()
    seed = 1 + r if seed is None else seed
    X, Y = make_data(256, seed=3)
    model = keras.Sequential([
        keras.Input((N_IN,)),
        keras.layers.Dense(N_HID, activation="relu", kernel_initializer=initializers.GlorotUniform(seed=seed)),
        keras.layers.Dense(N_OUT, activation="softmax", kernel_initializer=initializers.GlorotUniform(seed=seed + 50))])
    model.compile(optimizer=kd.DistributedOptimizer(optimizers.Adam(0.01)), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(X[r::n], Y[r::n], batch_size=16 // n, epochs=epochs, shuffle=False, verbose=0,
                        callbacks=[BroadcastGlobalVariablesCallback(0), MetricAverageCallback()])
    return [np.asarray(w) for w in model.get_weights()], history.history


def _save(outdir, tag, values):
    np.savez(os.path.join(outdir, f"rank{kd.rank()}_{tag}.npz"), **{k.replace("/", "|"): v for k, v in values.items()})


# -- scenarios ------------------------------------------------------------------------------------------------
def scenario_train(outdir):
    _save(outdir, "plain", train_mlp())
    _save(outdir, "fp16", train_mlp(compression="fp16", bucket_bytes=64 << 20))
    _save(outdir, "passes2", train_mlp(steps=8, passes=2))


def scenario_keras(outdir):
    weights, history = fit_keras()
    np.savez(os.path.join(outdir, f"rank{kd.rank()}_keras.npz"), *weights)
    with open(os.path.join(outdir, f"rank{kd.rank()}_history.json"), "w") as f:
        json.dump(history, f)


def scenario_collectives(outdir):
    r, n = kd.rank(), kd.size()
    out = {"rank": r, "size": n, "local_rank": kd.local_rank(), "local_size": kd.local_size()}
    base = np.arange(6, dtype=np.float64).reshape(2, 3)
    out["sum"] = kd.allreduce(base * (r + 1), op="sum", name="sum").tolist()
    out["average"] = kd.allreduce(base * (r + 1), op="average").tolist()
    out["max"] = kd.allreduce(np.array([r, -r], np.int32), op="max").tolist()
    out["min"] = kd.allreduce(np.array([r, -r], np.int64), op="min").tolist()
    buf = np.full(4, float(r), np.float32)
    same = kd.allreduce(buf, op="sum", inplace=True)
    out["inplace"] = [same is buf, buf.tolist()]
    out["scalar"] = kd.allreduce(r + 0.5, op="sum")
    got = kd.broadcast({"seed": 1234 + r, "who": f"rank{r}", "big": "x" * (2000 + r)}, root=1)
    out["bcast_obj"] = [got["seed"], got["who"], len(got["big"])]   # 2001 bytes: more than the header holds
    arr = np.arange(5, dtype=np.int16) * (r + 1)
    got = kd.broadcast(arr, root=0)
    out["bcast_arr"] = [got.dtype.str, got.tolist()]
    try:    # a wrong in-place buffer fails on that rank only, after taking part (root is not left waiting)
        kd.broadcast(np.zeros(3 if r == 0 else 4, np.float32), root=0, inplace=True)
        out["bad_inplace"] = "no error"
    except Exception as e:
        out["bad_inplace"] = str(e)
    out["gather"] = kd.allgather(np.full((r + 1, 2), r, np.int32)).tolist()
    out["gather_obj"] = kd.allgather_object({"r": r, "arr": np.array([r, r], np.float32)})
    out["gather_obj"] = [{"r": d["r"], "arr": d["arr"].tolist()} for d in out["gather_obj"]]
    out["equal_steps"] = kd.equal_steps(10 + 3 * r)
    out["files"] = kd.shard_files([f"part-{i:02d}.rec" for i in range(7)])
    out["seed"] = kd.shared_seed(42 + r)
    logs = {"loss": float(r + 1), "acc": 0.5 * r, "name": "text"}
    from kestimator.distributed.callbacks import MetricAverageCallback
    MetricAverageCallback().on_epoch_end(0, logs)
    out["logs"] = logs
    out["chief"] = kd.on_chief(lambda: f"written by {kd.rank()}", broadcast_result=True)
    kd.barrier()
    with open(os.path.join(outdir, f"rank{r}_collectives.json"), "w") as f:
        json.dump(out, f)
    _save(outdir, "plain", train_mlp(steps=6))


def scenario_exception(outdir):
    kd.allreduce(np.ones(3), name="warm-up")
    if kd.rank() == 1:
        raise ValueError("deliberate failure on rank one")
    kd.allreduce(np.ones(3), name="never completes")   # rank 0 would wait here forever without the abort
    print("rank 0 passed the collective", flush=True)


def scenario_stall(outdir):
    """Rank 1 skips the second training step: rank 0 waits in the gradient allreduce."""
    r, n = kd.rank(), kd.size()
    opt = kd.DistributedOptimizer(optimizers.SGD(0.1))
    g, x, y, train, loss = build_mlp(7, opt)
    X, Y = make_data(64)
    with g.as_default(), ke.Session(graph=g) as sess:
        sess.run(ke.global_variables_initializer())
        step = sess.make_callable([train], feed_list=[x, y])
        step(X[r::n][:8], Y[r::n][:8])
        # both ranks are up and in step: now the short deadline (a loaded machine may start ranks seconds apart)
        kd.set_collective_timeout(float(os.environ.get("STALL_TEST_TIMEOUT", "2")))
        if r == 1:
            time.sleep(120)    # "forgot" the step: computing or hung elsewhere
        step(X[r::n][:8], Y[r::n][:8])
    print(f"rank {r} finished", flush=True)


def scenario_metadata(outdir):
    """Rank 1 builds a bias of another shape: the first reduction must fail naming it."""
    r = kd.rank()
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 4])
        w = ke.Variable(np.ones((4, 3), np.float32), name="dense/kernel")
        b = ke.Variable(np.zeros((3 + r,), np.float32), name="dense/bias")
        loss = ke.reduce_sum(ke.matmul(x, w)) + ke.reduce_sum(b)
        train = kd.DistributedOptimizer(optimizers.SGD(0.1)).minimize(loss)
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            sess.run(train, {x: np.ones((2, 4), np.float32)})
    print(f"rank {r} finished", flush=True)


def scenario_restore(outdir):
    """Rank 0 trains and checkpoints; then every rank builds a fresh model from a different seed, only
    rank 0 restores, and BroadcastGlobalVariablesHook must give every rank the checkpoint's values."""
    from kestimator.distributed.hooks import BroadcastGlobalVariablesHook
    r = kd.rank()
    ckpt = os.path.join(outdir, "model.ckpt")

    def train_and_save():
        opt = optimizers.Adam(0.01)
        g, x, y, train, loss = build_mlp(5, opt)
        X, Y = make_data(64)
        with g.as_default(), ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            for i in range(3):
                sess.run(train, {x: X[i * 16:(i + 1) * 16], y: Y[i * 16:(i + 1) * 16]})
            return ke.train.Saver().save(sess, ckpt)

    path = kd.on_chief(train_and_save, broadcast_result=True)
    opt = kd.DistributedOptimizer(optimizers.Adam(0.01))
    g, x, y, train, loss = build_mlp(900 + r, opt)
    with g.as_default():
        hook = BroadcastGlobalVariablesHook(root_rank=0)
        hook.begin()
        saver = ke.train.Saver()
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            if r == 0:
                saver.restore(sess, path)
            hook.after_create_session(sess, coord=None)
            variables = g.get_collection(ke.GraphKeys.GLOBAL_VARIABLES)
            _save(outdir, "restored", {v.op.name: np.asarray(val) for v, val in zip(variables, sess.run(variables))})
    with open(os.path.join(outdir, "checkpoint_path.txt"), "w") as f:
        f.write(path)


if __name__ == "__main__":
    kd.init()
    globals()[f"scenario_{sys.argv[1]}"](sys.argv[2])
