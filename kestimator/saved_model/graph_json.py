"""A graph as JSON (op types, attributes, inputs) and back, without ever running code from the file.

Encoding an op's attributes: JSON numbers, strings, booleans and null as themselves; everything else as a
one-key tagged object:

    {"tuple": [...]}   {"list": [...]}   {"dict": [[key, value], ...]}   {"dtype": "float32"}
    {"shape": [2, null] | null}   {"slice": [start, stop, step]}   {"ellipsis": true}
    {"bytes": "<hex>"}   {"float": "nan" | "inf" | "-inf"}   {"array": "<tensor name in the HDF5 file>"}
    {"np": ["int64", 3]} (NumPy scalars)

A callable or any other Python object cannot be written: `encode_attrs` raises naming the op and the
attribute, at export time. Decoding accepts only these forms; op types must be registered in the engine.
"""
import math

import numpy as np

from ..engine import dtypes as _dt
from ..engine.graph import TensorShape
from ..errors import InvalidArgumentError, UnsafeFileError

FORMAT = "kestimator.saved_model/1"
_TAGS = ("tuple", "list", "dict", "dtype", "shape", "slice", "ellipsis", "bytes", "float", "array", "np")
_MAX_DEPTH = 32


class AttrEncoder:
    """Encodes attribute values; arrays go to `self.arrays` (name -> ndarray) for the HDF5 file."""

    def __init__(self):
        self.arrays = {}

    def encode(self, value, where, depth=0):
        if depth > _MAX_DEPTH:
            raise InvalidArgumentError(f"{where}: attribute nests deeper than {_MAX_DEPTH} levels")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, _dt.DType):
            return {"dtype": value.name}
        if isinstance(value, TensorShape):
            return {"shape": None if value.ndims is None else [None if d is None else int(d) for d in value]}
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biufO":
                raise InvalidArgumentError(f"{where}: arrays of dtype {value.dtype} cannot be exported")
            name = f"constants/c{len(self.arrays)}"
            self.arrays[name] = value
            return {"array": name}
        if isinstance(value, np.generic):
            if value.dtype.kind not in "biuf":
                raise InvalidArgumentError(f"{where}: a NumPy {value.dtype} scalar cannot be exported")
            item = value.item()
            if isinstance(item, float) and not math.isfinite(item):
                item = repr(item)
            return {"np": [value.dtype.name, item]}
        if isinstance(value, bytes):
            return {"bytes": value.hex()}
        if value is Ellipsis:
            return {"ellipsis": True}
        if isinstance(value, slice):
            return {"slice": [self.encode(value.start, where, depth + 1), self.encode(value.stop, where, depth + 1),
                              self.encode(value.step, where, depth + 1)]}
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return {"tuple": [self.encode(v, where, depth + 1) for v in value]}
        if isinstance(value, list):
            return {"list": [self.encode(v, where, depth + 1) for v in value]}
        if isinstance(value, dict):
            return {"dict": [[self.encode(k, where, depth + 1), self.encode(v, where, depth + 1)]
                             for k, v in value.items()]}
        kind = "a Python callable" if callable(value) else f"a {type(value).__name__} object"
        raise InvalidArgumentError(f"{where} is {kind}, which cannot be exported (only numbers, strings, dtypes, "
                                   "shapes, tuples, lists, dicts and arrays can be written to a SavedModel)")


def decode_attr(value, arrays, where, depth=0):
    """The attribute value a JSON item encodes.

    Raises:
        UnsafeFileError: an unknown tag or a malformed item (files are never trusted).
    """
    if depth > _MAX_DEPTH:
        raise UnsafeFileError(f"{where}: attribute nests deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        raise UnsafeFileError(f"{where}: a bare JSON list is not a valid attribute encoding")
    if not isinstance(value, dict) or len(value) != 1:
        raise UnsafeFileError(f"{where}: malformed attribute {value!r:.80}")
    (tag, body), = value.items()
    try:
        if tag == "tuple":
            return tuple(decode_attr(v, arrays, where, depth + 1) for v in _as_list(body, where))
        if tag == "list":
            return [decode_attr(v, arrays, where, depth + 1) for v in _as_list(body, where)]
        if tag == "dict":
            out = {}
            for item in _as_list(body, where):
                if not isinstance(item, list) or len(item) != 2:
                    raise UnsafeFileError(f"{where}: malformed dict item")
                k = decode_attr(item[0], arrays, where, depth + 1)
                if not isinstance(k, (str, int, float, bool, tuple)) and k is not None:
                    raise UnsafeFileError(f"{where}: unhashable dict key")
                out[k] = decode_attr(item[1], arrays, where, depth + 1)
            return out
        if tag == "dtype":
            return _dt.as_dtype(str(body))
        if tag == "shape":
            if body is None:
                return TensorShape(None)
            dims = _as_list(body, where)
            if not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in dims):
                raise UnsafeFileError(f"{where}: malformed shape {dims}")
            return TensorShape(dims)
        if tag == "slice":
            parts = _as_list(body, where)
            if len(parts) != 3 or not all(p is None or (isinstance(p, int) and not isinstance(p, bool))
                                          for p in parts):
                raise UnsafeFileError(f"{where}: malformed slice {parts}")
            return slice(*parts)
        if tag == "ellipsis":
            return Ellipsis
        if tag == "bytes":
            return bytes.fromhex(str(body))
        if tag == "float":
            if body not in ("nan", "inf", "-inf"):
                raise UnsafeFileError(f"{where}: malformed float {body!r}")
            return float(body)
        if tag == "np":
            name, item = _as_list(body, where)
            dt = np.dtype(str(name))
            if dt.kind not in "biuf":
                raise UnsafeFileError(f"{where}: NumPy scalar dtype {name!r} refused")
            return dt.type(float(item) if isinstance(item, str) else item)
        if tag == "array":
            if body not in arrays:
                raise UnsafeFileError(f"{where}: constant {body!r} is not in the variables file")
            arr = arrays[body]
            arr.flags.writeable = False
            return arr
    except (TypeError, ValueError) as e:
        raise UnsafeFileError(f"{where}: malformed {tag!r} attribute: {e}") from None
    raise UnsafeFileError(f"{where}: unknown attribute tag {tag!r} (known: {', '.join(_TAGS)})")


def _as_list(body, where):
    if not isinstance(body, list):
        raise UnsafeFileError(f"{where}: expected a list, got {type(body).__name__}")
    return body


# Attributes the engine adds while compiling a plan or that only describe the op to humans.
_SKIP_ATTRS = {"_rng"}


def encode_ops(ops, encoder):
    """JSON-able descriptions of `ops` (in the given, topological order)."""
    out = []
    for op in ops:
        attrs = {}
        for k, v in op.attrs.items():
            if k in _SKIP_ATTRS:
                continue
            attrs[k] = encoder.encode(v, f"op {op.name} ({op.type}) attribute {k!r}")
        out.append({"name": op.name, "type": op.type, "inputs": [t.name for t in op.inputs],
                    "control_inputs": [c.name for c in op.control_inputs], "attrs": attrs})
    return out
