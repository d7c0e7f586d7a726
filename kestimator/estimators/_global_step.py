"""The global step: an int64 variable named "global_step" in the GLOBAL_STEP collection.

The engine's `ke.train` owns these functions; this module forwards to it, and only while that module is
not importable creates the variable itself with the same name, dtype and collections, so both find it.
"""
import numpy as np

from ..engine import dtypes as _dt
from ..engine.graph import GraphKeys, get_default_graph
from ..engine.variables import Variable


def _engine_train():
    try:
        from ..engine import train
    except ImportError:
        return None
    if not hasattr(train, "get_or_create_global_step"):
        return None
    return train


def get_global_step(graph=None):
    """The global step variable of `graph` (default graph), or None."""
    graph = graph or get_default_graph()
    for v in graph.get_collection(GraphKeys.GLOBAL_STEP):
        return v
    return None


def get_or_create_global_step(graph=None):
    """The global step variable of `graph`, created (int64, 0, not trainable) when missing."""
    graph = graph or get_default_graph()
    existing = get_global_step(graph)
    if existing is not None:
        return existing
    train = _engine_train()
    with graph.as_default():
        if train is not None:
            return train.get_or_create_global_step(graph)
        with graph.name_scope(""), graph.control_dependencies(None):
            return Variable(np.int64(0), trainable=False, name="global_step", dtype=_dt.int64,
                            collections=[GraphKeys.GLOBAL_VARIABLES, GraphKeys.GLOBAL_STEP])
