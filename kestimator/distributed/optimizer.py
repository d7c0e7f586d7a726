"""DistributedOptimizer: any ks optimizer, with its gradients averaged over all ranks before the update.

`DistributedOptimizer(ks.optimizers.Adam(1e-3))` returns an object of a subclass of the wrapped class
that is named like it ("Adam"): `isinstance(opt, Adam)` holds, `get_config()` / `ks.optimizers.serialize`
save a plain Adam, and it has the same iterations, learning-rate variable and slots. Only the
base class's `_aggregate_gradients` hook differs: instead of the fused "ApplyOptimizer" op, the base
`apply_gradients` adds a "DistributedApplyOptimizer" op whose kernel hands the gradient slab to a
`GradientReducer` (fused bucketed allreduce in a fixed order) and then runs the wrapped optimizer's own
update kernel on the averaged slab. The op asks the Plan for the same contiguous gradient buffer as
ApplyOptimizer, so the common case sends the Plan's gradient slab straight to MPI with no packing copy.

`compute_gradients` / `get_gradients` return LOCAL gradients (the reduction happens inside the update
op); clipping (clipnorm / clipvalue / global_clipnorm) applies to the averaged gradients, as with
TensorFlow's MirroredStrategy.
"""
from .. import optimizers as _optimizers
from ..engine import dtypes as _dt
from ..engine.registry import register
from ..errors import InvalidArgumentError
from ..optimizers.base import Optimizer, _UpdateKernel
from .reducer import DEFAULT_BUCKET_BYTES, GradientReducer


class _DistributedUpdateKernel:
    """Reduce the gradients (views of the Plan's slab), then run the wrapped optimizer's update kernel."""

    def __init__(self, attrs):
        self.n = attrs["n"]
        self.reducer = attrs["reducer"]
        self.inner = _UpdateKernel(attrs["optimizer"], attrs["n"], attrs["slot_names"])

    def __call__(self, lr, step, *arrays):
        n = self.n
        grads = arrays[n:2 * n]
        reduced = self.reducer.reduce(grads)
        if reduced is None:          # an accumulate-only pass of backward_passes_per_step
            return step
        if reduced is not grads:
            arrays = arrays[:n] + tuple(reduced) + arrays[2 * n:]
        return self.inner(lr, step, *arrays)


_OP = register("DistributedApplyOptimizer", infer=lambda inputs, attrs: [((), _dt.int64)], stateful=True,
               differentiable=False, kernel=lambda xp, attrs: _DistributedUpdateKernel(attrs), writes_input=1)
# the gradients (inputs 2+n .. 2+2n) in one contiguous buffer, as for ApplyOptimizer
_OP.contiguous_inputs = lambda attrs: (2 + attrs["n"], 2 + 2 * attrs["n"])

_CLASSES = {}


def _distributed_class(base):
    cls = _CLASSES.get(base)
    if cls is None:
        cls = type(base.__name__, (DistributedOptimizer, base), {"_wrapped_class": base,
                                                                  "__module__": base.__module__,
                                                                  "__qualname__": base.__qualname__})
        _CLASSES[base] = cls
    return cls


class DistributedOptimizer(Optimizer):
    """Wrap `optimizer` so every update uses gradients averaged over all ranks.

    Args:
        optimizer: a ks optimizer instance, name ("adam") or config dict. Its state (variables already
            created in a graph, learning rate, schedule) is shared with the wrapper: use the wrapper.
        compression: "none" or "fp16" (float16 on the wire; the update still runs in float32).
        backward_passes_per_step: sum this many local gradient computations before communicating and
            applying once; the optimizer's `iterations` counts applied updates (a `global_step` passed to
            minimize / apply_gradients counts calls).
        op: "average" (default) or "sum" over ranks.
        bucket_bytes: largest fused allreduce message (default 64 MB).

    Returns:
        An instance of a subclass of type(optimizer) with the same name.

    Raises:
        InvalidArgumentError: an already distributed optimizer, or an invalid setting.

    Example:
        opt = ks.distributed.DistributedOptimizer(ks.optimizers.Adam(1e-3 * ks.distributed.size()))
        train_op = opt.minimize(loss)
    """

    _wrapped_class = None

    def __new__(cls, optimizer=None, *args, **kwargs):
        if cls is not DistributedOptimizer:
            return super().__new__(cls)
        inner = _optimizers.get(optimizer)
        if isinstance(inner, DistributedOptimizer):
            raise InvalidArgumentError(f"optimizer {inner.name!r} is already a DistributedOptimizer")
        obj = Optimizer.__new__(_distributed_class(type(inner)))
        obj.__dict__.update(inner.__dict__)
        return obj

    def __init__(self, optimizer=None, compression="none", backward_passes_per_step=1, op="average",
                 bucket_bytes=DEFAULT_BUCKET_BYTES):
        # The wrapped optimizer's state was copied by __new__; only the distribution settings are new.
        # A reducer validates them now so a bad setting fails here, not at the first step.
        GradientReducer([], op=op, compression=compression, backward_passes_per_step=backward_passes_per_step,
                        bucket_bytes=bucket_bytes, label=f"DistributedOptimizer({self.name})")
        self.compression, self.backward_passes_per_step = compression, int(backward_passes_per_step)
        self.reduce_op, self.bucket_bytes = op, int(bucket_bytes)
        self._reducers = {}

    @classmethod
    def from_config(cls, config):
        """A plain (undistributed) instance of the wrapped class, as Keras's optimizer loading expects."""
        base = cls._wrapped_class or Optimizer
        return base.from_config(config)

    def reducer_for(self, var_list):
        """The GradientReducer shared by every Plan (and eager step) updating `var_list`."""
        key = tuple(id(v) for v in var_list)
        red = self._reducers.get(key)
        if red is None:
            # the label keys the cross-rank metadata check: a second variable set gets its own
            label = f"{self.name}/gradients" + (f"#{len(self._reducers) + 1}" if self._reducers else "")
            red = self._reducers[key] = GradientReducer(
                [v.name for v in var_list], op=self.reduce_op, compression=self.compression,
                backward_passes_per_step=self.backward_passes_per_step, bucket_bytes=self.bucket_bytes,
                label=label)
        return red

    def _aggregate_gradients(self, vars_):
        """Optimizer's hook: the update becomes a "DistributedApplyOptimizer" op (same inputs as
        ApplyOptimizer) whose kernel averages the gradient slab over the ranks before this optimizer's own
        update kernel runs. apply_gradients / minimize themselves are the base class's."""
        return "DistributedApplyOptimizer", {"reducer": self.reducer_for(vars_)}

    def communication_seconds(self):
        """Seconds this optimizer's updates spent waiting for allreduces (all variable sets together)."""
        return sum(r.comm_seconds for r in self._reducers.values())


def unwrap(optimizer):
    """The plain optimizer class instance behind a DistributedOptimizer (a copy sharing its state), or
    `optimizer` itself when it is not distributed."""
    if not isinstance(optimizer, DistributedOptimizer):
        return optimizer
    plain = Optimizer.__new__(optimizer._wrapped_class)
    plain.__dict__.update({k: v for k, v in optimizer.__dict__.items()
                           if k not in ("compression", "backward_passes_per_step", "reduce_op", "bucket_bytes",
                                        "_reducers")})
    return plain
