"""The process group: launch detection, MPI start-up, communicators, and the abort-on-exception hook.

mpi4py is imported only by `init()` and only when the process was started by an MPI launcher (mpiexec,
mpirun, srun): a script run as `python train.py` never loads MPI and behaves as rank 0 of 1, so the same
script runs on a laptop and on a cluster.

Communicators. Collectives run on a duplicate of MPI_COMM_WORLD, so a user's own mpi4py calls on
COMM_WORLD can never be matched with kestimator's; the stall inspector talks on a second duplicate, so its
status messages never interleave with data; `local` groups the ranks of one host (for local_rank).
"""
import os
import socket
import sys
import threading
import time
import traceback

from ..errors import ConfigError, InvalidArgumentError, MissingDependencyError

# Variables an MPI launcher sets in every process it starts (MPICH hydra, Open MPI, PMIx, Slurm PMI2).
_LAUNCH_VARS = ("PMI_RANK", "PMI_SIZE", "PMI_FD", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                "MPI_LOCALNRANKS")
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")

TIMEOUT_ENV = "KESTIMATOR_COLLECTIVE_TIMEOUT"
MODE_ENV = "KESTIMATOR_DISTRIBUTED"
DEFAULT_TIMEOUT = 300.0
ABORT_GRACE_S = 1.0


class _State:
    """Everything init() sets up; one instance per process (`STATE`)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.initialized = False
        self.MPI = None            # the mpi4py.MPI module when running under MPI
        self.comm = None           # data communicator (dup of COMM_WORLD)
        self.status_comm = None    # stall-inspector communicator (dup of COMM_WORLD)
        self.local_comm = None
        self.rank, self.size = 0, 1
        self.local_rank, self.local_size = 0, 1
        self.timeout = DEFAULT_TIMEOUT
        self.inspector = None
        self.thread_multiple = False
        self.host = socket.gethostname()
        self.checked = set()       # (kind, name) pairs whose metadata all ranks already agreed on
        self._previous_excepthook = None

    @property
    def distributed(self):
        """True when collectives must talk to other processes."""
        return self.comm is not None and self.size > 1


STATE = _State()
_init_lock = threading.Lock()


def launched_by_mpi(environ=None):
    """Whether this process was started by an MPI launcher (or `KESTIMATOR_DISTRIBUTED` forces a mode).

    Args:
        environ: the environment to inspect (default `os.environ`).

    Returns:
        True under mpiexec / mpirun / srun, False for a plain `python script.py`.

    Raises:
        ConfigError: `KESTIMATOR_DISTRIBUTED` holds something other than 0/1/true/false/on/off/mpi.
    """
    environ = os.environ if environ is None else environ
    mode = environ.get(MODE_ENV, "").strip().lower()
    if mode in ("0", "false", "off", "no", "local"):
        return False
    if mode in ("1", "true", "on", "yes", "mpi"):
        return True
    if mode:
        raise ConfigError(f"environment variable {MODE_ENV}={environ[MODE_ENV]!r}: expected 1/mpi (use MPI) or "
                          "0/local (run as one process)")
    return any(v in environ for v in _LAUNCH_VARS)


def _launcher_size(environ):
    for v in _SIZE_VARS:
        if v in environ:
            try:
                return int(environ[v])
            except ValueError:
                return None
    return None


def collective_timeout_from_env(environ=None):
    """The collective deadline in seconds from `KESTIMATOR_COLLECTIVE_TIMEOUT` (default 300; 0 or "none"
    disables it).

    Raises:
        ConfigError: the variable is not a non-negative number.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT
    text = raw.strip().lower()
    if text in ("none", "off", "inf", "0"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"environment variable {TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if value < 0 or value != value:
        raise ConfigError(f"environment variable {TIMEOUT_ENV}={raw!r} must be >= 0 seconds")
    return value or None


def init(collective_timeout=None, abort_on_exception=True):
    """Join the process group. Safe to call more than once; every other function calls it on first use.

    Under an MPI launcher this imports mpi4py (MPI_Init_thread with MPI_THREAD_MULTIPLE), duplicates
    COMM_WORLD for kestimator's collectives, starts the stall inspector, and installs an excepthook that
    prints an uncaught exception with its rank and aborts every rank (so one failing rank never leaves
    the others waiting). Without a launcher (or without mpi4py in a one-process launch) it does nothing
    and the process is rank 0 of 1.

    Args:
        collective_timeout: seconds a collective may wait for the other ranks before the job is aborted
            with a report naming the ranks that did not arrive. Default: `KESTIMATOR_COLLECTIVE_TIMEOUT`
            or 300; 0 disables the deadline.
        abort_on_exception: install the abort-on-uncaught-exception hook (multi-process runs only).

    Raises:
        MissingDependencyError: launched as several processes but mpi4py is not installed.
        ConfigError: a KESTIMATOR_* environment variable is malformed.
    """
    with _init_lock:
        if STATE.initialized:
            if collective_timeout is not None:
                set_collective_timeout(collective_timeout)
            return
        timeout = collective_timeout_from_env() if collective_timeout is None else _check_timeout(
            collective_timeout)
        STATE.timeout = timeout
        if not launched_by_mpi():
            STATE.initialized = True
            return
        try:
            from mpi4py import MPI
        except ImportError:
            n = _launcher_size(os.environ)
            if n is None or n > 1:
                raise MissingDependencyError("mpi4py", "mpi", f"kestimator.distributed in an MPI job of "
                                             f"{n if n is not None else 'several'} processes") from None
            STATE.initialized = True
            return
        STATE.MPI = MPI
        world = MPI.COMM_WORLD
        STATE.comm = world.Dup()
        STATE.status_comm = world.Dup()
        STATE.rank, STATE.size = world.Get_rank(), world.Get_size()
        STATE.local_comm = world.Split_type(MPI.COMM_TYPE_SHARED, key=STATE.rank)
        STATE.local_rank, STATE.local_size = STATE.local_comm.Get_rank(), STATE.local_comm.Get_size()
        STATE.thread_multiple = MPI.Query_thread() >= MPI.THREAD_MULTIPLE
        STATE.initialized = True
        if STATE.size > 1:
            from ._inspector import StallInspector
            STATE.inspector = StallInspector(STATE)
            STATE.inspector.start()
            if abort_on_exception:
                _install_excepthook()


def _check_timeout(value):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"collective_timeout must be a number of seconds, got {value!r}") from None
    if value < 0 or value != value:
        raise InvalidArgumentError(f"collective_timeout must be >= 0 seconds, got {value}")
    return value or None


def set_collective_timeout(seconds):
    """Change the deadline of later collectives (None or 0: wait forever)."""
    STATE.timeout = _check_timeout(seconds)


def ensure_init():
    if not STATE.initialized:
        init()
    return STATE


def shutdown():
    """Leave the process group: stop the stall inspector and remove the excepthook.

    MPI itself stays initialized (mpi4py finalizes it at interpreter exit), so `init()` may be called
    again. Collectives after shutdown() re-initialize.
    """
    with _init_lock:
        if not STATE.initialized:
            return
        if STATE.inspector is not None:
            STATE.inspector.stop()
        if STATE._previous_excepthook is not None and sys.excepthook is _abort_excepthook:
            sys.excepthook = STATE._previous_excepthook
        for c in (STATE.comm, STATE.status_comm, STATE.local_comm):
            if c is not None:
                try:
                    c.Free()
                except Exception:   # MPI already finalized: nothing left to free
                    pass
        STATE.reset()


def _install_excepthook():
    STATE._previous_excepthook = sys.excepthook
    sys.excepthook = _abort_excepthook


def _abort_excepthook(exc_type, exc, tb):
    """Print the uncaught exception tagged with this rank, then abort every rank of the job."""
    try:
        lines = traceback.format_exception(exc_type, exc, tb)
        tag = f"[rank {STATE.rank}]"
        text = "".join(f"{tag} {line}\n" for chunk in lines for line in chunk.rstrip("\n").split("\n"))
        head = (f"{tag} kestimator.distributed: uncaught {exc_type.__name__} on rank {STATE.rank} of "
                f"{STATE.size} ({STATE.host}, pid {os.getpid()}); aborting all ranks\n")
        _write_stderr(head + text)
    finally:
        abort(1)


def _write_stderr(text):
    """Write straight to fd 2: Python's buffered stderr might not be flushed before MPI_Abort kills us."""
    try:
        sys.stderr.flush()
    except Exception:
        pass
    data = text.encode("utf-8", "replace")
    while data:
        try:
            n = os.write(2, data)
        except OSError:
            return
        data = data[n:]


def abort(code=1):
    """End every process of the job now (MPI_Abort), or exit this process when not under MPI."""
    MPI = STATE.MPI
    if MPI is not None and STATE.size > 1:
        # The launcher forwards our stderr through a pipe; MPI_Abort tears the job down at once and
        # would lose the report just written. Give the launcher a moment to forward it.
        time.sleep(ABORT_GRACE_S)
        MPI.COMM_WORLD.Abort(code)
    os._exit(code)


def process_label():
    return f"rank {STATE.rank} ({STATE.host}, pid {os.getpid()})"
