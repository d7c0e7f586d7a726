"""Moving a Session's state to and from checkpoints: variable values, random streams, warm starts."""
import re
import warnings

import numpy as np

from ..engine.graph import GraphKeys
from ..errors import InvalidArgumentError, NotFoundError


def global_variables(graph):
    """The graph's global variables with unique op names, in creation order."""
    seen, out = set(), []
    for v in graph.get_collection(GraphKeys.GLOBAL_VARIABLES):
        op = getattr(v, "op", None)
        if op is None or op.name in seen:
            continue
        seen.add(op.name)
        out.append(v)
    return out


class StateReader:
    """Reads every global variable (one compiled fetch) and the random streams of a session."""

    def __init__(self, sess, graph):
        self.sess = sess
        self.variables = global_variables(graph)
        self.names = [v.op.name for v in self.variables]
        self._fetch = sess.make_callable([v._as_tensor() for v in self.variables]) if self.variables else None

    def tensors(self):
        if self._fetch is None:
            return {}
        return dict(zip(self.names, self._fetch()))

    def rng_states(self):
        """{op name: bit generator state} of the session's random streams (dropout, random ops...)."""
        out = {}
        for op, rng in getattr(self.sess, "_rngs", {}).items():
            if op.type == "Initializer":   # initial values are replaced by restores; not worth recording
                continue
            out[op.name] = rng.bit_generator.state
        return out


def restore(sess, graph, tensors, metadata, path, strict=True):
    """Load checkpoint `tensors` into the session's global variables and restore random streams.

    Raises:
        NotFoundError: (strict) a variable of the graph is not in the checkpoint (names them and the file).
        InvalidArgumentError: a shape differs between the graph and the checkpoint.
    """
    missing = []
    for v in global_variables(graph):
        name = v.op.name
        if name not in tensors:
            missing.append(name)
            continue
        value = tensors[name]
        if tuple(value.shape) != tuple(v.shape):
            raise InvalidArgumentError(f"checkpoint {path}: variable {name} has shape {tuple(value.shape)}, "
                                       f"the model has {tuple(v.shape)}")
        v.load(value, sess)
    if missing and strict:
        raise NotFoundError(f"checkpoint {path} lacks variables of this model: {missing[:10]}"
                            f"{' ...' if len(missing) > 10 else ''} (was it written by a different model_fn?)")
    for op_name, state in (metadata or {}).get("rng_states", {}).items():
        try:
            op = graph.get_operation_by_name(op_name)
        except NotFoundError:
            continue
        rng = sess._rng_for(op)
        try:
            if state.get("bit_generator") == type(rng.bit_generator).__name__:
                rng.bit_generator.state = state
        except (TypeError, ValueError, AttributeError):
            warnings.warn(f"checkpoint {path}: the random stream of {op_name} could not be restored", stacklevel=2)
    return missing


def warm_start(sess, graph, settings, load_fn):
    """Initialize trainable variables from another checkpoint (tf.estimator.WarmStartSettings).

    Args:
        settings: a WarmStartSettings.
        load_fn: path -> (path, tensors, metadata) loader.

    Raises:
        NotFoundError / InvalidArgumentError: a selected variable is missing from, or shaped differently
            in, the source checkpoint.
    """
    path, tensors, _ = load_fn(settings.ckpt_to_initialize_from)
    pattern = settings.vars_to_warm_start
    if isinstance(pattern, (list, tuple)):
        names = set(pattern)
        select = lambda n: n in names   # noqa: E731
    else:
        rx = re.compile(pattern or ".*")
        select = lambda n: rx.match(n) is not None   # noqa: E731
    rename = settings.var_name_to_prev_var_name or {}
    pool = graph.get_collection(GraphKeys.TRAINABLE_VARIABLES)
    loaded = []
    for v in pool:
        name = v.op.name
        if not select(name):
            continue
        src = rename.get(name, name)
        if src not in tensors:
            raise NotFoundError(f"warm start: variable {src} is not in checkpoint {path}")
        value = np.asarray(tensors[src])
        if tuple(value.shape) != tuple(v.shape):
            raise InvalidArgumentError(f"warm start: {src} in {path} has shape {tuple(value.shape)}, "
                                       f"variable {name} has {tuple(v.shape)}")
        v.load(value, sess)
        loaded.append(name)
    return loaded
