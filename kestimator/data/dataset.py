"""The :class:`Dataset` base class: a lazy description of an input pipeline.

A Dataset holds no data in flight; ``iter(dataset)`` starts a *pass*: a fresh tree of iterators (see
:mod:`kestimator.data.iterator`) with its own threads, processes and random state. Each pass is
independent, so a dataset can be iterated any number of times; random transformations draw a new
order on each pass unless told not to (``reshuffle_each_iteration=False``), as in tf.data.

The transformation methods are thin: each builds a node from :mod:`.transforms`, :mod:`.slicing`,
:mod:`.combine`, :mod:`.window`, :mod:`.batching`, :mod:`.shuffle`, :mod:`.mapping`,
:mod:`.interleave`, :mod:`.prefetch` or :mod:`.cache`.
"""
import itertools
import threading

from ..errors import InvalidArgumentError
from .options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Options
from .structure import spec_of


class Dataset:
    """A sequence of elements (NumPy arrays, scalars, bytes, nested in tuples and dicts).

    Build one with a source (:meth:`from_tensor_slices`, :meth:`range`, :meth:`from_generator`,
    :meth:`list_files`, ``TextLineDataset``, ``RecordDataset``, ``CsvDataset``, ``HDF5Dataset``), chain
    transformations, and iterate it with ``for element in dataset``.

    Example:
        >>> ds = Dataset.from_tensor_slices((x, y)).shuffle(1000, seed=0).batch(32).prefetch(2)
        >>> for xb, yb in ds:
        ...     train_step(xb, yb)
    """

    def __init__(self):
        self._pass_counter = itertools.count()
        self._pass_lock = threading.Lock()
        self._spec_cache = None

    # -- what every node provides --------------------------------------------------------------------------
    def _inputs(self):
        """The datasets this one reads (for options and fingerprints)."""
        return []

    def _make_iterator(self, ctx, path):
        """A :class:`~kestimator.data.iterator.NodeIterator` for one pass."""
        raise NotImplementedError

    def _cardinality(self):
        return UNKNOWN_CARDINALITY

    def _compute_element_spec(self):
        sample = self._sample_element()
        return None if sample is None else spec_of(sample)

    def _sample_element(self):
        """Some element with this dataset's spec (None if there is none), as cheaply as possible.

        The default reads the first element of a throwaway pass; pass-through transformations ask
        their input instead, so that the spec of ``shuffle(10_000)`` does not fill a buffer.
        """
        from .iterator import DatasetIterator
        it = DatasetIterator(self, pass_index=0, entropy=0)
        try:
            return next(it, None)
        finally:
            it.close()

    def _describe_args(self):
        """The arguments that identify this node in a fingerprint (JSON-able)."""
        return {}

    def _describe(self):
        return {"op": type(self).__name__, "args": self._describe_args(),
                "inputs": [d._describe() for d in self._inputs()]}

    @property
    def name(self):
        """A short readable name for messages."""
        return type(self).__name__

    def _next_pass_index(self):
        with self._pass_lock:
            return next(self._pass_counter)

    def _note_pass_index(self, index):
        """After restoring pass ``index``, make the next ``iter()`` start pass ``index + 1`` or later."""
        with self._pass_lock:
            current = next(self._pass_counter)
            self._pass_counter = itertools.count(max(current, index + 1))

    # -- iteration -----------------------------------------------------------------------------------------
    def __iter__(self):
        """Start a new pass; returns a :class:`~kestimator.data.iterator.DatasetIterator`."""
        from .iterator import DatasetIterator
        return DatasetIterator(self)

    def as_numpy_iterator(self):
        """An iterator over the elements (they are NumPy values already; same as ``iter``)."""
        return iter(self)

    def iterator_from_state(self, state):
        """An iterator positioned where the one that produced ``state`` (``get_state()``) stood.

        Raises:
            InvalidArgumentError: the state is malformed or from a different pipeline.
        """
        from .iterator import DatasetIterator, check_state
        pass_index, _, entropy, _ = check_state(state, self)
        it = DatasetIterator(self, pass_index=pass_index, entropy=entropy)
        return it.set_state(state)

    def __len__(self):
        n = self.cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError("the dataset is infinite")
        if n == UNKNOWN_CARDINALITY:
            raise TypeError("the dataset's length is unknown")
        return n

    def __bool__(self):
        return True

    def cardinality(self):
        """The number of elements; INFINITE_CARDINALITY (-1) or UNKNOWN_CARDINALITY (-2) as in TF."""
        return self._cardinality()

    @property
    def element_spec(self):
        """Nested :class:`~kestimator.data.structure.TensorSpec` s of one element (None when empty).

        Sources know it statically; after a ``map`` it is found by calling the function on one element
        of the map's input (a sample drawn without filling shuffle buffers).
        """
        if self._spec_cache is None:
            self._spec_cache = (self._compute_element_spec(),)
        return self._spec_cache[0]

    def options(self):
        """The merged :class:`Options` of this pipeline (downstream settings win)."""
        merged = Options()
        for node in walk_upstream_first(self):
            if getattr(node, "_own_options", None) is not None:
                merged = merged.merge(node._own_options)
        return merged

    def with_options(self, options):
        """Apply ``options`` to the whole pipeline this dataset ends.

        Args:
            options: an :class:`Options`.
        """
        from .transforms import OptionsDataset
        if not isinstance(options, Options):
            raise InvalidArgumentError(f"with_options needs an Options, got {type(options).__name__}")
        return OptionsDataset(self, options)

    def apply(self, transformation_func):
        """``transformation_func(self)``, which must return a Dataset (for reusable pipeline pieces)."""
        result = transformation_func(self)
        if not isinstance(result, Dataset):
            raise InvalidArgumentError(f"apply: {getattr(transformation_func, '__name__', transformation_func)} "
                                       f"returned {type(result).__name__}, not a Dataset")
        return result

    def reduce(self, initial_state, reduce_func):
        """Fold the elements: ``state = reduce_func(state, element)`` over one pass; returns the state."""
        state = initial_state
        for element in self:
            state = reduce_func(state, element)
        return state

    # -- sources -------------------------------------------------------------------------------------------
    @staticmethod
    def from_tensor_slices(tensors, name=None):
        """One element per row (first dimension) of ``tensors``: an array, or a tuple/dict of arrays.

        Raises:
            InvalidArgumentError: the components have different lengths, or a component is a scalar.
        """
        from .sources import TensorSliceDataset
        return TensorSliceDataset(tensors)

    @staticmethod
    def from_tensors(tensors, name=None):
        """A dataset of exactly one element, ``tensors``."""
        from .sources import TensorDataset
        return TensorDataset(tensors)

    @staticmethod
    def from_generator(generator, output_types=None, output_shapes=None, args=None,
                       output_signature=None, name=None):
        """Elements from ``generator(*args)``, called afresh on every pass.

        Args:
            generator: a callable returning an iterable (not an iterator object: each pass calls it).
            output_types, output_shapes: nested dtypes and shapes (TF 1.x style), or
            output_signature: nested :class:`TensorSpec` s. Given a spec, each value is converted to its
                dtype and checked against its shape; without one, values pass through as NumPy values.
            args: a tuple of arguments for ``generator``.

        Raises:
            InvalidArgumentError (while iterating): a value does not fit the spec; names the element index.
        """
        from .sources import GeneratorDataset
        return GeneratorDataset(generator, output_types, output_shapes, args, output_signature)

    @staticmethod
    def range(*args, dtype=None, name=None):
        """``range(stop)``, ``range(start, stop[, step])`` as int64 scalars (or ``dtype``)."""
        from .sources import RangeDataset
        return RangeDataset(*args, dtype=dtype)

    @staticmethod
    def zip(*datasets, name=None):
        """Elements combined from several datasets, stopping with the shortest.

        ``Dataset.zip((a, b))`` or ``Dataset.zip(a, b)`` yields tuples; ``Dataset.zip({"x": a, "y": b})``
        yields dicts; nesting is kept.
        """
        from .combine import ZipDataset
        structure = datasets[0] if len(datasets) == 1 else tuple(datasets)
        return ZipDataset(structure)

    @staticmethod
    def list_files(file_pattern, shuffle=None, seed=None, name=None):
        """The files matching a glob pattern (or a list of patterns) as bytes paths.

        Args:
            file_pattern: a pattern or a list of patterns (``*``, ``?``, ``[...]``, ``**`` recursive).
            shuffle: shuffle the names on each pass (default True, as tf.data); False sorts them.
            seed: the shuffle's seed.

        Raises:
            NotFoundError: no file matches.
        """
        from .sources import list_files
        return list_files(file_pattern, shuffle, seed)

    # -- transformations -----------------------------------------------------------------------------------
    def map(self, map_func, num_parallel_calls=None, deterministic=None, use_processes=None, name=None):
        """Apply ``map_func`` to each element (tuple elements are unpacked into arguments).

        Args:
            map_func: a function of one element.
            num_parallel_calls: None to run in the consuming thread; an int to run on that many worker
                threads (or processes), on chunks of consecutive elements; AUTOTUNE to use one worker
                per CPU, or the consuming thread when measurement shows the workers do not pay (a
                GIL-bound function).
            deterministic: keep the input order (default, or ``Options.deterministic``); False yields
                results as they finish.
            use_processes: True to use worker processes (for GIL-bound functions); None follows
                ``Options.use_processes`` (default threads).

        Errors raised by ``map_func`` reach the consumer with their type, traceback and a note naming
        the element index; iteration may continue past them.
        """
        from .mapping import MapDataset
        return MapDataset(self, map_func, num_parallel_calls, deterministic, use_processes)

    def filter(self, predicate, name=None):
        """Keep the elements for which ``predicate`` returns True (a bool or a 0-d bool array)."""
        from .transforms import FilterDataset
        return FilterDataset(self, predicate)

    def flat_map(self, map_func, name=None):
        """``map_func`` returns a Dataset per element; their elements are concatenated in order."""
        from .interleave import InterleaveDataset
        return InterleaveDataset(self, map_func, cycle_length=1, block_length=1, num_parallel_calls=None,
                                 deterministic=None, op="flat_map")

    def interleave(self, map_func, cycle_length=None, block_length=None, num_parallel_calls=None,
                   deterministic=None, name=None):
        """Read ``cycle_length`` datasets built by ``map_func`` at once, ``block_length`` at a time.

        Args:
            map_func: element -> Dataset.
            cycle_length: datasets open at once (default/AUTOTUNE: the number of CPUs).
            block_length: consecutive elements taken from one dataset before moving on (default 1).
            num_parallel_calls: None reads in the consuming thread; otherwise each open dataset is
                read ahead by a background thread, at most this many at once.
            deterministic: False lets a ready dataset go ahead of one that is waiting.
        """
        from .interleave import InterleaveDataset
        return InterleaveDataset(self, map_func, cycle_length, block_length, num_parallel_calls,
                                 deterministic)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None,
              name=None):
        """Stack ``batch_size`` consecutive elements (each component with ``np.stack``).

        Raises:
            InvalidArgumentError (while iterating): elements of one batch differ in shape or structure.
        """
        from .batching import BatchDataset
        return BatchDataset(self, batch_size, drop_remainder)

    def padded_batch(self, batch_size, padded_shapes=None, padding_values=None, drop_remainder=False,
                     name=None):
        """Batch elements of different shapes, padding each component to the batch's largest shape.

        Args:
            padded_shapes: nested shapes; ``None`` / -1 dims pad to the batch maximum (default: all).
            padding_values: nested scalars (default 0, or b"" for strings).
        """
        from .batching import PaddedBatchDataset
        return PaddedBatchDataset(self, batch_size, padded_shapes, padding_values, drop_remainder)

    def unbatch(self, name=None):
        """Split each element along its first dimension (the inverse of ``batch``)."""
        from .batching import UnbatchDataset
        return UnbatchDataset(self)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True, name=None):
        """Shuffle with a buffer of ``buffer_size`` elements (uniform when it holds the whole dataset).

        Args:
            seed: an int for a reproducible order; None draws one per pass (recorded in
                the iterator state).
            reshuffle_each_iteration: a new order for each pass and each ``repeat`` epoch.
        """
        from .shuffle import ShuffleDataset
        return ShuffleDataset(self, buffer_size, seed, reshuffle_each_iteration)

    def repeat(self, count=None, name=None):
        """Repeat the dataset ``count`` times (None or -1: forever)."""
        from .transforms import RepeatDataset
        return RepeatDataset(self, count)

    def prefetch(self, buffer_size, name=None):
        """Produce up to ``buffer_size`` elements ahead on a background thread (AUTOTUNE: 8)."""
        from .prefetch import PrefetchDataset
        return PrefetchDataset(self, buffer_size)

    def cache(self, filename="", name=None):
        """Keep the elements of the first complete pass and replay them on later passes.

        Args:
            filename: "" keeps them in memory; a path writes them to a kestimator cache file (a framed,
                checksummed format holding only arrays and bytes) that later passes and later
                programs read instead of the input.
        """
        from .cache import CacheDataset
        return CacheDataset(self, filename)

    def take(self, count, name=None):
        """At most ``count`` elements (-1: all)."""
        from .slicing import TakeDataset
        return TakeDataset(self, count)

    def skip(self, count, name=None):
        """All but the first ``count`` elements (-1: none)."""
        from .slicing import SkipDataset
        return SkipDataset(self, count)

    def shard(self, num_shards, index, name=None):
        """Every ``num_shards``-th element starting at ``index``."""
        from .slicing import ShardDataset
        return ShardDataset(self, num_shards, index)

    def enumerate(self, start=0, name=None):
        """``(i, element)`` pairs, ``i`` an int64 counting from ``start``."""
        from .slicing import EnumerateDataset
        return EnumerateDataset(self, start)

    def concatenate(self, dataset, name=None):
        """This dataset's elements followed by ``dataset``'s (same structure and dtypes)."""
        from .combine import ConcatenateDataset
        return ConcatenateDataset(self, dataset)

    def window(self, size, shift=None, stride=1, drop_remainder=False, name=None):
        """Windows of ``size`` elements, each a Dataset (nested like the element), every ``shift``."""
        from .window import WindowDataset
        return WindowDataset(self, size, shift, stride, drop_remainder)


def walk_upstream_first(dataset):
    """Every node of the pipeline, inputs before the nodes that read them."""
    order, seen, stack = [], set(), [(dataset, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for child in reversed(node._inputs()):
            stack.append((child, False))
    return order
