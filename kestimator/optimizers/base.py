"""Optimizer base: gradients from the engine, one fused update op over all variables.

`apply_gradients` adds a single "ApplyOptimizer" op whose inputs are the learning rate, the step count,
the variables, their gradients and the slot variables. Variables and slots live in contiguous session
slabs and the Plan writes the gradients into one contiguous buffer, so the update runs as a few
vectorized NumPy calls over the whole slab (`_update` sees flat arrays) instead of a loop per weight.
"""
import sys
import warnings

import numpy as np

from ..engine import dtypes as _dt
from ..engine.autodiff import gradients as _gradients
from ..engine.graph import GraphKeys, Tensor, get_default_graph
from ..engine.ops.core import convert_to_tensor, group
from ..engine.registry import apply_op, register
from ..engine.variables import Variable
from ..errors import InvalidArgumentError
from . import schedules


def _address(a):
    """Address of `a`'s first element (NumPy's array interface, or CuPy's device pointer)."""
    iface = getattr(a, "__array_interface__", None)
    return iface["data"][0] if iface is not None else a.data.ptr


def _is(a, b):
    return a is b


def _flat_view(arrays):
    """One 1-D view covering `arrays` when they lie back to back in one buffer, else None.

    Works for host (NumPy) and device (CuPy) slabs alike: only `.base`, addresses and slicing are used.
    """
    if not arrays:
        return None
    first = arrays[0]
    base = first
    while base.base is not None and type(base.base) is type(first):
        base = base.base
    if base.ndim != 1 or not base.flags.c_contiguous:
        return None
    item = first.itemsize
    start = _address(first)
    ptr = start
    for a in arrays:
        if a.dtype != first.dtype or not a.flags.c_contiguous or _address(a) != ptr:
            return None
        ptr += a.nbytes
    b0 = _address(base)
    off = (start - b0) // item
    n = (ptr - start) // item
    if off < 0 or off + n > base.size:
        return None
    return base[off:off + n]


class _UpdateKernel:
    """Calls the optimizer's flat update on slab views (found once per set of buffers) or per variable."""

    def __init__(self, optimizer, n_vars, slot_names):
        self.opt, self.n, self.slot_names = optimizer, n_vars, slot_names
        self._cache = None
        self._fast = None   # (the arrays of the last call, their slab layout)

    def _layout(self, vars_, grads, slots):
        cached = self._cache
        if cached is not None and all(a is b for a, b in zip(cached[0], grads)) and \
                all(a is b for a, b in zip(cached[1], vars_)):
            return cached[2]
        flat = [_flat_view(vars_), _flat_view(grads)] + [_flat_view(s) for s in slots]
        layout = flat if all(f is not None for f in flat) else None
        self._cache = (list(grads), list(vars_), layout)
        return layout

    def __call__(self, lr, step, *arrays):
        n, k = self.n, len(self.slot_names)
        opt = self.opt
        lr_value = opt._lr_value(lr, step)
        t = int(step) + 1
        layout = None
        if not opt._per_variable:
            cached = self._fast
            # the Plan passes the same arrays every step: one identity check instead of _layout's walk
            if cached is not None and len(cached[0]) == len(arrays) and all(map(_is, cached[0], arrays)):
                layout = cached[1]
        if layout is None:
            vars_, grads = arrays[:n], arrays[n:2 * n]
            slots = [arrays[2 * n + i * n: 2 * n + (i + 1) * n] for i in range(k)]
            layout = None if opt._per_variable else self._layout(vars_, grads, slots)
            self._fast = (arrays, layout) if layout is not None else None
        else:
            opt._update(layout[0], layout[1], dict(zip(self.slot_names, layout[2:])), lr_value, t)
            constraints = opt._constraints
            if constraints.count(None) != len(constraints):
                for v, c in zip(arrays[:n], constraints):
                    if c is not None:
                        v[...] = c(v)
            step[...] = t
            return step
        if layout is not None:
            opt._update(layout[0], layout[1], dict(zip(self.slot_names, layout[2:])), lr_value, t)
        else:
            for i in range(n):
                g = grads[i]
                if opt.clipnorm is not None:
                    norm = float(np.sqrt(np.sum(np.square(g, dtype=np.float64))))
                    if norm > opt.clipnorm:
                        g = g * (opt.clipnorm / norm)
                g = g if g.flags.c_contiguous else g.copy()   # .copy() is C-ordered for NumPy and CuPy
                opt._update(vars_[i].reshape(-1), g.reshape(-1),
                            {s: slots[j][i].reshape(-1) for j, s in enumerate(self.slot_names)}, lr_value, t)
        for v, c in zip(vars_, opt._constraints):
            if c is not None:
                v[...] = c(v)
        step[...] = t
        return step


_APPLY = register("ApplyOptimizer", infer=lambda i, a: [((), _dt.int64)], stateful=True, differentiable=False,
         kernel=lambda xp, a: _UpdateKernel(a["optimizer"], a["n"], a["slot_names"]), writes_input=1)
_APPLY.contiguous_inputs = lambda attrs: (2 + attrs["n"], 2 + 2 * attrs["n"])


class Optimizer:
    """Base class. Subclasses set `slot_names`, `slot_init` and implement `_update(var, grad, slots, lr, t)`
    on flat float arrays, in place.

    Args:
        learning_rate: a float, a LearningRateSchedule (called with the step count) or a callable.
        clipnorm / clipvalue / global_clipnorm: gradient clipping, as in Keras.
        name: prefix of the optimizer's variables.
    """

    slot_names = ()
    slot_init = {}

    def __init__(self, learning_rate=0.001, name=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_locking=False, **kwargs):
        if "lr" in kwargs:
            warnings.warn("the `lr` argument is deprecated; use `learning_rate`", DeprecationWarning, stacklevel=3)
            learning_rate = kwargs.pop("lr")
        kwargs.pop("decay", None)
        if kwargs:
            raise InvalidArgumentError(f"{type(self).__name__} got unexpected arguments {sorted(kwargs)}")
        self._learning_rate = learning_rate
        self.name = name or type(self).__name__
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self._graph_state = {}
        self._per_variable = clipnorm is not None
        self._constraints = []

    # -- learning rate -------------------------------------------------------------------------------
    @property
    def learning_rate(self):
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = value

    lr = learning_rate

    def _lr_value(self, lr_array, step):
        sched = self._learning_rate
        if isinstance(sched, schedules.LearningRateSchedule) or (callable(sched) and not isinstance(sched, float)):
            return float(sched(int(step)))
        return float(lr_array)

    def _state(self, graph):
        st = self._graph_state.get(graph)
        if st is None:
            st = self._graph_state[graph] = {"slots": {}, "iterations": None, "lr": None}
        return st

    @property
    def iterations(self):
        st = self._state(get_default_graph())
        if st["iterations"] is None:
            self._create_counters(get_default_graph())
        return st["iterations"]

    def _create_counters(self, graph):
        st = self._state(graph)
        with graph.as_default(), graph.name_scope(self.name + "/"), graph.control_dependencies(None):
            st["iterations"] = Variable(np.int64(0), trainable=False, name="iterations", dtype=_dt.int64)
            lr0 = self._learning_rate
            if isinstance(lr0, Tensor):   # a graph tensor (TF1 exponential_decay ...) feeds the update itself
                lr0 = 0.0
            lr0 = lr0(0) if callable(lr0) and not isinstance(lr0, (float, int)) else lr0
            st["lr"] = Variable(np.float32(float(lr0)), trainable=False, name="learning_rate", dtype=_dt.float32)

    def learning_rate_variable(self, graph=None):
        graph = graph or get_default_graph()
        st = self._state(graph)
        if st["lr"] is None:
            self._create_counters(graph)
        return st["lr"]

    # -- the TF1 API ------------------------------------------------------------------------------------
    def compute_gradients(self, loss, var_list=None, gate_gradients=None, aggregation_method=None,
                          colocate_gradients_with_ops=False, grad_loss=None):
        """[(gradient, variable), ...] for the trainable variables (or `var_list`)."""
        loss = convert_to_tensor(loss)
        if var_list is None:
            var_list = loss.graph.get_collection(GraphKeys.TRAINABLE_VARIABLES)
        var_list = list(var_list)
        if not var_list:
            raise InvalidArgumentError("no variables to optimize")
        grads = _gradients(loss, var_list, grad_ys=grad_loss)
        return list(zip(grads, var_list))

    def get_gradients(self, loss, params):
        return [g for g, _ in self.compute_gradients(loss, params)]

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        """One op that applies the gradients (and increments `global_step` when given)."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            names = [v.name for _, v in grads_and_vars]
            raise InvalidArgumentError(f"no gradients provided for any variable: {names}")
        graph = pairs[0][1].graph
        st = self._state(graph)
        if st["iterations"] is None:
            self._create_counters(graph)
        vars_ = [v for _, v in pairs]
        slots = {s: [self._get_slot(graph, v, s) for v in vars_] for s in self.slot_names}
        self._constraints = [getattr(v, "constraint", None) for v in vars_]
        grads = []
        for g, v in pairs:
            g = convert_to_tensor(g)
            if g.dtype != v.dtype:
                raise InvalidArgumentError(f"gradient for {v.name} has dtype {g.dtype.name}, variable {v.dtype.name}")
            grads.append(g)
        with graph.as_default(), graph.name_scope(name or self.name):
            ins = [self._lr_input(graph, st), st["iterations"]._as_tensor()] + [v._as_tensor() for v in vars_] + grads
            for s in self.slot_names:
                ins += [x._as_tensor() for x in slots[s]]
            op_type, extra_attrs = self._aggregate_gradients(vars_)
            update = apply_op(op_type, ins, dict({"optimizer": self, "n": len(vars_),
                                                  "slot_names": tuple(self.slot_names)}, **extra_attrs),
                              name="update")
            if global_step is not None:
                gs = global_step._as_tensor() if hasattr(global_step, "_as_tensor") else global_step
                with graph.control_dependencies([update]):
                    inc = apply_op("AssignAdd", [gs, convert_to_tensor(np.ones((), gs.dtype.np), gs.dtype)])
                return group(update, inc, name="train")
            return group(update, name="train")

    def _aggregate_gradients(self, vars_):
        """The hook between the gradients and the update: (op type, extra attrs) of the fused update op.

        The default applies the local gradients ("ApplyOptimizer"). ks.distributed's DistributedOptimizer,
        and any optimizer used inside an active multi-process MultiWorkerMirroredStrategy scope, return
        ("DistributedApplyOptimizer", {"reducer": ...}): an op with the same inputs whose kernel averages
        the gradient slab over the ranks and then runs this optimizer's own update kernel.

        Args:
            vars_: the variables being updated, in input order.

        Returns:
            (op type name, dict of attributes added to optimizer / n / slot_names).
        """
        strategy_module = sys.modules.get("kestimator.distributed.strategy")   # loaded only if one exists
        strategy = strategy_module.get_strategy() if strategy_module is not None else None
        if strategy is not None:
            return strategy._aggregate_gradients(self, vars_)
        return "ApplyOptimizer", {}

    def minimize(self, loss, global_step=None, var_list=None, gate_gradients=None, aggregation_method=None,
                 colocate_gradients_with_ops=False, name=None, grad_loss=None, tape=None):
        """compute_gradients + apply_gradients: returns the training op."""
        gv = self.compute_gradients(loss, var_list=var_list, grad_loss=grad_loss)
        return self.apply_gradients(gv, global_step=global_step, name=name)

    def _lr_input(self, graph, st):
        """The tensor the update op reads its learning rate from: a graph-tensor learning rate (as TF1's
        `exponential_decay(...)` returns) is read directly, anything else through the LR variable."""
        lr = self._learning_rate
        if isinstance(lr, Tensor):
            if lr.graph is not graph:
                raise InvalidArgumentError(f"learning rate tensor {lr.name} is from another graph than the "
                                           "variables being optimized")
            return lr
        return st["lr"]._as_tensor()

    # -- slots ---------------------------------------------------------------------------------------------
    def _get_slot(self, graph, var, slot):
        key = (var, slot)
        st = self._state(graph)
        if key not in st["slots"]:
            init = self.slot_init.get(slot, 0.0)
            init = getattr(self, init) if isinstance(init, str) else init
            with graph.as_default(), graph.name_scope(None), graph.control_dependencies(None):
                with graph.name_scope(var.op.name + "/"):
                    st["slots"][key] = Variable(np.full(tuple(var.shape), init, var.dtype.np), trainable=False,
                                                name=slot,
                                                slab_group=f"{self.name}:{id(self)}:{slot}")
        return st["slots"][key]

    def get_slot(self, var, name):
        return self._state(var.graph)["slots"].get((var, name))

    def get_slot_names(self):
        return list(self.slot_names)

    def variables(self, graph=None):
        """The optimizer's own variables (iterations, learning rate, slots) in creation order."""
        st = self._state(graph or get_default_graph())
        out = [x for x in (st["iterations"], st["lr"]) if x is not None]
        return out + list(st["slots"].values())

    def _update(self, var, grad, slots, lr, t):
        raise NotImplementedError

    def _clip(self, grad):
        if self.clipvalue is not None:
            grad = np.clip(grad, -self.clipvalue, self.clipvalue)
        if self.global_clipnorm is not None:
            norm = float(np.sqrt(np.dot(grad.astype(np.float64), grad)))
            if norm > self.global_clipnorm:
                grad = grad * (self.global_clipnorm / norm)
        return grad

    # -- config ----------------------------------------------------------------------------------------------
    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        cfg = {"name": self.name, "learning_rate": lr}
        for k in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, k) is not None:
                cfg[k] = getattr(self, k)
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        lr = config.get("learning_rate", config.pop("lr", None))
        if isinstance(lr, dict):
            config["learning_rate"] = schedules.deserialize(lr)
        elif lr is not None:
            config["learning_rate"] = lr
        for k in ("decay", "is_legacy_optimizer", "weight_decay_rate", "use_ema", "ema_momentum",
                  "ema_overwrite_frequency", "jit_compile"):
            if k in config and k not in cls.__init__.__code__.co_varnames:
                config.pop(k)
        if config.get("weight_decay") is None and "weight_decay" not in cls.__init__.__code__.co_varnames:
            config.pop("weight_decay", None)
        return cls(**config)
