"""Disk full and read-only folders: training and saving stop with a clear ks.errors error naming the file, the
last good checkpoint still loads with its values unchanged, and no temporary file is left behind.

Disk full is simulated by making h5py's file creation (or the JSON index write) fail with ENOSPC after the
file was created, as a write that runs out of space does. A read-only model_dir is made with chmod 0o555; root
ignores permissions, so when a probe write into the folder still succeeds the test makes the temporary-file
creation fail with EROFS (what a read-only mount gives) instead. (A real 256 KiB tmpfs gives the same
errors; see the H5b report.)
"""
import errno
import hashlib
import os
import tempfile

import numpy as np
import pytest

import kestimator as ks
from kestimator import engine as ke
from kestimator.errors import FailedPreconditionError, ResourceExhaustedError
from kestimator.io.write_errors import write_error


# -- the mapping itself ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code, cls, words", [
    (errno.ENOSPC, ResourceExhaustedError, "no space left"), (errno.EDQUOT, ResourceExhaustedError, "no space left"),
    (errno.EROFS, FailedPreconditionError, "read-only"), (errno.EACCES, FailedPreconditionError, "permission denied")])
def test_errno_maps_to_a_named_error(code, cls, words):
    err = write_error(OSError(code, os.strerror(code)), "/m/model.ckpt-5.h5", "checkpoint")
    assert type(err) is cls
    assert words in str(err) and "/m/model.ckpt-5.h5" in str(err) and os.strerror(code) in str(err)


def test_errno_found_in_an_hdf5_message_and_other_errors_pass_through():
    text = "Can't write data (file write failed: errno = 28, error message = 'No space left on device')"
    assert isinstance(write_error(OSError(text), "/x.h5", "checkpoint"), ResourceExhaustedError)
    # h5py's error when the flush on close fails (seen on a full tmpfs): a RuntimeError with the errno in its text
    closing = RuntimeError("Can't decrement id ref count (file write failed: time = Wed Nov 25 22:06:31 2026, "
                           "filename = '/m/.x.tmp', file descriptor = 3, errno = 28, error message = 'No space left "
                           "on device', buf = 0x5, total write size = 16384)")
    err = write_error(closing, "/m/x.h5", "checkpoint")
    assert isinstance(err, ResourceExhaustedError) and "(No space left on device)" in str(err)
    assert write_error(OSError(errno.ENOENT, "No such file"), "/x.h5", "checkpoint") is None
    assert write_error(RuntimeError("Can't decrement id ref count"), "/x.h5", "checkpoint") is None
    assert write_error(ValueError("no"), "/x.h5", "checkpoint") is None


# -- simulations ------------------------------------------------------------------------------------------------------
def _disk_full(monkeypatch):
    """h5py file creation fails with ENOSPC after the file exists (partly written), like a full disk."""
    import h5py
    real = h5py.File

    def file(name, mode="r", *args, **kwargs):
        if mode in ("w", "w-", "x"):
            real(name, mode, *args, **kwargs).close()    # the temporary file exists on disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", file)


def _read_only(monkeypatch, folder):
    """Make `folder` read-only: chmod 0o555, and where that does not stop writes (root), EROFS on creation."""
    os.chmod(folder, 0o555)
    probe = os.path.join(folder, ".probe")
    try:
        with open(probe, "w"):
            pass
    except PermissionError:
        return "chmod"
    os.unlink(probe)
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.abspath(dir) == os.path.abspath(folder):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    real_open = open

    def guarded_open(file, mode="r", *args, **kwargs):   # the Saver's state file is written with open()
        if any(c in mode for c in "wax+") and os.path.abspath(os.path.dirname(os.fspath(file))) == \
                os.path.abspath(folder):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    real_os_open = os.open

    def guarded_os_open(file, flags, *args, **kwargs):   # the model_dir lock is created with os.open
        if flags & os.O_CREAT and os.path.abspath(os.path.dirname(os.fspath(file))) == os.path.abspath(folder):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), file)
        return real_os_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_os_open)
    return "EROFS"



def _fail_writes(failure, monkeypatch, folder):
    """Simulate `failure` ("disk_full" or "read_only") for writes into `folder`: (expected error, message words)."""
    if failure == "disk_full":
        _disk_full(monkeypatch)
        return ResourceExhaustedError, "no space left"
    how = _read_only(monkeypatch, str(folder))
    return FailedPreconditionError, ("read-only" if how == "EROFS" else "permission denied")

def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _no_temp_files(folder):
    left = [n for n in os.listdir(folder) if ".tmp" in n]
    assert not left, left


# -- Estimator ------------------------------------------------------------------------------------------------------
def _estimator(model_dir):
    config = ks.estimators.RunConfig(save_checkpoints_steps=3, save_summary_steps=0, log_step_count_steps=None)
    return ks.estimators.LinearRegressor([ks.feature_column.numeric_column("x")], model_dir=str(model_dir),
                                         config=config)


def _input_fn():
    x = np.linspace(0, 1, 32, dtype=np.float32).reshape(-1, 1)
    return ks.estimators.inputs.numpy_input_fn({"x": x}, 3 * x + 1, batch_size=8, num_epochs=None, shuffle=False)


@pytest.mark.parametrize("failure", ["disk_full", "index_disk_full", "read_only"])
def test_estimator_training_stops_and_the_last_checkpoint_is_intact(tmp_path, monkeypatch, failure):
    model_dir = tmp_path / "model"
    est = _estimator(model_dir)
    est.train(_input_fn(), steps=6)
    last = est.latest_checkpoint()
    digest = _sha(last)
    weights = {n: est.get_variable_value(n) for n in est.get_variable_names()}
    assert weights["global_step"] == 6
    if failure == "index_disk_full":   # the checkpoint file was written; rewriting the index fails
        from kestimator.estimators import checkpoint_manager as cm
        real_dump = cm.json.dump

        def dump(obj, f, *args, **kwargs):
            if isinstance(getattr(f, "name", None), int):   # the index's temporary file (os.fdopen)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_dump(obj, f, *args, **kwargs)
        monkeypatch.setattr(cm.json, "dump", dump)
        expected, words = ResourceExhaustedError, "no space left"
    else:
        expected, words = _fail_writes(failure, monkeypatch, model_dir)
    with pytest.raises(expected) as info:
        _estimator(model_dir).train(_input_fn(), steps=6)
    assert words in str(info.value) and str(model_dir) in str(info.value)
    monkeypatch.undo()
    os.chmod(model_dir, 0o755)
    _no_temp_files(model_dir)
    assert not os.path.exists(model_dir / ".kestimator.lock")     # the lock was released on the error
    again = _estimator(model_dir)
    if failure != "index_disk_full":
        assert again.latest_checkpoint() == last and _sha(last) == digest
    for name, value in weights.items():   # the newest good checkpoint: the index still lists step 6's
        if failure != "index_disk_full":
            np.testing.assert_array_equal(again.get_variable_value(name), value)
    # an index that could not be rewritten: the written step-9 file is adopted on the next start, or step 6
    # still loads; either way a good checkpoint loads and training goes on
    again.train(_input_fn(), steps=3)
    assert again.get_variable_value("global_step") >= 9


# -- Keras ----------------------------------------------------------------------------------------------------------
def _keras_model():
    model = ks.models.Sequential([ks.layers.Dense(4, activation="relu", input_shape=(3,)), ks.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.mark.parametrize("failure", ["disk_full", "read_only"])
@pytest.mark.parametrize("weights_only", [False, True])
def test_keras_model_checkpoint_and_save_stop_with_the_previous_file_intact(tmp_path, monkeypatch, failure,
                                                                          weights_only):
    folder = tmp_path / "ckpts"
    folder.mkdir()
    path = str(folder / "model.h5")
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    model = _keras_model()
    callback = ks.callbacks.ModelCheckpoint(path, save_weights_only=weights_only, save_freq="epoch")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    digest = _sha(path)
    saved = [w.numpy().copy() for w in model.weights]
    expected, words = _fail_writes(failure, monkeypatch, folder)
    with pytest.raises(expected, match=words) as info:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    assert path in str(info.value)
    with pytest.raises(expected, match=words):
        model.save(path) if not weights_only else model.save_weights(path)
    monkeypatch.undo()
    os.chmod(folder, 0o755)
    _no_temp_files(folder)
    assert _sha(path) == digest
    restored = _keras_model() if weights_only else None
    if weights_only:
        restored.load_weights(path)
    else:
        restored = ks.models.load_model(path)
    for got, want in zip(restored.weights, saved):
        np.testing.assert_array_equal(got.numpy(), want)


# -- Saver ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", ["disk_full", "read_only"])
def test_saver_save_stops_and_the_previous_checkpoint_restores(tmp_path, monkeypatch, failure):
    folder = tmp_path / "saver"
    folder.mkdir()
    g = ke.Graph()
    with g.as_default():
        w = ke.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
        saver = ke.train.Saver([w])
        init = ke.global_variables_initializer()
    sess = ke.Session(graph=g)
    sess.run(init)
    first = saver.save(sess, str(folder / "model"), global_step=1)
    digest = _sha(first)
    w.load(np.full((2, 3), 7.0, np.float32), sess)
    expected, words = _fail_writes(failure, monkeypatch, folder)
    with pytest.raises(expected, match=words) as info:
        saver.save(sess, str(folder / "model"), global_step=2)
    assert str(folder) in str(info.value)
    monkeypatch.undo()
    os.chmod(folder, 0o755)
    _no_temp_files(folder)
    assert _sha(first) == digest and ke.train.latest_checkpoint(str(folder)) == first
    saver.restore(sess, first)
    np.testing.assert_array_equal(sess.run(w), np.arange(6, dtype=np.float32).reshape(2, 3))
