"""Process-wide state of the Keras layer machinery: layer-name counters, the weights' random generator,
the weight-name scope stack, the learning phase, and switches between graph and eager mode.

Re-exported by `kestimator.layers.base`; import from there.
"""
import contextlib
import re
import threading

import numpy as np

from ..engine import eager as _eager

_uids = {}
_local = threading.local()
_rng = [np.random.default_rng()]
# The seeds of random ops (Dropout masks...) that layers create without a seed of their own come from a
# stream separate from the weights', so adding a Dropout leaves the next layers' initial weights unchanged.
_op_seed_rng = [np.random.default_rng()]


def set_random_seed(seed):
    """Seed the generator new weights are sampled from (initializers without their own seed), and the one
    unseeded random layers (Dropout, SpatialDropout, RNN dropout) draw their op seeds from."""
    _rng[0] = np.random.default_rng(seed)
    _op_seed_rng[0] = np.random.default_rng(None if seed is None else [int(seed), 1])


def draw_op_seed():
    """An op seed for a random layer built without `seed=`: repeatable after `set_random_seed(s)`, as
    tf.keras draws a seed for each unseeded random layer from its seeded global generator."""
    return int(_op_seed_rng[0].integers(1, 2 ** 31 - 1))


def reset_uids():
    """Forget used layer names, so the next Dense is "dense" again (Keras's clear_session)."""
    _uids.clear()


def to_snake_case(name):
    s = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_layer_name(base, zero_based=True):
    """"dense", then "dense_1", ... (Keras's backend uid; Input names start at "input_1")."""
    n = _uids.get(base, 0)
    _uids[base] = n + 1
    if zero_based:
        return base if n == 0 else f"{base}_{n}"
    return f"{base}_{n + 1}"


def _scope_stack():
    stack = getattr(_local, "scopes", None)
    if stack is None:
        stack = _local.scopes = []
    return stack


@contextlib.contextmanager
def layer_name_scope(name):
    """Prefix the names of weights created in this block with `name/` (nested layers' weights)."""
    stack = _scope_stack()
    stack.append(name)
    try:
        yield
    finally:
        stack.pop()


def _training_stack():
    stack = getattr(_local, "training", None)
    if stack is None:
        stack = _local.training = []
    return stack


@contextlib.contextmanager
def learning_phase_scope(value):
    """Layers called in this block without an explicit `training=` see `training=value`."""
    stack = _training_stack()
    stack.append(value)
    try:
        yield
    finally:
        stack.pop()


@contextlib.contextmanager
def _graph_mode():
    """Build graph ops even while eager execution is on (output-spec tracing)."""
    was = _eager.executing_eagerly()
    if was:
        _eager.disable_eager_execution()
    try:
        yield
    finally:
        if was:
            _eager.enable_eager_execution()


@contextlib.contextmanager
def _eager_mode():
    """Run engine ops at once (plain-callable initializers return values, not graph ops)."""
    was = _eager.executing_eagerly()
    if not was:
        _eager.enable_eager_execution()
    try:
        yield
    finally:
        if not was:
            _eager.disable_eager_execution()


def _graph_state(graph, layer):
    """Per-graph, per-layer state (losses, updates, regularizer tensors); it lives on the graph itself so
    it goes away with the graph."""
    store = graph.__dict__.get("_keras_layer_state")
    if store is None:
        store = graph.__dict__["_keras_layer_state"] = {}
    st = store.get(layer)
    if st is None:
        st = store[layer] = {"losses": [], "updates": [], "reg": None}
    return st
