"""The optimizer side of a running model: its learning rate (read and set by callbacks) and its state
(iterations, learning rate, slots) for saving, restoring and resuming training.

State restored before the training step exists (e.g. right after load_model) waits in
`_pending_optimizer_state` and is applied when the step is built.
"""
import warnings

import numpy as np

from ..errors import InvalidArgumentError


class OptimizerStateMixin:
    """Mixed into Model (through TrainingMixin)."""

    # -- learning rate (used by callbacks) -------------------------------------------------------------------------
    def _get_learning_rate(self):
        if self.optimizer is None:
            raise InvalidArgumentError(f"model {self.name!r} has no optimizer; compile() it first")
        if self._runtime is None or self._runtime.optimizer is not self.optimizer:
            lr = self.optimizer.learning_rate
            return float(lr if not callable(lr) else lr(0))
        rt = self._runtime
        return float(rt.session.run(rt.learning_rate_variable()))

    def _set_learning_rate(self, value):
        if self.optimizer is None:
            raise InvalidArgumentError(f"model {self.name!r} has no optimizer; compile() it first")
        if callable(self.optimizer.learning_rate) and not isinstance(self.optimizer.learning_rate, (int, float)):
            warnings.warn("the optimizer uses a learning-rate schedule; setting a fixed rate replaces it",
                          RuntimeWarning, stacklevel=3)
        self.optimizer.learning_rate = float(value)
        if self._runtime is not None and self._runtime.optimizer is self.optimizer:
            rt = self._runtime
            rt.learning_rate_variable().load(np.float32(value), rt.session)

    # -- optimizer state --------------------------------------------------------------------------------------------
    def _optimizer_slot_variables(self):
        """({(weight name, slot name): slot Variable}, iterations Variable, learning-rate Variable) of the
        running model's optimizer, or None when no training step was built yet."""
        rt = self._runtime
        if self.optimizer is None or rt is None or rt.optimizer is not self.optimizer or \
                not any(k[0] == "train" for k in rt._fns):
            return None
        opt = self.optimizer
        slots = {}
        for w in self.trainable_weights:
            var = w.variable(rt.graph)
            for slot in opt.get_slot_names():
                svar = opt.get_slot(var, slot)
                if svar is not None:
                    slots[(w.name, slot)] = svar
        with rt.graph.as_default():
            iterations = opt.iterations
        return slots, iterations, opt.learning_rate_variable(rt.graph)

    def _optimizer_state(self):
        """{"iterations": int, "learning_rate": float, "slots": {(weight name, slot): array}} or None."""
        found = self._optimizer_slot_variables()
        if found is None:
            return self._pending_optimizer_state
        slots, iterations, lr = found
        sess = self._runtime.session
        return {"iterations": int(sess.run(iterations)), "learning_rate": float(sess.run(lr)),
                "slots": {k: np.array(sess.run(v)) for k, v in slots.items()}}

    def _set_optimizer_state(self, state):
        """Restore optimizer state now if training was set up, else when it is."""
        self._pending_optimizer_state = state
        if self._optimizer_slot_variables() is not None:
            self._apply_pending_optimizer_state()

    def _apply_pending_optimizer_state(self):
        state = self._pending_optimizer_state
        found = self._optimizer_slot_variables()
        if state is None or found is None:
            return
        self._pending_optimizer_state = None
        slots, iterations, lr = found
        sess = self._runtime.session
        if state.get("iterations") is not None:
            iterations.load(np.int64(state["iterations"]), sess)
        if state.get("learning_rate") is not None:
            lr.load(np.float32(state["learning_rate"]), sess)
        missing = []
        for key, value in state.get("slots", {}).items():
            svar = slots.get(tuple(key))
            if svar is None:
                missing.append(key)
                continue
            if tuple(svar.shape) != tuple(np.shape(value)):
                raise InvalidArgumentError(f"optimizer slot {key[1]!r} of weight {key[0]} has shape "
                                           f"{tuple(np.shape(value))} in the saved state; the model needs "
                                           f"{tuple(svar.shape)}")
            svar.load(value, sess)
        if missing:
            warnings.warn(f"optimizer state for {len(missing)} slots was not restored (no such weight/slot): "
                          f"{missing[:3]}", RuntimeWarning, stacklevel=2)
