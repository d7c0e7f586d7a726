"""Utilities: learning-curve plots, reading event files, seeding."""
from .plotting import plot_curves  # noqa: F401


def read_event_scalars(path):
    """{tag: [(step, value), ...]} from a TensorBoard event file."""
    from ..io.events import read_event_scalars as _read
    return _read(path)


def set_random_seed(seed):
    """Seed NumPy's global generator, new layer weights, the op seeds of random layers (Dropout...) and the
    default graph's graph-level seed; the same function as `keras.utils.set_random_seed`.

    Args:
        seed: a non-negative int.
    """
    from ..keras import set_random_seed as _seed_all
    _seed_all(seed)
