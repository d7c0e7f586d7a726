"""Sources: from_tensor_slices, from_tensors, range, from_generator, zip, concatenate, list_files."""
import collections
import os

import numpy as np
import pytest

from kestimator.data import Dataset, TensorSpec
from kestimator.engine import dtypes
from kestimator.errors import InvalidArgumentError, NotFoundError

from .data_helpers import plain


def test_from_tensor_slices_array_rows_are_views_of_the_input_rows():
    x = np.arange(24, dtype=np.float32).reshape(6, 2, 2)
    got = list(Dataset.from_tensor_slices(x))
    assert len(got) == 6
    for i, row in enumerate(got):
        np.testing.assert_array_equal(row, x[i])
        assert row.dtype == np.float32


def test_from_tensor_slices_tuple_dict_nested():
    x, y = np.arange(8).reshape(4, 2), np.array([1.5, 2.5, 3.5, 4.5])
    ds = Dataset.from_tensor_slices({"f": (x, y), "label": np.array([0, 1, 0, 1])})
    got = list(ds)
    assert [plain(e) for e in got] == [{"f": (x[i].tolist(), y[i]), "label": [0, 1, 0, 1][i]} for i in range(4)]
    assert ds.element_spec == {"f": (TensorSpec((2,), dtypes.int64), TensorSpec((), dtypes.float64)),
                               "label": TensorSpec((), dtypes.int64)}
    assert ds.cardinality() == 4


def test_from_tensor_slices_strings_become_bytes_and_namedtuples_survive():
    Point = collections.namedtuple("Point", ["name", "value"])
    ds = Dataset.from_tensor_slices(Point(["ab", "cé"], np.array([1, 2])))
    got = list(ds)
    assert isinstance(got[0], Point)
    assert [(p.name, int(p.value)) for p in got] == [(b"ab", 1), ("cé".encode(), 2)]


def test_from_tensor_slices_rejects_mismatched_lengths_and_scalars():
    with pytest.raises(InvalidArgumentError, match="different first dimensions"):
        Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))
    with pytest.raises(InvalidArgumentError, match="scalar"):
        Dataset.from_tensor_slices((np.zeros(3), 5))


def test_from_tensors_is_one_element():
    x = np.ones((3, 2))
    ds = Dataset.from_tensors((x, "s"))
    assert ds.cardinality() == 1
    (element,) = list(ds)
    assert plain(element) == (x.tolist(), b"s")


@pytest.mark.parametrize("args", [(5,), (2, 9), (9, 2, -2), (0,), (3, 3), (1, 10, 4)])
def test_range_matches_python_range(args):
    ds = Dataset.range(*args)
    assert [int(v) for v in ds] == list(range(*args))
    assert ds.cardinality() == len(range(*args))
    assert all(isinstance(v, np.int64) for v in ds)


def test_range_next_batch_path_matches_python_range():
    # batch() pulls with next_batch, which builds the values with np.arange
    assert [b.tolist() for b in Dataset.range(3, 20, 3).batch(4)] == [[3, 6, 9, 12], [15, 18]]
    assert Dataset.range(4, dtype=dtypes.float32).batch(4).element_spec.dtype == dtypes.float32


def test_from_generator_called_afresh_each_pass_with_signature_conversion():
    calls = []

    def gen(n):
        calls.append(n)
        for i in range(n):
            yield [i, i + 1], float(i) / 2

    ds = Dataset.from_generator(gen, args=(3,), output_signature=(TensorSpec((2,), dtypes.int32),
                                                                  TensorSpec((), dtypes.float32)))
    first = list(ds)
    second = list(ds)
    assert calls == [3, 3]
    assert [plain(e) for e in first] == [([0, 1], 0.0), ([1, 2], 0.5), ([2, 3], 1.0)]
    assert plain(first) == plain(second)
    assert first[0][0].dtype == np.int32 and first[0][1].dtype == np.float32


def test_from_generator_output_types_and_shapes():
    ds = Dataset.from_generator(lambda: iter([(1, [1.0, 2.0])]), output_types=(dtypes.int64, dtypes.float32),
                                output_shapes=((), (None,)))
    (element,) = list(ds)
    assert element[0].dtype == np.int64 and element[1].dtype == np.float32
    assert ds.element_spec == (TensorSpec((), dtypes.int64), TensorSpec((None,), dtypes.float32))


def test_from_generator_bad_shape_names_the_element():
    ds = Dataset.from_generator(lambda: iter([[1, 2], [1, 2, 3]]),
                                output_signature=TensorSpec((2,), dtypes.int64))
    it = iter(ds)
    assert next(it).tolist() == [1, 2]
    with pytest.raises(InvalidArgumentError, match=r"element 1.*shape \(3,\)"):
        next(it)


def test_from_generator_error_is_reraised_with_its_index():
    def gen():
        yield 1
        yield 2
        raise KeyError("broken source")

    it = iter(Dataset.from_generator(gen))
    assert [int(next(it)), int(next(it))] == [1, 2]
    with pytest.raises(KeyError) as info:
        next(it)
    assert "at element 2" in info.value.__notes__[0]
    with pytest.raises(StopIteration):
        next(it)


def test_zip_stops_at_shortest_and_keeps_nesting():
    a, b = Dataset.range(3), Dataset.range(10, 20)
    c = Dataset.from_tensor_slices(np.array([b"x", b"y", b"z", b"w"]))
    got = [plain(e) for e in Dataset.zip((a, (b, c)))]
    assert got == [(0, (10, b"x")), (1, (11, b"y")), (2, (12, b"z"))]
    assert [plain(e) for e in Dataset.zip(a, b)] == [(0, 10), (1, 11), (2, 12)]


def test_concatenate_and_mismatched_structure():
    assert [int(v) for v in Dataset.range(3).concatenate(Dataset.range(7, 9))] == [0, 1, 2, 7, 8]
    with pytest.raises(InvalidArgumentError, match="concatenate"):
        Dataset.range(3).concatenate(Dataset.from_tensor_slices((np.zeros(2), np.zeros(2))))


def test_list_files_sorted_or_shuffled(tmp_path):
    names = [f"part-{i:02d}.rec" for i in range(12)]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    (tmp_path / "other.txt").write_bytes(b"")
    expected = [os.fsencode(str(tmp_path / n)) for n in names]
    pattern = str(tmp_path / "part-*.rec")
    assert list(Dataset.list_files(pattern, shuffle=False)) == expected
    shuffled = list(Dataset.list_files(pattern, seed=4))
    assert sorted(shuffled) == expected and shuffled != expected
    assert list(Dataset.list_files(pattern, seed=4)) == shuffled     # same seed, same order
    with pytest.raises(NotFoundError, match="no file matches"):
        Dataset.list_files(str(tmp_path / "missing-*"))


def test_a_dataset_can_be_iterated_many_times():
    ds = Dataset.from_tensor_slices(np.arange(5)).map(lambda x: x * 3).batch(2)
    passes = [[b.tolist() for b in ds] for _ in range(3)]
    assert passes == [[[0, 3], [6, 9], [12]]] * 3


def test_len_and_as_numpy_iterator():
    ds = Dataset.range(7).batch(2)
    assert len(ds) == 4
    assert [b.tolist() for b in ds.as_numpy_iterator()] == [[0, 1], [2, 3], [4, 5], [6]]
    with pytest.raises(TypeError):
        len(Dataset.range(2).repeat())
    with pytest.raises(TypeError):
        len(Dataset.range(5).filter(lambda x: x > 1))


def test_reduce_and_get_next_out_of_range():
    from kestimator.errors import OutOfRangeError
    assert int(Dataset.range(5).reduce(np.int64(0), lambda s, x: s + x)) == 10
    it = iter(Dataset.range(1))
    assert int(it.get_next()) == 0
    with pytest.raises(OutOfRangeError):
        it.get_next()
