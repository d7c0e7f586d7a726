"""Shared helpers for benchmarks: the peer interpreter, BLAS info, medians."""
import json
import os
import statistics
import subprocess
import sys

PEERS_PYTHON = os.environ.get("KESTIMATOR_PEERS_PYTHON", "/root/peers/bin/python")


def blas_info():
    """One line naming the BLAS library, its kernel (core type) and thread count."""
    try:
        from threadpoolctl import threadpool_info
        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            i = infos[0]
            return f"blas={i.get('internal_api')} kernel={i.get('architecture')} threads={i.get('num_threads')}"
    except ImportError:
        pass
    return "blas=unknown"


def env_warning():
    bad = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
    if bad:
        return (f"WARNING: {', '.join(bad)} set; run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` "
                "(see BENCHMARKS.md)")
    return None


def run_peer(script, *args, timeout=900):
    """Run a peer benchmark script in the peers' venv; it prints one JSON object on its last line."""
    if not os.path.exists(PEERS_PYTHON):
        return {"error": f"no peer interpreter at {PEERS_PYTHON} (set KESTIMATOR_PEERS_PYTHON)"}
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    out = subprocess.run([PEERS_PYTHON, script, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                         env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_peer_code(code, args, timeout=900):
    """Run peer code (`python -c code args...`) in the peers' venv and return the JSON object on its last line;
    a failing peer raises with the end of its stderr."""
    out = subprocess.run([PEERS_PYTHON, "-c", code] + [str(a) for a in args], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def blas_libraries():
    """Every BLAS library loaded here, with version, kernel and threads (one line)."""
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} threads="
                         f"{i.get('num_threads')}" for i in threadpool_info())
    except ImportError:
        return "threadpoolctl not installed"


def median(xs):
    return statistics.median(xs)


def header(name):
    print(f"# {name}: python {sys.version.split()[0]}, {blas_info()}, cores={os.cpu_count()}")
    w = env_warning()
    if w:
        print(w)
