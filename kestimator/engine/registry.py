"""The op registry: each op type declares a shape/dtype rule, one kernel over `xp`, and a gradient rule.

`apply_op` is the single entry point that creates ops: in graph mode it adds an Operation whose outputs
carry the inferred static shapes; in eager mode it runs the kernel at once.
"""
import numpy as np

from ..errors import InvalidArgumentError, NotFoundError
from . import dtypes as _dt
from .graph import Tensor, TensorShape, get_default_graph

_REGISTRY = {}


class OpDef:
    """What the engine knows about one op type.

    Args:
        name: the op type, e.g. "MatMul".
        infer: ``infer(inputs, attrs) -> [(shape, dtype), ...]``; inputs have `.shape` and `.dtype`.
        kernel: ``kernel(xp, attrs) -> fn``; ``fn(*arrays)`` returns the output array (a tuple for
            several outputs).
        grad: ``grad(op, *output_grads) -> [input_grad or None, ...]`` building graph ops, or None when
            the op has no gradient (integer ops, comparisons).
        stateful: the op reads or writes state (variables, random streams): never folded or merged.
        out_arg: ``fn`` accepts ``out=`` so the Plan can give it a preallocated buffer.
        elementwise: output shape equals the broadcast input shape (candidates for in-place chains).
        views_input: the output may share memory with an input (reshape, transpose, slicing).
        differentiable: False declares that no gradient exists on purpose (checked by the test that walks
            the registry).
        gpu: the kernel is xp-generic and runs on CuPy arrays (the default). False keeps the op on the CPU:
            placement falls back to the CPU (with soft placement) or refuses a GPU pin, and the Plan moves
            its inputs and outputs across. See kestimator/engine/gpu/support.py.
    """

    def __init__(self, name, infer, kernel, grad=None, stateful=False, out_arg=False, elementwise=False,
                 views_input=False, differentiable=None, num_outputs=1, writes_input=None, gpu=True):
        self.name = name
        self.infer = infer
        self.kernel = kernel
        self.grad = grad
        self.stateful = stateful
        self.out_arg = out_arg
        self.elementwise = elementwise
        self.views_input = views_input
        self.differentiable = (grad is not None) if differentiable is None else differentiable
        self.num_outputs = num_outputs
        self.writes_input = writes_input   # index of an input this op writes in place (Assign)
        self.gpu = bool(gpu)

    def __repr__(self):
        return f"<OpDef {self.name}>"


def register(name, **kwargs):
    """Register an op type; returns its OpDef."""
    if name in _REGISTRY:
        raise InvalidArgumentError(f"op type {name!r} is registered twice")
    opdef = OpDef(name, **kwargs)
    _REGISTRY[name] = opdef
    return opdef


def get_opdef(name):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise NotFoundError(f"no op type {name!r} is registered") from None


def registered_ops():
    return dict(_REGISTRY)


def _eager_mode():
    from . import eager
    return eager.executing_eagerly()


def _graph_of(inputs):
    g = None
    for t in inputs:
        if isinstance(t, Tensor):
            if g is None:
                g = t.op.graph
            elif t.op.graph is not g:
                raise InvalidArgumentError(f"tensors {inputs[0].name} and {t.name} are from different graphs")
    return g or get_default_graph()


def apply_op(op_type, inputs, attrs=None, name=None):
    """Create (graph mode) or run (eager mode) one op. Inputs must already be tensors."""
    opdef = _REGISTRY[op_type]
    attrs = attrs or {}
    if _eager_mode():
        from . import eager
        return eager.execute(opdef, inputs, attrs, name)
    graph = _graph_of(inputs)
    try:
        specs = opdef.infer(inputs, attrs)
    except InvalidArgumentError as e:
        where = name or op_type
        ins = ", ".join(f"{t.name} {t.shape} {t.dtype.name}" for t in inputs)
        raise InvalidArgumentError(f"op {where} ({op_type}) with inputs [{ins}]: {e}") from None
    op = graph._create_op(op_type, inputs, attrs, name, opdef)
    op.outputs = tuple(Tensor(op, i, dt, TensorShape(sh) if sh is not None else TensorShape(None))
                       for i, (sh, dt) in enumerate(specs))
    if opdef.num_outputs == 1:
        return op.outputs[0]
    return op.outputs


def static_value(t):
    """The constant value of tensor `t` when it is produced by a Const op, else None."""
    if isinstance(t, Tensor) and t.op.type == "Const":
        return t.op.attrs["value"]
    v = getattr(t, "_numpy_value", None)
    return v
