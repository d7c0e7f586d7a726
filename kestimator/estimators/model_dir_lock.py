"""One trainer per model_dir: a lock file that makes a second training process fail at once.

Two processes training into the same model_dir would interleave their checkpoints and rewrite each other's
index. `Estimator.train` therefore holds ``model_dir/.kestimator.lock`` while it trains::

    {"pid": 4242, "host": "node7", "start_time": 1764100000.0, "started": "2026-11-25T22:00:00Z",
     "process_start": 123456, "owner": "Estimator.train", "token": "<random hex>"}

* The file is created with ``O_CREAT | O_EXCL``: of two processes racing for it exactly one creates it.
* A second trainer finds it and raises `FailedPreconditionError` naming the owner's pid, host and start time
  and the lock's path, before it builds anything.
* A stale lock (its pid is dead on this host, or the pid now belongs to a process that started later than
  the owner did: a reused pid) is taken over with a warning. A lock from another host cannot be checked from
  here and is refused; the message says to delete the file if that process is gone. A lock file that cannot
  be parsed (its owner died between creating and writing it) is stale once it is a few seconds old.
* It is released (removed, if it is still ours) when training returns or raises, KeyboardInterrupt included.

Under MPI only the chief (`ks.distributed.is_chief()`) takes the lock: the other ranks write no checkpoints.
Taking over a stale lock removes it only if it still holds what was judged stale, then creates a new one
with O_EXCL again, so two processes that find the same stale lock cannot both win.
"""
import contextlib
import json
import os
import socket
import time
import warnings

from ..errors import FailedPreconditionError

__all__ = ["LOCK_NAME", "ModelDirLock", "hold", "read_lock"]

LOCK_NAME = ".kestimator.lock"
_UNREADABLE_GRACE_S = 5.0    # a lock file younger than this may still be being written by its owner
_MAX_LOCK_BYTES = 4096


def _process_start(pid):
    """The start time of process `pid` in clock ticks since boot (/proc/<pid>/stat field 22), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    try:   # the command name (field 2) is in parentheses and may contain spaces
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by another user
        return True
    return True


def read_lock(path):
    """The owner record in lock file `path` (a dict), or None when the file is missing or unparsable."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_LOCK_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError:
        return None
    if len(raw) > _MAX_LOCK_BYTES:
        return None
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int) or isinstance(record["pid"], bool):
        return None
    return record


def _describe(record):
    started = record.get("started") or record.get("start_time")
    return f"pid {record.get('pid')} on host {record.get('host')!r} (started {started}, {record.get('owner')})"


class ModelDirLock:
    """The lock on one model_dir.

    Args:
        model_dir: the folder (created if missing).
        owner: what holds it, for messages ("Estimator.train").
    """

    def __init__(self, model_dir, owner="Estimator.train"):
        self.model_dir = os.fspath(model_dir)
        self.path = os.path.join(self.model_dir, LOCK_NAME)
        self.owner = owner
        self._record = None

    @property
    def held(self):
        return self._record is not None

    def acquire(self):
        """Take the lock.

        Raises:
            FailedPreconditionError: another live process holds it (the message names its pid, host, start
                time and the lock path), this process already holds it for another trainer, or model_dir is
                read-only.
            ResourceExhaustedError: no space left to write the lock file.
        """
        from ..io.write_errors import reraise_write_error
        host = socket.gethostname()
        record = {"pid": os.getpid(), "host": host, "start_time": time.time(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "process_start": _process_start(os.getpid()), "owner": self.owner, "token": os.urandom(8).hex()}
        data = json.dumps(record, sort_keys=True).encode()
        for _ in range(20):   # each pass either creates the file, refuses, or removes one stale lock
            try:
                os.makedirs(self.model_dir, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
            except FileExistsError:
                self._judge_existing(host)
                continue
            except OSError as err:   # a read-only or full model_dir: say so, naming the lock file
                reraise_write_error(err, self.path, "model_dir lock file", replaces=False)
                raise
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except BaseException as err:
                os.close(fd)
                _unlink_quietly(self.path)
                reraise_write_error(err, self.path, "model_dir lock file", replaces=False)
                raise
            os.close(fd)
            self._record = record
            return self
        raise FailedPreconditionError(f"could not take the model_dir lock {self.path}: it keeps changing hands")

    def _judge_existing(self, host):
        """Return when the existing lock was stale and has been removed; raise when it is live."""
        record = read_lock(self.path)
        if record is None:
            try:
                age = time.time() - os.stat(self.path).st_mtime
            except FileNotFoundError:
                return   # released meanwhile: try again
            if age < _UNREADABLE_GRACE_S:   # its owner may be writing it right now
                time.sleep(0.05)
                record = read_lock(self.path)
                if record is None:
                    if time.time() - os.stat(self.path).st_mtime < _UNREADABLE_GRACE_S:
                        raise FailedPreconditionError(
                            f"model_dir {self.model_dir} is being locked by another process (lock file {self.path} "
                            "is being written); another trainer is starting in this model_dir")
            if record is None:
                self._take_over(None, f"lock file {self.path} is unreadable and {age:.0f} s old "
                                      "(its owner died while writing it)")
                return
        pid = record["pid"]
        if record.get("host") != host:
            raise FailedPreconditionError(
                f"model_dir {self.model_dir} is locked by {_describe(record)}: another process is training into "
                f"it (lock file {self.path}). This host ({host!r}) cannot check whether that process is alive; "
                "if it is gone, delete the lock file")
        if pid == os.getpid() and record.get("process_start") == _process_start(pid):
            raise FailedPreconditionError(
                f"model_dir {self.model_dir} is already locked by this process ({_describe(record)}; lock file "
                f"{self.path}): two trainers in one process cannot share a model_dir")
        if _pid_alive(pid):
            started = record.get("process_start")
            now_start = _process_start(pid)
            if started is None or now_start is None or now_start == started:
                raise FailedPreconditionError(
                    f"model_dir {self.model_dir} is locked by {_describe(record)}: another process is training "
                    f"into it (lock file {self.path}). Wait for it to finish, or use another model_dir")
            reason = f"pid {pid} now belongs to a newer process (the owner exited and the pid was reused)"
        else:
            reason = f"pid {pid} is no longer running on this host"
        self._take_over(record, reason)

    def _take_over(self, record, reason):
        # Remove it only if it still holds what was judged stale: another process may have taken it over
        # (and written its own record) since it was read.
        if read_lock(self.path) != record:
            return
        warnings.warn(f"taking over a stale model_dir lock {self.path}: {reason} "
                      f"({_describe(record) if record else 'no owner recorded'})", RuntimeWarning, stacklevel=4)
        _unlink_quietly(self.path)

    def release(self):
        """Remove the lock file if it is still this holder's (a stale-lock takeover may have replaced it)."""
        if self._record is None:
            return
        record, self._record = self._record, None
        current = read_lock(self.path)
        if current is not None and current.get("token") == record["token"]:
            _unlink_quietly(self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _is_chief():
    from .. import distributed
    return distributed.is_chief()


@contextlib.contextmanager
def hold(model_dir, owner="Estimator.train"):
    """Hold the model_dir lock for the duration of a with-block (on the chief only; a no-op elsewhere).

    Raises:
        FailedPreconditionError: another live trainer holds the lock (see `ModelDirLock.acquire`).
    """
    if model_dir is None or not _is_chief():
        yield None
        return
    with ModelDirLock(model_dir, owner) as lock:
        yield lock
