"""Transformations against plain-Python references: batching, windows, filter, zip, apply, specs."""
import numpy as np
import pytest

from kestimator.data import AUTOTUNE, Dataset, DatasetSpec, TensorSpec, experimental
from kestimator.engine import dtypes
from kestimator.errors import InvalidArgumentError

from .data_helpers import plain


def test_batch_stacks_each_component_of_nested_elements():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    y = np.array([b"a", b"b", b"c", b"d", b"e"], dtype=object)
    ds = Dataset.from_tensor_slices({"x": x, "meta": (np.arange(5), y)}).batch(2)
    got = list(ds)
    assert [b["x"].tolist() for b in got] == [x[0:2].tolist(), x[2:4].tolist(), x[4:5].tolist()]
    assert [b["meta"][1].tolist() for b in got] == [[b"a", b"b"], [b"c", b"d"], [b"e"]]
    assert got[0]["meta"][1].dtype == object and got[0]["x"].dtype == np.float32
    assert ds.element_spec == {"x": TensorSpec((None, 2), dtypes.float32),
                               "meta": (TensorSpec((None,), dtypes.int64), TensorSpec((None,), dtypes.string))}
    assert Dataset.range(5).batch(2, drop_remainder=True).element_spec == TensorSpec((2,), dtypes.int64)


def test_batch_of_different_shapes_names_the_element():
    ds = Dataset.range(1, 4).map(lambda n: np.zeros(n)).batch(3)
    with pytest.raises(InvalidArgumentError,
                       match=r"first element had shape \(1,\) and element 1 had shape \(2,\)"):
        next(iter(ds))


def test_batch_of_python_scalars_and_bytes():
    ds = Dataset.range(4).map(lambda x: (int(x), float(x) / 2, b"k%d" % x)).batch(4)
    ints, floats, names = next(iter(ds))
    assert ints.tolist() == [0, 1, 2, 3] and floats.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert names.dtype == object and names.tolist() == [b"k0", b"k1", b"k2", b"k3"]


def test_padded_batch_too_small_padded_shape_is_an_error():
    ds = Dataset.range(1, 5).map(lambda n: np.ones(n)).padded_batch(4, padded_shapes=[2])
    with pytest.raises(InvalidArgumentError, match="element 2 component 0 has dimension 0 of size 3"):
        next(iter(ds))


def test_padded_batch_2d_against_numpy_padding():
    shapes = [(1, 3), (2, 1), (3, 2)]
    arrays = [np.full(s, i + 1, np.int32) for i, s in enumerate(shapes)]
    (batch,) = list(Dataset.from_generator(lambda: iter(arrays)).padded_batch(3, padding_values=-1))
    expected = np.stack([np.pad(a, [(0, 3 - a.shape[0]), (0, 3 - a.shape[1])], constant_values=-1)
                         for a in arrays])
    np.testing.assert_array_equal(batch, expected)


def test_unbatch_splits_every_component_and_checks_lengths():
    ds = Dataset.from_tensors((np.arange(6).reshape(3, 2), np.array([7, 8, 9]))).unbatch()
    assert [plain(e) for e in ds] == [([0, 1], 7), ([2, 3], 8), ([4, 5], 9)]
    bad = Dataset.from_tensors((np.zeros(3), np.zeros(2))).unbatch()
    with pytest.raises(InvalidArgumentError, match="different batch sizes"):
        list(bad)


def test_window_of_tuples_gives_tuples_of_datasets():
    ds = Dataset.from_tensor_slices((np.arange(5), np.arange(5) * 10)).window(2)
    windows = [(plain(a), plain(b)) for a, b in ds]
    assert windows == [([0, 1], [0, 10]), ([2, 3], [20, 30]), ([4], [40])]
    scalar = DatasetSpec(TensorSpec((), dtypes.int64))
    assert ds.element_spec == (scalar, scalar)
    flat = ds.flat_map(lambda a, b: Dataset.zip((a, b)).batch(2))
    assert [plain(e) for e in flat] == [([0, 1], [0, 10]), ([2, 3], [20, 30]), ([4], [40])]


def test_filter_predicate_must_return_a_scalar_bool():
    with pytest.raises(InvalidArgumentError, match="scalar bool.*input element 0"):
        list(Dataset.range(3).filter(lambda x: np.array([True, False])))
    assert [int(v) for v in Dataset.range(6).filter(lambda x: np.bool_(x > 3))] == [4, 5]


def test_filter_error_carries_the_element_index():
    def pred(x):
        if x == 4:
            raise ZeroDivisionError("bad row")
        return True
    with pytest.raises(ZeroDivisionError) as info:
        list(Dataset.range(10).filter(pred))
    assert "Dataset.filter(test_filter_error_carries_the_element_index.<locals>.pred) on input element 4" in \
        info.value.__notes__[0]


def test_enumerate_and_map_unpack_tuples():
    ds = Dataset.from_tensor_slices((np.array([5, 6]), np.array([7, 8]))).map(lambda a, b: a * b).enumerate()
    assert [(int(i), int(v)) for i, v in ds] == [(0, 35), (1, 48)]


def test_apply_and_experimental_helpers():
    ds = Dataset.range(10).apply(experimental.map_and_batch(lambda x: x + 1, 4, num_parallel_calls=AUTOTUNE))
    assert [b.tolist() for b in ds] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    ds = Dataset.range(10).apply(experimental.map_and_batch(lambda x: x, 4, drop_remainder=True))
    assert [len(b) for b in ds] == [4, 4]
    sr = Dataset.range(5).apply(experimental.shuffle_and_repeat(5, count=3, seed=2))
    epochs = [[int(v) for v in list(sr)[i * 5:(i + 1) * 5]] for i in range(3)]
    assert all(sorted(e) == list(range(5)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1          # a new order each epoch
    pi = Dataset.range(3).apply(experimental.parallel_interleave(lambda x: Dataset.range(x * 10, x * 10 + 2), 2))
    assert [int(v) for v in pi] == [0, 10, 1, 11, 20, 21]
    with pytest.raises(InvalidArgumentError, match="returned int"):
        Dataset.range(3).apply(lambda d: 5)


def test_element_spec_of_a_map_is_found_without_filling_the_shuffle_buffer():
    calls = []

    def f(x):
        calls.append(int(x))
        return {"v": np.float32(x), "sq": np.array([x, x * x])}

    ds = Dataset.range(100_000).shuffle(50_000).map(f)
    assert ds.element_spec == {"v": TensorSpec((), dtypes.float32), "sq": TensorSpec((2,), dtypes.int64)}
    assert calls == [0]       # one call on one sample element


def test_take_while_iterating_infinite_repeat_and_zip_with_cardinality():
    ds = Dataset.zip((Dataset.range(3).repeat(), Dataset.range(100))).take(7)
    assert [plain(e) for e in ds] == [(i % 3, i) for i in range(7)]
    assert ds.cardinality() == 7


def test_argument_checks():
    with pytest.raises(InvalidArgumentError):
        Dataset.range(3).batch(0)
    with pytest.raises(InvalidArgumentError):
        Dataset.range(3).shard(2, 2)
    with pytest.raises(InvalidArgumentError):
        Dataset.range(3).map(lambda x: x, num_parallel_calls=0)
    with pytest.raises(InvalidArgumentError):
        Dataset.range(3).shuffle(0)
    with pytest.raises(InvalidArgumentError, match="must return a Dataset"):
        list(Dataset.range(3).interleave(lambda x: [x], cycle_length=1))


def test_batches_of_slices_are_copies_and_match_the_element_path():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    fast = list(Dataset.from_tensor_slices((x, y)).batch(4))            # whole-batch slicing path
    slow = list(Dataset.from_tensor_slices((x, y)).map(lambda a, b: (a, b)).batch(4))   # element path
    assert [plain(b) for b in fast] == [plain(b) for b in slow]
    fast[0][0][:] = -1                                                  # writing to a batch ...
    assert x[0, 0] == 0                                                 # ... leaves the source alone
    assert [b.tolist() for b in Dataset.range(1, 12, 3).batch(2, drop_remainder=True)] == [[1, 4], [7, 10]]
