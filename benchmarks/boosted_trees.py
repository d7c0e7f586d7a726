"""Boosted trees: kestimator's GradientBoostedTrees against LightGBM and scikit-learn, same run.

Data: make_classification(n_samples=200_000, n_features=20, random_state=0), 20% held out
(train_test_split random_state=0): 160,000 training rows. Model: 100 trees, depth 6, 255 bins,
learning rate 0.1 (LightGBM: num_leaves=64, min_child_samples=1, min_child_weight=1e-3, lambda 0;
scikit-learn: max_leaf_nodes=None, min_samples_leaf=1, no early stopping).

Figures (one line each):
  * fit time and AUC, median of 3 rounds; each round times kestimator here and the peers in one
    long-lived peer process (/root/peers/bin/python), so the pairs run back to back and the ratio is
    taken pair by pair;
  * peak RSS of a fresh process that generates the data and fits once (one process per library);
  * numba JIT cost: the first fit of a fresh process with an empty numba cache (cold) and with the
    cache filled (warm), against a fit in a process that already ran one;
  * the histogram kernel: NumPy bincount against numba, root node of the training set.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/boosted_trees.py
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

PEER_PYTHON = "/root/peers/bin/python"
N_SAMPLES, N_FEATURES, N_TREES, MAX_DEPTH, MAX_BINS, LEARNING_RATE = 200_000, 20, 100, 6, 255, 0.1
ROUNDS = 3

# Runs in the peer virtualenv: answers "lightgbm" / "sklearn" on stdin with one JSON line each, or,
# with argv "memory <library>", fits once and reports its peak RSS.
PEER_CODE = r"""
import json, sys, time
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.metrics import roc_auc_score
import numpy as np

def status_mb(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key)) / 1024

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")   # resets VmHWM (the peak RSS) to the current RSS
        return True
    except OSError:
        return False

N, F, T, D, B, LR = [float(a) if "." in a else int(a) for a in sys.argv[1:7]]
X, y = make_classification(n_samples=N, n_features=F, random_state=0)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0)

def model(name, n_trees=T):
    if name == "lightgbm":
        import lightgbm
        return lightgbm.LGBMClassifier(n_estimators=n_trees, max_depth=D, num_leaves=2 ** D,
                                       learning_rate=LR, max_bin=B, min_child_samples=1,
                                       min_child_weight=1e-3, reg_lambda=0.0, verbose=-1)
    from sklearn.ensemble import HistGradientBoostingClassifier
    return HistGradientBoostingClassifier(max_iter=n_trees, max_depth=D, max_leaf_nodes=None,
                                          learning_rate=LR, max_bins=B, min_samples_leaf=1,
                                          early_stopping=False)

if sys.argv[7:8] == ["memory"]:
    model(sys.argv[8], 1).fit(Xtr[:2000], ytr[:2000])
    before, reset = status_mb("VmRSS"), reset_peak()
    model(sys.argv[8]).fit(Xtr, ytr)
    print(json.dumps({"rss_before_fit_mb": before, "peak_rss_mb": status_mb("VmHWM"),
                      "peak_is_during_fit": reset}))
    sys.exit(0)

from threadpoolctl import threadpool_info
import lightgbm, sklearn
for name in ("lightgbm", "sklearn"):   # warm-up: thread pools, lazy imports
    model(name, 5).fit(Xtr, ytr)
# Printed after the warm-up: the caller waits for this line, so no timing overlaps the warm-up.
print(json.dumps({"threadpools": [(i["internal_api"], i.get("architecture"), i["num_threads"],
                                   i["prefix"]) for i in threadpool_info()],
                  "versions": {"lightgbm": lightgbm.__version__, "sklearn": sklearn.__version__}}),
      flush=True)
for line in sys.stdin:
    name = line.strip()
    if name == "quit":
        break
    t = time.perf_counter()
    m = model(name).fit(Xtr, ytr)
    fit_s = time.perf_counter() - t
    print(json.dumps({"fit_s": fit_s, "auc": roc_auc_score(yte, m.predict_proba(Xte)[:, 1])}),
          flush=True)
"""


def _data():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split
    X, y = make_classification(n_samples=N_SAMPLES, n_features=N_FEATURES, random_state=0)
    return train_test_split(X, y, test_size=0.2, random_state=0)


def _model(**kwargs):
    from kestimator.estimators.boosted_trees import GradientBoostedTrees
    params = dict(n_trees=N_TREES, max_depth=MAX_DEPTH, learning_rate=LEARNING_RATE,
                  max_bins=MAX_BINS)
    params.update(kwargs)
    return GradientBoostedTrees(**params)


def _status_mb(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024


def _reset_peak_rss():
    """Resets the kernel's peak-RSS counter (VmHWM) to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child(mode):
    """Work done in a fresh kestimator process; prints one JSON line."""
    if mode == "memory":
        X_train, _, y_train, _ = _data()
        _model(n_trees=1).fit(X_train[:2000], y_train[:2000])  # load the cached kernels first
        before, reset = _status_mb("VmRSS"), _reset_peak_rss()
        _model().fit(X_train, y_train)
        print(json.dumps({"rss_before_fit_mb": before, "peak_rss_mb": _status_mb("VmHWM"),
                          "peak_is_during_fit": reset}))
    elif mode == "jit":
        from sklearn.datasets import load_breast_cancer
        X, y = load_breast_cancer(return_X_y=True)
        times = []
        for _ in range(2):
            t = time.perf_counter()
            _model(n_trees=5).fit(X, y)
            times.append(time.perf_counter() - t)
        print(json.dumps({"first_fit_s": times[0], "second_fit_s": times[1]}))


def _run_child(args, env=None, python=sys.executable, code=None):
    command = [python, "-c", code, *args] if code else [python, os.path.abspath(__file__), *args]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ratio(a, b):
    return a / b if b else float("nan")


def main():
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_info

    from kestimator.estimators.boosted_trees import _backend, histogram

    load_at_start = os.getloadavg()[0]
    peer_args = [str(v) for v in (N_SAMPLES, N_FEATURES, N_TREES, MAX_DEPTH, MAX_BINS, LEARNING_RATE)]
    peer = subprocess.Popen([PEER_PYTHON, "-c", PEER_CODE, *peer_args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    peer_info = json.loads(peer.stdout.readline())

    import numba
    print("blas kestimator=" + ",".join(f"{i['internal_api']}:{i.get('architecture')}:threads={i['num_threads']}"
                                        for i in threadpool_info())
          + " peer=" + ",".join(f"{api}:{arch}:threads={n}" for api, arch, n, _ in peer_info["threadpools"]))
    print(f"threads kestimator_numba={numba.config.NUMBA_NUM_THREADS} "
          f"numba_layer={numba.config.THREADING_LAYER} kernels={_backend.resolve_kernels('auto')} "
          f"numba={numba.__version__} numpy={np.__version__} peers={peer_info['versions']}")

    X_train, X_test, y_train, y_test = _data()
    _model(n_trees=5).fit(X_train, y_train)  # warm-up: loads the cached numba kernels

    results = {"kestimator": [], "lightgbm": [], "sklearn": []}
    for _ in range(ROUNDS):
        t = time.perf_counter()
        model = _model().fit(X_train, y_train)
        fit_s = time.perf_counter() - t
        auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
        results["kestimator"].append({"fit_s": fit_s, "auc": auc})
        for name in ("lightgbm", "sklearn"):
            peer.stdin.write(name + "\n")
            peer.stdin.flush()
            results[name].append(json.loads(peer.stdout.readline()))
    peer.stdin.write("quit\n")
    peer.stdin.flush()
    peer.wait()

    ours = [r["fit_s"] for r in results["kestimator"]]
    for name in ("lightgbm", "sklearn"):
        theirs = [r["fit_s"] for r in results[name]]
        ratios = [_ratio(a, b) for a, b in zip(ours, theirs)]
        print(f"fit_s_vs_{name} kestimator_s={statistics.median(ours):.3f} "
              f"{name}_s={statistics.median(theirs):.3f} ratio={statistics.median(ratios):.2f} "
              f"(pairs kestimator/{name}: "
              f"{', '.join(f'{a:.2f}/{b:.2f}={r:.2f}' for a, b, r in zip(ours, theirs, ratios))})")
        auc_ours = results["kestimator"][0]["auc"]
        auc_theirs = results[name][0]["auc"]
        print(f"auc_vs_{name} kestimator_auc={auc_ours:.5f} {name}_auc={auc_theirs:.5f} "
              f"diff={auc_ours - auc_theirs:+.5f}")

    memory = {"kestimator": _run_child(["--child", "memory"])}
    for name in ("lightgbm", "sklearn"):
        memory[name] = _run_child([*peer_args, "memory", name], python=PEER_PYTHON, code=PEER_CODE)
    ours_mem = memory["kestimator"]
    for name in ("lightgbm", "sklearn"):
        theirs = memory[name]
        during = "during fit" if ours_mem["peak_is_during_fit"] and theirs["peak_is_during_fit"] \
            else "process lifetime"
        grow = [m["peak_rss_mb"] - m["rss_before_fit_mb"] for m in (ours_mem, theirs)]
        print(f"peak_rss_mb_vs_{name} kestimator_mb={ours_mem['peak_rss_mb']:.0f} "
              f"{name}_mb={theirs['peak_rss_mb']:.0f} "
              f"ratio={_ratio(ours_mem['peak_rss_mb'], theirs['peak_rss_mb']):.2f} ({during}; "
              f"fit's own growth: kestimator {grow[0]:.0f} MB, {name} {grow[1]:.0f} MB)")

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = _run_child(["--child", "jit"], env=env)
        warm = _run_child(["--child", "jit"], env=env)
    print(f"jit_first_fit_s cold_cache_s={cold['first_fit_s']:.2f} warm_cache_s={warm['first_fit_s']:.2f} "
          f"already_loaded_s={warm['second_fit_s']:.3f} (breast cancer, 5 trees; fresh processes)")

    mapper = model.bin_mapper_
    binned = mapper.transform(X_train)
    g = np.random.default_rng(0).normal(size=len(X_train)).astype(np.float32)
    h = np.ones(len(X_train), np.float32)
    idx = np.arange(len(X_train), dtype=np.int32)
    timings = {}
    for kernels in ("numpy", "numba"):
        hist = histogram.empty_histograms(1, N_FEATURES, mapper.missing_bin + 1)
        args = (binned, g, h, idx, np.array([0]), np.array([len(idx)]), np.array([0]), hist, kernels)
        histogram.build_histograms(*args)
        runs = []
        for _ in range(21):
            t = time.perf_counter()
            histogram.build_histograms(*args)
            runs.append(time.perf_counter() - t)
        timings[kernels] = statistics.median(runs) * 1e3
    print(f"histogram_root_ms numpy_bincount_ms={timings['numpy']:.2f} numba_ms={timings['numba']:.2f} "
          f"ratio={_ratio(timings['numpy'], timings['numba']):.1f} ({len(idx)} rows x {N_FEATURES} features)")
    t = time.perf_counter()
    _model(n_trees=5, kernels="numpy").fit(X_train, y_train)
    numpy_fit = time.perf_counter() - t
    per_tree = statistics.median(ours) / N_TREES
    print(f"fit_s_per_tree numpy_kernels_s={numpy_fit / 5:.3f} numba_kernels_s={per_tree:.4f} "
          f"ratio={numpy_fit / 5 / per_tree:.1f}")
    # The machine is shared: a load above the core count means other work competed for the CPUs.
    print(f"load_average_1min start={load_at_start:.2f} end={os.getloadavg()[0]:.2f} cpus={os.cpu_count()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=("memory", "jit"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _child(options.child)
    else:
        main()
