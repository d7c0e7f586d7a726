"""HDF5Dataset: rows of named datasets, streamed in blocks; files reaching outside are refused."""
import h5py
import numpy as np
import pytest

from kestimator.data import Dataset, HDF5Dataset, TensorSpec
from kestimator.engine import dtypes
from kestimator.errors import InvalidArgumentError, NotFoundError, UnsafeFileError


@pytest.fixture
def h5file(tmp_path):
    path = str(tmp_path / "d.h5")
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["images"] = rng.normal(size=(23, 4, 3)).astype(np.float32)
        f.create_group("meta")["labels"] = np.arange(23, dtype=np.int64) % 5
        f["meta"].create_dataset("names", data=[f"row{i}" for i in range(23)], dtype=h5py.string_dtype())
        f["short"] = np.zeros(5)
    return path


def test_rows_of_one_dataset_across_read_blocks(h5file):
    ds = HDF5Dataset(h5file, "images", rows_per_read=5)
    with h5py.File(h5file, "r") as f:
        expected = f["images"][...]
    got = list(ds)
    assert len(got) == 23 and ds.cardinality() == 23
    np.testing.assert_array_equal(np.stack(got), expected)
    assert ds.element_spec == TensorSpec((4, 3), dtypes.float32)


def test_tuple_and_dict_keys_with_strings(h5file):
    rows = list(HDF5Dataset(h5file, ["meta/labels", "meta/names"], rows_per_read=7))
    assert [(int(a), b) for a, b in rows] == [(i % 5, b"row%d" % i) for i in range(23)]
    batch = next(iter(HDF5Dataset(h5file, {"y": "/meta/labels", "x": "images"}).batch(4)))
    assert set(batch) == {"x", "y"} and batch["x"].shape == (4, 4, 3) and batch["y"].tolist() == [0, 1, 2, 3]


def test_skip_and_restore_do_not_read_skipped_blocks(h5file):
    ds = HDF5Dataset(h5file, "meta/labels", rows_per_read=4).shuffle(3, seed=0).batch(2)
    it = iter(ds)
    head = [next(it).tolist() for _ in range(4)]
    state = it.get_state()
    rest = [b.tolist() for b in it]
    assert [b.tolist() for b in ds.iterator_from_state(state)] == rest
    assert sorted(v for b in head + rest for v in b) == sorted(i % 5 for i in range(23))


def test_errors(h5file, tmp_path):
    with pytest.raises(NotFoundError, match="missing.h5"):
        HDF5Dataset(str(tmp_path / "missing.h5"), "x")
    with pytest.raises(NotFoundError, match="'meta/nope'"):
        HDF5Dataset(h5file, "meta/nope")
    with pytest.raises(InvalidArgumentError, match="not a dataset"):
        HDF5Dataset(h5file, "meta")
    with pytest.raises(InvalidArgumentError, match="different lengths"):
        HDF5Dataset(h5file, ("images", "short"))


def test_external_link_is_refused(h5file, tmp_path):
    outside = str(tmp_path / "outside.h5")
    with h5py.File(outside, "w") as f:
        f["secret"] = np.arange(3)
    with h5py.File(h5file, "a") as f:
        f["link"] = h5py.ExternalLink(outside, "/secret")
    with pytest.raises(UnsafeFileError, match="external link"):
        HDF5Dataset(h5file, "link")


def test_virtual_dataset_and_external_storage_are_refused(h5file, tmp_path):
    with h5py.File(h5file, "a") as f:
        layout = h5py.VirtualLayout(shape=(5,), dtype=np.float64)
        layout[:] = h5py.VirtualSource(f["short"])
        f.create_virtual_dataset("virtual", layout)
        raw = tmp_path / "raw.bin"
        raw.write_bytes(np.arange(4, dtype=np.float64).tobytes())
        f.create_dataset("ext", shape=(4,), dtype=np.float64, external=[(str(raw), 0, 32)])
    with pytest.raises(UnsafeFileError, match="virtual"):
        HDF5Dataset(h5file, "virtual")
    with pytest.raises(UnsafeFileError, match="external files"):
        HDF5Dataset(h5file, "ext")


def test_hdf5_source_in_a_pipeline(h5file):
    ds = Dataset.zip((HDF5Dataset(h5file, "meta/labels"), Dataset.range(100))).map(lambda y, i: y + i)
    assert [int(v) for v in ds] == [i % 5 + i for i in range(23)]
