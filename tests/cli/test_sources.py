"""Data sources of configs: each reader against an independent reference (scikit-learn, NumPy, h5py,
files written by TensorFlow), plus splits, shuffling and the refusal of unsafe files."""
import os
import sys
import textwrap
import zipfile
from collections import Counter

import h5py
import numpy as np
import pytest
from sklearn import datasets as sk_datasets

from kestimator.cli.sources import load_source, parse_split, split_slice
from kestimator.errors import (DataLossError, InvalidArgumentError, MissingDependencyError, NotFoundError,
                               UnsafeFileError)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PENGUINS = os.path.join(REPO, "configs", "data", "penguins.csv")
RECORDS = os.path.join(REPO, "tests", "fixtures", "records_source")


# ---- split ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, n, expected", [
    ("0:1500", 1797, (0, 1500)),
    ("1500:", 1797, (1500, 1797)),
    (":10", 50, (0, 10)),
    ("-10:", 100, (90, 100)),
    ("0:0.8", 333, (0, 266)),      # floor(0.8 * 333 = 266.4)
    ("0.8:", 333, (266, 333)),
    ("0.7:", 10, (7, 10)),         # 0.7 * 10 = 7.000000000000001 in floating point: still 7
    ("0:0.29", 100, (0, 29)),      # 0.29 * 100 = 28.999999999999996: still 29
    ("0:1.0", 5, (0, 5)),
])
def test_split_ranges(text, n, expected):
    assert split_slice(text, n).indices(n)[:2] == expected


@pytest.mark.parametrize("text, n, message", [
    ("0:2000", 1797, "reaches row 2000, but the data has 1797 rows"),
    ("5:5", 10, "selects no rows"),
    ("1:2:3", 10, "must be 'start:stop'"),
    ("0.9:0.1", 10, "start must be below stop"),
    ("a:", 10, "'a' is not a number"),
])
def test_bad_splits(text, n, message):
    with pytest.raises(InvalidArgumentError, match=message):
        split_slice(text, n)


def test_parse_split_kinds():
    assert parse_split("0:1500") == (0, 1500, False)
    assert parse_split("0:0.8") == (0.0, 0.8, True)
    assert parse_split("0.8:") == (0.8, None, True)


# ---- scikit-learn data sets ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, loader, label_dtype", [
    ("digits", sk_datasets.load_digits, np.int64),
    ("iris", sk_datasets.load_iris, np.int64),
    ("wine", sk_datasets.load_wine, np.int64),
    ("breast_cancer", sk_datasets.load_breast_cancer, np.int64),
    ("diabetes", sk_datasets.load_diabetes, np.float32),
])
def test_sklearn_datasets_match_scikit_learn(name, loader, label_dtype):
    x, y = load_source({"dataset": f"sklearn.{name}", "shuffle": False})
    reference = loader()
    assert x.dtype == np.float32 and y.dtype == label_dtype
    np.testing.assert_array_equal(x, reference.data.astype(np.float32))
    np.testing.assert_array_equal(y, reference.target.astype(label_dtype))


def test_digits_images_scaled_under_an_input_key():
    x, y = load_source({"dataset": "sklearn.digits", "split": "0:1500", "image_shape": [8, 8], "scale": 0.0625,
                        "features": "pixels", "shuffle": False})
    digits = sk_datasets.load_digits()
    assert list(x) == ["pixels"] and x["pixels"].shape == (1500, 8, 8) and x["pixels"].dtype == np.float32
    np.testing.assert_array_equal(x["pixels"], (digits.images[:1500] / 16.0).astype(np.float32))
    np.testing.assert_array_equal(y, digits.target[:1500])


def test_shuffle_uses_the_seed_and_splits_of_one_permutation_are_disjoint():
    spec = {"dataset": "sklearn.iris"}
    x_train, y_train = load_source({**spec, "split": "0:0.8"}, seed=3)
    x_eval, y_eval = load_source({**spec, "split": "0.8:"}, seed=3)
    iris = sk_datasets.load_iris()
    perm = np.random.default_rng(3).permutation(150)           # the documented permutation
    np.testing.assert_array_equal(x_train, iris.data[perm[:120]].astype(np.float32))
    np.testing.assert_array_equal(y_eval, iris.target[perm[120:]])
    assert len(x_train) + len(x_eval) == 150
    # seed None still gives one fixed permutation, so train/eval stay disjoint
    np.testing.assert_array_equal(load_source({**spec, "split": "0:10"}, seed=None)[0],
                                  load_source({**spec, "split": "0:10"}, seed=0)[0])


def test_missing_scikit_learn_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)       # makes `import sklearn...` raise ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingDependencyError, match=r"dataset: sklearn\.iris needs the 'scikit-learn' package"):
        load_source({"dataset": "sklearn.iris"})


def test_unknown_sklearn_dataset():
    with pytest.raises(NotFoundError, match="did you mean 'sklearn.wine'"):
        load_source({"dataset": "sklearn.wines"})


# ---- CSV -----------------------------------------------------------------------------------------------------

CSV = """\
color,size,weight,label
red,1.5,10,a
"blue, dark",NA,20,b
green,2.5,,a

red,3.5,40,c
"""


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_csv_columns_types_and_default_fill(tmp_path):
    write(tmp_path, CSV)
    x, y = load_source({"csv": "data.csv", "label": "label", "shuffle": False}, base_dir=str(tmp_path))
    assert list(x) == ["color", "size", "weight"]
    np.testing.assert_array_equal(x["color"], np.array(["red", "blue, dark", "green", "red"]))
    assert x["color"].dtype.kind == "U"
    np.testing.assert_array_equal(x["size"], np.array([1.5, 0.0, 2.5, 3.5], np.float32))   # NA -> 0.0
    np.testing.assert_array_equal(x["weight"], np.array([10, 20, 0, 40], np.float32))      # empty -> 0.0
    assert x["size"].dtype == np.float32
    np.testing.assert_array_equal(y, np.array(["a", "b", "a", "c"]))


def test_csv_drop_missing_and_custom_fill(tmp_path):
    path = write(tmp_path, CSV)
    x, y = load_source({"csv": path, "label": "label", "shuffle": False, "drop_missing": True})
    np.testing.assert_array_equal(x["size"], np.array([1.5, 3.5], np.float32))
    np.testing.assert_array_equal(y, np.array(["a", "c"]))
    x, _ = load_source({"csv": path, "label": "label", "shuffle": False, "fill_numeric": -1.0})
    np.testing.assert_array_equal(x["weight"], np.array([10, 20, -1, 40], np.float32))


def test_csv_numeric_labels_columns_and_stacking(tmp_path):
    path = write(tmp_path, "a,b,c,target\n1,2,x,0\n3,4,y,2\n5,6,z,1\n")
    x, y = load_source({"csv": path, "label": "target", "columns": ["b", "a"], "shuffle": False,
                        "features": "inputs"})
    np.testing.assert_array_equal(x["inputs"], np.array([[2, 1], [4, 3], [6, 5]], np.float32))  # columns order
    assert y.dtype == np.int64 and list(y) == [0, 2, 1]
    _, y = load_source({"csv": path, "label": "target", "label_dtype": "float32", "shuffle": False})
    assert y.dtype == np.float32
    _, y = load_source({"csv": path, "label": "b", "columns": ["a"], "label_dtype": "string", "shuffle": False})
    np.testing.assert_array_equal(y, np.array(["2", "4", "6"]))
    with pytest.raises(InvalidArgumentError, match=r"column\(s\) c hold strings"):
        load_source({"csv": path, "label": "target", "features": "inputs"})


@pytest.mark.parametrize("text, spec, error, message", [
    ("a,label\n1,x\n2\n", {}, DataLossError, r"data\.csv, line 3: expected 2 fields \(the header has 2\), found 1"),
    ("a,label\n1,x\n2,NA\n3,\n", {}, InvalidArgumentError, r"the label 'label' is missing on 2 rows \(lines 3, 4\)"),
    ("a,label\n1,x\n", {"label": "labl"}, NotFoundError, "no column named 'labl'; did you mean 'label'"),
    ("", {}, DataLossError, "the file is empty"),
    ("a,label\n", {}, InvalidArgumentError, r"no rows left \(0 read, the file has a header and no data\)"),
    ("a,a,label\n1,2,x\n", {}, InvalidArgumentError, "column name 'a' appears twice"),
    ("a,label\n1,x\n", {"columns": ["label"]}, InvalidArgumentError, "is the label; it cannot also be a feature"),
    ("a,label\n1,1.5\n", {"label_dtype": "int64"}, InvalidArgumentError, "non-integer values"),
    ("a,label\n1,\"x\n", {}, DataLossError, "malformed CSV"),
])
def test_csv_errors_name_the_file(tmp_path, text, spec, error, message):
    path = write(tmp_path, text)
    with pytest.raises(error, match=message) as info:
        load_source({"csv": path, "label": "label", **spec})
    assert path in str(info.value)


def test_penguins_file_shipped_with_the_configs():
    x, y = load_source({"csv": PENGUINS, "label": "species", "shuffle": False})
    assert len(y) == 344 and set(x) == {"island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                                        "body_mass_g", "sex", "year"}
    assert x["island"].dtype.kind == "U" and x["bill_length_mm"].dtype == np.float32
    # complete cases, as R's na.omit(penguins): 333 rows, Adelie 146, Chinstrap 68, Gentoo 119
    _, y = load_source({"csv": PENGUINS, "label": "species", "drop_missing": True, "shuffle": False})
    names, counts = np.unique(y, return_counts=True)
    assert list(names) == ["Adelie", "Chinstrap", "Gentoo"] and list(counts) == [146, 68, 119]


def test_penguins_train_and_eval_splits_partition_the_clean_rows():
    spec = {"csv": PENGUINS, "label": "species", "drop_missing": True}
    (x_tr, y_tr), (x_ev, y_ev) = (load_source({**spec, "split": s}, seed=0) for s in ("0:0.8", "0.8:"))
    assert (len(y_tr), len(y_ev)) == (266, 67)                  # floor(0.8 * 333) = 266
    x_all, _ = load_source({**spec, "shuffle": False})

    def rows(x):
        return Counter(zip(*(x[k].tolist() for k in sorted(x))))

    assert rows(x_tr) + rows(x_ev) == rows(x_all)          # every clean row lands in exactly one split
    assert set(np.unique(y_ev)) == {"Adelie", "Chinstrap", "Gentoo"}   # the file is sorted; shuffling mixes it


# ---- npz -----------------------------------------------------------------------------------------------------

def test_npz_default_and_named_keys(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 255, (6, 4, 4), dtype=np.uint8), np.arange(6)
    extra = np.asfortranarray(rng.normal(size=(6, 3)))
    np.savez(tmp_path / "d.npz", x=images, y=labels, other=extra)
    x, y = load_source({"npz": "d.npz", "shuffle": False}, base_dir=str(tmp_path))
    np.testing.assert_array_equal(x, images) and np.testing.assert_array_equal(y, labels)
    assert x.dtype == np.uint8
    x, y = load_source({"npz": str(tmp_path / "d.npz"), "x": {"img": "x", "aux": "other"}, "y": None,
                        "shuffle": False})
    np.testing.assert_array_equal(x["aux"], extra) and np.testing.assert_array_equal(x["img"], images)
    assert y is None
    x, _ = load_source({"npz": str(tmp_path / "d.npz"), "scale": 0.5, "shuffle": False, "split": "0:2"})
    np.testing.assert_array_equal(x, images[:2].astype(np.float32) * 0.5)


def test_npz_refuses_object_arrays(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}, None], dtype=object), y=np.arange(2))
    with pytest.raises(UnsafeFileError, match=r"array 'x' holds Python objects \(pickled data\); refused"):
        load_source({"npz": str(tmp_path / "o.npz")})


def test_npz_header_checked_against_stored_size_before_allocating(tmp_path):
    # A .npy header claiming 10**12 float64 values over 8 bytes of data.
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    header = header + " " * (63 - (10 + len(header)) % 64) + "\n"
    member = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 8
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as zf:
        zf.writestr("x.npy", member)
    with pytest.raises(DataLossError, match=r"h\.npz: array 'x' declares shape \(1000000000000,\)"):
        load_source({"npz": str(tmp_path / "h.npz"), "y": None})


def test_npz_missing_key_and_corrupt_archive(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(NotFoundError, match="no array 'image'; did you mean 'images'"):
        load_source({"npz": str(tmp_path / "d.npz"), "x": "image"})
    (tmp_path / "bad.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataLossError, match=r"bad\.npz: not a valid \.npz \(zip\) archive"):
        load_source({"npz": str(tmp_path / "bad.npz")})


# ---- HDF5 ----------------------------------------------------------------------------------------------------

def test_h5_datasets_groups_and_soft_links(tmp_path):
    path = str(tmp_path / "d.h5")
    with h5py.File(path, "w") as f:
        f["train/x"] = np.arange(12, dtype=np.float32).reshape(4, 3)
        f["train/y"] = np.array([0, 1, 0, 1])
        f["alias"] = h5py.SoftLink("/train/x")
        f["train/rel"] = h5py.SoftLink("y")          # relative to its group
    x, y = load_source({"h5": path, "x": "/train/x", "y": "train/y", "shuffle": False})
    np.testing.assert_array_equal(x, np.arange(12, dtype=np.float32).reshape(4, 3))
    np.testing.assert_array_equal(y, [0, 1, 0, 1])
    x, y = load_source({"h5": path, "x": "alias", "y": "train/rel", "shuffle": False})
    np.testing.assert_array_equal(y, [0, 1, 0, 1]) and np.testing.assert_array_equal(x[1], [3, 4, 5])


def test_h5_refuses_external_links_storage_and_virtual_datasets(tmp_path):
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as f:
        f["data"] = np.zeros(4)
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.arange(4, dtype=np.float64).tobytes())
    path = str(tmp_path / "d.h5")
    with h5py.File(path, "w") as f:
        f["y"] = np.zeros(4)
        f["ext"] = h5py.ExternalLink(other, "/data")
        f.create_dataset("stored_outside", shape=(4,), dtype="<f8", external=[(str(raw), 0, 32)])
        layout = h5py.VirtualLayout(shape=(4,), dtype="f8")
        layout[:] = h5py.VirtualSource(other, "data", shape=(4,))
        f.create_virtual_dataset("virtual", layout)
    with pytest.raises(UnsafeFileError, match=r"/ext is an external link to .*other\.h5:/data; external links"):
        load_source({"h5": path, "x": "ext"})
    with pytest.raises(UnsafeFileError, match="'stored_outside' keeps its data in external files"):
        load_source({"h5": path, "x": "stored_outside"})
    with pytest.raises(UnsafeFileError, match="'virtual' is a virtual dataset"):
        load_source({"h5": path, "x": "virtual"})


def test_h5_missing_path_group_and_corrupt_file(tmp_path):
    path = str(tmp_path / "d.h5")
    with h5py.File(path, "w") as f:
        f["train/images"] = np.zeros((2, 2))
    with pytest.raises(NotFoundError, match="no 'image' in /train; did you mean 'images'"):
        load_source({"h5": path, "x": "train/image", "y": None})
    with pytest.raises(InvalidArgumentError, match="'train' is a group, not a dataset"):
        load_source({"h5": path, "x": "train", "y": None})
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(DataLossError, match="not a readable HDF5 file"):
        load_source({"h5": str(tmp_path / "bad.h5")})


# ---- records (written by TensorFlow: tests/fixtures/make_records_source.py) ----------------------------------

SPEC = {"x": {"dtype": "float32", "shape": [3]}, "label": {"dtype": "int64"},
        "name": {"dtype": "string", "default": ""}}


def test_records_written_by_tensorflow():
    x, y = load_source({"records": "part-0.tfrecord", "feature_spec": SPEC, "label": "label", "shuffle": False},
                       base_dir=RECORDS)
    # Example i: x = [i, i + 0.5, -i], label = i % 3, name = b"row<i>"
    np.testing.assert_array_equal(x["x"], np.array([[i, i + 0.5, -i] for i in range(4)], np.float32))
    assert y.dtype == np.int64 and list(y) == [0, 1, 2, 0]
    assert list(x["name"]) == [b"row0", b"row1", b"row2", b"row3"]


def test_records_gzip_glob_and_defaults():
    x, y = load_source({"records": ["part-1*.gz"], "compression": "GZIP", "feature_spec": SPEC, "label": "label",
                        "shuffle": False}, base_dir=RECORDS)
    assert list(y) == [1, 2] and list(x["name"]) == [b"row4", b""]     # Example 5 has no name: default
    with pytest.raises(InvalidArgumentError, match=r"part-1\.tfrecord\.gz: .*name.* is required"):
        load_source({"records": "part-1.tfrecord.gz", "compression": "GZIP", "shuffle": False,
                     "feature_spec": {"name": {"dtype": "string"}}}, base_dir=RECORDS)


def test_records_missing_files_and_features_key():
    with pytest.raises(NotFoundError, match="no record file matches"):
        load_source({"records": "nothing-*.tfrecord", "feature_spec": SPEC}, base_dir=RECORDS)
    x, _ = load_source({"records": "part-0.tfrecord", "feature_spec": {"x": SPEC["x"], "label": SPEC["label"]},
                        "label": "label", "features": "inputs", "shuffle": False}, base_dir=RECORDS)
    assert list(x) == ["inputs"] and x["inputs"].shape == (4, 3)


# ---- shared steps ------------------------------------------------------------------------------------------

def test_image_shape_must_fit_the_rows():
    with pytest.raises(InvalidArgumentError, match=r"image_shape \[7, 7\] holds 49 values per row, but the rows "
                                                   r"have shape \[64\]"):
        load_source({"dataset": "sklearn.digits", "image_shape": [7, 7]})


def test_exactly_one_kind():
    with pytest.raises(InvalidArgumentError, match="exactly one of dataset, csv, npz, h5, records; got none"):
        load_source({"split": "0:1"})
    with pytest.raises(InvalidArgumentError, match="got csv, npz"):
        load_source({"csv": "a", "npz": "b"})


def test_features_and_labels_must_have_the_same_rows(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.zeros(4))
    with pytest.raises(InvalidArgumentError, match=r"share their first dimension; found row counts \[3, 4\]"):
        load_source({"npz": str(tmp_path / "d.npz")})
