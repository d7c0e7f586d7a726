"""interleave and flat_map: read several datasets made from the input's elements, round robin.

The order is tf.data's: ``cycle_length`` slots; take ``block_length`` elements from the current slot,
then move to the next; an empty slot is filled with the dataset of the next input element (and read
at once); a slot whose dataset ends is emptied and the cycle moves on. ``flat_map`` is the case
``cycle_length = block_length = 1``.

With ``num_parallel_calls`` every open dataset is read ahead by a background thread (at most
``num_parallel_calls`` reading at once); the order stays the same unless ``deterministic=False``,
which lets a slot with data ready go before the current one when that one has to wait.
"""
import os
import threading

from ..errors import InvalidArgumentError
from .dataset import Dataset
from .iterator import ELEMENT, NodeIterator, raise_user_error
from .options import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from .prefetch import _PrefetchIterator
from .structure import call_with_element
from .transforms import UnaryDataset, function_name
from .validation import check_positive_int, resolve_parallelism


class _InterleaveIterator(NodeIterator):
    def __init__(self, node, ctx, path, parallel, deterministic):
        self._node = node
        self._input = node._input._make_iterator(ctx, path)
        self._ctx, self._path = ctx, path
        self._cycle, self._block = node._cycle_length(), node._block
        self._slots = [None] * self._cycle
        self._cycle_index = 0
        self._block_index = 0
        self._num_open = 0
        self._input_done = False
        self._element_index = 0
        self._parallel = parallel
        self._semaphore = threading.BoundedSemaphore(parallel) if parallel else None
        self._deterministic = deterministic

    def _open(self, i):
        """Fill slot ``i`` with the next input element's dataset (or note the input's end)."""
        try:
            element = next(self._input)
        except StopIteration:
            self._input_done = True
            return
        index = self._element_index
        self._element_index += 1
        try:
            dataset = call_with_element(self._node._fn, element)
        except Exception as exc:
            raise_user_error(exc, self._node.name, index)
        if not isinstance(dataset, Dataset):
            raise InvalidArgumentError(f"the function of {self._node.name} must return a Dataset; on input "
                                       f"element {index} it returned {type(dataset).__name__}")
        it = dataset._make_iterator(self._ctx, self._path + ((ELEMENT, index),))
        if self._parallel:
            it = _PrefetchIterator(it, max(2, 2 * self._block), self._ctx, self._semaphore)
        self._slots[i] = it
        self._num_open += 1

    def _drop(self, i):
        self._slots[i].close()
        self._slots[i] = None
        self._num_open -= 1

    def _advance(self):
        self._block_index = 0
        self._cycle_index = (self._cycle_index + 1) % self._cycle

    def __next__(self):
        while not self._input_done or self._num_open:
            i = self._cycle_index
            slot = self._slots[i]
            if slot is None:
                if self._input_done:
                    self._advance()
                elif self._parallel:
                    self._open_all_empty()
                else:
                    self._open(i)
                continue
            if self._parallel and not self._deterministic:
                # Whichever open input has an element first goes first.
                while not slot.ready():
                    element = self._take_any_ready()
                    if element is not _NOTHING:
                        return element
                    slot.wait_ready(0.005)
            try:
                element = next(slot)
            except StopIteration:
                self._drop(i)
                self._advance()
                continue
            self._block_index += 1
            if self._block_index >= self._block:
                self._advance()
            return element
        raise StopIteration

    def _open_all_empty(self):
        """Parallel mode: fill every empty slot now, in cycle order from the current one, and start
        reading them all. The round robin would give each of these slots the same input element when
        it got there (a slot emptied meanwhile is only refilled on the cycle's next visit), so the
        order is unchanged; the readers just start earlier."""
        for k in range(self._cycle):
            j = (self._cycle_index + k) % self._cycle
            if self._slots[j] is None and not self._input_done:
                self._open(j)
        for slot in self._slots:
            if slot is not None:
                slot.start()

    def _take_any_ready(self):
        """Non-deterministic mode: an element from any other slot that has one waiting."""
        for j, slot in enumerate(self._slots):
            if j != self._cycle_index and slot is not None and slot.ready() and slot._buf:
                try:
                    return next(slot)
                except StopIteration:
                    continue
        return _NOTHING

    def skip(self, n):
        done = 0
        while done < n and (not self._input_done or self._num_open):
            i = self._cycle_index
            slot = self._slots[i]
            if slot is None:
                if self._input_done:
                    self._advance()
                else:
                    self._open(i)
                continue
            want = min(n - done, self._block - self._block_index)
            k = slot.skip(want)
            done += k
            self._block_index += k
            if k < want:
                self._drop(i)
                self._advance()
            elif self._block_index >= self._block:
                self._advance()
        return done

    def close(self):
        for i, slot in enumerate(self._slots):
            if slot is not None:
                slot.close()
                self._slots[i] = None
        self._input.close()


_NOTHING = object()


class InterleaveDataset(UnaryDataset):
    """``interleave`` / ``flat_map``."""

    def __init__(self, input_dataset, map_func, cycle_length, block_length, num_parallel_calls,
                 deterministic, op="interleave"):
        super().__init__(input_dataset)
        if not callable(map_func):
            raise InvalidArgumentError(f"{op} needs a callable returning a Dataset")
        self._fn = map_func
        self._op = op
        self._cycle = resolve_parallelism(cycle_length, f"{op} cycle_length")
        self._block = 1 if block_length is None else check_positive_int(block_length, f"{op} block_length")
        self._parallel = resolve_parallelism(num_parallel_calls, f"{op} num_parallel_calls")
        self._deterministic = deterministic

    @property
    def name(self):
        return f"Dataset.{self._op}({function_name(self._fn)})"

    def _cycle_length(self):
        if self._cycle in (None, AUTOTUNE):
            return os.cpu_count() or 1
        return self._cycle

    def _make_iterator(self, ctx, path):
        parallel = None
        if self._parallel is not None:
            parallel = self._cycle_length() if self._parallel == AUTOTUNE else self._parallel
        deterministic = self._deterministic
        if deterministic is None:
            deterministic = ctx.options.resolved_deterministic
        return _InterleaveIterator(self, ctx, path, parallel, deterministic)

    def _cardinality(self):
        n = self._input.cardinality()
        if n == 0:
            return 0
        return INFINITE_CARDINALITY if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    def _inner_sample_dataset(self):
        sample = self._input._sample_element()
        if sample is None:
            return None
        try:
            dataset = call_with_element(self._fn, sample)
        except Exception as exc:
            raise_user_error(exc, self.name + " (computing element_spec)", 0)
        if not isinstance(dataset, Dataset):
            raise InvalidArgumentError(f"the function of {self.name} must return a Dataset, "
                                       f"got {type(dataset).__name__}")
        return dataset

    def _compute_element_spec(self):
        dataset = self._inner_sample_dataset()
        return None if dataset is None else dataset.element_spec

    def _sample_element(self):
        dataset = self._inner_sample_dataset()
        return None if dataset is None else dataset._sample_element()

    def _describe_args(self):
        return {"op": self._op, "fn": function_name(self._fn), "cycle_length": self._cycle,
                "block_length": self._block, "parallel": self._parallel}
