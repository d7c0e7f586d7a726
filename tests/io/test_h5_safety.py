"""kestimator.io.h5_safety: the one copy of the HDF5 checks the checkpoint and Keras .h5 readers share."""
import h5py
import numpy as np
import pytest

from kestimator.engine import checkpoint as ckpt
from kestimator.errors import DataLossError, UnsafeFileError
from kestimator.io import h5_safety
from kestimator.models import h5_format


def _walk(path):
    found = []
    with h5py.File(path, "r") as f:
        h5_safety.walk(h5py, f, f"file {path}", lambda prefix, key, ds: found.append((prefix, key, ds.shape)))
    return sorted(found)


def test_walk_visits_every_dataset_once(tmp_path):
    path = tmp_path / "ok.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.zeros(2)
        f["g/b"] = np.zeros((1, 3))
        f["g/h/c"] = np.zeros(())
    assert _walk(path) == [("", "a", (2,)), ("g/", "b", (1, 3)), ("g/h/", "c", ())]


def _external_link(f, tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as o:
        o["secret"] = np.arange(3.0)
    f["x"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/secret")


def _soft_link(f, tmp_path):
    f["x"] = h5py.SoftLink("/g")


def _alias(f, tmp_path):
    f["g/inner"] = f["g"]   # a hard link: the group is its own child


@pytest.mark.parametrize("add,err,message", [
    (_external_link, UnsafeFileError, r"'/x' is an external link to .*other\.h5:/secret; refused"),
    (_soft_link, UnsafeFileError, r"'/x' is a soft link to /g; refused"),
    (_alias, DataLossError, r"group '/g/inner' is a second link to a group already walked")])
def test_walk_refuses_links(tmp_path, add, err, message):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["g/a"] = np.zeros(2)
        add(f, tmp_path)
    with pytest.raises(err, match=f"^file {path}: .*{message}"):
        _walk(path)


def test_dataset_storage_outside_the_file_is_refused(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.arange(4, dtype=np.float64).tobytes())
    path = tmp_path / "ext.h5"
    with h5py.File(path, "w") as f:
        f.attrs["kestimator_format"] = np.int64(1)   # a checkpoint, as far as its root says
        f.create_dataset("e", shape=(4,), dtype="f8", external=[(str(raw), 0, 32)])
        layout = h5py.VirtualLayout(shape=(4,), dtype="f8")
        layout[:] = h5py.VirtualSource(str(raw), "d", shape=(4,))
        f.create_virtual_dataset("v", layout)
    with h5py.File(path, "r") as f:
        with pytest.raises(UnsafeFileError, match=r"^P: dataset e keeps its data in external file\(s\)"):
            h5_safety.check_dataset_storage(f["e"], "P", "dataset e")
        with pytest.raises(UnsafeFileError, match="^P: dataset v is a virtual dataset"):
            h5_safety.check_dataset_storage(f["v"], "P", "dataset v")
    # both readers use these checks
    with pytest.raises(UnsafeFileError, match="external file"):
        h5_format.SafeH5(path)
    with pytest.raises(UnsafeFileError, match=r"tensor '[ev]' (keeps its data in external file|is a virtual)"):
        ckpt.load_tensors(path)


def test_stored_size_must_back_the_declared_size(tmp_path):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["ok"] = np.arange(6, dtype=np.float32)
        f.create_dataset("lazy", shape=(1000,), dtype="f4")          # never written: stores 0 bytes
        f.create_dataset("zip", data=np.zeros(300000, np.float32), compression="gzip")
    with h5py.File(path, "r") as f:
        h5_safety.check_stored_size(f["ok"], (6,), np.float32, str(path), "P", "d")   # 24 == 6 * 4
        with pytest.raises(DataLossError, match=r"^P: lazy declares 4000 bytes \(shape \(1000,\), float32\) but "
                                                "the file stores 0"):
            h5_safety.check_stored_size(f["lazy"], (1000,), np.float32, str(path), "P", "lazy")
        stored = f["zip"].id.get_storage_size()
        h5_safety.check_stored_size(f["zip"], (300000,), np.float32, str(path), "P", "zip")   # compressed: fine
        # a shape declaring more than 1024 x the compressed bytes (as a crafted header would) is refused
        n = stored * h5_safety.MAX_COMPRESSION_RATIO // 4 + 1
        with pytest.raises(DataLossError, match=f"declares {4 * n} bytes from {stored} compressed bytes"):
            h5_safety.check_stored_size(f["zip"], (n,), np.float32, str(path), "P", "zip")


class _UndecodableTypeDataset:
    """Stands in for an h5py Dataset whose stored float type is damaged: h5py raises from `.dtype`
    (the slow fuzz tier hit ValueError "Insufficient precision ..." and RuntimeError from H5Tget_ebias)."""

    def __init__(self, exc):
        self._exc = exc

    @property
    def dtype(self):
        raise self._exc


@pytest.mark.parametrize("exc", [ValueError("Insufficient precision in available types to represent (63, 52, 11, 0, 52)"),
                                 RuntimeError("Unspecified error in H5Tget_ebias (return value ==0)")])
def test_an_undecodable_dataset_type_is_data_loss_naming_file_and_dataset(exc):
    with pytest.raises(DataLossError, match=r"checkpoint /x\.h5: tensor 'w' has an HDF5 type that cannot be read"):
        h5_safety.dataset_dtype(_UndecodableTypeDataset(exc), "checkpoint /x.h5", "tensor 'w'")


def test_a_readable_dataset_type_is_returned(tmp_path):
    import h5py
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["v"] = np.zeros(3, ">f4")
        assert h5_safety.dataset_dtype(f["v"], "p", "v") == np.dtype(">f4")
