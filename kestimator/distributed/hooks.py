"""Estimator-side hooks for data-parallel training (SessionRunHook protocol)."""
from ..estimators.hooks import SessionRunHook
from ._runtime import ensure_init
from .sync import broadcast_variables


class BroadcastGlobalVariablesHook(SessionRunHook):
    """Copy every global variable from `root_rank` to all ranks once the session exists.

    `after_create_session` runs after the session initialized or restored the variables, so a run that
    resumes from a checkpoint (read on the chief, or a different checkpoint per rank) starts every rank
    from the chief's weights, optimizer slots and global step.

    Args:
        root_rank: the rank whose values win.
        variables: the variables to broadcast (default: the graph's GLOBAL_VARIABLES when `begin` runs).
    """

    def __init__(self, root_rank=0, variables=None):
        self.root_rank = root_rank
        self._given = None if variables is None else list(variables)
        self._variables = None

    def begin(self):
        ensure_init()
        if self._given is not None:
            self._variables = self._given
            return
        from ..engine.graph import GraphKeys, get_default_graph
        self._variables = get_default_graph().get_collection(GraphKeys.GLOBAL_VARIABLES)

    def after_create_session(self, session, coord):
        variables = self._variables
        if variables is None:
            from ..engine.graph import GraphKeys
            variables = session.graph.get_collection(GraphKeys.GLOBAL_VARIABLES)
        broadcast_variables(session, variables, root_rank=self.root_rank)
