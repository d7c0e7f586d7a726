"""The stall inspector: a deadline on every collective, and a report naming who did not arrive.

Every collective kestimator runs is bracketed by `enter()` / `leave()` (two attribute writes on the
training thread, nothing more). A daemon thread wakes every 0.1 s and

* answers status queries from other ranks (on its own communicator) with what this rank is doing:
  waiting in collective #k (which tensors), or computing (where: file, line and function of the
  training thread), and when it last finished a collective;
* checks whether the pending collective has waited longer than the deadline. If it has, it asks every
  other rank for its status, waits up to a few seconds for answers, prints one report (ranks waiting
  in the same collective, ranks that did not arrive and what they are doing instead, ranks that did
  not answer) and aborts the whole job with MPI_Abort, so a deadlock ends with a diagnosis instead of
  a silent hang.

The thread needs MPI_THREAD_MULTIPLE (mpi4py asks for it by default). With a lower thread level it
still enforces the deadline but cannot ask the other ranks.
"""
import atexit
import json
import os
import sys
import threading
import time

from ._runtime import TIMEOUT_ENV, _write_stderr, abort

TAG_QUERY, TAG_REPLY = 17, 18
TICK_S = 0.1
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_KESTIMATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class StallInspector:
    """Tracks the pending collective of this rank and aborts the job when it outlives the deadline.

    Args:
        state: the runtime `_State` (communicators, rank, size, timeout).
    """

    def __init__(self, state):
        self.state = state
        self.entered = 0       # collectives started by this rank
        self.pending = None    # (seq, kind, name, detail, t0, thread ident)
        self.last = None       # (seq, kind, name, t_done)
        self._stop = threading.Event()
        self._outbox = []
        self._thread = threading.Thread(target=self._run, name="kestimator-stall-inspector", daemon=True)
        self._reported = False
        atexit.register(self.stop)   # runs before mpi4py finalizes MPI (a C-level exit hook)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    # -- the training thread's side -------------------------------------------------------------------
    def enter(self, kind, name, detail):
        self.entered += 1
        self.pending = (self.entered, kind, name, detail, time.monotonic(), threading.get_ident())

    def leave(self):
        p = self.pending
        if p is not None:
            self.last = (p[0], p[1], p[2], time.monotonic())
        self.pending = None

    # -- the inspector thread -------------------------------------------------------------------------
    def _run(self):
        while not self._stop.wait(TICK_S):
            try:
                if self.state.thread_multiple:
                    self._serve_queries()
                p = self.pending
                timeout = self.state.timeout
                if p is not None and timeout is not None and time.monotonic() - p[4] > timeout:
                    self._report_and_abort(p, timeout)
            except Exception as e:   # the inspector must never die silently: report, keep watching
                if not self._stop.is_set():
                    _write_stderr(f"[rank {self.state.rank}] kestimator.distributed: stall inspector error: "
                                  f"{type(e).__name__}: {e}\n")
                    time.sleep(1.0)

    def _serve_queries(self):
        MPI, comm = self.state.MPI, self.state.status_comm
        st = MPI.Status()
        while comm.Iprobe(MPI.ANY_SOURCE, TAG_QUERY, st):
            src = st.Get_source()
            buf = bytearray(st.Get_count(MPI.BYTE))
            comm.Recv([buf, MPI.BYTE], src, TAG_QUERY)
            reply = json.dumps(self.status()).encode()
            self._outbox.append((comm.Isend([reply, MPI.BYTE], src, TAG_REPLY), reply))
        self._outbox = [(r, b) for r, b in self._outbox if not r.Test()]

    def status(self):
        """This rank's state as a JSON-able dict."""
        now = time.monotonic()
        p, last = self.pending, self.last
        out = {"rank": self.state.rank, "host": self.state.host, "pid": os.getpid(), "entered": self.entered}
        ident = threading.main_thread().ident
        if p is not None:
            out["waiting"] = {"seq": p[0], "kind": p[1], "name": p[2], "detail": p[3], "for_s": round(now - p[4], 3)}
            ident = p[5]
        if last is not None:
            out["last"] = {"seq": last[0], "kind": last[1], "name": last[2], "ago_s": round(now - last[3], 3)}
        out["where"] = _where(ident)
        return out

    def _ask_others(self, window_s):
        """Query every other rank; returns {rank: status dict} for those that answered within `window_s`."""
        MPI, comm = self.state.MPI, self.state.status_comm
        me, n = self.state.rank, self.state.size
        query = json.dumps({"from": me}).encode()
        sends = [comm.Isend([query, MPI.BYTE], r, TAG_QUERY) for r in range(n) if r != me]
        replies = {}
        st = MPI.Status()
        deadline = time.monotonic() + window_s
        while len(replies) < n - 1 and time.monotonic() < deadline:
            self._serve_queries()    # another rank may be asking us at the same moment
            while comm.Iprobe(MPI.ANY_SOURCE, TAG_REPLY, st):
                src = st.Get_source()
                buf = bytearray(st.Get_count(MPI.BYTE))
                comm.Recv([buf, MPI.BYTE], src, TAG_REPLY)
                try:
                    reply = json.loads(buf.decode("utf-8"))
                except ValueError:
                    reply = None
                replies[src] = reply if isinstance(reply, dict) else {"rank": src, "unreadable": True}
            time.sleep(0.01)
        del sends
        return replies

    def _report_and_abort(self, pending, timeout):
        if self._reported:
            return
        self._reported = True
        window = min(5.0, max(1.0, timeout))
        asked = self.state.thread_multiple
        replies = self._ask_others(window) if asked else {}
        _write_stderr(format_report(self.state.rank, self.state.size, self.status(), pending, replies, timeout,
                                    window, asked))
        abort(1)


def _where(ident):
    """Where thread `ident` is: the innermost frame of the user's code ('file:line in function'), and
    the innermost kestimator frame below it when there is one (outside this package)."""
    frame = sys._current_frames().get(ident)
    inner = None
    while frame is not None:
        path = frame.f_code.co_filename
        in_package = path.startswith("<kestimator") or os.path.abspath(path).startswith(_KESTIMATOR_DIR)
        if not in_package:
            break
        if inner is None and not os.path.abspath(path).startswith(_PACKAGE_DIR):
            inner = frame
        frame = frame.f_back
    text = _frame_text(frame) if frame is not None else "unknown"
    return text + (f" (inside {_frame_text(inner)})" if inner is not None else "")


def _frame_text(frame):
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def _describe(kind, name, detail):
    text = f"{kind} {name!r}"
    return f"{text} ({detail})" if detail else text


def format_report(rank, size, mine, pending, replies, timeout, window, asked):
    """The text printed when a collective outlives its deadline (a pure function: unit-tested)."""
    seq, kind, name, detail = pending[0], pending[1], pending[2], pending[3]
    tag = f"[rank {rank}]"
    lines = [f"kestimator.distributed: collective #{seq} did not complete within {timeout:g} s on rank {rank} "
             f"({TIMEOUT_ENV} sets the deadline); aborting all {size} ranks",
             f"  rank {rank} waits in {_describe(kind, name, detail)}"]
    if not asked:
        lines.append("  ranks that did not arrive: unknown (MPI runs without MPI_THREAD_MULTIPLE, so the inspector "
                     "cannot ask the other ranks)")
    else:
        arrived, missing = [rank], []
        notes = []
        for r in range(size):
            if r == rank:
                continue
            s = replies.get(r)
            if s is None:
                missing.append(r)
                notes.append(f"    rank {r}: no answer within {window:g} s (hung outside Python, or exited)")
                continue
            w = s.get("waiting")
            if isinstance(w, dict) and w.get("seq") == seq and w.get("kind") == kind and w.get("name") == name:
                arrived.append(r)
                continue
            missing.append(r)
            notes.append(f"    rank {r} ({s.get('host', '?')}, pid {s.get('pid', '?')}): {_doing(s)}")
        lines.append(f"  ranks that did not arrive: {missing}")
        lines.extend(notes)
        lines.append(f"  ranks waiting in the same collective: {sorted(arrived)}")
    lines.append(f"    rank {rank}: {_doing(mine)}")
    return "".join(f"{tag} {line}\n" for line in lines)


def _doing(s):
    """One line on what a rank reported doing."""
    if s.get("unreadable"):
        return "sent an unreadable status"
    w, last = s.get("waiting"), s.get("last")
    if isinstance(w, dict):
        text = (f"waits in collective #{w.get('seq')} {_describe(w.get('kind'), w.get('name'), w.get('detail'))} "
                f"for {w.get('for_s', 0):.1f} s")
    else:
        text = "is not in a collective"
    text += f"; {s.get('entered', 0)} collectives started"
    if isinstance(last, dict):
        text += (f", last finished #{last.get('seq')} {last.get('kind')} {last.get('name')!r} "
                 f"{last.get('ago_s', 0):.1f} s ago")
    return text + f"; at {s.get('where', 'unknown')}"
