"""window: datasets of ``size`` consecutive elements, every ``shift`` elements, ``stride`` apart."""
from .iterator import NodeIterator
from .structure import DatasetSpec, flatten, map_structure, pack_as
from .transforms import UnaryDataset
from .validation import check_positive_int


def _window_element(structure_sample, elements):
    """A window's element: the element's structure with one ListDataset per component."""
    from .sources import ListDataset
    if not isinstance(structure_sample, (tuple, dict)):
        return ListDataset(elements)
    columns = list(zip(*[flatten(e) for e in elements]))
    return pack_as(structure_sample, [ListDataset(list(c)) for c in columns])


class _WindowIterator(NodeIterator):
    def __init__(self, it, size, shift, stride, drop_remainder):
        self._it = it
        self._size, self._shift, self._stride = size, shift, stride
        self._drop = drop_remainder
        self._buf = []
        self._input_done = False

    def __next__(self):
        span = (self._size - 1) * self._stride + 1
        while len(self._buf) < span and not self._input_done:
            try:
                self._buf.append(next(self._it))
            except StopIteration:
                self._input_done = True
        window = self._buf[0:span:self._stride]
        if not window or (self._drop and len(window) < self._size):
            self._buf = []
            self._input_done = True
            raise StopIteration
        if self._shift <= len(self._buf):
            del self._buf[:self._shift]
        else:
            if not self._input_done:
                missing = self._shift - len(self._buf)
                if self._it.skip(missing) < missing:
                    self._input_done = True
            self._buf = []
        return _window_element(window[0], window)

    def close(self):
        self._it.close()


class WindowDataset(UnaryDataset):
    """``window(size, shift, stride, drop_remainder)``."""

    def __init__(self, input_dataset, size, shift, stride, drop_remainder):
        super().__init__(input_dataset)
        self._size = check_positive_int(size, "window size")
        self._shift = self._size if shift is None else check_positive_int(shift, "window shift")
        self._stride = check_positive_int(stride, "window stride")
        self._drop = bool(drop_remainder)

    def _make_iterator(self, ctx, path):
        return _WindowIterator(self._input._make_iterator(ctx, path), self._size, self._shift,
                               self._stride, self._drop)

    def _cardinality(self):
        n = self._input.cardinality()
        if n < 0:
            return n
        if self._drop:
            span = (self._size - 1) * self._stride + 1
            return 0 if n < span else (n - span) // self._shift + 1
        return -(-n // self._shift)

    def _compute_element_spec(self):
        spec = self._input.element_spec
        return None if spec is None else map_structure(lambda s: DatasetSpec(s), spec)

    def _sample_element(self):
        sample = self._input._sample_element()
        return None if sample is None else _window_element(sample, [sample])

    def _describe_args(self):
        return {"size": self._size, "shift": self._shift, "stride": self._stride, "drop": self._drop}
