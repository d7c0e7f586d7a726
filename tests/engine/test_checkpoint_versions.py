"""Format versions of engine checkpoints: written on every file, checked by every reader (load_tensors,
read_metadata, list_tensors, Saver.restore, ke.train.CheckpointReader)."""
import re

import h5py
import numpy as np
import pytest

import kestimator
from kestimator import _formats
from kestimator import engine as ke
from kestimator.engine import checkpoint as ckpt
from kestimator.errors import DataLossError, InvalidArgumentError


def _saved(tmp_path, **attrs):
    """A checkpoint of {"w": [1, 2, 3]} whose root attributes are then changed (None deletes one)."""
    path = tmp_path / "m.ckpt"
    ckpt.save_tensors(path, {"w": np.arange(1.0, 4.0, dtype=np.float32)})
    with h5py.File(path, "a") as f:
        for name, value in attrs.items():
            if value is None:
                del f.attrs[name]
            else:
                f.attrs[name] = value
    return str(path)


def test_every_checkpoint_records_its_format_and_writer(tmp_path):
    path = _saved(tmp_path)
    with h5py.File(path, "r") as f:
        assert int(f.attrs["kestimator_format"]) == _formats.CHECKPOINT_FORMAT == 1
        # fixed-length bytes, not a variable-length string: reading it needs no global heap
        assert f.attrs.get_id("kestimator_version").dtype.kind == "S"
        assert f.attrs["kestimator_version"].decode() == kestimator.__version__


@pytest.mark.parametrize("reader", [
    lambda p: ckpt.load_tensors(p), lambda p: ckpt.read_metadata(p), lambda p: ckpt.list_tensors(p),
    lambda p: ke.train.CheckpointReader(p), lambda p: ke.train.load_variable(p, "w")])
def test_a_newer_format_is_refused_naming_file_writer_and_versions(tmp_path, reader):
    path = _saved(tmp_path, kestimator_format=np.int64(2), kestimator_version=np.bytes_(b"7.3.0"))
    with pytest.raises(InvalidArgumentError) as info:
        reader(path)
    msg = str(info.value)
    assert msg == (f"checkpoint {path} was written by kestimator 7.3.0 in checkpoint format 2; this kestimator "
                   f"({kestimator.__version__}) reads up to format 1: upgrade kestimator to load this newer format")
    assert _formats.is_newer_format(info.value)


def test_a_newer_format_without_writer_version_still_names_the_versions(tmp_path):
    path = _saved(tmp_path, kestimator_format=np.int64(5), kestimator_version=None)
    with pytest.raises(InvalidArgumentError, match=re.escape(f"{path} was written by a newer kestimator in "
                                                             "checkpoint format 5; this kestimator")):
        ckpt.load_tensors(path)


def test_a_variable_length_writer_attribute_is_read_after_the_heap_check(tmp_path):
    path = _saved(tmp_path, kestimator_format=np.int64(3), kestimator_version="9.0")   # h5py: vlen str
    with pytest.raises(InvalidArgumentError, match="written by kestimator 9.0 in checkpoint format 3"):
        ckpt.load_tensors(path)


def test_a_checkpoint_from_before_the_writer_version_was_recorded_loads(tmp_path):
    path = _saved(tmp_path, kestimator_version=None)
    with h5py.File(path, "r") as f:
        assert "kestimator_version" not in f.attrs
    np.testing.assert_array_equal(ckpt.load_tensors(path)["w"], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("bad,err", [(np.int64(0), DataLossError), (np.float64(1.5), DataLossError),
                                     (b"one", DataLossError), (np.array([1, 1]), DataLossError)])
def test_a_malformed_format_attribute_is_data_loss(tmp_path, bad, err):
    path = _saved(tmp_path, kestimator_format=bad)
    with pytest.raises(err, match="m.ckpt"):
        ckpt.load_tensors(path)


def test_saver_restore_refuses_a_newer_checkpoint(tmp_path):
    g = ke.Graph()
    with g.as_default():
        v = ke.Variable(np.zeros(3, np.float32), name="w")
        saver = ke.train.Saver([v])
        with ke.Session(graph=g) as sess:
            sess.run(v.initializer)
            path = saver.save(sess, str(tmp_path / "model.ckpt"))
            with h5py.File(path, "a") as f:
                f.attrs["kestimator_format"] = np.int64(2)
            with pytest.raises(InvalidArgumentError, match="reads up to format 1"):
                saver.restore(sess, path)


def test_check_version_accepts_every_known_version_and_reports_it():
    assert _formats.check_version(np.int64(1), 3, "f", "checkpoint") == 1
    assert _formats.check_version(3, 3, "f", "checkpoint") == 3
    with pytest.raises(InvalidArgumentError, match=r"^f was written by kestimator 0\.9 in SavedModel format 4; "):
        _formats.check_version(4, 3, "f", "SavedModel", writer="0.9")
    with pytest.raises(DataLossError, match="not an integer"):
        _formats.check_version(True, 3, "f", "checkpoint")
    # a writer field of any size or type makes a short message
    with pytest.raises(InvalidArgumentError) as info:
        _formats.check_version(4, 3, "f", "SavedModel", writer="x" * 10000)
    assert len(str(info.value)) < 300
