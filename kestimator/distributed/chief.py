"""Work only the chief (rank 0) does: checkpoints, summaries, exports, logs.

`on_chief(fn)` runs `fn` on rank 0 only and then makes every rank wait at a barrier, so no rank reads
a checkpoint before the chief finished writing it. An exception inside `fn` on the chief is not
swallowed: it propagates there (and the abort-on-exception hook ends the job) while the other ranks
wait at the barrier.
"""
import contextlib
import functools
import threading

from . import collectives
from ._runtime import ensure_init


def is_chief():
    """True on rank 0 (and in a one-process run)."""
    return ensure_init().rank == 0


_section = threading.local()


@contextlib.contextmanager
def chief_section():
    """Mark code that runs on the chief alone while the other ranks wait (e.g. a saving listener inside a
    chief-only checkpoint): an `on_chief` call inside it just calls its function, since a collective there
    would never be matched by the other ranks."""
    _section.depth = getattr(_section, "depth", 0) + 1
    try:
        yield
    finally:
        _section.depth -= 1


def on_chief(fn, *args, barrier=True, broadcast_result=False, **kwargs):
    """Call fn(*args, **kwargs) on rank 0 only.

    Args:
        fn: the function.
        barrier: make every rank wait until the chief returned.
        broadcast_result: send the chief's (JSON-able) return value to every rank.

    Returns:
        fn's result on the chief; on other ranks None, or the chief's result with broadcast_result.

    Raises:
        whatever fn raises, on the chief.
    """
    st = ensure_init()
    if getattr(_section, "depth", 0):   # already on the chief alone: no collective
        return fn(*args, **kwargs)
    result = fn(*args, **kwargs) if st.rank == 0 else None
    if broadcast_result:
        result = collectives.broadcast(result, root=0, name=f"on_chief {getattr(fn, '__name__', 'fn')}")
    elif barrier:
        collectives.barrier(name=f"on_chief {getattr(fn, '__name__', 'fn')}")
    return result


def chief_only(fn=None, *, barrier=True, broadcast_result=False):
    """Decorator form of on_chief: `@chief_only` or `@chief_only(barrier=False)`.

    Example:
        @ks.distributed.chief_only
        def save(step):
            saver.save(sess, "ckpt/model", global_step=step)
    """
    def wrap(f):
        @functools.wraps(f)
        def inner(*args, **kwargs):
            return on_chief(f, *args, barrier=barrier, broadcast_result=broadcast_result, **kwargs)
        return inner
    return wrap(fn) if fn is not None else wrap
