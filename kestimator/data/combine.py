"""zip and concatenate: datasets side by side, or one after the other."""
from ..errors import InvalidArgumentError
from .dataset import Dataset
from .iterator import POSITION, ExhaustedIterator, NodeIterator
from .options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from .structure import describe, flatten, merge_specs, pack_as


class _ZipIterator(NodeIterator):
    def __init__(self, structure, iterators):
        self._structure = structure
        self._its = iterators
        self._plain_tuple = type(structure) is tuple and len(iterators) == len(structure)

    def __next__(self):
        leaves = [next(it) for it in self._its]
        return tuple(leaves) if self._plain_tuple else pack_as(self._structure, leaves)

    def skip(self, n):
        return min(it.skip(n) for it in self._its) if self._its else 0

    def close(self):
        for it in self._its:
            it.close()


class ZipDataset(Dataset):
    """``Dataset.zip``."""

    def __init__(self, structure):
        super().__init__()
        self._structure = structure
        self._datasets = flatten(structure)
        if not self._datasets:
            raise InvalidArgumentError("Dataset.zip needs at least one dataset")
        for d in self._datasets:
            if not isinstance(d, Dataset):
                raise InvalidArgumentError(f"Dataset.zip: expected Datasets, got {type(d).__name__}")

    def _inputs(self):
        return list(self._datasets)

    def _make_iterator(self, ctx, path):
        return _ZipIterator(self._structure, [d._make_iterator(ctx, path + ((POSITION, i),))
                                              for i, d in enumerate(self._datasets)])

    def _cardinality(self):
        sizes = [d.cardinality() for d in self._datasets]
        if UNKNOWN_CARDINALITY in sizes:
            return UNKNOWN_CARDINALITY
        finite = [s for s in sizes if s != INFINITE_CARDINALITY]
        return min(finite) if finite else INFINITE_CARDINALITY

    def _compute_element_spec(self):
        return pack_as(self._structure, [d.element_spec for d in self._datasets])

    def _sample_element(self):
        samples = [d._sample_element() for d in self._datasets]
        return None if any(s is None for s in samples) else pack_as(self._structure, samples)

    def _describe_args(self):
        return {"structure": describe(self._structure)}


class _ConcatenateIterator(NodeIterator):
    def __init__(self, datasets, ctx, path):
        self._datasets = datasets
        self._ctx, self._path = ctx, path
        self._index = 0
        self._it = datasets[0]._make_iterator(ctx, path + ((POSITION, 0),))

    def _advance(self):
        self._it.close()
        self._index += 1
        if self._index < len(self._datasets):
            path = self._path + ((POSITION, self._index),)
            self._it = self._datasets[self._index]._make_iterator(self._ctx, path)
        else:
            self._it = ExhaustedIterator()

    def __next__(self):
        while True:
            try:
                return next(self._it)
            except StopIteration:
                if self._index >= len(self._datasets):
                    raise
                self._advance()

    def skip(self, n):
        done = 0
        while done < n and self._index < len(self._datasets):
            done += self._it.skip(n - done)
            if done < n:
                self._advance()
        return done

    def close(self):
        self._it.close()


class ConcatenateDataset(Dataset):
    """``a.concatenate(b)``."""

    def __init__(self, first, second):
        super().__init__()
        if not isinstance(second, Dataset):
            raise InvalidArgumentError(f"concatenate needs a Dataset, got {type(second).__name__}")
        self._datasets = [first, second]
        a, b = first.element_spec, second.element_spec
        if a is not None and b is not None:
            try:
                merge_specs(a, b)
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(f"concatenate: the datasets' elements differ: {exc}") from None

    def _inputs(self):
        return list(self._datasets)

    def _make_iterator(self, ctx, path):
        return _ConcatenateIterator(self._datasets, ctx, path)

    def _cardinality(self):
        a, b = (d.cardinality() for d in self._datasets)
        if INFINITE_CARDINALITY in (a, b):
            return INFINITE_CARDINALITY
        if UNKNOWN_CARDINALITY in (a, b):
            return UNKNOWN_CARDINALITY
        return a + b

    def _compute_element_spec(self):
        a, b = (d.element_spec for d in self._datasets)
        if a is None or b is None:
            return a if b is None else b
        return merge_specs(a, b)

    def _sample_element(self):
        sample = self._datasets[0]._sample_element()
        return sample if sample is not None else self._datasets[1]._sample_element()
