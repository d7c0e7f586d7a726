"""Data types: a thin, hashable wrapper over NumPy dtypes with TensorFlow's names.

`float32` is the default floating type; promotion follows NumPy's rules except that Python scalars
adopt the dtype of the tensor they meet (``x * 2.0`` stays float32), as in TensorFlow.
"""
import numpy as np

from ..errors import InvalidArgumentError


class DType:
    """A tensor element type. Compare with ``==``; ``as_numpy_dtype`` gives the NumPy type."""

    __slots__ = ("name", "np")

    def __init__(self, name, np_dtype):
        self.name = name
        self.np = np.dtype(np_dtype) if np_dtype is not None else np.dtype(object)

    @property
    def as_numpy_dtype(self):
        return self.np.type

    @property
    def is_floating(self):
        return self.np.kind == "f"

    @property
    def is_integer(self):
        return self.np.kind in "iu"

    @property
    def is_bool(self):
        return self.np.kind == "b"

    @property
    def is_string(self):
        return self.name == "string"

    @property
    def size(self):
        return self.np.itemsize

    @property
    def base_dtype(self):
        return self

    def __eq__(self, other):
        if isinstance(other, DType):
            return self.name == other.name
        try:
            return self.name == as_dtype(other).name
        except (InvalidArgumentError, TypeError):
            return False

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"ke.{self.name}"


float16 = DType("float16", np.float16)
float32 = DType("float32", np.float32)
float64 = DType("float64", np.float64)
int8 = DType("int8", np.int8)
int16 = DType("int16", np.int16)
int32 = DType("int32", np.int32)
int64 = DType("int64", np.int64)
uint8 = DType("uint8", np.uint8)
bool_ = DType("bool", np.bool_)
string = DType("string", None)   # stored as NumPy object arrays of bytes

half, double = float16, float64
_ALL = [float16, float32, float64, int8, int16, int32, int64, uint8, bool_, string]
_BY_NAME = {d.name: d for d in _ALL}
_BY_NAME.update({"half": float16, "double": float64, "bool_": bool_, "str": string, "bytes": string,
                 "object": string})


def as_dtype(value):
    """Convert a DType, NumPy dtype, Python type or name to a :class:`DType`.

    Raises:
        InvalidArgumentError: the value names no supported type.
    """
    if isinstance(value, DType):
        return value
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    if value in (str, bytes):
        return string
    if value is bool:
        return bool_
    if value is int:
        return int64
    if value is float:
        return float32
    try:
        npd = np.dtype(value)
    except TypeError:
        raise InvalidArgumentError(f"unsupported dtype {value!r}") from None
    if npd.kind in "OSU":
        return string
    if npd.name in _BY_NAME:
        return _BY_NAME[npd.name]
    raise InvalidArgumentError(f"unsupported dtype {value!r}; supported: {', '.join(d.name for d in _ALL)}")


def result_dtype(*dtypes):
    """The promoted dtype of several tensor dtypes (NumPy rules)."""
    dts = [as_dtype(d) for d in dtypes]
    if any(d.is_string for d in dts):
        if all(d.is_string for d in dts):
            return string
        raise InvalidArgumentError(f"cannot combine string with {[d.name for d in dts]}")
    return as_dtype(np.result_type(*[d.np for d in dts]))


def infer_dtype(value):
    """dtype of a Python/NumPy value as a constant: floats become float32, ints int32, as TF does."""
    arr = np.asarray(value)
    if arr.dtype.kind in "OSU":
        return string
    if arr.dtype == np.float64 and not isinstance(value, np.ndarray) and not isinstance(value, np.generic):
        return float32
    if arr.dtype == np.int64 and not isinstance(value, np.ndarray) and not isinstance(value, np.generic):
        return int32
    return as_dtype(arr.dtype)
