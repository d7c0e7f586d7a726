"""The op a fusion pass puts in a Plan in place of a group of graph ops, and its OpDef face (what a Plan reads
from `op.opdef`); the CPU and GPU fusion passes share both."""


class FusedOpDef:
    """Not stateful, reads no views, writes no input, has no gradient (fusion runs after autodiff).

    Args:
        name: the fused op's kind ("CpuFused", "FusedElementwise", ...).
        kernel: `kernel(xp, attrs) -> run`, as a registered op's kernel factory.
        num_outputs, out_arg, elementwise: as on a registered OpDef.
        gpu: whether the kernel runs on the GPU backend.
    """

    stateful = False
    views_input = False
    writes_input = None
    differentiable = False

    def __init__(self, name, kernel, num_outputs, out_arg, elementwise, gpu):
        self.name, self.kernel, self.num_outputs = name, kernel, num_outputs
        self.out_arg, self.elementwise, self.gpu = out_arg, elementwise, gpu


class FusedOp:
    """Stands in for a group of graph ops in a Plan: one kernel, the group's outside inputs and outputs.

    Attributes:
        type: "<kind>(<member types>)", or just `kind` for a single member of that type.
        members: the graph ops it replaces, in execution order (named in error messages).
        The anchor (default: the first member) lends its name, device, graph and id.
    """

    def __init__(self, kind, members, inputs, outputs, opdef, anchor=None):
        anchor = members[0] if anchor is None else anchor
        self.type = kind if len(members) == 1 and kind == anchor.type else \
            f"{kind}({', '.join(m.type for m in members)})"
        self.name = anchor.name
        self.members = list(members)
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.attrs = {}
        self.control_inputs = ()
        self.device = getattr(anchor, "device", "")
        self.graph = anchor.graph
        self._id = anchor._id
        self.opdef = opdef

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} {self.type}>"
