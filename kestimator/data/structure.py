"""Nested element structures: tuples, dicts and leaves, and their specs.

An element of a :class:`~kestimator.data.Dataset` is a *leaf* (a NumPy array, a NumPy scalar, ``bytes``
or a Python number) or a tuple / dict of elements, nested to any depth, as in tf.data. Lists are leaves
(tf.data converts them to tensors), tuples are structure. Dicts are flattened in sorted-key order, so two
dicts with the same keys flatten the same way whatever their insertion order.
"""
import numpy as np

from ..engine import dtypes
from ..errors import InvalidArgumentError


class TensorSpec:
    """The type of one component of an element: a shape (ints, ``None`` for unknown) and a dtype.

    Args:
        shape: sequence of ``int`` or ``None``; ``None`` for an unknown rank.
        dtype: anything :func:`kestimator.engine.dtypes.as_dtype` accepts (default float32).
        name: optional name, informational only.
    """

    __slots__ = ("shape", "dtype", "name")

    def __init__(self, shape, dtype=dtypes.float32, name=None):
        self.shape = None if shape is None else tuple(None if d is None else int(d) for d in shape)
        self.dtype = dtypes.as_dtype(dtype)
        self.name = name

    def is_compatible_with(self, value):
        """True when ``value`` (an array or scalar) has this spec's dtype and a matching shape."""
        arr = np.asarray(value)
        if dtypes.as_dtype(arr.dtype) != self.dtype:
            return False
        return shape_compatible(self.shape, arr.shape)

    def __eq__(self, other):
        return (isinstance(other, TensorSpec) and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def __repr__(self):
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype.name}, name={self.name!r})"


class DatasetSpec:
    """The type of an element that is itself a Dataset (``window`` produces these)."""

    __slots__ = ("element_spec",)

    def __init__(self, element_spec):
        self.element_spec = element_spec

    def __eq__(self, other):
        return isinstance(other, DatasetSpec) and self.element_spec == other.element_spec

    def __hash__(self):
        return hash("DatasetSpec")

    def __repr__(self):
        return f"DatasetSpec({self.element_spec!r})"


def shape_compatible(spec_shape, shape):
    """True when a concrete ``shape`` fits ``spec_shape`` (``None`` dims and ranks match anything)."""
    if spec_shape is None:
        return True
    if len(spec_shape) != len(shape):
        return False
    return all(s is None or s == d for s, d in zip(spec_shape, shape))


def merge_shapes(a, b):
    """The most specific shape compatible with both ``a`` and ``b`` (dims that differ become None)."""
    if a is None or b is None or len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


def is_structure(value):
    """True for the containers that make structure (tuples, including namedtuples, and dicts)."""
    return isinstance(value, (tuple, dict))


def flatten(value):
    """The leaves of a nested element, depth first, dict keys in sorted order."""
    if isinstance(value, tuple):
        out = []
        for v in value:
            out.extend(flatten(v))
        return out
    if isinstance(value, dict):
        out = []
        for k in sorted(value):
            out.extend(flatten(value[k]))
        return out
    return [value]


def pack_as(structure, leaves):
    """Rebuild ``structure``'s shape from a flat list of leaves (the inverse of :func:`flatten`)."""
    it = iter(leaves)
    result = _pack(structure, it)
    if next(it, _END) is not _END:
        raise InvalidArgumentError("pack_as: more leaves than the structure has")
    return result


_END = object()


def _pack(structure, it):
    if isinstance(structure, tuple):
        items = [_pack(s, it) for s in structure]
        return type(structure)(*items) if _is_namedtuple(structure) else tuple(items)
    if isinstance(structure, dict):
        packed = {k: _pack(structure[k], it) for k in sorted(structure)}
        return {k: packed[k] for k in structure}
    leaf = next(it, _END)
    if leaf is _END:
        raise InvalidArgumentError("pack_as: fewer leaves than the structure has")
    return leaf


def _is_namedtuple(value):
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def map_structure(fn, *structures):
    """Apply ``fn`` to corresponding leaves of one or more structures of the same shape.

    Raises:
        InvalidArgumentError: the structures differ (names the first difference).
    """
    first = structures[0]
    for other in structures[1:]:
        assert_same_structure(first, other)
    flats = [flatten(s) for s in structures]
    return pack_as(first, [fn(*leaves) for leaves in zip(*flats)])


def assert_same_structure(a, b, what="elements"):
    """Raise InvalidArgumentError when ``a`` and ``b`` are not nested the same way."""
    if describe(a) != describe(b):
        raise InvalidArgumentError(f"{what} have different structures: {describe(a)} vs {describe(b)}")


def describe(value):
    """A JSON-able description of a structure's nesting (leaves become ``"*"``)."""
    if isinstance(value, tuple):
        return [describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): describe(value[k]) for k in sorted(value)}
    return "*"


def leaf_spec(value):
    """The :class:`TensorSpec` of one leaf value (NumPy's dtype rules; bytes and str are string)."""
    if isinstance(value, (bytes, str)):
        return TensorSpec((), dtypes.string)
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    try:
        dtype = dtypes.as_dtype(arr.dtype)
    except InvalidArgumentError:
        raise InvalidArgumentError(
            f"element component of type {type(value).__name__} with dtype {arr.dtype} is not supported "
            "in a dataset element") from None
    return TensorSpec(arr.shape, dtype)


def spec_of(element):
    """The element spec (nested TensorSpecs) of one concrete element."""
    from .dataset import Dataset   # local: dataset imports this module
    if isinstance(element, Dataset):
        return DatasetSpec(element.element_spec)
    if isinstance(element, tuple):
        specs = [spec_of(v) for v in element]
        return type(element)(*specs) if _is_namedtuple(element) else tuple(specs)
    if isinstance(element, dict):
        return {k: spec_of(v) for k, v in element.items()}
    return leaf_spec(element)


def merge_specs(a, b):
    """Merge two element specs of the same structure into the most specific common spec."""
    def merge(x, y):
        if isinstance(x, DatasetSpec) or isinstance(y, DatasetSpec):
            return x
        if x.dtype != y.dtype:
            raise InvalidArgumentError(f"incompatible dtypes {x.dtype.name} and {y.dtype.name}")
        return TensorSpec(merge_shapes(x.shape, y.shape), x.dtype)
    assert_same_structure(a, b, "element specs")
    return map_structure(merge, a, b)


def leaf_nbytes(value):
    """Bytes held by one leaf: an array's buffer (plus its bytes objects for string arrays)."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return value.nbytes + sum(len(v) for v in value.flat if isinstance(v, (bytes, str)))
        return value.nbytes
    if isinstance(value, (bytes, str)):
        return len(value)
    if isinstance(value, np.generic):
        return value.itemsize
    return 8


def nbytes(element):
    """Approximate bytes held by a nested element (the sum over its leaves)."""
    if isinstance(element, np.ndarray) and element.dtype != object:
        return element.nbytes
    if isinstance(element, (tuple, dict)):
        return sum(leaf_nbytes(v) for v in flatten(element))
    return leaf_nbytes(element)


def normalize_leaf(value):
    """Convert a user-given tensor-like leaf to NumPy, with str turned into bytes (tf.string's values).

    Lists become arrays; unicode arrays become object arrays of UTF-8 bytes so that string data looks
    the same whether it came from a file or from Python.
    """
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        out = np.empty(arr.shape, dtype=object)
        out.flat[:] = [s.encode("utf-8") for s in arr.flat]
        return out
    if arr.dtype.kind == "S":
        out = np.empty(arr.shape, dtype=object)
        out.flat[:] = list(arr.flat)
        return out
    return arr


def normalize(element):
    """:func:`normalize_leaf` over every leaf of a nested element."""
    if isinstance(element, tuple):
        items = [normalize(v) for v in element]
        return type(element)(*items) if _is_namedtuple(element) else tuple(items)
    if isinstance(element, dict):
        return {k: normalize(v) for k, v in element.items()}
    return normalize_leaf(element)


def call_with_element(fn, element):
    """Call a user function the tf.data way: a tuple element is unpacked into positional arguments."""
    if isinstance(element, tuple):
        return fn(*element)
    return fn(element)
