"""From what an input_fn returns to the arrays fed to a compiled step.

An input_fn may return:

* ``(features, labels)`` NumPy arrays / dicts of arrays: one fixed batch (train() repeats it every step,
  as a TF input_fn returning constant tensors does; evaluate() and predict() read it once);
* a ``ks.data.Dataset`` whose elements are ``(features, labels)`` batches or features alone;
* any other iterable of such batches (a generator, a list, what ``numpy_input_fn`` returns).

The first batch fixes the structure: one placeholder per feature (and label) with the batch dimension
None and the other dimensions, and the dtype, of that batch (str / bytes / object arrays become string
placeholders). Later batches are flattened in the same order and fed to the step.

The position in the input is restorable: `Batches.position()` is a JSON-able dict recorded in each
checkpoint, and `Batches.iterator(resume=position)` continues from it: a Dataset through its iterator state,
an iterable with a `_ks_fast_forward(n)` method (numpy_input_fn's) by index arithmetic, any other iterable
by reading and dropping the consumed batches.
"""
import itertools
import re

import numpy as np

from ..engine import dtypes as _dt
from ..engine.ops.core import placeholder
from ..errors import InvalidArgumentError

FIXED, DATASET, ITERABLE = "fixed", "dataset", "iterable"


def _is_dataset(obj):
    try:
        from ..data.dataset import Dataset
    except ImportError:   # pragma: no cover - ks.data is part of the package
        return False
    return isinstance(obj, Dataset)


def _is_leaf(x):
    return isinstance(x, (np.ndarray, np.generic, list)) or hasattr(x, "__array__") or np.isscalar(x)


def split_element(element):
    """(features, labels) of one input element; labels None when the element holds features only."""
    if isinstance(element, tuple) and len(element) == 2:
        return element
    if isinstance(element, list) and len(element) == 2 and not _is_leaf(element[0]):
        return element[0], element[1]
    return element, None


class Batches:
    """The batches of one input_fn call, with a restorable position.

    Args:
        result: what the input_fn returned.
        what: "train" / "eval" / "predict", for messages.
    """

    def __init__(self, result, what):
        self.what = what
        self.result = result
        if _is_dataset(result):
            self.kind = DATASET
        elif isinstance(result, tuple) and len(result) == 2 and not hasattr(result, "_fields"):
            self.kind = FIXED
        elif isinstance(result, (dict, np.ndarray)):
            self.kind = FIXED
            self.result = (result, None)
        elif hasattr(result, "__iter__") or hasattr(result, "__next__"):
            self.kind = ITERABLE
        else:
            raise InvalidArgumentError(
                f"{what}: input_fn returned a {type(result).__name__}; expected (features, labels) arrays, a "
                "ks.data.Dataset, or an iterable of (features, labels) batches")
        self.consumed = 0
        self._iterator = None

    @property
    def fixed(self):
        return self.kind == FIXED

    def iterator(self, resume=None):
        """An iterator of (features, labels); `resume` is a position() dict of the same input."""
        skip = int(resume.get("batches", 0)) if resume else 0
        self.consumed = 0
        if self.kind == FIXED:
            it = itertools.repeat(self.result) if self.what == "train" else iter([self.result])
            self.consumed, skip = skip, 0
        elif self.kind == DATASET:
            state = resume.get("dataset_state") if resume else None
            if state is not None:
                it = self.result.iterator_from_state(state)
                self.consumed, skip = skip, 0
            else:
                it = iter(self.result)
        else:
            it = iter(self.result)
            fast = getattr(it, "_ks_fast_forward", None)
            if skip and fast is not None:
                fast(skip)
                self.consumed, skip = skip, 0
        for _ in range(skip):   # a generic iterable: re-read the consumed batches and drop them
            try:
                next(it)
            except StopIteration:
                break
            self.consumed += 1
        self._iterator = it
        return self._counting(it)

    def _counting(self, it):
        for element in it:
            self.consumed += 1
            yield split_element(element)

    def close(self):
        """Stop the input's workers (a Dataset pass's threads) now rather than at garbage collection."""
        close = getattr(self._iterator, "close", None)
        if close is not None:
            try:
                close()
            except Exception:   # closing is best effort; the pass also stops when collected
                pass

    def position(self):
        """JSON-able position: batches consumed so far (and a Dataset's own iterator state)."""
        pos = {"kind": self.kind, "batches": int(self.consumed)}
        if self.kind == DATASET and self._iterator is not None and hasattr(self._iterator, "get_state"):
            try:
                pos["dataset_state"] = self._iterator.get_state()
            except Exception:   # a pipeline whose position cannot be saved: fall back to counting
                pass
        return pos


def _leaf_array(value, where):
    conv = getattr(value, "numpy", None)
    if conv is not None and not isinstance(value, np.ndarray):
        value = conv()
    arr = np.asarray(value)
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    if arr.dtype.kind not in "biufO":
        raise InvalidArgumentError(f"{where} has unsupported dtype {arr.dtype}")
    if arr.ndim == 0:
        raise InvalidArgumentError(f"{where} is a scalar; every feature and label needs a batch dimension")
    return arr


def _engine_dtype(arr):
    return _dt.string if arr.dtype == object else _dt.as_dtype(arr.dtype)


def _placeholder_name(prefix, key):
    return prefix if key is None else f"{prefix}/" + re.sub(r"[^A-Za-z0-9_.\-]", "_", str(key))


class FeedSpec:
    """The structure of (features, labels) batches and one placeholder per leaf.

    Build it (inside the graph) from the first batch; `placeholders()` gives the (features, labels)
    structure of tensors for the model_fn, `flatten(features, labels)` the arrays of a batch in feed order.
    """

    def __init__(self, features, labels, with_labels=True):
        self.feature_keys = self._keys(features, "features")
        self.label_keys = None
        self.has_labels = with_labels and labels is not None
        if self.has_labels:
            self.label_keys = self._keys(labels, "labels")
        self.tensors = []
        self.features = self._make(features, self.feature_keys, "features")
        self.labels = self._make(labels, self.label_keys, "labels") if self.has_labels else None

    @staticmethod
    def _keys(part, what):
        if isinstance(part, dict):
            for k in part:
                if not isinstance(k, str):
                    raise InvalidArgumentError(f"{what} dict keys must be strings, got {k!r}")
            return sorted(part)
        return None

    def _make(self, part, keys, prefix):
        if keys is None:
            arr = _leaf_array(part, prefix)
            t = placeholder(_engine_dtype(arr), (None,) + arr.shape[1:], name=prefix)
            self.tensors.append(t)
            return t
        out = {}
        for k in keys:
            arr = _leaf_array(part[k], f"{prefix}[{k!r}]")
            t = placeholder(_engine_dtype(arr), (None,) + arr.shape[1:], name=_placeholder_name(prefix, k))
            self.tensors.append(t)
            out[k] = t
        return out

    def flatten(self, features, labels):
        """The arrays of one batch in placeholder order.

        Raises:
            InvalidArgumentError: the batch's keys differ from the first batch's.
        """
        out = self._flat_part(features, self.feature_keys, "features")
        if self.has_labels:
            if labels is None:
                raise InvalidArgumentError("a batch has no labels, but the first batch had them")
            out += self._flat_part(labels, self.label_keys, "labels")
        return out

    @staticmethod
    def _flat_part(part, keys, what):
        if keys is None:
            if isinstance(part, dict):
                raise InvalidArgumentError(f"a batch's {what} is a dict, but the first batch's was one array")
            return [part]
        try:
            return [part[k] for k in keys]
        except (KeyError, TypeError):
            got = sorted(part) if isinstance(part, dict) else type(part).__name__
            raise InvalidArgumentError(f"a batch's {what} have keys {got}; the first batch had {keys}") from None


def batch_size_of(arrays):
    """The leading dimension shared by the arrays of a batch."""
    for a in arrays:
        shape = np.shape(a)
        if shape:
            return shape[0]
    return 0
