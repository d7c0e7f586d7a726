"""Fixtures shared by every test package.

After each test the engine's process-wide state goes back to its defaults: eager mode off (a test that
enables it must not turn every later graph test eager), every GPU visible again, no graph-level default seed,
and a fresh global
default graph (names and get_variable's store do not leak between tests). Nothing is imported here
unless the test already loaded the engine, so tests of other packages stay independent of it.
"""
import sys

import pytest


@pytest.fixture(autouse=True)
def _reset_engine_state():
    yield
    if "kestimator.engine.graph" not in sys.modules:
        return
    from kestimator.engine import devices, eager, graph
    devices.set_visible_gpus(None)   # ks.config.set_visible_devices narrows placement process-wide
    eager.disable_eager_execution()
    eager._state["tapes"].clear()
    eager.set_eager_seed(None)
    graph.set_default_seed(None)
    if not graph._graph_stack.stack:
        graph.reset_default_graph()


@pytest.fixture
def fresh_graph():
    """A new Graph installed as the default graph for the test's duration."""
    from kestimator.engine import Graph
    g = Graph()
    with g.as_default():
        yield g
