"""batch, padded_batch and unbatch.

A batch is built once per ``batch_size`` elements with one ``np.stack`` per component; the input is
pulled with ``next_batch`` so the per-element cost is a list append.
"""
import numpy as np

from ..errors import InvalidArgumentError
from .iterator import NodeIterator
from .options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from .structure import TensorSpec, describe, flatten, map_structure, pack_as
from .transforms import UnaryDataset
from .validation import check_positive_int


def stack_elements(elements):
    """Stack a list of same-structured elements into one batch element.

    Raises:
        InvalidArgumentError: the elements differ in structure or in the shape of a component (the
            message names the component and the first element that differs).
    """
    first = elements[0]
    if isinstance(first, np.ndarray):
        try:
            return np.stack(elements)
        except ValueError:
            _raise_shape_mismatch([np.shape(e) for e in elements], 0)
            raise
    if isinstance(first, tuple):
        if any(not isinstance(e, tuple) or len(e) != len(first) for e in elements):
            _raise_structure_mismatch(elements)
        columns = [stack_elements(list(col)) for col in zip(*elements)]
        return type(first)(*columns) if hasattr(type(first), "_fields") else tuple(columns)
    if isinstance(first, dict):
        keys = first.keys()
        if any(not isinstance(e, dict) or e.keys() != keys for e in elements):
            _raise_structure_mismatch(elements)
        return {k: stack_elements([e[k] for e in elements]) for k in first}
    if isinstance(first, (bytes, str)):
        out = np.empty(len(elements), dtype=object)
        out[:] = elements
        return out
    try:
        out = np.array(elements)
    except ValueError:
        _raise_shape_mismatch([np.shape(e) for e in elements], 0)
        raise
    if out.dtype == object or out.ndim != 1 + np.ndim(first):
        _raise_shape_mismatch([np.shape(e) for e in elements], 0)
    return out


def _raise_shape_mismatch(shapes, component):
    for i, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise InvalidArgumentError(
                f"Cannot batch tensors with different shapes in component {component}: the first element "
                f"had shape {shapes[0]} and element {i} had shape {shape}; use padded_batch for "
                "elements of varying shape")


def _raise_structure_mismatch(elements):
    first = describe(elements[0])
    for i, e in enumerate(elements):
        if describe(e) != first:
            raise InvalidArgumentError(f"Cannot batch elements of different structures: the first element is "
                                       f"{first} and element {i} is {describe(e)}")


def _batched_spec(spec, batch_dim):
    return map_structure(lambda s: TensorSpec(None if s.shape is None else (batch_dim, *s.shape), s.dtype),
                         spec)


class _BatchIterator(NodeIterator):
    def __init__(self, it, batch_size, drop_remainder, make_batch, slice_fast_path=False):
        self._it = it
        # A random-access source can hand over whole batches (slices), skipping per-element work.
        self._take = it.take_batch if slice_fast_path else None
        self._bs = batch_size
        self._drop = drop_remainder
        self._make = make_batch
        self._partial = None        # elements of a batch interrupted by an input error
        self._done = False

    def _collect(self):
        items = self._partial or []
        self._partial = None
        bs = self._bs
        while len(items) < bs:
            try:
                got = self._it.next_batch(bs - len(items))
            except Exception:
                self._partial = items
                raise
            if not got:
                break
            if items:
                items.extend(got)
            else:
                items = got
        return items

    def __next__(self):
        if self._done:
            raise StopIteration
        if self._take is not None and self._partial is None:
            batch = self._take(self._bs, self._drop)
            if batch is None:
                self._done = True
                raise StopIteration
            return batch
        items = self._collect()
        if not items or (self._drop and len(items) < self._bs):
            self._done = True
            raise StopIteration
        return self._make(items)

    def skip(self, n):
        if self._done or n <= 0:
            return 0
        have = len(self._partial) if self._partial else 0
        self._partial = None
        want = n * self._bs - have
        got = self._it.skip(want) + have
        full, rest = divmod(got, self._bs)
        if got < n * self._bs:
            self._done = True
            return full + (1 if rest and not self._drop else 0)
        return n

    def close(self):
        self._it.close()


class BatchDataset(UnaryDataset):
    """``batch(batch_size, drop_remainder)``."""

    def __init__(self, input_dataset, batch_size, drop_remainder):
        super().__init__(input_dataset)
        self._bs = check_positive_int(batch_size, "batch_size")
        self._drop = bool(drop_remainder)

    def _make_iterator(self, ctx, path):
        return _BatchIterator(self._input._make_iterator(ctx, path), self._bs, self._drop, stack_elements,
                              slice_fast_path=True)

    def _cardinality(self):
        n = self._input.cardinality()
        if n in (INFINITE_CARDINALITY, UNKNOWN_CARDINALITY):
            return n
        return n // self._bs if self._drop else -(-n // self._bs)

    def _compute_element_spec(self):
        spec = self._input.element_spec
        return None if spec is None else _batched_spec(spec, self._bs if self._drop else None)

    def _sample_element(self):
        sample = self._input._sample_element()
        return None if sample is None else stack_elements([sample])

    def _describe_args(self):
        return {"batch_size": self._bs, "drop_remainder": self._drop}


# -- padded_batch ------------------------------------------------------------------------------------------
class _ShapeLeaf:
    def __init__(self, shape):
        self.shape = shape


def _shapes_structure(padded_shapes, like):
    """Nest ``padded_shapes`` like the element ``like`` (shapes are tuples, so walk alongside it)."""
    if isinstance(like, tuple):
        if not isinstance(padded_shapes, (tuple, list)) or len(padded_shapes) != len(like):
            raise InvalidArgumentError(f"padded_shapes {padded_shapes!r} does not match the element "
                                       f"structure {describe(like)}")
        return tuple(_shapes_structure(p, l) for p, l in zip(padded_shapes, like))
    if isinstance(like, dict):
        if not isinstance(padded_shapes, dict) or set(padded_shapes) != set(like):
            raise InvalidArgumentError(f"padded_shapes {padded_shapes!r} does not match the element "
                                       f"structure {describe(like)}")
        return {k: _shapes_structure(padded_shapes[k], like[k]) for k in like}
    return _ShapeLeaf(None if padded_shapes is None else tuple(padded_shapes))


def _pad_component(values, padded_shape, pad_value, component):
    arrays = [v if isinstance(v, np.ndarray) else np.asarray(v, dtype=object if isinstance(v, bytes) else None)
              for v in values]
    rank = arrays[0].ndim
    if any(a.ndim != rank for a in arrays):
        raise InvalidArgumentError(f"padded_batch: component {component} has elements of different ranks "
                                   f"{sorted({a.ndim for a in arrays})}")
    if padded_shape is not None and len(padded_shape) != rank:
        raise InvalidArgumentError(f"padded_batch: padded shape {padded_shape} of component {component} "
                                   f"has rank {len(padded_shape)}, the elements have rank {rank}")
    target = []
    for d in range(rank):
        biggest = max(a.shape[d] for a in arrays)
        want = None if padded_shape is None else padded_shape[d]
        if want is None or want == -1:
            target.append(biggest)
        elif want < biggest:
            i = next(i for i, a in enumerate(arrays) if a.shape[d] > want)
            raise InvalidArgumentError(f"padded_batch: element {i} component {component} has dimension {d} of "
                                       f"size {arrays[i].shape[d]}, larger than the padded size {want}")
        else:
            target.append(int(want))
    dtype = np.result_type(*arrays) if arrays[0].dtype != object else object
    if pad_value is None:
        pad_value = b"" if dtype == object else 0
    out = np.full((len(arrays), *target), pad_value, dtype=dtype)
    for i, a in enumerate(arrays):
        out[(i, *(slice(0, s) for s in a.shape))] = a
    return out


class PaddedBatchDataset(UnaryDataset):
    """``padded_batch(batch_size, padded_shapes, padding_values, drop_remainder)``."""

    def __init__(self, input_dataset, batch_size, padded_shapes, padding_values, drop_remainder):
        super().__init__(input_dataset)
        self._bs = check_positive_int(batch_size, "batch_size")
        self._drop = bool(drop_remainder)
        self._padded_shapes = padded_shapes
        self._padding_values = padding_values

    def _make_batch(self, items):
        like = items[0]
        flat_items = [flatten(e) for e in items]
        if any(len(f) != len(flat_items[0]) for f in flat_items):
            _raise_structure_mismatch(items)
        n = len(flat_items[0])
        shapes = [None] * n if self._padded_shapes is None else \
            [leaf.shape for leaf in flatten(_shapes_structure(self._padded_shapes, like))]
        if self._padding_values is None or not isinstance(self._padding_values, (tuple, dict)):
            pads = [self._padding_values] * n
        else:
            pads = flatten(self._padding_values)
            if len(pads) != n:
                raise InvalidArgumentError(f"padding_values {self._padding_values!r} does not match the "
                                           f"element structure {describe(like)}")
        columns = [_pad_component([f[k] for f in flat_items], shapes[k], pads[k], k) for k in range(n)]
        return pack_as(like, columns)

    def _make_iterator(self, ctx, path):
        return _BatchIterator(self._input._make_iterator(ctx, path), self._bs, self._drop, self._make_batch)

    def _cardinality(self):
        n = self._input.cardinality()
        if n < 0:
            return n
        return n // self._bs if self._drop else -(-n // self._bs)

    def _compute_element_spec(self):
        spec = self._input.element_spec
        if spec is None:
            return None
        batch_dim = self._bs if self._drop else None
        if self._padded_shapes is None:
            return map_structure(lambda s: TensorSpec(None if s.shape is None else (batch_dim,) +
                                                      (None,) * len(s.shape), s.dtype), spec)
        shapes = [leaf.shape for leaf in flatten(_shapes_structure(self._padded_shapes, spec))]
        flat = flatten(spec)
        return pack_as(spec, [TensorSpec((batch_dim, *(None if d in (None, -1) else d for d in shape))
                                         if shape is not None else None, s.dtype)
                              for s, shape in zip(flat, shapes)])

    def _sample_element(self):
        sample = self._input._sample_element()
        return None if sample is None else self._make_batch([sample])

    def _describe_args(self):
        return {"batch_size": self._bs, "drop_remainder": self._drop, "padded_shapes": repr(self._padded_shapes)}


# -- unbatch ---------------------------------------------------------------------------------------------
def _split_rows(element):
    """The rows of a batched element (split along the first dimension of every component)."""
    if isinstance(element, np.ndarray) and element.ndim > 0:
        return list(element)
    leaves = flatten(element)
    lengths = set()
    for k, leaf in enumerate(leaves):
        if np.ndim(leaf) == 0:
            raise InvalidArgumentError(f"unbatch: component {k} is a scalar; every component needs a batch "
                                       "dimension")
        lengths.add(len(leaf))
    if len(lengths) != 1:
        raise InvalidArgumentError(f"unbatch: components have different batch sizes {sorted(lengths)}")
    if not isinstance(element, (tuple, dict)):
        return list(element)
    return [pack_as(element, list(row)) for row in zip(*leaves)]


def _batch_length(element):
    leaf = flatten(element)[0]
    if np.ndim(leaf) == 0:
        raise InvalidArgumentError("unbatch: an element has a scalar component")
    return len(leaf)


class _UnbatchIterator(NodeIterator):
    def __init__(self, it):
        self._it = it
        self._rows = []
        self._pos = 0

    def __next__(self):
        while self._pos >= len(self._rows):
            self._rows = _split_rows(next(self._it))
            self._pos = 0
        row = self._rows[self._pos]
        self._pos += 1
        return row

    def next_batch(self, n):
        if self._pos >= len(self._rows):
            try:
                self._rows = _split_rows(next(self._it))
            except StopIteration:
                return []
            self._pos = 0
        out = self._rows[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def skip(self, n):
        done = min(n, len(self._rows) - self._pos)
        self._pos += done
        while done < n:
            try:
                element = next(self._it)
            except StopIteration:
                break
            size = _batch_length(element)
            if done + size <= n:
                done += size
                continue
            self._rows = _split_rows(element)
            self._pos = n - done
            done = n
        return done

    def close(self):
        self._it.close()


class UnbatchDataset(UnaryDataset):
    """``unbatch()``."""

    def _make_iterator(self, ctx, path):
        return _UnbatchIterator(self._input._make_iterator(ctx, path))

    def _cardinality(self):
        n = self._input.cardinality()
        return n if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    def _compute_element_spec(self):
        spec = self._input.element_spec
        return None if spec is None else map_structure(
            lambda s: TensorSpec(None if s.shape is None else s.shape[1:], s.dtype), spec)

    def _sample_element(self):
        sample = self._input._sample_element()
        if sample is None:
            return None
        rows = _split_rows(sample)
        return rows[0] if rows else None
