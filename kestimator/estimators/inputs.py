"""Input functions over in-memory NumPy data (`tf.compat.v1.estimator.inputs`).

    input_fn = ks.estimators.inputs.numpy_input_fn(x={"x": x}, y=y, batch_size=32, num_epochs=None,
                                                   shuffle=True)
    estimator.train(input_fn, steps=1000)

The input_fn returns an iterable of ``(features, labels)`` batches of NumPy arrays. The examples form
one stream: epoch after epoch, each epoch a permutation of the rows when shuffling, cut into batches that
may straddle epoch boundaries (as TF's queue-based reader does); with a finite num_epochs the last batch
may be smaller. Shuffling is seeded by `seed`, else by the Estimator's RunConfig.tf_random_seed (as TF's
graph seed makes its shuffle queue repeatable), else fresh entropy per pass. The iterator can jump ahead by
a number of batches without reading them (`_ks_fast_forward`), which the Estimator uses to resume an
interrupted train() at the same place in the data.
"""
import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["numpy_input_fn"]


def _as_columns(x, what):
    if isinstance(x, dict):
        if not x:
            raise InvalidArgumentError(f"numpy_input_fn: {what} is an empty dict")
        out = {}
        for k, v in x.items():
            if not isinstance(k, str):
                raise InvalidArgumentError(f"numpy_input_fn: {what} keys must be strings, got {k!r}")
            out[k] = _as_array(v, f"{what}[{k!r}]")
        return out
    return _as_array(x, what)


def _as_array(v, what):
    arr = np.asarray(v)
    if arr.ndim == 0:
        raise InvalidArgumentError(f"numpy_input_fn: {what} is a scalar; it needs one row per example")
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    return arr


def _length(cols, what):
    arrays = cols.values() if isinstance(cols, dict) else [cols]
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        detail = {k: len(a) for k, a in cols.items()} if isinstance(cols, dict) else lengths
        raise InvalidArgumentError(f"numpy_input_fn: the arrays of {what} have different lengths: {detail}")
    return lengths.pop()


class _NumpyBatchIterator:
    """One pass over the stream of batches; `_ks_fast_forward(n)` skips n batches by index arithmetic."""

    def __init__(self, source, seed):
        self._src = source
        self._rng = np.random.default_rng(seed) if source.shuffle else None
        self._epoch = 0
        self._order = self._new_order()
        self._pos = 0                      # position inside the current epoch's order

    def _new_order(self):
        n = self._src.n
        return self._rng.permutation(n) if self._rng is not None else None

    def _next_epoch(self):
        self._epoch += 1
        self._order = self._new_order()
        self._pos = 0

    def _exhausted(self):
        ne = self._src.num_epochs
        return ne is not None and self._epoch >= ne

    def _take_indices(self, count):
        """Up to `count` row indices from the stream (fewer only at the end of the last epoch)."""
        pieces = []
        n = self._src.n
        while count > 0 and not self._exhausted():
            k = min(count, n - self._pos)
            if self._order is not None:
                pieces.append(self._order[self._pos:self._pos + k])
            else:
                pieces.append(np.arange(self._pos, self._pos + k))
            self._pos += k
            count -= k
            if self._pos >= n:
                self._next_epoch()
        if not pieces:
            return None
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def __iter__(self):
        return self

    def __next__(self):
        idx = self._take_indices(self._src.batch_size)
        if idx is None:
            raise StopIteration
        src = self._src
        if len(idx) == src.n and self._order is None and idx[0] == 0:
            pick = lambda a: a   # noqa: E731 - the whole array in order: no copy needed
        elif self._order is None:
            start = int(idx[0])
            contiguous = int(idx[-1]) - start + 1 == len(idx)
            pick = (lambda a: a[start:start + len(idx)]) if contiguous else (lambda a: a[idx])  # noqa: E731
        else:
            pick = lambda a: a[idx]   # noqa: E731
        x = {k: pick(v) for k, v in src.x.items()} if src.x_is_dict else pick(src.x)
        if src.y is None:
            return x
        y = {k: pick(v) for k, v in src.y.items()} if src.y_is_dict else pick(src.y)
        return x, y

    def _ks_fast_forward(self, batches):
        """Skip `batches` batches, drawing the same permutations a full read would have drawn."""
        remaining = int(batches) * self._src.batch_size
        n = self._src.n
        while remaining > 0 and not self._exhausted():
            k = min(remaining, n - self._pos)
            self._pos += k
            remaining -= k
            if self._pos >= n:
                self._next_epoch()


class NumpyBatches:
    """The iterable an input_fn from `numpy_input_fn` returns; each iter() is a new pass."""

    def __init__(self, x, y, batch_size, num_epochs, shuffle, seed):
        self.x, self.y = x, y
        self.x_is_dict, self.y_is_dict = isinstance(x, dict), isinstance(y, dict)
        self.n = _length(x, "x")
        self.batch_size, self.num_epochs, self.shuffle, self.seed = batch_size, num_epochs, shuffle, seed

    def __iter__(self):
        return _NumpyBatchIterator(self, self.seed)


def numpy_input_fn(x, y=None, batch_size=128, num_epochs=1, shuffle=None, queue_capacity=1000, num_threads=1,
                   seed=None):
    """An input_fn that batches NumPy arrays.

    Args:
        x: an array (one feature tensor) or a dict name -> array; all with the same number of rows.
        y: an array, a dict name -> array, or None (predict).
        batch_size: rows per batch.
        num_epochs: passes over the data; None repeats forever.
        shuffle: required: True to shuffle each epoch.
        queue_capacity, num_threads: accepted for TF compatibility (there is no queue: batches are slices).
        seed: shuffling seed (default: the RunConfig's tf_random_seed when the Estimator passes its config).

    Returns:
        input_fn(config=None) returning an iterable of (features, labels) batches (features alone when y
        is None).

    Raises:
        InvalidArgumentError: shuffle not given as a bool, lengths differing, y keys overlapping x keys,
            a non-positive batch_size or num_epochs.
    """
    if not isinstance(shuffle, bool):
        raise InvalidArgumentError(f"numpy_input_fn: shuffle must be provided explicitly as a bool, got {shuffle!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise InvalidArgumentError(f"numpy_input_fn: batch_size must be a positive int, got {batch_size!r}")
    if num_epochs is not None and (isinstance(num_epochs, bool) or not isinstance(num_epochs, (int, np.integer))
                                   or num_epochs <= 0):
        raise InvalidArgumentError(f"numpy_input_fn: num_epochs must be None or a positive int, got {num_epochs!r}")
    xs = _as_columns(x, "x")
    ys = _as_columns(y, "y") if y is not None else None
    n = _length(xs, "x")
    if ys is not None:
        ny = _length(ys, "y")
        if ny != n:
            raise InvalidArgumentError(f"numpy_input_fn: x has {n} rows but y has {ny}")
        if isinstance(xs, dict) and isinstance(ys, dict):
            common = sorted(set(xs) & set(ys))
            if common:
                raise InvalidArgumentError(f"numpy_input_fn: keys {common} are in both x and y")
    if n == 0:
        raise InvalidArgumentError("numpy_input_fn: x has no rows")

    def input_fn(config=None):
        s = seed
        if s is None and config is not None:
            s = getattr(config, "tf_random_seed", None)
        return NumpyBatches(xs, ys, int(batch_size), None if num_epochs is None else int(num_epochs), shuffle, s)

    return input_fn
