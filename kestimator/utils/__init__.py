"""Utilities: learning-curve plots, reading event files."""
from .plotting import plot_curves  # noqa: F401


def read_event_scalars(path):
    """{tag: [(step, value), ...]} from a TensorBoard event file."""
    from ..io.events import read_event_scalars as _read
    return _read(path)
