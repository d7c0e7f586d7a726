"""Format versions of a model_dir: checkpoint_index.json records its format and writer; a newer index or a
newer checkpoint is refused with a clear message instead of being treated as corruption."""
import json
import os
import warnings

import h5py
import numpy as np
import pytest

import kestimator
from kestimator.errors import InvalidArgumentError
from kestimator.estimators.checkpoint_manager import INDEX_NAME, CheckpointManager


def _model_dir(tmp_path):
    manager = CheckpointManager(str(tmp_path))
    manager.save(1, {"w": np.array([1.0, 2.0], np.float32)})
    manager.save(2, {"w": np.array([3.0, 4.0], np.float32)})
    return manager


def _edit_index(tmp_path, **fields):
    path = os.path.join(str(tmp_path), INDEX_NAME)
    with open(path) as f:
        data = json.load(f)
    for k, v in fields.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    with open(path, "w") as f:
        json.dump(data, f)
    return path


def test_the_index_records_format_and_writer(tmp_path):
    _model_dir(tmp_path)
    with open(tmp_path / INDEX_NAME) as f:
        data = json.load(f)
    assert data["format"] == "kestimator.estimator_checkpoints/1"
    assert data["kestimator_version"] == kestimator.__version__


def test_a_newer_index_is_refused_not_rebuilt(tmp_path):
    _model_dir(tmp_path)
    path = _edit_index(tmp_path, format="kestimator.estimator_checkpoints/2", kestimator_version="3.1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no "unreadable, rebuilding" warning: the index is not corrupt
        with pytest.raises(InvalidArgumentError) as info:
            CheckpointManager(str(tmp_path)).load()
    assert str(info.value) == (f"{path} was written by kestimator 3.1 in estimator checkpoint index format 2; "
                               f"this kestimator ({kestimator.__version__}) reads up to format 1: upgrade "
                               "kestimator to load this newer format")
    # nothing was rewritten
    with open(path) as f:
        assert json.load(f)["format"] == "kestimator.estimator_checkpoints/2"


def test_an_index_without_the_writer_version_loads(tmp_path):
    _model_dir(tmp_path)
    _edit_index(tmp_path, kestimator_version=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path, values, meta = CheckpointManager(str(tmp_path)).load()
    assert os.path.basename(path) == "model.ckpt-2.h5" and meta["global_step"] == 2
    np.testing.assert_array_equal(values["w"], [3.0, 4.0])


def test_a_newer_checkpoint_is_refused_not_skipped_as_corrupt(tmp_path):
    manager = _model_dir(tmp_path)
    newest = manager.checkpoints()[-1]["path"]
    with h5py.File(newest, "a") as f:
        f.attrs["kestimator_format"] = np.int64(2)
    from kestimator.engine.checkpoint import file_sha256
    entries = json.load(open(tmp_path / INDEX_NAME))["checkpoints"]
    entries[-1]["sha256"] = file_sha256(newest)    # an intact file, in a format this kestimator cannot read
    _edit_index(tmp_path, checkpoints=entries)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # falling back to model.ckpt-1 with a "corrupt" warning would be wrong
        with pytest.raises(InvalidArgumentError, match="model.ckpt-2.h5 was written by .* format 2; .*reads up to "
                                                       "format 1"):
            manager.load()
