"""shuffle: a fixed-size buffer, one uniformly chosen slot emitted and refilled per element.

The random stream is a NumPy PCG64 seeded from the transformation's seed (or the pass's recorded
entropy) and its path in the pipeline (pass, repeat epoch, interleave element, position), so a seeded
pipeline repeats itself and each pass / epoch gets its own order unless ``reshuffle_each_iteration``
is False.

Restoring a position is cheap when the input's cardinality is known: :meth:`_ShuffleIterator.skip`
replays the random choices on *input positions*, then reads only the elements still in the buffer and
skips the others (a ``map`` upstream does not run for them). With an unknown cardinality it falls back
to reading (and shuffling) the skipped elements.
"""
import numpy as np

from ..errors import InternalError
from .iterator import NodeIterator, seed_sequence
from .options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from .structure import nbytes
from .transforms import UnaryDataset
from .validation import check_positive_int

_DRAW_BLOCK = 4096


class _ShuffleIterator(NodeIterator):
    def __init__(self, it, buffer_size, seeds, budget, where, input_cardinality):
        self._it = it
        self._size = buffer_size
        self._rng = np.random.Generator(np.random.PCG64(seeds))
        self._draws = []
        self._draw_pos = 0
        self._buf = []
        self._filled = False
        self._input_done = False
        self._carry = None            # an element chosen just before an input error
        self._budget = budget
        self._where = where
        self._input_cardinality = input_cardinality

    def _uniform(self):
        if self._draw_pos >= len(self._draws):
            self._draws = self._rng.random(_DRAW_BLOCK).tolist()
            self._draw_pos = 0
        u = self._draws[self._draw_pos]
        self._draw_pos += 1
        return u

    def _hold(self, element):
        if self._budget is not None:
            self._budget.reserve_required(nbytes(element), f"the buffer of {self._where}")

    def _let_go(self, element):
        if self._budget is not None:
            self._budget.release_required(nbytes(element))

    def _fill(self):
        buf, size, nxt = self._buf, self._size, self._it.__next__
        while len(buf) < size:
            try:
                element = nxt()
            except StopIteration:
                self._input_done = True
                break
            self._hold(element)
            buf.append(element)
        self._filled = True

    def __next__(self):
        if self._carry is not None:
            element, self._carry = self._carry[0], None
            return element
        if not self._filled:
            self._fill()
        buf = self._buf
        if not buf:
            raise StopIteration
        j = int(self._uniform() * len(buf))
        element = buf[j]
        self._let_go(element)
        if not self._input_done:
            try:
                new = self._it.__next__()
                self._hold(new)
                buf[j] = new
                return element
            except StopIteration:
                self._input_done = True
            except Exception:
                buf[j] = buf[-1]
                buf.pop()
                self._carry = (element,)
                raise
        buf[j] = buf[-1]
        buf.pop()
        return element

    def next_batch(self, n):
        if self._carry is not None or self._budget is not None or not self._filled:
            return super().next_batch(n)
        # The hot loop of the common case, with the attribute look-ups hoisted.
        buf, out, nxt = self._buf, [], self._it.__next__
        draws, pos = self._draws, self._draw_pos
        for _ in range(n):
            if not buf:
                break
            if pos >= len(draws):
                draws, pos = self._rng.random(_DRAW_BLOCK).tolist(), 0
            j = int(draws[pos] * len(buf))
            pos += 1
            out.append(buf[j])
            if not self._input_done:
                try:
                    buf[j] = nxt()
                    continue
                except StopIteration:
                    self._input_done = True
                except Exception as exc:
                    buf[j] = buf[-1]
                    buf.pop()
                    self._draws, self._draw_pos = draws, pos
                    self._pending_error = exc
                    return out
            buf[j] = buf[-1]
            buf.pop()
        self._draws, self._draw_pos = draws, pos
        return out

    def skip(self, n):
        size = self._input_cardinality() if not self._filled and self._carry is None else UNKNOWN_CARDINALITY
        if size == UNKNOWN_CARDINALITY:
            return super().skip(n)
        return self._replay_skip(n, float("inf") if size == INFINITE_CARDINALITY else size)

    def _replay_skip(self, n, input_size):
        """Skip ``n`` outputs of a fresh shuffle by replaying its choices on input positions."""
        slots = []
        next_pos = 0
        while len(slots) < self._size and next_pos < input_size:
            slots.append(next_pos)
            next_pos += 1
        done = 0
        while done < n and slots:
            j = int(self._uniform() * len(slots))
            if next_pos < input_size:
                slots[j] = next_pos
                next_pos += 1
            else:
                slots[j] = slots[-1]
                slots.pop()
            done += 1
        # Read the elements still in the buffer, skipping the ones that were emitted.
        elements, cursor = {}, 0
        for pos in sorted(slots):
            if pos > cursor and self._it.skip(pos - cursor) != pos - cursor:
                raise InternalError(f"{self._where}: the input ended before its cardinality said")
            try:
                element = next(self._it)
            except StopIteration:
                raise InternalError(f"{self._where}: the input ended before its cardinality said") from None
            self._hold(element)
            elements[pos] = element
            cursor = pos + 1
        if next_pos > cursor and next_pos != float("inf"):
            self._it.skip(int(next_pos - cursor))
        self._buf = [elements[p] for p in slots]
        self._filled = True
        self._input_done = next_pos >= input_size
        return done

    def close(self):
        self._it.close()


class ShuffleDataset(UnaryDataset):
    """``shuffle(buffer_size, seed, reshuffle_each_iteration)``."""

    def __init__(self, input_dataset, buffer_size, seed, reshuffle_each_iteration):
        super().__init__(input_dataset)
        self._size = check_positive_int(buffer_size, "shuffle buffer_size")
        self._seed = None if seed is None else int(seed)
        self._reshuffle = True if reshuffle_each_iteration is None else bool(reshuffle_each_iteration)

    @property
    def name(self):
        return f"Dataset.shuffle(buffer_size={self._size})"

    def _make_iterator(self, ctx, path):
        seeds = seed_sequence(self._seed, ctx.entropy, path, self._reshuffle)
        return _ShuffleIterator(self._input._make_iterator(ctx, path), self._size, seeds, ctx.budget,
                                self.name, self._input.cardinality)

    def _describe_args(self):
        return {"buffer_size": self._size, "seed": self._seed, "reshuffle": self._reshuffle}
