"""The global step of a graph: TF 1.x's `tf.train.get_global_step` and friends (also importable from
`kestimator.engine.train`)."""
import numpy as np

from ..errors import InvalidArgumentError, NotFoundError
from . import dtypes as _dt
from .graph import GraphKeys, get_default_graph
from .variables import Variable

__all__ = ["get_global_step", "create_global_step", "get_or_create_global_step", "global_step",
           "assert_global_step"]


def get_global_step(graph=None):
    """The global step variable of `graph` (the default graph), or None when it has none.

    Raises:
        InvalidArgumentError: the GLOBAL_STEP collection holds more than one item.
    """
    graph = graph or get_default_graph()
    items = graph.get_collection(GraphKeys.GLOBAL_STEP)
    if len(items) > 1:
        raise InvalidArgumentError(f"the global_step collection holds {len(items)} items; expected one")
    if items:
        return items[0]
    try:
        op = graph.get_operation_by_name("global_step")
    except NotFoundError:
        return None
    return getattr(op, "_variable", None) if op.type == "VariableV2" else None


def create_global_step(graph=None):
    """Create the global step: an int64 scalar variable "global_step", not trainable, in the
    GLOBAL_VARIABLES and GLOBAL_STEP collections.

    Raises:
        InvalidArgumentError: the graph already has a global step.
    """
    graph = graph or get_default_graph()
    if get_global_step(graph) is not None:
        raise InvalidArgumentError("global_step already exists in this graph")
    with graph.as_default(), graph.name_scope(""), graph.control_dependencies(None):
        var = Variable(np.int64(0), trainable=False, name="global_step", dtype=_dt.int64,
                       collections=[GraphKeys.GLOBAL_VARIABLES, GraphKeys.GLOBAL_STEP])
    store = getattr(graph, "_variable_store", None)
    if store is not None:
        store.setdefault("global_step", var)   # so get_variable("global_step", reuse=True) finds it, as in TF
    return var


def get_or_create_global_step(graph=None):
    """The graph's global step, created first if missing."""
    graph = graph or get_default_graph()
    return get_global_step(graph) or create_global_step(graph)


def global_step(sess, global_step_tensor):
    """The current value of the global step as a Python int."""
    return int(sess.run(global_step_tensor))


def assert_global_step(global_step_tensor):
    """Check that `global_step_tensor` is an integer scalar variable or tensor.

    Raises:
        InvalidArgumentError: it is not.
    """
    dt = getattr(global_step_tensor, "dtype", None)
    shape = getattr(global_step_tensor, "shape", None)
    if dt is None or not dt.is_integer or shape is None or tuple(shape) != ():
        raise InvalidArgumentError(f"global step {getattr(global_step_tensor, 'name', global_step_tensor)} must "
                                   f"be an integer scalar, got dtype {getattr(dt, 'name', dt)} shape {shape}")
