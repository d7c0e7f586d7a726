"""Python operators on Tensor, Variable, EagerTensor and EagerVariable (x + y, x[1:, 0], x @ w ...)."""
from . import array_ops, math_ops, reduce_ops


def _swap(fn):
    return lambda a, b: fn(b, a)


_OPERATORS = {
    "__add__": math_ops.add, "__radd__": _swap(math_ops.add),
    "__sub__": math_ops.subtract, "__rsub__": _swap(math_ops.subtract),
    "__mul__": math_ops.multiply, "__rmul__": _swap(math_ops.multiply),
    "__truediv__": math_ops.divide, "__rtruediv__": _swap(math_ops.divide),
    "__floordiv__": math_ops.floordiv, "__rfloordiv__": _swap(math_ops.floordiv),
    "__mod__": math_ops.floormod, "__rmod__": _swap(math_ops.floormod),
    "__pow__": math_ops.pow, "__rpow__": _swap(math_ops.pow),
    "__matmul__": reduce_ops.matmul, "__rmatmul__": _swap(reduce_ops.matmul),
    "__lt__": math_ops.less, "__le__": math_ops.less_equal,
    "__gt__": math_ops.greater, "__ge__": math_ops.greater_equal,
    "__and__": math_ops.logical_and, "__rand__": _swap(math_ops.logical_and),
    "__or__": math_ops.logical_or, "__ror__": _swap(math_ops.logical_or),
    "__xor__": math_ops.logical_xor,
    "__neg__": math_ops.negative, "__abs__": math_ops.abs, "__invert__": math_ops.logical_not,
    "__getitem__": array_ops.strided_slice,
}


def _wrap(fn):
    def method(self, *args):
        return fn(self, *args)
    method.__name__ = fn.__name__
    return method


def install(*classes):
    for cls in classes:
        for name, fn in _OPERATORS.items():
            setattr(cls, name, _wrap(fn))
