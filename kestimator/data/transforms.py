"""The base of one-input transformations, and filter, repeat and with_options.

Other transformations: :mod:`.slicing` (take, skip, shard, enumerate), :mod:`.combine` (zip,
concatenate), :mod:`.window`, :mod:`.batching`, :mod:`.shuffle`, :mod:`.mapping`, :mod:`.interleave`,
:mod:`.prefetch`, :mod:`.cache`.
"""
import numpy as np

from ..errors import InvalidArgumentError
from .dataset import Dataset
from .iterator import EPOCH, ExhaustedIterator, NodeIterator, raise_user_error
from .options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from .structure import call_with_element
from .validation import check_positive_int


class UnaryDataset(Dataset):
    """A transformation of one input; by default it keeps the input's spec, cardinality and samples."""

    def __init__(self, input_dataset):
        super().__init__()
        if not isinstance(input_dataset, Dataset):
            raise InvalidArgumentError(f"expected a Dataset input, got {type(input_dataset).__name__}")
        self._input = input_dataset

    def _inputs(self):
        return [self._input]

    def _cardinality(self):
        return self._input.cardinality()

    def _compute_element_spec(self):
        return self._input.element_spec

    def _sample_element(self):
        return self._input._sample_element()


def function_name(fn):
    """A readable name for a user function in messages and fingerprints."""
    return getattr(fn, "__qualname__", None) or type(fn).__name__


class OptionsDataset(UnaryDataset):
    """Carries an :class:`Options` (``with_options``); iterates its input unchanged."""

    def __init__(self, input_dataset, options):
        super().__init__(input_dataset)
        self._own_options = options

    def _make_iterator(self, ctx, path):
        return self._input._make_iterator(ctx, path)

    def _describe_args(self):
        return {}


# -- filter ----------------------------------------------------------------------------------------------
def _as_bool(value, where, index):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    arr = np.asarray(value)
    if arr.shape == () and arr.dtype == np.bool_:
        return bool(arr)
    raise InvalidArgumentError(f"the predicate of {where} must return a scalar bool; on input element "
                               f"{index} it returned {type(value).__name__} {getattr(arr, 'shape', '')} "
                               f"{arr.dtype}")


class _FilterIterator(NodeIterator):
    def __init__(self, it, predicate, where):
        self._it = it
        self._predicate = predicate
        self._where = where
        self._index = 0

    def __next__(self):
        while True:
            element = next(self._it)
            index = self._index
            self._index += 1
            try:
                keep = call_with_element(self._predicate, element)
            except Exception as exc:
                raise_user_error(exc, self._where, index)
            if _as_bool(keep, self._where, index):
                return element

    def close(self):
        self._it.close()


class FilterDataset(UnaryDataset):
    """``filter(predicate)``."""

    def __init__(self, input_dataset, predicate):
        super().__init__(input_dataset)
        if not callable(predicate):
            raise InvalidArgumentError("filter needs a callable predicate")
        self._predicate = predicate

    @property
    def name(self):
        return f"Dataset.filter({function_name(self._predicate)})"

    def _make_iterator(self, ctx, path):
        return _FilterIterator(self._input._make_iterator(ctx, path), self._predicate, self.name)

    def _cardinality(self):
        n = self._input.cardinality()
        return INFINITE_CARDINALITY if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    def _describe_args(self):
        return {"predicate": function_name(self._predicate)}


# -- repeat ----------------------------------------------------------------------------------------------
class _RepeatIterator(NodeIterator):
    """Epoch 0 uses the parent's path, so ``ds.repeat(1)`` iterates exactly like ``ds``."""

    def __init__(self, dataset, ctx, path, count):
        self._ds, self._ctx, self._path = dataset, ctx, path
        self._count = count
        self._epoch = 0
        self._had_element = False
        self._it = dataset._make_iterator(ctx, path) if count != 0 else ExhaustedIterator()
        self._done = count == 0

    def _advance(self):
        """Start the next epoch; False when the count is reached or an epoch was empty."""
        self._it.close()
        self._epoch += 1
        if not self._had_element or (self._count is not None and self._epoch >= self._count):
            self._it, self._done = ExhaustedIterator(), True
            return False
        self._had_element = False
        self._it = self._ds._make_iterator(self._ctx, self._path + ((EPOCH, self._epoch),))
        return True

    def __next__(self):
        while not self._done:
            try:
                element = next(self._it)
            except StopIteration:
                self._advance()
                continue
            self._had_element = True
            return element
        raise StopIteration

    def next_batch(self, n):
        while not self._done:
            items = self._it.next_batch(n)
            if items:
                self._had_element = True
                return items
            self._advance()
        return []

    def skip(self, n):
        done = 0
        while done < n and not self._done:
            k = self._it.skip(n - done)
            if k:
                self._had_element = True
            done += k
            if done < n:
                self._advance()
        return done

    def close(self):
        self._it.close()


class RepeatDataset(UnaryDataset):
    """``repeat(count)``."""

    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        count = -1 if count is None else check_positive_int(count, "repeat count", allow=(0, -1))
        if count < -1:
            raise InvalidArgumentError(f"repeat count must be >= -1, got {count}")
        self._count = None if count == -1 else count

    def _make_iterator(self, ctx, path):
        return _RepeatIterator(self._input, ctx, path, self._count)

    def _cardinality(self):
        n = self._input.cardinality()
        if self._count == 0 or n == 0:
            return 0
        if self._count is None or n == INFINITE_CARDINALITY:
            return INFINITE_CARDINALITY
        return UNKNOWN_CARDINALITY if n == UNKNOWN_CARDINALITY else n * self._count

    def _describe_args(self):
        return {"count": self._count}
