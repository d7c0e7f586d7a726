"""The checkpoint manager: index, retention across runs, corruption fallback, recovery after a kill."""
import json
import os
import time

import numpy as np
import pytest

from kestimator.errors import DataLossError
from kestimator.estimators.checkpoint_manager import (INDEX_NAME, CheckpointManager, decode_name, encode_name,
                                                      list_checkpoints)


def _tensors(step):
    return {"dense/kernel": np.full((2, 2), step, np.float32), "dense/kernel/accumulator": np.ones(2) * step,
            "global_step": np.int64(step)}


def test_save_load_round_trip_with_nested_names(tmp_path):
    m = CheckpointManager(tmp_path)
    path = m.save(7, _tensors(7), {"extra": [1, 2]})
    found = m.load()
    assert found[0] == path and found[2]["global_step"] == 7 and found[2]["extra"] == [1, 2]
    np.testing.assert_array_equal(found[1]["dense/kernel"], np.full((2, 2), 7))
    assert set(found[1]) == set(_tensors(7))   # "a/b" and "a/b/c" coexist thanks to the name encoding
    assert decode_name(encode_name("a%2F/b%")) == "a%2F/b%"


def test_keep_max_holds_across_managers_and_runs(tmp_path):
    for step in range(1, 4):
        CheckpointManager(tmp_path, keep_checkpoint_max=5).save(step, _tensors(step))
    m = CheckpointManager(tmp_path, keep_checkpoint_max=2)   # a later run with a smaller limit
    m.save(4, _tensors(4))
    kept = list_checkpoints(tmp_path)
    assert [os.path.basename(p) for p in kept] == ["model.ckpt-3.h5", "model.ckpt-4.h5"]
    on_disk = sorted(f for f in os.listdir(tmp_path) if f.endswith(".h5"))
    assert on_disk == ["model.ckpt-3.h5", "model.ckpt-4.h5"]   # older files are deleted, not just unlisted


def test_keep_every_n_hours_preserves_old_checkpoints(tmp_path):
    m = CheckpointManager(tmp_path, keep_checkpoint_max=1, keep_checkpoint_every_n_hours=1)
    m.save(1, _tensors(1))
    m.save(2, _tensors(2))
    assert [os.path.basename(p) for p in list_checkpoints(tmp_path)] == ["model.ckpt-2.h5"]
    # pretend the model_dir's first checkpoint was written 3 hours ago and checkpoint 2 half an hour ago:
    # checkpoint 2 is 2.5 hours after the reference, so when it falls out of keep_max=1 it is preserved
    with open(tmp_path / INDEX_NAME) as f:
        index = json.load(f)
    index["reference_time"] -= 3 * 3600
    index["checkpoints"][0]["time"] -= 1800
    with open(tmp_path / INDEX_NAME, "w") as f:
        json.dump(index, f)
    m.save(3, _tensors(3))
    assert [os.path.basename(p) for p in list_checkpoints(tmp_path)] == ["model.ckpt-2.h5", "model.ckpt-3.h5"]
    m.save(4, _tensors(4))   # checkpoint 3 is 30 min after checkpoint 2: dropped; 2 stays
    assert [os.path.basename(p) for p in list_checkpoints(tmp_path)] == ["model.ckpt-2.h5", "model.ckpt-4.h5"]


def test_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path):
    m = CheckpointManager(tmp_path)
    m.save(1, _tensors(1))
    newest = m.save(2, _tensors(2))
    with open(newest, "r+b") as f:   # flip bytes in the middle: the checksum no longer matches
        f.seek(os.path.getsize(newest) // 2)
        f.write(b"\xff\x00\xff\x00")
    with pytest.warns(UserWarning, match="model.ckpt-2.h5.*corrupt"):
        found = m.load()
    assert found[2]["global_step"] == 1


def test_truncated_checkpoint_falls_back(tmp_path):
    m = CheckpointManager(tmp_path)
    m.save(1, _tensors(1))
    newest = m.save(2, _tensors(2))
    with open(newest, "r+b") as f:
        f.truncate(os.path.getsize(newest) // 3)
    with pytest.warns(UserWarning, match="model.ckpt-2.h5"):
        assert m.load()[2]["global_step"] == 1


def test_all_corrupt_is_a_data_loss_error(tmp_path):
    m = CheckpointManager(tmp_path)
    p = m.save(1, _tensors(1))
    with open(p, "wb") as f:
        f.write(b"garbage")
    with pytest.warns(UserWarning):
        with pytest.raises(DataLossError, match="every checkpoint"):
            m.load()


def test_recovery_adopts_unindexed_checkpoints_and_removes_temporaries(tmp_path):
    m = CheckpointManager(tmp_path)
    m.save(1, _tensors(1))
    # a kill after the new file was renamed into place but before the index was rewritten
    from kestimator.engine.checkpoint import save_tensors
    save_tensors(os.path.join(tmp_path, "model.ckpt-2.h5"), {encode_name(k): v for k, v in _tensors(2).items()},
                 {"global_step": 2})
    # and a kill in the middle of writing: a temporary file
    (tmp_path / ".model.ckpt-3.h5.abc.tmp").write_bytes(b"partial")
    assert m.load()[2]["global_step"] == 2
    m.remove_temporary_files()
    assert not (tmp_path / ".model.ckpt-3.h5.abc.tmp").exists()


def test_unreadable_index_is_rebuilt_from_files(tmp_path):
    m = CheckpointManager(tmp_path)
    m.save(3, _tensors(3))
    (tmp_path / INDEX_NAME).write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable"):
        found = m.load()
    assert found[2]["global_step"] == 3


def test_index_with_a_time_too_large_for_a_float_is_rebuilt(tmp_path):
    # found by the slow fuzz tier: float(10**400) raised OverflowError out of the index reader
    m = CheckpointManager(tmp_path)
    m.save(3, _tensors(3))
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    index["checkpoints"][0]["time"] = 10 ** 400
    (tmp_path / INDEX_NAME).write_text(json.dumps(index))
    with pytest.warns(UserWarning, match="unreadable"):
        found = m.load()
    assert found[2]["global_step"] == 3


def test_missing_listed_file_is_dropped(tmp_path):
    m = CheckpointManager(tmp_path)
    m.save(1, _tensors(1))
    p2 = m.save(2, _tensors(2))
    os.unlink(p2)
    with pytest.warns(UserWarning, match="missing"):
        assert m.load()[2]["global_step"] == 1
    time.sleep(0.01)
