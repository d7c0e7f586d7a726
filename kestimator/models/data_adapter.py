"""Turning what fit / evaluate / predict receive (arrays, lists or dicts of arrays, Datasets, generators)
into batches of feed arrays in the order of the model's placeholders.

Arrays are converted to the placeholders' dtypes once, before the first epoch, and each batch is a slice
(or, when shuffling, a gather into a buffer allocated once), so a step costs no conversions and no
allocations for the data. fit() gathers big shuffled batches one step ahead on a worker thread.
"""
import os
import queue
import threading

import numpy as np

from ..errors import InvalidArgumentError

# Gathering the next shuffled batch on a second thread: off by default (None). On the quiet 2-core machine it
# made a seed-MLP epoch at batch 256 9% slower (0.109 s vs 0.100 s, /tmp A/B, two runs each): the gather
# competes with the two BLAS threads. Set a byte threshold (e.g. 256 << 10) where spare cores exist.
PREFETCH_MIN_BYTES = None


def is_dataset(x):
    """A Dataset, generator or other iterable of batches (not an array, list, tuple or dict)."""
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)):
        return False
    if hasattr(x, "__array__") or np.isscalar(x):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


def to_list(data, names, what):
    """A list of arrays in `names` order from one array, a list/tuple of arrays, or a dict by name.

    Raises:
        InvalidArgumentError: a dict misses a name, or the number of arrays does not match.
    """
    if data is None:
        return None
    n = len(names)
    if isinstance(data, dict):
        missing = [k for k in names if k not in data]
        if missing:
            raise InvalidArgumentError(f"{what}: no data for {missing}; the dict has keys {sorted(data)} and the "
                                       f"model expects {names}")
        return [data[k] for k in names]
    if isinstance(data, (list, tuple)):
        if n > 1:
            if len(data) != n:
                raise InvalidArgumentError(f"{what}: {len(data)} arrays given for {n} model "
                                           f"{'inputs' if 'x' in what else 'outputs'} {names}")
            return list(data)
        if len(data) == 1 and hasattr(data[0], "shape"):
            return [data[0]]
        return [data]
    if n != 1:
        if n == 0:
            return []
        raise InvalidArgumentError(f"{what}: one array given, but the model has {n}: {names}")
    return [data]


def as_array(value, np_dtype, what):
    """`value` as a NumPy array of `np_dtype` (no copy when it already is one)."""
    arr = np.asarray(value)
    if np_dtype is None:
        if arr.dtype == np.float64:
            return arr.astype(np.float32)
        if arr.dtype == np.bool_:
            return arr.astype(np.float32)
        return arr
    if arr.dtype.kind in "OSU" and np.dtype(np_dtype).kind not in "OSU":
        raise InvalidArgumentError(f"{what}: cannot use {arr.dtype} data for a {np.dtype(np_dtype)} input")
    return arr if arr.dtype == np_dtype else arr.astype(np_dtype)


def target_array(value, what):
    """Targets: floats become float32, integers keep their type (class labels), bools become float32."""
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and arr.dtype != np.float32:
        return arr.astype(np.float32)
    if arr.dtype.kind == "b":
        return arr.astype(np.float32)
    if arr.dtype.kind in "OSU":
        raise InvalidArgumentError(f"{what}: targets must be numeric, got {arr.dtype}")
    return arr


def check_lengths(arrays, what):
    sizes = {len(a) if np.ndim(a) else 0 for a in arrays}
    if len(sizes) > 1:
        raise InvalidArgumentError(f"{what}: arrays have different numbers of samples: "
                                   f"{[int(np.shape(a)[0]) if np.ndim(a) else 0 for a in arrays]}")
    n = sizes.pop() if sizes else 0
    if n == 0 and arrays:
        raise InvalidArgumentError(f"{what}: no samples")
    return n


def class_weights_to_sample_weights(class_weight, y):
    """Per-sample weights from {class: weight}, for integer labels or one-hot targets."""
    y = np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] > 1:
        labels = np.argmax(y, axis=-1)
    else:
        labels = y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y
        if labels.dtype.kind == "f":
            if not np.all(np.mod(labels, 1) == 0):
                raise InvalidArgumentError("class_weight needs integer class labels (or one-hot targets)")
        labels = labels.astype(np.int64)
    table = np.ones(int(max(max(class_weight) + 1, labels.max() + 1 if labels.size else 0)), np.float32)
    for k, w in class_weight.items():
        if int(k) < 0:
            raise InvalidArgumentError(f"class_weight has a negative class {k}")
        table[int(k)] = float(w)
    return table[labels]


class ArrayBatches:
    """Batches over in-memory arrays.

    Args:
        arrays: the feed arrays (inputs, targets, sample weights) with equal first dimensions.
        batch_size: rows per batch; the last batch may be smaller.
        shuffle: reorder rows each epoch (the order is a function of `seed` and the epoch, so a resumed
            run replays the same order).
        seed: the shuffling seed.
    """

    def __init__(self, arrays, batch_size, shuffle=False, seed=0):
        self.arrays = list(arrays)
        self.n = check_lengths(self.arrays, "data")
        self.batch_size = max(1, int(batch_size))
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.steps = -(-self.n // self.batch_size)
        self._buffers = None
        self.prefetch = False   # set by fit(): gather the next shuffled batch on a thread (see below)

    def prefetch_pays(self):
        """Whether gathering ahead on a second thread is worth its hand-off: shuffled batches of at least
        `PREFETCH_MIN_BYTES` (a 256-row seed-MLP batch is 800 KB, ~40-90 us of copying from rows spread
        over the whole array), on a machine with a second core."""
        per_row = sum(a.dtype.itemsize * int(np.prod(a.shape[1:], dtype=np.int64)) for a in self.arrays)
        if PREFETCH_MIN_BYTES is None:
            return False
        return self.shuffle and per_row * self.batch_size >= PREFETCH_MIN_BYTES and (os.cpu_count() or 1) > 1

    def _full_buffers(self):
        if self._buffers is None:
            self._buffers = [np.empty((self.batch_size,) + a.shape[1:], a.dtype) for a in self.arrays]
        return self._buffers

    def epoch(self, epoch, start_step=0, steps=None):
        """Yield (step, [feed arrays]) for one epoch, from `start_step`, at most `steps` batches (cycling
        through the data when more steps than batches are asked for)."""
        bs, n, arrays = self.batch_size, self.n, self.arrays
        total = self.steps if steps is None else int(steps)
        perm = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else None
        if perm is not None and self.prefetch and total - start_step > 2:
            yield from self._prefetched(perm, start_step, total)
            return
        for step in range(start_step, total):
            if perm is None:
                s = (step % self.steps) * bs
                yield step, [a[s:min(s + bs, n)] for a in arrays]
            else:
                yield step, self._gather(perm, step, self._full_buffers())

    def _gather(self, perm, step, out):
        """The feed arrays of `step`: rows `perm` picks, gathered into the buffer set `out` (full batches)."""
        bs, n = self.batch_size, self.n
        s = (step % self.steps) * bs
        e = min(s + bs, n)
        idx = perm[s:e]
        idx.sort()   # gathering rows in memory order is faster and the batch is the same set
        if e - s == bs:
            return [np.take(a, idx, axis=0, out=b) for a, b in zip(self.arrays, out)]
        return [np.take(a, idx, axis=0) for a in self.arrays]

    def _prefetched(self, perm, start_step, total):
        """The epoch's batches, each gathered on a worker thread while the step before it runs.

        np.take releases the GIL, so the copy overlaps the training step (whose BLAS calls and numba
        kernels release it too). Two buffer sets alternate: the worker fills one while the caller uses the
        other, and refills a set only after the caller asked for the next batch (so is done with it).
        """
        sets = [[np.empty((self.batch_size,) + a.shape[1:], a.dtype) for a in self.arrays] for _ in range(2)]
        ready = queue.SimpleQueue()
        free = [threading.Semaphore(1), threading.Semaphore(1)]
        stop = threading.Event()

        def work():
            try:
                for step in range(start_step, total):
                    k = step & 1
                    free[k].acquire()
                    if stop.is_set():
                        return
                    ready.put((step, self._gather(perm, step, sets[k]), None))
            except BaseException as e:   # handed to the caller, raised there
                ready.put((None, None, e))

        worker = threading.Thread(target=work, name="kestimator-batch-prefetch", daemon=True)
        worker.start()
        try:
            for _ in range(start_step, total):
                step, feeds, error = ready.get()
                if error is not None:
                    raise error
                yield step, feeds
                free[step & 1].release()
        finally:
            stop.set()
            for f in free:   # wake a worker waiting for a buffer so it sees `stop`
                f.release()
            worker.join()


class _Peekable:
    """A one-pass iterator whose first element can be looked at without losing it."""

    def __init__(self, iterator):
        self._it = iterator
        self._head = []

    def peek(self):
        if not self._head:
            self._head.append(next(self._it))
        return self._head[0]

    def __iter__(self):
        return self

    def __next__(self):
        if self._head:
            return self._head.pop()
        return next(self._it)


def peekable(source):
    """`source` itself when it can be iterated again (a Dataset, a list); a one-pass iterator (a generator)
    is wrapped so that looking at its first element for shapes does not consume it."""
    if iter(source) is source:
        return _Peekable(source)
    return source


class IterableBatches:
    """Batches from a Dataset or generator yielding x, (x, y) or (x, y, sample_weight) tuples.

    Args:
        source: the iterable (a Dataset is iterated afresh each epoch; a generator continues).
        convert: a function (element) -> [feed arrays].
        steps: batches per epoch (None: until the iterable is exhausted).
    """

    def __init__(self, source, convert, steps=None):
        self.source, self.convert = source, convert
        self.steps = steps
        self._iter = None

    def _next(self):
        if self._iter is None:
            self._iter = iter(self.source)
        try:
            return next(self._iter)
        except StopIteration:
            self._iter = None
            raise

    def epoch(self, epoch, start_step=0, steps=None):
        steps = steps if steps is not None else self.steps
        if steps is None:
            self._iter = iter(self.source)
            step = 0
            for element in self._iter:
                if step >= start_step:
                    yield step, self.convert(element)
                step += 1
            self._iter = None
            return
        step = start_step
        restarted = False
        while step < steps:
            try:
                element = self._next()
            except StopIteration:
                if restarted:
                    return
                restarted = True
                continue
            restarted = False
            yield step, self.convert(element)
            step += 1

    def first(self):
        """The first element (to learn shapes), without consuming the source for later epochs."""
        try:
            if isinstance(self.source, _Peekable):
                return self.source.peek()
            for element in self.source:
                return element
        except StopIteration:
            pass
        raise InvalidArgumentError("the dataset is empty")


def unpack(element, what):
    """(x, y, sample_weight) from a dataset element: x, (x,), (x, y) or (x, y, sw)."""
    if isinstance(element, tuple) and not hasattr(element, "_fields"):
        if len(element) == 1:
            return element[0], None, None
        if len(element) == 2:
            return element[0], element[1], None
        if len(element) == 3:
            return element
        raise InvalidArgumentError(f"{what}: a dataset element must be x, (x, y) or (x, y, sample_weight); got "
                                   f"a tuple of {len(element)}")
    if isinstance(element, list) and len(element) in (2, 3) and what != "predict":
        return tuple(element) + ((None,) if len(element) == 2 else ())
    return element, None, None


def split_validation(arrays, fraction):
    """(train arrays, validation arrays): the last `fraction` of the samples, before shuffling (Keras)."""
    if not 0.0 < fraction < 1.0:
        raise InvalidArgumentError(f"validation_split must be in (0, 1), got {fraction}")
    n = check_lengths(arrays, "data")
    cut = int(n * (1.0 - fraction))
    if cut == 0 or cut == n:
        raise InvalidArgumentError(f"validation_split={fraction} leaves no training or no validation samples "
                                   f"out of {n}")
    return [a[:cut] for a in arrays], [a[cut:] for a in arrays]
