"""cache: keep the elements of the first complete pass, in memory or in a file, and replay them.

Only a pass that reaches the end fills the cache (as tf.data): a pass that stops early, or that was
restored with ``skip``, leaves it empty, and the next pass reads the input again. A file cache is
written to a temporary name and renamed into place when its pass completes, so a crash never leaves
a half-written cache under the real name; the file records the input pipeline's fingerprint, and a
file written by a different pipeline is refused rather than silently replayed.
"""
import os
import secrets
import threading

from ..errors import InvalidArgumentError
from .cachefile import CacheFileReader, encode_end, encode_header, encode_record, same_structure, structure_of
from .iterator import NodeIterator, fingerprint
from .structure import nbytes
from .transforms import UnaryDataset


class _ListReplay(NodeIterator):
    def __init__(self, elements, budget, size, where):
        self._elements = elements
        self._pos = 0
        self._budget = budget
        self._size = size
        if budget is not None:
            budget.reserve_required(size, f"the in-memory cache of {where}")

    def __next__(self):
        pos = self._pos
        if pos >= len(self._elements):
            raise StopIteration
        self._pos = pos + 1
        return self._elements[pos]

    def next_batch(self, n):
        pos = self._pos
        out = self._elements[pos:pos + n]
        self._pos = pos + len(out)
        return out

    def skip(self, n):
        k = min(n, len(self._elements) - self._pos)
        self._pos += k
        return k

    def close(self):
        if self._budget is not None and self._size:
            self._budget.release_required(self._size)
            self._size = 0


class _MemoryCacheWriter(NodeIterator):
    def __init__(self, node, it, budget):
        self._node = node
        self._it = it
        self._budget = budget
        self._elements = []
        self._held = 0
        self._complete_possible = True

    def __next__(self):
        try:
            element = next(self._it)
        except StopIteration:
            if self._complete_possible:
                self._node._commit_memory(self._elements, self._held)
                self._complete_possible = False
            raise
        if self._complete_possible:
            if self._budget is not None:
                size = nbytes(element)
                self._budget.reserve_required(size, f"the in-memory cache of {self._node.name}")
                self._held += size
            self._elements.append(element)
        return element

    def skip(self, n):
        self._complete_possible = False   # skipped elements are not seen, so the cache cannot be whole
        self._elements = []
        return self._it.skip(n)

    def close(self):
        if self._budget is not None and self._held:
            self._budget.release_required(self._held)
            self._held = 0
        self._it.close()


class _FileCacheWriter(NodeIterator):
    def __init__(self, it, path, input_fingerprint):
        self._it = it
        self._path = path
        self._fingerprint = input_fingerprint
        self._tmp = f"{path}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        self._f = None
        self._structure = None
        self._count = 0
        self._active = True

    def _write_first(self, element):
        directory = os.path.dirname(os.path.abspath(self._path))
        os.makedirs(directory, exist_ok=True)
        self._structure = structure_of(element) if element is not None else 0
        self._f = open(self._tmp, "wb")
        self._f.write(encode_header(self._structure, self._fingerprint))

    def __next__(self):
        try:
            element = next(self._it)
        except StopIteration:
            if self._active:
                self._finish()
            raise
        if self._active:
            if self._f is None:
                self._write_first(element)
            elif not same_structure(element, self._structure):
                self._abort()
                raise InvalidArgumentError(f"cache({self._path!r}): element {self._count} is nested differently "
                                           "from the first element")
            self._f.write(encode_record(element))
            self._count += 1
        return element

    def _finish(self):
        if self._f is None:
            self._write_first(None)
        self._f.write(encode_end(self._count))
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self._tmp, self._path)     # atomic: readers see a whole file or none
        self._active = False

    def _abort(self):
        if self._active:
            self._active = False
            if self._f is not None:
                self._f.close()
                try:
                    os.remove(self._tmp)
                except FileNotFoundError:
                    pass

    def skip(self, n):
        self._abort()
        return self._it.skip(n)

    def close(self):
        self._abort()
        self._it.close()


class _FileCacheReplay(NodeIterator):
    def __init__(self, reader):
        self._reader = reader

    def __next__(self):
        return self._reader.read()

    def skip(self, n):
        return self._reader.skip(n)

    def close(self):
        self._reader.close()


class CacheDataset(UnaryDataset):
    """``cache(filename)``."""

    def __init__(self, input_dataset, filename):
        super().__init__(input_dataset)
        self._filename = os.fspath(filename) if filename else ""
        self._memory = None
        self._memory_size = 0
        self._lock = threading.Lock()

    @property
    def name(self):
        return f"Dataset.cache({self._filename!r})"

    def _commit_memory(self, elements, size):
        with self._lock:
            if self._memory is None:
                self._memory = elements
                self._memory_size = size

    def _make_iterator(self, ctx, path):
        if not self._filename:
            with self._lock:
                memory, size = self._memory, self._memory_size
            if memory is not None:
                if ctx.budget is not None and not size:
                    size = sum(nbytes(e) for e in memory)
                return _ListReplay(memory, ctx.budget, size, self.name)
            return _MemoryCacheWriter(self, self._input._make_iterator(ctx, path), ctx.budget)
        input_fingerprint = fingerprint(self._input)
        if os.path.exists(self._filename):
            return _FileCacheReplay(CacheFileReader(self._filename, input_fingerprint))
        return _FileCacheWriter(self._input._make_iterator(ctx, path), self._filename, input_fingerprint)

    def _describe_args(self):
        return {"filename": self._filename}
