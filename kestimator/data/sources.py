"""Datasets built from memory: tensor slices, single tensors, ranges, generators, file lists."""
import glob
import os

import numpy as np

from ..engine import dtypes
from ..errors import InvalidArgumentError, NotFoundError
from .dataset import Dataset
from .iterator import NodeIterator, add_note
from .structure import (TensorSpec, describe, flatten, is_structure, leaf_spec, map_structure,
                        normalize, pack_as, spec_of)


class _IndexedIterator(NodeIterator):
    """Iterates ``get(i)`` for i in [0, n): the shape of every random-access source.

    Args:
        get: index -> element.
        n: the number of elements.
        get_many: optional ``(a, b) -> list`` of elements a..b-1, faster than calling ``get``.
        batch_slice: optional ``(a, b) -> batched element`` (what ``batch`` would stack, built by
            slicing); given it, ``batch`` takes whole batches without touching single elements.
    """

    def __init__(self, get, n, get_many=None, batch_slice=None):
        self._get = get
        self._n = n
        self._pos = 0
        self._get_many = get_many
        self._batch_slice = batch_slice
        if batch_slice is not None:
            self.take_batch = self._take_batch

    def _take_batch(self, n, drop_remainder):
        """The next ``n`` elements as one batch; None at the end (a short last batch is dropped
        when ``drop_remainder``)."""
        start = self._pos
        stop = min(start + n, self._n)
        if stop <= start or (drop_remainder and stop - start < n):
            self._pos = self._n
            return None
        self._pos = stop
        return self._batch_slice(start, stop)

    def __next__(self):
        i = self._pos
        if i >= self._n:
            raise StopIteration
        self._pos = i + 1
        return self._get(i)

    def next_batch(self, n):
        start = self._pos
        stop = min(start + n, self._n)
        self._pos = stop
        if self._get_many is not None:
            return self._get_many(start, stop)
        get = self._get
        return [get(i) for i in range(start, stop)]

    def skip(self, n):
        start = self._pos
        self._pos = min(start + n, self._n)
        return self._pos - start


class TensorSliceDataset(Dataset):
    """One element per row of each component (``Dataset.from_tensor_slices``)."""

    def __init__(self, tensors):
        super().__init__()
        self._structure = normalize(tensors)
        self._flat = flatten(self._structure)
        if not self._flat:
            raise InvalidArgumentError("from_tensor_slices needs at least one component")
        lengths = []
        for k, comp in enumerate(self._flat):
            if not isinstance(comp, np.ndarray) or comp.ndim == 0:
                raise InvalidArgumentError(
                    f"from_tensor_slices: component {k} is a scalar; every component needs a first dimension")
            lengths.append(comp.shape[0])
        if len(set(lengths)) != 1:
            raise InvalidArgumentError(
                f"from_tensor_slices: components have different first dimensions {lengths}")
        self._n = lengths[0]

    def _get_function(self):
        flat, structure = self._flat, self._structure
        if not is_structure(structure):
            return structure.__getitem__, (lambda a, b: list(structure[a:b]))
        if isinstance(structure, tuple) and type(structure) is tuple and \
                not any(is_structure(s) for s in structure):
            return (lambda i: tuple([c[i] for c in flat])), None
        return (lambda i: pack_as(structure, [c[i] for c in flat])), None

    def _batch_slice(self, a, b):
        # copies, as np.stack would make: a batch must not alias the caller's arrays
        if not is_structure(self._structure):
            return self._structure[a:b].copy()
        return pack_as(self._structure, [c[a:b].copy() for c in self._flat])

    def _make_iterator(self, ctx, path):
        get, get_many = self._get_function()
        return _IndexedIterator(get, self._n, get_many, self._batch_slice)

    def _cardinality(self):
        return self._n

    def _compute_element_spec(self):
        return map_structure(lambda c: TensorSpec(c.shape[1:], leaf_spec(c).dtype), self._structure)

    def _sample_element(self):
        return self._get_function()[0](0) if self._n else None

    def _describe_args(self):
        return {"structure": describe(self._structure),
                "components": [(c.shape, str(c.dtype)) for c in self._flat]}


class TensorDataset(Dataset):
    """Exactly one element (``Dataset.from_tensors``)."""

    def __init__(self, tensors):
        super().__init__()
        self._element = normalize(tensors)

    def _make_iterator(self, ctx, path):
        element = self._element
        return _IndexedIterator(lambda i: element, 1)

    def _cardinality(self):
        return 1

    def _sample_element(self):
        return self._element

    def _describe_args(self):
        return {"structure": describe(self._element),
                "components": [(np.shape(c), str(np.asarray(c).dtype)) for c in flatten(self._element)]}


class ListDataset(Dataset):
    """The elements of a Python list, as they are (used for ``window`` and by other nodes)."""

    def __init__(self, elements, spec=None):
        super().__init__()
        self._elements = list(elements)
        self._spec = spec

    def _make_iterator(self, ctx, path):
        elements = self._elements
        return _IndexedIterator(elements.__getitem__, len(elements), lambda a, b: elements[a:b])

    def _cardinality(self):
        return len(self._elements)

    def _compute_element_spec(self):
        if self._spec is not None:
            return self._spec
        return spec_of(self._elements[0]) if self._elements else None

    def _sample_element(self):
        return self._elements[0] if self._elements else None

    def _describe_args(self):
        return {"length": len(self._elements)}


class RangeDataset(Dataset):
    """``Dataset.range``: int64 scalars (or ``dtype``)."""

    def __init__(self, *args, dtype=None):
        super().__init__()
        if not 1 <= len(args) <= 3:
            raise InvalidArgumentError(f"Dataset.range takes 1 to 3 arguments, got {len(args)}")
        for a in args:
            if isinstance(a, bool) or int(a) != a:
                raise InvalidArgumentError(f"Dataset.range arguments must be ints, got {args}")
        r = range(*(int(a) for a in args))   # Python's own argument rules (step != 0, ...)
        self._range = r
        self._dtype = dtypes.int64 if dtype is None else dtypes.as_dtype(dtype)
        if not (self._dtype.is_integer or self._dtype.is_floating):
            raise InvalidArgumentError(f"Dataset.range dtype must be numeric, got {self._dtype.name}")

    def _make_iterator(self, ctx, path):
        r, scalar = self._range, self._dtype.np.type
        np_dtype = self._dtype.np

        def get_many(a, b):
            return list(np.arange(r.start + a * r.step, r.start + b * r.step, r.step, dtype=np_dtype)) \
                if b > a else []
        def batch_slice(a, b):
            return np.arange(r.start + a * r.step, r.start + b * r.step, r.step, dtype=np_dtype)
        return _IndexedIterator(lambda i: scalar(r[i]), len(r), get_many, batch_slice)

    def _cardinality(self):
        return len(self._range)

    def _compute_element_spec(self):
        return TensorSpec((), self._dtype)

    def _sample_element(self):
        return self._dtype.np.type(0)

    def _describe_args(self):
        r = self._range
        return {"range": [r.start, r.stop, r.step], "dtype": self._dtype.name}


def _signature_from_types(output_types, output_shapes):
    if output_shapes is None:
        return map_structure(lambda t: TensorSpec(None, t), _as_structure(output_types))
    types, shapes = _as_structure(output_types), _as_structure(output_shapes, leaf_is_shape=True)
    flat_types = flatten(types)
    flat_shapes = flatten(shapes)
    if len(flat_types) != len(flat_shapes):
        raise InvalidArgumentError(f"from_generator: output_types has {len(flat_types)} components but "
                                   f"output_shapes has {len(flat_shapes)}")
    return pack_as(types, [TensorSpec(_ShapeLeaf.unwrap(s), t) for t, s in zip(flat_types, flat_shapes)])


class _ShapeLeaf:
    """Marks a shape tuple as a leaf while walking ``output_shapes`` (shapes are tuples too)."""

    def __init__(self, shape):
        self.shape = shape

    @staticmethod
    def unwrap(leaf):
        return leaf.shape if isinstance(leaf, _ShapeLeaf) else leaf


def _as_structure(value, leaf_is_shape=False):
    """Turn lists into tuples for type/shape structures; recognise shapes (tuples of ints/None)."""
    if leaf_is_shape and (value is None or (isinstance(value, (tuple, list)) and
                                            all(d is None or isinstance(d, (int, np.integer)) for d in value))):
        return _ShapeLeaf(value)
    if isinstance(value, (tuple, list)):
        return tuple(_as_structure(v, leaf_is_shape) for v in value)
    if isinstance(value, dict):
        return {k: _as_structure(v, leaf_is_shape) for k, v in value.items()}
    return value


def _convert_leaf(value, spec, index, k):
    if spec.dtype.is_string:
        out = normalize(value)
        arr = np.asarray(out, dtype=object) if not isinstance(out, bytes) else None
        shape = () if arr is None else arr.shape
    else:
        try:
            out = np.asarray(value, dtype=spec.dtype.np)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"from_generator: element {index}, component {k}: cannot convert "
                                       f"{type(value).__name__} to {spec.dtype.name} ({exc})") from None
        shape = out.shape
        if out.ndim == 0:
            out = out[()]
    if spec.shape is not None and (len(spec.shape) != len(shape) or
                                   any(s is not None and s != d for s, d in zip(spec.shape, shape))):
        raise InvalidArgumentError(f"from_generator: element {index}, component {k} has shape {shape}, "
                                   f"which does not match the declared shape {spec.shape}")
    return out


class _GeneratorIterator(NodeIterator):
    def __init__(self, iterator, signature, where):
        self._it = iterator
        self._signature = signature
        self._flat_specs = flatten(signature) if signature is not None else None
        self._index = 0
        self._where = where
        self._done = False

    def __next__(self):
        if self._done:
            raise StopIteration
        try:
            value = next(self._it)
        except StopIteration:
            self._done = True
            raise
        except Exception as exc:
            self._done = True     # a generator that raised is finished
            add_note(exc, f"raised by the generator of {self._where} at element {self._index}")
            raise
        index = self._index
        self._index += 1
        if self._signature is None:
            return normalize(value)
        specs = self._flat_specs
        if not is_structure(self._signature):
            return _convert_leaf(value, self._signature, index, 0)
        if isinstance(self._signature, tuple) and isinstance(value, list):
            value = tuple(value)
        try:
            leaves = flatten(value)
            if describe(value) != describe(self._signature):
                raise InvalidArgumentError("")
        except InvalidArgumentError:
            raise InvalidArgumentError(
                f"from_generator: element {index} has structure {describe(value)}, the signature declares "
                f"{describe(self._signature)}") from None
        return pack_as(self._signature, [_convert_leaf(v, s, index, k)
                                         for k, (v, s) in enumerate(zip(leaves, specs))])


class GeneratorDataset(Dataset):
    """``Dataset.from_generator``."""

    def __init__(self, generator, output_types, output_shapes, args, output_signature):
        super().__init__()
        if not callable(generator):
            raise InvalidArgumentError("from_generator needs a callable that returns an iterable "
                                       f"(got {type(generator).__name__}); wrap an iterator in a lambda")
        if output_signature is not None and (output_types is not None or output_shapes is not None):
            raise InvalidArgumentError("from_generator: give output_signature or output_types/"
                                       "output_shapes, not both")
        if output_signature is not None:
            self._signature = map_structure(_as_spec, _as_structure(output_signature))
        elif output_types is not None:
            self._signature = _signature_from_types(output_types, output_shapes)
        else:
            self._signature = None
        self._generator = generator
        self._args = tuple(args) if args is not None else ()

    def _make_iterator(self, ctx, path):
        return _GeneratorIterator(iter(self._generator(*self._args)), self._signature, self.name)

    @property
    def name(self):
        return f"Dataset.from_generator({getattr(self._generator, '__qualname__', '?')})"

    def _compute_element_spec(self):
        if self._signature is not None:
            return self._signature
        return super()._compute_element_spec()

    def _describe_args(self):
        return {"generator": getattr(self._generator, "__qualname__", repr(self._generator)),
                "signature": repr(self._signature)}


def _as_spec(value):
    if isinstance(value, TensorSpec):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):   # another library's spec type
        shape = value.shape
        shape = None if shape is None else tuple(shape)
        return TensorSpec(shape, value.dtype)
    raise InvalidArgumentError(f"output_signature leaves must be TensorSpec, got {type(value).__name__}")


def list_files(file_pattern, shuffle=None, seed=None):
    """See :meth:`Dataset.list_files`."""
    patterns = [file_pattern] if isinstance(file_pattern, (str, bytes, os.PathLike)) else list(file_pattern)
    names = set()
    for pattern in patterns:
        pattern = os.fsdecode(pattern)
        names.update(glob.glob(pattern, recursive=True))
    if not names:
        raise NotFoundError(f"list_files: no file matches {file_pattern!r}")
    files = np.empty(len(names), dtype=object)
    files[:] = [os.fsencode(n) for n in sorted(names)]
    dataset = TensorSliceDataset(files)
    if shuffle is None or shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    return dataset
