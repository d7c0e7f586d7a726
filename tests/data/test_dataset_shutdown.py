"""Stopping: break, garbage collection, interpreter exit and Ctrl-C stop every thread and process."""
import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from kestimator.data import Dataset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pipeline_threads():
    return [t for t in threading.enumerate() if t.name.startswith("ks.data-")]


def _wait_until(predicate, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _run_script(body, timeout=20):
    script = "import sys\nsys.path.insert(0, %r)\n" % REPO + textwrap.dedent(body)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - start


def _process_gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"    # a zombie has exited
    except FileNotFoundError:
        return True


def test_deleting_the_iterator_stops_its_threads():
    # compare thread sets, not counts: threads of earlier tests may still be winding down
    before = set(_pipeline_threads())
    ds = Dataset.range(10_000).map(lambda x: x + 1, num_parallel_calls=3).prefetch(4)
    it = iter(ds)
    assert int(next(it)) == 1
    started = set(_pipeline_threads()) - before
    assert len(started) == 4        # three map workers and the prefetch thread
    del it
    gc.collect()
    assert _wait_until(lambda: not any(t.is_alive() for t in started)), started


def test_exhausting_a_pass_releases_its_threads_and_processes():
    threads_before = set(_pipeline_threads())
    children_before = set(multiprocessing.active_children())
    ds = Dataset.range(50).map(lambda x: x, num_parallel_calls=2, use_processes=True).prefetch(2)
    it = iter(ds)
    total = int(next(it))
    started_threads = set(_pipeline_threads()) - threads_before
    started_children = set(multiprocessing.active_children()) - children_before
    assert len(started_children) == 2 and started_threads
    total += sum(int(v) for v in it)      # runs to the end: the pass closes itself
    assert total == sum(range(50))
    assert _wait_until(lambda: not any(p.is_alive() for p in started_children)
                       and not any(t.is_alive() for t in started_threads))


def test_breaking_out_of_a_slow_parallel_map_exits_promptly():
    proc, seconds = _run_script("""
        import time
        from kestimator.data import Dataset
        def slow(x):
            if x >= 2:
                time.sleep(30)       # an element nobody waits for
            return x
        for i, x in enumerate(Dataset.range(100).map(slow, num_parallel_calls=4).prefetch(2)):
            if i == 1:
                break
        print("broke", flush=True)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "broke"
    assert seconds < 10       # the 30 s sleeps would hold a joined (non-daemon) worker


def test_process_pool_leaves_no_child_behind_after_break():
    proc, seconds = _run_script("""
        import gc, multiprocessing, os, time
        from kestimator.data import Dataset
        def work(x):
            if x >= 4:
                time.sleep(60)
            return os.getpid()
        it = iter(Dataset.range(100).map(work, num_parallel_calls=2, use_processes=True))
        pids = {int(next(it)) for _ in range(4)}
        children = {p.pid for p in multiprocessing.active_children()}
        print(" ".join(map(str, sorted(children))), flush=True)
        del it
        gc.collect()
        deadline = time.monotonic() + 5
        while multiprocessing.active_children() and time.monotonic() < deadline:
            time.sleep(0.05)
        print(len(multiprocessing.active_children()), flush=True)
    """)
    assert proc.returncode == 0, proc.stderr
    children_line, remaining = proc.stdout.strip().splitlines()
    children = [int(p) for p in children_line.split()]
    assert len(children) == 2 and remaining == "0"
    assert seconds < 15
    assert all(_process_gone(pid) for pid in children)


def test_process_pool_children_are_reaped_at_exit_without_del():
    proc, seconds = _run_script("""
        import multiprocessing, time
        from kestimator.data import Dataset
        def work(x):
            if x >= 2:
                time.sleep(60)
            return x
        it = iter(Dataset.range(100).map(work, num_parallel_calls=2, use_processes=True))
        next(it); next(it)
        print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
        # exit with the iterator still referenced and the workers busy
    """)
    assert proc.returncode == 0, proc.stderr
    children = [int(p) for p in proc.stdout.split()]
    assert len(children) == 2
    assert seconds < 15
    assert _wait_until(lambda: all(_process_gone(pid) for pid in children), timeout=5)


def test_ctrl_c_stops_a_running_pipeline():
    script = "import sys\nsys.path.insert(0, %r)\n" % REPO + textwrap.dedent("""
        import multiprocessing, time
        from kestimator.data import Dataset
        def slow(x):
            time.sleep(0.05)
            return x
        ds = (Dataset.range(10**9).map(slow, num_parallel_calls=2, use_processes=True)
              .map(lambda x: x, num_parallel_calls=2).prefetch(4))
        for i, x in enumerate(ds):
            if i == 3:
                print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        children = [int(p) for p in proc.stdout.readline().split()]
        assert len(children) == 2
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
        assert time.monotonic() - start < 10
        assert "KeyboardInterrupt" in proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        assert _wait_until(lambda: all(_process_gone(pid) for pid in children), timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
