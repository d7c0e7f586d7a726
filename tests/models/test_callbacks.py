"""Callbacks: what each one does to training, files and output, checked against scripted inputs."""
import csv
import glob
import os

import numpy as np
import pytest

from kestimator import keras
from kestimator.errors import InvalidArgumentError


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 3), dtype=np.float32), rng.random((n, 2), dtype=np.float32)


def _model(lr=0.05, optimizer=None):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer or keras.optimizers.SGD(lr), "mse")
    return model


class Script(keras.callbacks.Callback):
    """Writes scripted values into the epoch logs (so monitors see known sequences) and snapshots weights."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values, self.weights = key, list(values), []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


def test_early_stopping_restores_best_weights():
    x, y = _data()
    model = _model()
    script = Script("val_score", [0.5, 0.3, 0.4, 0.35, 0.2])
    stop = keras.callbacks.EarlyStopping(monitor="val_score", patience=2, restore_best_weights=True)
    h = model.fit(x, y, epochs=5, verbose=0, callbacks=[script, stop])
    # best at epoch 1 (0.3); epochs 2 and 3 do not improve -> stop after epoch 3 with epoch 1's weights
    assert len(h.history["loss"]) == 4 and stop.stopped_epoch == 3
    for a, b in zip(model.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_on_plateau_changes_the_running_learning_rate():
    x, y = _data()
    model = _model(lr=0.1)
    script = Script("val_loss", [1.0, 1.0, 1.0, 1.0])
    cb = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=0.02)
    h = model.fit(x, y, epochs=4, verbose=0, callbacks=[script, cb])
    # the logs show each epoch's rate; epoch 0 sets the best, then each epoch without improvement halves
    # it (patience 1): 0.1 -> 0.05 -> 0.025 -> max(0.0125, min_lr 0.02) = 0.02 after epoch 3
    np.testing.assert_allclose(h.history["learning_rate"], [0.1, 0.1, 0.05, 0.025], rtol=1e-6)
    # the new rate is the one the next step uses: one SGD step with lr 0.02
    w0, b0 = model.get_weights()
    model.fit(x, y, batch_size=40, epochs=1, shuffle=False, verbose=0)
    r = x @ w0 + b0 - y
    np.testing.assert_allclose(model.get_weights()[0], w0 - 0.02 * (2 / 80) * x.T @ r, rtol=1e-5)


def test_learning_rate_scheduler_zero_rate_freezes_weights():
    x, y = _data()
    model = _model(lr=0.1)
    seen = []
    cb = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.0 if epoch == 1 else 0.1)
    rec = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(model.get_weights()))
    h = model.fit(x, y, epochs=3, verbose=0, callbacks=[cb, rec])
    np.testing.assert_allclose(h.history["learning_rate"], [0.1, 0.0, 0.1], rtol=1e-6)
    for a, b in zip(seen[0], seen[1]):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(seen[1][0], seen[2][0])


def test_csv_logger(tmp_path):
    x, y = _data()
    path = tmp_path / "log.csv"
    model = _model()
    model.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])
    h = model.fit(x, y, epochs=3, verbose=0, callbacks=[keras.callbacks.CSVLogger(str(path))])
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], h.history["loss"], rtol=1e-7)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.CSVLogger(str(path), append=True)])
    assert len(list(csv.DictReader(open(path)))) == 4


def test_terminate_on_nan_stops_after_the_first_bad_batch():
    x, y = _data()
    y[5] = np.nan
    model = _model()
    batches = []
    rec = keras.callbacks.LambdaCallback(on_batch_end=lambda b, logs: batches.append(b))
    h = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0,
                  callbacks=[rec, keras.callbacks.TerminateOnNaN()])
    assert batches == [0, 1] and len(h.history["loss"]) == 1 and np.isnan(h.history["loss"][0])


def test_model_checkpoint_templates_best_only_and_weights_only(tmp_path):
    x, y = _data()
    model = _model()
    script = Script("val_score", [0.5, 0.7, 0.4])
    tpl = str(tmp_path / "m-{epoch:02d}-{val_score:.1f}.h5")
    model.fit(x, y, epochs=3, verbose=0, callbacks=[
        script, keras.callbacks.ModelCheckpoint(tpl, monitor="val_score", save_best_only=True, mode="min")])
    # 0.5 saved, 0.7 not better, 0.4 saved
    assert sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "m-*"))) == ["m-01-0.5.h5", "m-03-0.4.h5"]
    restored = keras.models.load_model(str(tmp_path / "m-03-0.4.h5"))
    for a, b in zip(restored.get_weights(), script.weights[2]):
        np.testing.assert_array_equal(a, b)
    wpath = str(tmp_path / "w-{epoch}")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(wpath, save_weights_only=True)])
    fresh = _model()
    fresh.load_weights(str(tmp_path / "w-2"))
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


class Crash(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("simulated kill")


def test_backup_and_restore_resumes_at_the_same_epoch_and_step(tmp_path):
    x, y = _data(n=48)

    def make():
        keras.utils.set_random_seed(7)
        return _model(optimizer=keras.optimizers.Adam(0.05))
    reference = make()
    reference.fit(x, y, batch_size=8, epochs=3, verbose=0)
    model = make()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "bk"), save_freq=2)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[backup, Crash(epoch=1, batch=4)])
    assert os.path.exists(tmp_path / "bk" / "backup.ckpt")
    steps = []
    rec = keras.callbacks.LambdaCallback(on_batch_begin=lambda b, logs: steps.append(b))
    resumed = make()                      # a new process would start from fresh weights
    h = resumed.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[backup, rec])
    # the backup at epoch 1 after 4 steps: the resumed run does epoch 1's steps 4, 5 and all of epoch 2
    assert steps == [4, 5] + list(range(6)) and len(h.history["loss"]) == 2
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not os.path.exists(tmp_path / "bk" / "backup.ckpt")   # a completed fit removes it


def test_tensorboard_writes_scalars_histograms_and_graph(tmp_path):
    from kestimator.io.events import read_event_scalars
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y),
              callbacks=[keras.callbacks.TensorBoard(str(tmp_path), histogram_freq=1)])
    train = glob.glob(str(tmp_path / "train" / "events.out.tfevents.*"))
    val = glob.glob(str(tmp_path / "validation" / "events.out.tfevents.*"))
    assert len(train) == 1 and len(val) == 1
    scalars = read_event_scalars(train[0])
    assert [s for s, _ in scalars["epoch_loss"]] == [0, 1]
    assert [s for s, _ in read_event_scalars(val[0])["epoch_loss"]] == [0, 1]
    raw = open(train[0], "rb").read()
    assert f"{model.layers[0].name}/kernel_0".encode() in raw and b"MatMul" in raw   # a weight histogram and the graph


def test_progress_output_is_one_line_per_epoch_off_a_terminal(capsys):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=3, batch_size=4, verbose=1)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.strip()]
    assert len(lines) == 3 and lines[0].startswith("Epoch 1/3") and "loss:" in lines[0]
    model.fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_batch_hooks_get_running_logs():
    x, y = _data()
    model = _model()
    model.compile(keras.optimizers.SGD(0.0), "mse", metrics=["mae"])
    logs = []
    model.fit(x, y, batch_size=10, epochs=1, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(on_batch_end=lambda b, l: logs.append(dict(l)))])
    assert len(logs) == 4 and set(logs[0]) == {"loss", "mae"}
    np.testing.assert_allclose(logs[-1]["loss"], model.evaluate(x, y, verbose=0)[0], rtol=1e-5)


def test_callback_argument_errors():
    with pytest.raises(InvalidArgumentError):
        keras.callbacks.ReduceLROnPlateau(factor=1.5)
    with pytest.raises(InvalidArgumentError):
        keras.callbacks.ModelCheckpoint("x.h5", save_freq=0)
    with pytest.raises(InvalidArgumentError):
        keras.callbacks.LambdaCallback(on_nothing=print)


def test_progress_bar_on_a_terminal(monkeypatch, capsys):
    from kestimator.models import progbar
    monkeypatch.setattr(progbar, "_isatty", lambda: True)
    monkeypatch.setattr(progbar, "_REDRAW_SECONDS", 0.0)   # redraw on every step in this test
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, batch_size=4, verbose=1)
    out = capsys.readouterr().out
    # tqdm draws "Epoch 1/2: 100%|...| 10/10 [...]" with the running loss; one bar per epoch
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "10/10" in out and "loss=" not in out
    assert "loss: " in out


def test_dataset_with_steps_per_epoch_continues_across_epochs():
    from kestimator.data import Dataset
    x, y = _data(n=40)
    model = _model()
    seen = []
    rec = keras.callbacks.LambdaCallback(on_batch_end=lambda b, logs: seen.append(b))
    model.fit(Dataset.from_tensor_slices((x, y)).batch(10), steps_per_epoch=3, epochs=3, verbose=0, callbacks=[rec])
    assert seen == [0, 1, 2] * 3


def test_history_and_progress_bar_see_what_callbacks_write_into_epoch_logs(capsys):
    # tf.keras's CallbackList order: the given callbacks, then History, then the progress bar
    x, y = _data()
    model = _model()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=2, callbacks=[Script("extra", [0.25, 0.5])])
    assert history.history["extra"] == [0.25, 0.5]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 2
    assert "extra: 0.2500" in lines[0] and "extra: 0.5000" in lines[1], lines
    # a History the caller passes stays where it is, as in tf.keras: it records before later callbacks
    own = keras.callbacks.History()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[own, Script("late", [1.0])])
    assert "late" not in own.history and model.history is own


def test_callback_list_adds_history_then_progress_bar_last():
    from kestimator.models.progbar import ProgbarLogger
    user, bar = Script("k", [0]), ProgbarLogger()
    cbl = keras.callbacks.CallbackList([bar, user], add_history=True, add_progbar=True, verbose=0, epochs=1)
    assert [type(cb) for cb in cbl] == [Script, keras.callbacks.History, ProgbarLogger]
    assert cbl.callbacks[2] is bar and cbl._progbar is bar and cbl._history is cbl.callbacks[1]
    assert user.params == {"verbose": 0, "epochs": 1}
    cbl = keras.callbacks.CallbackList([user], add_history=True, add_progbar=True)
    assert [type(cb) for cb in cbl] == [Script, keras.callbacks.History, ProgbarLogger]
    assert [type(cb) for cb in keras.callbacks.CallbackList([user])] == [Script]
