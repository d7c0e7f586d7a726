"""JSON encoding of the small objects ranks exchange (broadcast / allgather of metadata, seeds, logs).

Never pickle: a message from another process is decoded as JSON, and NumPy arrays inside it are a
tagged dict {dtype, shape, base64 data} whose dtype must be a plain numeric one and whose byte count must
match its shape before anything is allocated.
"""
import base64
import json
import math

import numpy as np

from ..errors import DataLossError, InvalidArgumentError

_ARRAY_TAG = "__ndarray__"
_NUMERIC_KINDS = "biufc"


def _to_jsonable(obj, path):
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)):
        return obj
    if isinstance(obj, np.generic):
        if obj.dtype.kind not in _NUMERIC_KINDS:
            raise InvalidArgumentError(f"{path}: cannot send a NumPy {obj.dtype} scalar between ranks")
        return obj.item() if obj.dtype.kind != "c" else _array_dict(np.asarray(obj))
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _NUMERIC_KINDS:
            raise InvalidArgumentError(f"{path}: cannot send a NumPy array of dtype {obj.dtype} between ranks "
                                       "(numeric and bool arrays only)")
        return _array_dict(obj)
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise InvalidArgumentError(f"{path}: dict keys sent between ranks must be strings, got {k!r}")
            if k == _ARRAY_TAG:
                raise InvalidArgumentError(f"{path}: the key {_ARRAY_TAG!r} is reserved")
            out[k] = _to_jsonable(v, f"{path}[{k!r}]")
        return out
    raise InvalidArgumentError(f"{path}: cannot send a {type(obj).__name__} between ranks: only JSON values "
                               "(None, bool, int, float, str, list, dict) and NumPy arrays are allowed")


def _array_dict(arr):
    arr = np.ascontiguousarray(arr)
    return {_ARRAY_TAG: True, "dtype": arr.dtype.str, "shape": list(arr.shape),
            "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def _from_array_dict(d):
    try:
        dtype = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        data = base64.b64decode(d["data"], validate=True)
    except (KeyError, TypeError, ValueError) as e:
        raise DataLossError(f"malformed array in a message from another rank: {e}") from None
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or any(s < 0 for s in shape):
        raise DataLossError(f"refused array of dtype {dtype} shape {shape} in a message from another rank")
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise DataLossError(f"array in a message from another rank declares shape {shape} {dtype} "
                            f"({math.prod(shape) * dtype.itemsize} bytes) but carries {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _hook(d):
    if d.get(_ARRAY_TAG) is True:
        return _from_array_dict(d)
    return d


def encode(obj, what="value"):
    """`obj` as UTF-8 JSON bytes.

    Raises:
        InvalidArgumentError: `obj` holds something that is not JSON or a numeric NumPy array.
    """
    return json.dumps(_to_jsonable(obj, what), separators=(",", ":")).encode("utf-8")


def decode(data):
    """The object `encode` produced.

    Raises:
        DataLossError: the bytes are not valid JSON or an array inside is inconsistent.
    """
    try:
        return json.loads(bytes(data).decode("utf-8"), object_hook=_hook)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataLossError(f"unreadable message from another rank: {e}") from None
