"""SparseTensor (COO: indices, values, dense_shape) with to_dense and sparse-dense matmul."""
import collections

import numpy as np

from ..errors import InvalidArgumentError
from . import dtypes as _dt
from .registry import apply_op, register
from .ops.core import convert_to_tensor

SparseTensorValue = collections.namedtuple("SparseTensorValue", ["indices", "values", "dense_shape"])


class SparseTensor:
    """A sparse tensor: `values[i]` sits at `indices[i]` of a tensor of `dense_shape`."""

    def __init__(self, indices, values, dense_shape):
        self.indices = convert_to_tensor(indices, _dt.int64) if not hasattr(indices, "dtype") or \
            isinstance(indices, (list, np.ndarray)) else indices
        self.values = convert_to_tensor(values)
        self.dense_shape = convert_to_tensor(dense_shape, _dt.int64) if not hasattr(dense_shape, "op") \
            else dense_shape
        if getattr(self.indices, "dtype", None) != _dt.int64:
            from .ops.core import cast
            self.indices = cast(self.indices, _dt.int64)

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def graph(self):
        return self.values.graph

    @property
    def shape(self):
        from .registry import static_value
        from .graph import TensorShape
        sv = static_value(self.dense_shape)
        return TensorShape(None if sv is None else [int(d) for d in sv])

    def eval(self, feed_dict=None, session=None):
        from .session import get_default_session_or_error
        sess = session or get_default_session_or_error("SparseTensor.eval()")
        return SparseTensorValue(*sess.run([self.indices, self.values, self.dense_shape], feed_dict))

    def __repr__(self):
        return f"SparseTensor(indices={self.indices!r}, values={self.values!r}, dense_shape={self.dense_shape!r})"


def _to_dense_infer(inputs, attrs):
    from .registry import static_value
    sv = static_value(inputs[2])
    return [(None if sv is None else tuple(int(d) for d in sv), inputs[1].dtype)]


def _to_dense_kernel(xp, a):
    def run(indices, values, shape, default):
        shape = tuple(int(d) for d in shape)
        out = xp.full(shape, default, dtype=values.dtype)
        if indices.size:
            if (indices < 0).any() or (indices >= xp.asarray(shape)).any():
                raise InvalidArgumentError(f"sparse indices out of bounds for dense shape {shape}")
            out[tuple(indices.T)] = values
        return out
    return run


register("SparseToDense", infer=_to_dense_infer, kernel=_to_dense_kernel,
         grad=lambda op, g: [None, apply_op("GatherNd", [g, op.inputs[0]]), None, None])


def to_dense(sp_input, default_value=0, validate_indices=True, name=None):
    """The dense tensor of a SparseTensor, `default_value` where no value is given."""
    d = convert_to_tensor(default_value, sp_input.dtype)
    return apply_op("SparseToDense", [sp_input.indices, sp_input.values, sp_input.dense_shape, d], name=name)


sparse_tensor_to_dense = to_dense


def _spmm_kernel(xp, a):
    def run(indices, values, shape, b):
        rows, cols = indices[:, 0], indices[:, 1]
        n = int(shape[0])
        if a["adjoint_a"]:
            rows, cols = cols, rows
            n = int(shape[1])
        out = xp.zeros((n, b.shape[1]), dtype=b.dtype)
        xp.add.at(out, rows, values[:, None] * b[cols])
        return out
    return run


def _spmm_infer(inputs, attrs):
    from .registry import static_value
    sv = static_value(inputs[2])
    n = None if sv is None else int(sv[1] if attrs["adjoint_a"] else sv[0])
    return [((n, inputs[3].shape[1] if inputs[3].shape.ndims else None), inputs[3].dtype)]


def _spmm_grad(op, g):
    indices, values, shape, b = op.inputs
    from .ops.reduce_ops import reduce_sum
    from .ops.array_ops import gather
    from .ops.math_ops import multiply
    rows = apply_op("TakeIndex", [indices], {"index": 0, "axis": 1})
    cols = apply_op("TakeIndex", [indices], {"index": 1, "axis": 1})
    if op.attrs["adjoint_a"]:
        rows, cols = cols, rows
    gb = apply_op("SparseDenseMatMul", [indices, values, shape, g], {"adjoint_a": not op.attrs["adjoint_a"]})
    gvals = reduce_sum(multiply(gather(g, rows), gather(b, cols)), axis=1)
    return [None, gvals, None, gb]


register("SparseDenseMatMul", infer=_spmm_infer, kernel=_spmm_kernel, grad=_spmm_grad)


def sparse_dense_matmul(sp_a, b, adjoint_a=False, adjoint_b=False, name=None):
    """Product of a 2-D SparseTensor and a dense matrix."""
    b = convert_to_tensor(b, sp_a.dtype)
    if adjoint_b:
        from .ops.array_ops import transpose
        b = transpose(b)
    return apply_op("SparseDenseMatMul", [sp_a.indices, sp_a.values, sp_a.dense_shape, b],
                    {"adjoint_a": bool(adjoint_a)}, name=name)


sparse_tensor_dense_matmul = sparse_dense_matmul
