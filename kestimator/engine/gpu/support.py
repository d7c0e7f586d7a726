"""Which ops run on a GPU, and which of their inputs stay on the host.

Every kernel is written against `xp`, so by default an op runs on CuPy unchanged (`OpDef.gpu`, True
unless its `register` call says `gpu=False`). Ops whose kernels need host-only NumPy features are listed
here with the reason, for op types registered in files the GPU backend does not own; their owners may
move the flag onto the `register` call (`gpu=False`) and drop the entry.

Nothing here imports CuPy.
"""

# op type -> why its kernel cannot take CuPy arrays
HOST_ONLY = {
    # engine ops whose output is host metadata (NumPy arrays built from .shape / .ndim / .size)
    "Shape": "returns the shape as a host array",
    "Rank": "returns the rank as a host array",
    "Size": "returns the size as a host array",
    # summaries build protocol-buffer bytes
    "ScalarSummary": "builds summary bytes on the host",
    "HistogramSummary": "builds summary bytes on the host",
    "MergeSummary": "builds summary bytes on the host",
    # other packages' kernels call np.* on their inputs
    "KerasConfusionCounts": "uses np.searchsorted / np.bincount",
    "KerasTopKMask": "uses np.argpartition / np.put_along_axis",
    "CheckLabelRange": "reads its input with np.asarray",
    "VocabularyLookup": "looks strings up in a host vocabulary",
    "HashBucket": "hashes values on the host",
    "IdentityCategorical": "validates ids with np.asarray",
    "Bucketize": "uses np.searchsorted",
    "CrossHash": "hashes feature crosses on the host",
    "DistributedApplyOptimizer": "reduces gradients through MPI on host buffers",
}

# op type -> indices of inputs the kernel reads only for their shape (never moved between devices)
SHAPE_ONLY_INPUTS = {
    "Shape": (0,), "Rank": (0,), "Size": (0,),
    "ReshapeLike": (1,), "SumToShapeOf": (1,), "BroadcastToShapeOf": (1,), "SumGrad": (1,),
    "Conv2DBackpropInput": (0,), "Conv2DBackpropFilter": (1,),
    "DepthwiseConv2dNativeBackpropInput": (0,), "DepthwiseConv2dNativeBackpropFilter": (1,),
}

# op type -> indices of inputs the kernel reads as host values (shapes, bounds) even on a GPU
HOST_INPUTS = {
    "Fill": (0,), "DynamicReshape": (1,), "ScatterNd": (2,), "Range": (0, 1, 2), "SparseToDense": (2,),
    "SparseDenseMatMul": (2,),
}

# ops that exist only to be fed or folded: they have no device of their own
UNPLACED = frozenset({"Const", "Placeholder", "NoOp"})


def gpu_unsupported_reason(op):
    """Why `op` cannot run on a GPU, or None when it can.

    Args:
        op: a graph Operation.

    Returns:
        A short reason (for placement messages) or None.
    """
    opdef = op.opdef
    if not getattr(opdef, "gpu", True):
        return "its op type is registered with gpu=False"
    reason = HOST_ONLY.get(op.type)
    if reason is not None:
        return reason
    for t in tuple(op.inputs) + tuple(op.outputs):
        if t.dtype.is_string:
            return f"{t.name} holds strings, which live on the host"
    return None


def shape_only_inputs(op_type):
    return SHAPE_ONLY_INPUTS.get(op_type, ())


def host_inputs(op_type):
    return HOST_INPUTS.get(op_type, ())
