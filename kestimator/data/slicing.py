"""take, skip, shard and enumerate: transformations that select or number elements by position.

All of them skip through their input with ``skip`` (never computing what they drop, where the input
allows), which is also what makes restoring an iterator's position cheap.
"""
import numpy as np

from ..errors import InvalidArgumentError
from .iterator import ExhaustedIterator, NodeIterator
from .options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from .transforms import UnaryDataset
from .validation import check_positive_int


class _TakeIterator(NodeIterator):
    def __init__(self, it, count):
        self._it = it
        self._left = count

    def __next__(self):
        if self._left <= 0:
            raise StopIteration
        element = next(self._it)
        self._left -= 1
        return element

    def next_batch(self, n):
        items = self._it.next_batch(min(n, self._left)) if self._left > 0 else []
        self._left -= len(items)
        return items

    def skip(self, n):
        k = self._it.skip(min(n, self._left)) if self._left > 0 else 0
        self._left -= k
        return k

    def close(self):
        self._it.close()


class TakeDataset(UnaryDataset):
    """``take(count)``."""

    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self._count = check_positive_int(count, "take count", allow=(0, -1))

    def _make_iterator(self, ctx, path):
        it = self._input._make_iterator(ctx, path)
        return it if self._count == -1 else _TakeIterator(it, self._count)

    def _cardinality(self):
        n = self._input.cardinality()
        if self._count == -1:
            return n
        if n in (INFINITE_CARDINALITY, UNKNOWN_CARDINALITY):
            return self._count if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY
        return min(n, self._count)

    def _describe_args(self):
        return {"count": self._count}


class _SkipIterator(NodeIterator):
    def __init__(self, it, count):
        self._it = it
        self._to_skip = count

    def _skip_start(self):
        if self._to_skip == -1:
            self._it.close()
            self._it = ExhaustedIterator()
        else:
            self._it.skip(self._to_skip)
        self._to_skip = 0

    def __next__(self):
        if self._to_skip:
            self._skip_start()
        return next(self._it)

    def next_batch(self, n):
        if self._to_skip:
            self._skip_start()
        return self._it.next_batch(n)

    def skip(self, n):
        if self._to_skip:
            self._skip_start()
        return self._it.skip(n)

    def close(self):
        self._it.close()


class SkipDataset(UnaryDataset):
    """``skip(count)``."""

    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self._count = check_positive_int(count, "skip count", allow=(0, -1))

    def _make_iterator(self, ctx, path):
        return _SkipIterator(self._input._make_iterator(ctx, path), self._count)

    def _cardinality(self):
        n = self._input.cardinality()
        if n in (INFINITE_CARDINALITY, UNKNOWN_CARDINALITY):
            return n
        return 0 if self._count == -1 else max(0, n - self._count)

    def _describe_args(self):
        return {"count": self._count}


class _ShardIterator(NodeIterator):
    def __init__(self, it, num_shards, index):
        self._it = it
        self._num = num_shards
        self._gap = index          # input elements to drop before the next kept one

    def __next__(self):
        if self._gap:
            self._it.skip(self._gap)
        self._gap = self._num - 1
        try:
            return next(self._it)
        except StopIteration:
            self._gap = 0
            raise

    def skip(self, n):
        if n <= 0:
            return 0
        # The first kept element is gap+1 input elements away, each later one num_shards further.
        first = self._gap + 1
        want = first + (n - 1) * self._num
        got = self._it.skip(want)
        if got == want:
            self._gap = self._num - 1
            return n
        self._gap = 0       # the input is exhausted
        return 0 if got < first else 1 + (got - first) // self._num

    def close(self):
        self._it.close()


class ShardDataset(UnaryDataset):
    """``shard(num_shards, index)``."""

    def __init__(self, input_dataset, num_shards, index):
        super().__init__(input_dataset)
        self._num = check_positive_int(num_shards, "shard num_shards")
        self._index = check_positive_int(index, "shard index", allow=(0,))
        if self._index >= self._num:
            raise InvalidArgumentError(f"shard index {self._index} must be < num_shards {self._num}")

    def _make_iterator(self, ctx, path):
        return _ShardIterator(self._input._make_iterator(ctx, path), self._num, self._index)

    def _cardinality(self):
        n = self._input.cardinality()
        if n < 0:
            return n
        return n // self._num + (1 if self._index < n % self._num else 0)

    def _describe_args(self):
        return {"num_shards": self._num, "index": self._index}


class _EnumerateIterator(NodeIterator):
    def __init__(self, it, start):
        self._it = it
        self._i = start

    def __next__(self):
        element = next(self._it)
        i = self._i
        self._i = i + 1
        return np.int64(i), element

    def skip(self, n):
        k = self._it.skip(n)
        self._i += k
        return k

    def close(self):
        self._it.close()


class EnumerateDataset(UnaryDataset):
    """``enumerate(start)``."""

    def __init__(self, input_dataset, start):
        super().__init__(input_dataset)
        self._start = int(start)

    def _make_iterator(self, ctx, path):
        return _EnumerateIterator(self._input._make_iterator(ctx, path), self._start)

    def _compute_element_spec(self):
        from .structure import TensorSpec
        return (TensorSpec((), "int64"), self._input.element_spec)

    def _sample_element(self):
        sample = self._input._sample_element()
        return None if sample is None else (np.int64(self._start), sample)

    def _describe_args(self):
        return {"start": self._start}
