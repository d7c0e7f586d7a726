"""Helpers shared by the tests of kestimator.data."""
import os

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "tfdata")


def plain(element):
    """An element as plain Python (lists, ints, floats, bytes, tuples, dicts) for == comparisons."""
    from kestimator.data import Dataset
    if isinstance(element, tuple):
        return tuple(plain(e) for e in element)
    if isinstance(element, dict):
        return {k: plain(v) for k, v in element.items()}
    if isinstance(element, (Dataset, list)):
        return [plain(e) for e in element]
    if isinstance(element, (bytes, str)):
        return element
    return np.asarray(element).tolist()


def from_golden(value):
    """Decode tests/fixtures/make_tfdata_golden.py's JSON into what :func:`plain` returns."""
    if "tuple" in value:
        return tuple(from_golden(v) for v in value["tuple"])
    if "dict" in value:
        return {k: from_golden(v) for k, v in value["dict"].items()}
    if "dataset" in value:
        return [from_golden(v) for v in value["dataset"]]
    if "bytes" in value:
        items = [s.encode("latin-1") for s in value["bytes"]]
        if not value["shape"]:
            return items[0]
        return np.array(items, dtype=object).reshape(value["shape"]).tolist()
    return value["array"]
