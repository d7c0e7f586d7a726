"""Soak test (slow tier): a long Estimator training run holds its memory, file descriptors and threads.

A DNNClassifier trains for KESTIMATOR_SOAK_SECONDS (default 1800 s, the issue's 30 minutes) on a ks.data
pipeline with a parallel map (shuffle -> map on 2 workers -> batch -> prefetch), checkpointing every 2 s and
keeping 3 checkpoints, so the run writes, indexes and deletes hundreds of checkpoint files. A hook samples,
once a second, the process's resident memory (/proc/self/statm), open file descriptors (/proc/self/fd) and
OS threads (/proc/self/status "Threads", which counts the BLAS and executor threads too).

After a warm-up (the first fifth of the run, at most 5 minutes: plans are compiled, allocator arenas and the
executor's pools reach their working size) the test asserts

* the least-squares slope of RSS over time is below 1 MB/min;
* the open fds and the threads do not grow: neither the last quarter's maximum nor the final sample is
  above the maximum seen in the first quarter after warm-up (a file held open per checkpoint, or a worker
  thread per epoch, would add hundreds over the run).

It also checks that the run checkpointed every few seconds, kept only 3 files, and that no pipeline thread
outlives train(). The measured figures are printed (run with -s) and, with KESTIMATOR_SOAK_REPORT=<path>,
written as JSON.
"""
import json
import os
import threading
import time

import numpy as np
import pytest

SECONDS = float(os.environ.get("KESTIMATOR_SOAK_SECONDS", 1800))
MB = 1e6


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


def _os_threads():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def _sampler_hook(duration_s, samples):
    """A SessionRunHook that samples (seconds, rss, fds, threads, global step) every second and stops
    training after duration_s."""
    import kestimator as ks

    class Sampler(ks.estimators.SessionRunHook):
        def begin(self):
            self.start = time.monotonic()
            self.next_sample = 0.0
            self.steps = 0

        def after_run(self, run_context, run_values):
            self.steps += 1
            now = time.monotonic() - self.start
            if now >= self.next_sample:
                samples.append((now, _rss_bytes(), _open_fds(), _os_threads(), self.steps))
                self.next_sample = now + 1.0
            if now >= duration_s:
                run_context.request_stop()

    return Sampler()


def _input_fn():
    import kestimator as ks
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 16)).astype(np.float32)
    y = (x[:, :4].sum(axis=1) > 0).astype(np.int64)

    def augment(features, label):   # a per-element map on the executor's workers
        noisy = features["x"] + np.float32(0.01) * np.sin(features["x"] * np.float32(7.0))
        return {"x": noisy.astype(np.float32)}, label

    ds = ks.data.Dataset.from_tensor_slices(({"x": x}, y)).repeat().shuffle(512, seed=1)
    return ds.map(augment, num_parallel_calls=2).batch(64).prefetch(2)


def _slope_mb_per_min(times_s, rss_bytes):
    """Least-squares slope of RSS (MB) against time (minutes)."""
    t = np.asarray(times_s, np.float64) / 60.0
    r = np.asarray(rss_bytes, np.float64) / MB
    return float(np.polyfit(t, r, 1)[0])


def test_slope_of_a_known_line():
    # 10 MB over 5 minutes sampled each second plus +-0.5 MB alternating noise: slope 2 MB/min
    t = np.arange(300.0)
    rss = (100 + 2 * t / 60.0 + 0.5 * (-1) ** np.arange(300)) * MB
    assert abs(_slope_mb_per_min(t, rss) - 2.0) < 0.01


@pytest.mark.slow
def test_long_training_run_holds_memory_fds_and_threads(tmp_path):
    import kestimator as ks
    model_dir = str(tmp_path / "model")
    config = ks.estimators.RunConfig(save_checkpoints_secs=2, keep_checkpoint_max=3, log_step_count_steps=10 ** 9,
                                     save_summary_steps=500)
    est = ks.estimators.DNNClassifier(feature_columns=[ks.feature_column.numeric_column("x", shape=[16])],
                                      hidden_units=[64, 32], n_classes=2, model_dir=model_dir, config=config)
    samples, saves = [], []

    class CountSaves(ks.estimators.CheckpointSaverListener):
        def after_save(self, session, global_step_value):
            saves.append(global_step_value)

    threads_before = threading.active_count()
    est.train(_input_fn, hooks=[_sampler_hook(SECONDS, samples)], max_steps=10 ** 12,
              saving_listeners=[CountSaves()])
    deadline = time.monotonic() + 10   # the pipeline's worker threads wind down after train returns
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.1)

    t, rss, fds, threads, steps = (np.array(col, np.float64) for col in zip(*samples))
    warm = min(SECONDS / 5, 300.0)
    after = t >= warm
    assert after.sum() >= 10, f"too few samples after warm-up: {after.sum()}"
    slope = _slope_mb_per_min(t[after], rss[after])
    n = int(after.sum())
    first_q, last_q = slice(0, max(n // 4, 1)), slice(n - max(n // 4, 1), n)
    fd_a, th_a = fds[after], threads[after]
    checkpoints = ks.estimators.list_checkpoints(model_dir)
    figures = {
        "seconds": float(t[-1]), "steps": int(steps[-1]), "samples": len(samples),
        "rss_mb_start_after_warmup": float(rss[after][0] / MB), "rss_mb_end": float(rss[-1] / MB),
        "rss_mb_max": float(rss.max() / MB), "rss_slope_mb_per_min": slope,
        "fds_first_quarter_max": int(fd_a[first_q].max()), "fds_last_quarter_max": int(fd_a[last_q].max()),
        "fds_end": int(fds[-1]), "threads_first_quarter_max": int(th_a[first_q].max()),
        "threads_last_quarter_max": int(th_a[last_q].max()), "threads_end": int(threads[-1]),
        "python_threads_before": threads_before, "python_threads_after": threading.active_count(),
        "checkpoints_kept": len(checkpoints), "checkpoints_written": len(saves),
    }
    print("soak figures:", json.dumps(figures, sort_keys=True))
    if os.environ.get("KESTIMATOR_SOAK_REPORT"):
        with open(os.environ["KESTIMATOR_SOAK_REPORT"], "w") as f:
            json.dump({"figures": figures, "samples": samples}, f)

    assert steps[-1] > 100, figures
    assert slope < 1.0, f"RSS grows {slope:.3f} MB/min after warm-up: {figures}"
    assert fd_a[last_q].max() <= fd_a[first_q].max() and fds[-1] <= fd_a[first_q].max(), figures
    assert th_a[last_q].max() <= th_a[first_q].max() and threads[-1] <= th_a[first_q].max(), figures
    assert len(checkpoints) == 3, figures   # keep_checkpoint_max held over hundreds of saves
    assert len(saves) >= min(SECONDS / 10, 100), figures   # it did checkpoint every few seconds
    assert threading.active_count() <= threads_before, figures   # no pipeline thread outlives training
