"""Iterators: the internal per-node protocol and the user-facing :class:`DatasetIterator`.

Each transformation's iterator speaks a small protocol (:class:`NodeIterator`):

* ``__next__()`` returns one element or raises StopIteration (and keeps raising it once exhausted);
* ``next_batch(n)`` returns a list of up to ``n`` elements — an empty list means exhausted, a short
  list may just mean that an error is waiting to be raised by the next call (so callers loop);
* ``skip(n)`` drops up to ``n`` elements, returning how many it dropped, *without computing them where
  it can*: a map skips its input, a batch skips ``n * batch_size`` input elements, a shuffle replays
  its random choices on indices. Restoring an iterator's position is ``skip(consumed)`` on a fresh
  pass, so this is what makes restoring cheap;
* ``close()`` stops whatever threads or processes the iterator started, and those of its inputs.

Errors raised by user functions are re-raised in the consumer with their original type and
traceback, plus a note naming the transformation and the element's index in that transformation's
input (``exc.__notes__``, shown by Python's traceback printer). A function that raises StopIteration
becomes an InvalidArgumentError, since letting it through would silently end the dataset.
"""
import hashlib
import json
import secrets
import warnings
import weakref

import numpy as np

from ..errors import InvalidArgumentError, OutOfRangeError
from .context import IterationContext

STATE_KIND = "kestimator.data.iterator"
STATE_VERSION = 1

# Path entries say where in the pipeline, and in which repetition, an iterator is; they seed the
# random transformations. Kinds that change from one pass or epoch to the next are dropped for
# transformations asked not to reshuffle.
PASS, EPOCH, ELEMENT, POSITION = 1, 2, 3, 4
_CHANGING_KINDS = (PASS, EPOCH)


def seed_sequence(seed, entropy, path, reshuffle=True):
    """A NumPy SeedSequence for a random transformation at ``path``.

    Args:
        seed: the transformation's ``seed`` argument, or None to use the pass's ``entropy``.
        entropy: the pass's random 63-bit integer (recorded in the iterator state).
        path: tuple of ``(kind, index)`` pairs, see the module constants.
        reshuffle: when False, the same order is drawn on every pass and epoch.
    """
    base = entropy if seed is None else int(seed) & 0xFFFFFFFFFFFFFFFF
    words = [base]
    for kind, index in path:
        if reshuffle or kind not in _CHANGING_KINDS:
            words.extend((kind, int(index)))
    return np.random.SeedSequence(words)


def add_note(exc, text):
    """Attach ``text`` to an exception the way Python 3.11's ``add_note`` does."""
    if hasattr(exc, "add_note"):
        exc.add_note(text)
    else:   # Python < 3.11: same attribute, printed by newer tooling
        exc.__notes__ = [*getattr(exc, "__notes__", []), text]


def raise_user_error(exc, where, index, remote_traceback=None):
    """Re-raise an exception from a user function with a note naming where it happened.

    Args:
        exc: the exception the user function raised.
        where: the transformation, e.g. ``"Dataset.map(parse)"``.
        index: the element's index in the transformation's input stream (0-based, this pass).
        remote_traceback: the formatted traceback from a worker process, if any.
    """
    note = f"raised by the function of {where} on input element {index}"
    if remote_traceback:
        note += "\n--- traceback in the worker process ---\n" + remote_traceback.rstrip()
    if isinstance(exc, StopIteration):
        raise InvalidArgumentError(f"the function of {where} raised StopIteration on input element {index}; "
                                   "raise another exception type to signal an error") from exc
    add_note(exc, note)
    raise exc


class NodeIterator:
    """Base of every transformation's iterator (see the module docstring for the protocol)."""

    _pending_error = None
    #: Optional ``take_batch(n, drop_remainder)`` of random-access sources: a whole batch by slicing.
    take_batch = None

    def __iter__(self):
        return self

    def __next__(self):
        raise NotImplementedError

    def _raise_pending(self):
        exc, self._pending_error = self._pending_error, None
        raise exc

    def next_batch(self, n):
        """Up to ``n`` elements; ``[]`` once exhausted."""
        if self._pending_error is not None:
            self._raise_pending()
        out = []
        append = out.append
        nxt = self.__next__
        try:
            for _ in range(n):
                append(nxt())
        except StopIteration:
            pass
        except Exception as exc:
            if not out:
                raise
            self._pending_error = exc    # hand over what we have; raise on the next call
        return out

    def skip(self, n):
        """Drop up to ``n`` elements; returns how many were dropped."""
        if self._pending_error is not None:
            self._raise_pending()
        done = 0
        nxt = self.__next__
        while done < n:
            try:
                nxt()
            except StopIteration:
                break
            done += 1
        return done

    def close(self):
        """Stop background work; the default has none."""


class ExhaustedIterator(NodeIterator):
    """An iterator with no elements."""

    def __next__(self):
        raise StopIteration

    def next_batch(self, n):
        return []

    def skip(self, n):
        return 0


def _close_pass(ctx, root):
    try:
        root.close()
    finally:
        ctx.close()


class DatasetIterator:
    """The iterator ``iter(dataset)`` returns: elements as NumPy values, a savable position.

    Breaking out of a loop, deleting the iterator or the interpreter exiting stops every thread and
    process it started. ``get_state()`` returns a JSON-able dict; :meth:`set_state` or
    ``Dataset.iterator_from_state`` continue from it with the next element, replaying the pass's
    random choices from the recorded seed material (the restore skips the consumed elements without
    computing them where the transformations allow, see :class:`NodeIterator`).
    """

    def __init__(self, dataset, pass_index=None, entropy=None):
        self._dataset = dataset
        self._open(pass_index if pass_index is not None else dataset._next_pass_index(),
                   entropy if entropy is not None else secrets.randbits(63))

    def _open(self, pass_index, entropy):
        self._pass_index = pass_index
        self._entropy = entropy
        self._consumed = 0
        self._errors = 0              # exceptions raised to the caller during this pass
        self._exhausted = False       # no more elements will be returned
        self._finished = False        # the pass reached its end (recorded in the state)
        from .dataset import walk_upstream_first
        self._ctx = IterationContext(self._dataset.options(), entropy,
                                     static_nodes=walk_upstream_first(self._dataset))
        self._root = self._dataset._make_iterator(self._ctx, ((PASS, pass_index),))
        # The finalizer holds the context and root, never self: dropping the iterator closes the pass.
        self._finalizer = weakref.finalize(self, _close_pass, self._ctx, self._root)

    def __iter__(self):
        return self

    def __next__(self):
        if self._exhausted:
            raise StopIteration
        try:
            element = self._root.__next__()
        except StopIteration:
            self._exhausted = self._finished = True
            self._finalizer()     # free threads and processes as soon as the pass ends
            raise
        except Exception:
            self._errors += 1
            raise
        self._consumed += 1
        return element

    next = __next__

    def get_next(self):
        """The next element, or :class:`~kestimator.errors.OutOfRangeError` at the end (TF 1.x style)."""
        try:
            return self.__next__()
        except StopIteration:
            raise OutOfRangeError("End of sequence: the dataset has no more elements") from None

    @property
    def element_spec(self):
        return self._dataset.element_spec

    @property
    def memory_budget(self):
        """The pass's :class:`~kestimator.data.context.MemoryBudget` (None without a budget)."""
        return self._ctx.budget

    def close(self):
        """Stop the pass now (idempotent); later ``next()`` calls raise StopIteration."""
        self._exhausted = True
        self._finalizer()

    def get_state(self):
        """The position as a JSON-able dict: pass, elements consumed, seed material, pipeline hash.

        A position is a count of the elements returned, so a pass in which elements raised errors
        (and were dropped) cannot be replayed exactly: a warning says so, and the restored iterator
        may be off by up to that many input elements.
        """
        if self._errors:
            warnings.warn(f"iterator state saved after {self._errors} element(s) of this pass raised errors; "
                          "restoring it may be off by up to that many input elements", RuntimeWarning,
                          stacklevel=2)
        return {"kind": STATE_KIND, "version": STATE_VERSION, "pass": self._pass_index,
                "consumed": self._consumed, "entropy": format(self._entropy, "x"),
                "exhausted": self._finished,
                "fingerprint": fingerprint(self._dataset)}

    def set_state(self, state):
        """Move to the position ``state`` describes (from :meth:`get_state` of the same pipeline).

        Raises:
            InvalidArgumentError: the state is malformed or was saved from a different pipeline.
        """
        pass_index, consumed, entropy, exhausted = check_state(state, self._dataset)
        self._finalizer()
        self._open(pass_index, entropy)
        self._dataset._note_pass_index(pass_index)
        if exhausted:
            self._consumed = consumed
            self._exhausted = self._finished = True
            self._finalizer()
            return self
        skipped = self._root.skip(consumed)
        self._consumed = skipped
        return self


def check_state(state, dataset):
    """Validate an iterator state dict; returns ``(pass, consumed, entropy, exhausted)``."""
    if not isinstance(state, dict) or state.get("kind") != STATE_KIND:
        raise InvalidArgumentError(f"not a dataset iterator state: {state!r:.200}")
    if state.get("version") != STATE_VERSION:
        raise InvalidArgumentError(f"iterator state version {state.get('version')!r} is not supported "
                                   f"(this kestimator reads version {STATE_VERSION})")
    try:
        pass_index = int(state["pass"])
        consumed = int(state["consumed"])
        entropy = int(state["entropy"], 16)
        exhausted = bool(state.get("exhausted", False))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"malformed iterator state, field {exc}") from None
    if consumed < 0 or pass_index < 0:
        raise InvalidArgumentError(f"malformed iterator state: pass {pass_index}, consumed {consumed}")
    expected = fingerprint(dataset)
    if state.get("fingerprint") != expected:
        raise InvalidArgumentError(
            "the iterator state was saved from a different pipeline "
            f"(fingerprint {state.get('fingerprint')!r}, this dataset {expected!r})")
    return pass_index, consumed, entropy, exhausted


def fingerprint(dataset):
    """A short hash of the pipeline's structure (transformations, their arguments, function names)."""
    text = json.dumps(dataset._describe(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
