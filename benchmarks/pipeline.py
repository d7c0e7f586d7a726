"""Input-pipeline throughput: kestimator.data against tf.data, measured pair by pair in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/pipeline.py [--runs 5]

Figures (one line each):
  * pipeline_elements_per_s: 60,000 x 28x28 float32 -> shuffle(10,000) -> map(NumPy flip + scale,
    parallel) -> batch(128) -> prefetch, one full epoch. tf.data runs the same NumPy function through
    tf.numpy_function (the peer for a Python map function); its TF-native-map figure is printed too.
  * identity_map_overhead_us: per-element cost of an identity ``map`` (sequential, 2 threads,
    AUTOTUNE; tf.data native and numpy_function), the time of range(200,000) -> map -> batch(128) minus
    that of range -> batch(128).
The TF side runs in /root/peers/bin/python as a subprocess that stays alive and is driven over a pipe,
so the two frameworks alternate run by run; each ratio is taken pair by pair and the median reported.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kestimator.data import AUTOTUNE, Dataset  # noqa: E402

PEER_PYTHON = "/root/peers/bin/python"
N_IMAGES, SHUFFLE, BATCH = 60_000, 10_000, 128
N_SCALARS = 200_000
IDLE_SECONDS = 1.0


def flip_scale(image):
    return np.flip(image, axis=1) * np.float32(1.0 / 255.0)


def identity(x):
    return x


def make_images():
    return np.random.default_rng(0).integers(0, 256, (N_IMAGES, 28, 28)).astype(np.float32)


def kestimator_epoch(images):
    ds = (Dataset.from_tensor_slices(images).shuffle(SHUFFLE, seed=0)
          .map(flip_scale, num_parallel_calls=AUTOTUNE).batch(BATCH).prefetch(AUTOTUNE))
    t0 = time.perf_counter()
    n = 0
    for batch in ds:
        n += len(batch)
    seconds = time.perf_counter() - t0
    assert n == N_IMAGES
    return n / seconds


def _time_pass(ds):
    t0 = time.perf_counter()
    for _ in ds:
        pass
    return time.perf_counter() - t0


def kestimator_overheads():
    """Per-element µs an identity map adds: with-map minus without, same consumer (batches of 128)."""
    base = _time_pass(Dataset.range(N_SCALARS).batch(BATCH))
    seq = _time_pass(Dataset.range(N_SCALARS).map(identity).batch(BATCH))
    threads = _time_pass(Dataset.range(N_SCALARS).map(identity, num_parallel_calls=2).batch(BATCH))
    auto = _time_pass(Dataset.range(N_SCALARS).map(identity, num_parallel_calls=AUTOTUNE).batch(BATCH))
    to_us = 1e6 / N_SCALARS
    return {"sequential": (seq - base) * to_us, "threads": (threads - base) * to_us,
            "autotune": (auto - base) * to_us}


PEER_SCRIPT = textwrap.dedent(r"""
    import json, os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf
    N_IMAGES, SHUFFLE, BATCH, N_SCALARS = %d, %d, %d, %d
    images = np.random.default_rng(0).integers(0, 256, (N_IMAGES, 28, 28)).astype(np.float32)

    def flip_scale(image):
        return np.flip(image, axis=1) * np.float32(1.0 / 255.0)

    def numpy_map(image):
        out = tf.numpy_function(flip_scale, [image], tf.float32)
        out.set_shape((28, 28))
        return out

    def native_map(image):
        return tf.reverse(image, axis=[1]) * (1.0 / 255.0)

    def epoch(fn):
        ds = (tf.data.Dataset.from_tensor_slices(images).shuffle(SHUFFLE, seed=0)
              .map(fn, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH).prefetch(tf.data.AUTOTUNE))
        t0 = time.perf_counter()
        n = 0
        for batch in ds:
            n += int(batch.shape[0])
        return n / (time.perf_counter() - t0)

    def overheads():
        def run(ds):
            t0 = time.perf_counter()
            for _ in ds:
                pass
            return time.perf_counter() - t0
        r = lambda: tf.data.Dataset.range(N_SCALARS)
        base = run(r().batch(BATCH))
        native = run(r().map(lambda x: x, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH))
        numpy_fn = run(r().map(lambda x: tf.numpy_function(lambda v: v, [x], tf.int64),
                               num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH))
        return {"native": (native - base) * 1e6 / N_SCALARS, "numpy_function": (numpy_fn - base) * 1e6 / N_SCALARS}

    print(json.dumps({"ready": tf.__version__}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "numpy":
            out = {"eps": epoch(numpy_map)}
        elif cmd == "native":
            out = {"eps": epoch(native_map)}
        elif cmd == "overheads":
            out = overheads()
        else:
            break
        print(json.dumps(out), flush=True)
""" % (N_IMAGES, SHUFFLE, BATCH, N_SCALARS))


class Peer:
    """The tf.data side, alive for the whole run, one command per line."""

    def __init__(self):
        self.proc = subprocess.Popen([PEER_PYTHON, "-c", PEER_SCRIPT], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.version = json.loads(self.proc.stdout.readline())["ready"]

    def ask(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        time.sleep(IDLE_SECONDS)     # TF's worker threads spin for a while after work; let them settle
        return out

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


def blas_line():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "blas: threadpoolctl not installed"
    infos = threadpool_info()
    parts = [f"{i.get('internal_api')}:{i.get('architecture')}:threads={i.get('num_threads')}" for i in infos]
    return "blas " + (" ".join(parts) or "none")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(blas_line())
    print(f"cpus={os.cpu_count()} python={sys.version.split()[0]} numpy={np.__version__}")
    images = make_images()
    peer = Peer()
    print(f"peer tensorflow={peer.version}")
    kestimator_epoch(images)          # warm-up: page in the data, start the code paths
    peer.ask("numpy")
    ks_eps, tf_eps, ratios = [], [], []
    for _ in range(args.runs):
        ks_eps.append(kestimator_epoch(images))
        tf_eps.append(peer.ask("numpy")["eps"])
        ratios.append(ks_eps[-1] / tf_eps[-1])
    native = statistics.median(peer.ask("native")["eps"] for _ in range(3))
    print(f"pipeline_elements_per_s kestimator={statistics.median(ks_eps):.0f} "
          f"tf_numpy_function={statistics.median(tf_eps):.0f} ratio={statistics.median(ratios):.2f} "
          f"(runs: ks={[round(v) for v in ks_eps]} tf={[round(v) for v in tf_eps]})")
    print(f"pipeline_elements_per_s tf_native_map={native:.0f} ratio_vs_native="
          f"{statistics.median(ks_eps) / native:.2f}")
    ks_over = [kestimator_overheads() for _ in range(args.runs)]
    tf_over = [peer.ask("overheads") for _ in range(3)]
    med = {k: statistics.median(o[k] for o in ks_over) for k in ks_over[0]}
    tmed = {k: statistics.median(o[k] for o in tf_over) for k in tf_over[0]}
    print(f"identity_map_overhead_us kestimator_sequential={med['sequential']:.2f} "
          f"kestimator_threads2={med['threads']:.2f} kestimator_autotune={med['autotune']:.2f} "
          f"tf_native={tmed['native']:.2f} tf_numpy_function={tmed['numpy_function']:.2f} "
          f"ratio_tf_numpy_function_over_ks_autotune={tmed['numpy_function'] / max(med['autotune'], 1e-3):.0f}")
    peer.close()


if __name__ == "__main__":
    main()
