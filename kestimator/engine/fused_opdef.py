"""The OpDef face of an op a fusion pass made (what a Plan reads from `op.opdef`): CPU and GPU fusion share it."""


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
