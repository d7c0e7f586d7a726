"""compile / fit / evaluate / predict against hand-computed NumPy references.

Tolerances: float32 arithmetic with different summation orders, 1e-5 relative unless stated.
"""
import numpy as np
import pytest

from kestimator import keras
from kestimator.engine.session import Session
from kestimator.errors import InvalidArgumentError


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _linear(units=2, features=3, **kw):
    return keras.Sequential([keras.Input((features,)), keras.layers.Dense(units, **kw)])


def _bce(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7))


def _digits(scale_to_unit_variance=True):
    """sklearn's digits, a stratified 75/25 split; features standardized with the training split's mean and
    standard deviation (sklearn's StandardScaler), the usual preparation for an MLP."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.data.astype(np.float32), d.target, test_size=0.25, random_state=0,
                                          stratify=d.target)
    scaler = StandardScaler().fit(xtr)
    return scaler.transform(xtr).astype(np.float32), ytr, scaler.transform(xte).astype(np.float32), yte


def test_digits_mlp_reaches_095_in_five_epochs():
    # Issue 3's gate. Setup: StandardScaler inputs, Dense 128 relu -> Dense 10 softmax, Adam 1e-3, batch 8,
    # 5 epochs. Test accuracy, seeds 0-9 (tests/models/test_training.py setup run in both frameworks):
    #   tf_keras 2.21: 0.971 0.973 0.973 0.980 0.982 0.971 0.971 0.971 0.976 0.976   (min 0.971)
    #   kestimator:    0.967 0.976 0.971 0.971 0.980 0.976 0.980 0.973 0.978 0.980   (min 0.967)
    # The same in tf_keras with other setups (seeds 0-5): pixels / 16 with batch 32 0.924-0.942, batch 8
    # 0.944-0.962; StandardScaler with batch 32 0.947-0.960, batch 16 0.960-0.973 (seeds 0-9): the bar
    # needs both standardized inputs and a batch below 32, in either framework.
    xtr, ytr, xte, yte = _digits()
    accuracies = []
    for seed in range(10):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(xtr, ytr, epochs=5, batch_size=8, verbose=0)
        assert len(history.history["loss"]) == 5 and history.history["loss"][-1] < history.history["loss"][0]
        accuracies.append(model.evaluate(xte, yte, verbose=0)[1])
    assert min(accuracies) >= 0.95, accuracies


def _shifted(images, labels):
    """The 9 one-pixel shifts (zero fill) of each 8x8 image: 12,123 training images from 1,347, the
    classic way to grow a small digits set (about the size of the 12,800-image CNN benchmark set)."""
    pad = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    shifted = [pad[:, 1 + dy:9 + dy, 1 + dx:9 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return np.concatenate(shifted), np.tile(labels, 9)


def _shifted_digits_16x16():
    """Training images and their one-pixel shifts, each pixel standardized (StandardScaler fitted on the
    shifted training set), upsampled to 16x16 by repeating pixels; the 450 untouched test images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.images.astype(np.float32), d.target, test_size=0.25, random_state=0,
                                          stratify=d.target)
    xtr, ytr = _shifted(xtr, ytr)
    scaler = StandardScaler().fit(xtr.reshape(len(xtr), -1))
    block = np.ones((2, 2), np.float32)

    def prepare(x):
        x = scaler.transform(x.reshape(len(x), -1)).astype(np.float32).reshape(-1, 8, 8)
        return np.kron(x, block)[..., None]
    return prepare(xtr), ytr, prepare(xte), yte


def _small_cnn_accuracy(seed, data):
    """Issue 3's small CNN (Conv 3x3x32 relu -> MaxPool 2 -> Conv 3x3x64 relu -> MaxPool 2 -> Flatten ->
    Dense 10 softmax), Adam 1e-3, batch 32, 5 epochs: its test accuracy."""
    xtr, ytr, xte, yte = data
    keras.utils.set_random_seed(seed)
    L = keras.layers
    model = keras.Sequential([keras.Input(xtr.shape[1:]), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
                              L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
                              L.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(xtr, ytr, epochs=5, batch_size=32, verbose=0)
    return model.evaluate(xte, yte, verbose=0)[1]


# Test accuracy of _small_cnn_accuracy on _shifted_digits_16x16, seeds 0-4, the same setup in both frameworks:
#   tf_keras 2.21: 0.978 0.991 0.973 0.984 0.980
#   kestimator:    0.989 0.984 0.984 0.978 0.984
# Without the shifted copies (1,347 training images; 16x16, batch 16) both fall short of 0.97 on some seeds:
# tf_keras 0.931-0.976, kestimator 0.962-0.976 (seeds 0-4); at 24x24 with batch 8, tf_keras 0.933-0.982.
# One run is about 11 s of CPU time; seed 0 runs in the default tier, seeds 1-4 in the slow one.
def test_digits_small_cnn_reaches_097_in_five_epochs():
    acc = _small_cnn_accuracy(0, _shifted_digits_16x16())
    assert acc >= 0.97, acc


@pytest.mark.slow
def test_digits_small_cnn_reaches_097_over_seeds():
    data = _shifted_digits_16x16()
    accuracies = [_small_cnn_accuracy(seed, data) for seed in range(1, 5)]
    assert min(accuracies) >= 0.97, accuracies


def test_one_sgd_step_matches_numpy_gradient():
    model = _linear(units=2, features=3)
    w0, b0 = [v.copy() for v in model.get_weights()]
    rng = np.random.default_rng(1)
    x, y = rng.random((5, 3), dtype=np.float32), rng.random((5, 2), dtype=np.float32)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, y, batch_size=5, epochs=1, shuffle=False, verbose=0)
    # L = mean over 5 samples and 2 outputs of (xW + b - y)^2 -> dL/dW = 2/(5*2) x^T r, dL/db = 2/10 sum(r)
    r = x @ w0 + b0 - y
    w1, b1 = model.get_weights()
    np.testing.assert_allclose(w1, w0 - 0.1 * (2 / 10) * x.T @ r, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b1, b0 - 0.1 * (2 / 10) * r.sum(0), rtol=1e-5, atol=1e-7)


def test_epoch_logs_are_means_over_all_samples_with_partial_last_batch():
    # lr 0: the weights stay fixed, so the epoch's mean loss and accuracy equal those of the whole data
    rng = np.random.default_rng(2)
    x, y = rng.random((50, 3), dtype=np.float32), rng.integers(0, 2, 50)
    model = _linear(units=2, features=3, activation="softmax")
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, batch_size=16, epochs=2, verbose=0)          # batches of 16, 16, 16, 2
    w, b = model.get_weights()
    logits = x @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(h.history["loss"], [-np.log(p[np.arange(50), y]).mean()] * 2, rtol=1e-5)
    np.testing.assert_allclose(h.history["accuracy"], [(p.argmax(1) == y).mean()] * 2, rtol=1e-6)
    ev = model.evaluate(x, y, batch_size=7, verbose=0)
    np.testing.assert_allclose(ev, [h.history["loss"][0], h.history["accuracy"][0]], rtol=1e-5)


def test_sample_weight_and_class_weight():
    rng = np.random.default_rng(3)
    x, y = rng.random((40, 3), dtype=np.float32), rng.integers(0, 2, 40).astype(np.float32)
    model = _linear(units=1, features=3, activation="sigmoid")
    model.compile(keras.optimizers.SGD(0.0), "binary_crossentropy")
    w, b = model.get_weights()
    p = 1 / (1 + np.exp(-(x @ w + b)[:, 0]))
    per = _bce(y, p)
    sw = rng.random(40).astype(np.float32)
    h = model.fit(x, y, sample_weight=sw, batch_size=8, epochs=1, verbose=0)
    # each batch: sum(w * l) / batch size; the epoch mean weights batches by size -> sum(w * l) / N
    np.testing.assert_allclose(h.history["loss"][0], (sw * per).sum() / 40, rtol=1e-4)
    cw = np.where(y == 1, 3.0, 1.0)
    h = model.fit(x, y, class_weight={0: 1.0, 1: 3.0}, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_allclose(h.history["loss"][0], (cw * per).sum() / 40, rtol=1e-4)


def test_validation_split_holds_out_the_last_samples():
    rng = np.random.default_rng(4)
    x, y = rng.random((50, 3), dtype=np.float32), rng.random((50, 2), dtype=np.float32)
    model = _linear()
    model.compile(keras.optimizers.SGD(0.0), "mse", metrics=["mae"])
    h = model.fit(x, y, validation_split=0.2, epochs=1, verbose=0)
    expected = model.evaluate(x[40:], y[40:], verbose=0)
    np.testing.assert_allclose([h.history["val_loss"][0], h.history["val_mae"][0]], expected, rtol=1e-5)
    h = model.fit(x, y, validation_data=(x[:10], y[:10]), epochs=1, verbose=0)
    np.testing.assert_allclose(h.history["val_loss"][0], model.evaluate(x[:10], y[:10], verbose=0)[0], rtol=1e-5)


def test_dataset_input_matches_array_input():
    from kestimator.data import Dataset
    rng = np.random.default_rng(5)
    x, y = rng.random((30, 3), dtype=np.float32), rng.random((30, 2), dtype=np.float32)
    a, b = _linear(), _linear()
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(keras.optimizers.SGD(0.05), "mse")
    a.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    h = b.fit(Dataset.from_tensor_slices((x, y)).batch(8), epochs=2, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
    assert len(h.history["loss"]) == 2
    np.testing.assert_allclose(b.predict(Dataset.from_tensor_slices(x).batch(7)), b.predict(x), rtol=1e-6)
    np.testing.assert_allclose(b.evaluate(Dataset.from_tensor_slices((x, y)).batch(4), verbose=0),
                               b.evaluate(x, y, verbose=0), rtol=1e-5)


def test_multi_input_output_dicts_and_loss_weights():
    rng = np.random.default_rng(6)
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = keras.layers.Concatenate()([keras.layers.Dense(5, activation="relu")(a), b])
    out_c = keras.layers.Dense(3, activation="softmax", name="cls")(h)
    out_r = keras.layers.Dense(1, name="reg")(h)
    model = keras.Model({"a": a, "b": b}, {"cls": out_c, "reg": out_r})
    model.compile(keras.optimizers.SGD(0.0), {"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  metrics={"cls": ["accuracy"]}, loss_weights={"cls": 1.0, "reg": 0.5})
    xa, xb = rng.random((20, 4), dtype=np.float32), rng.random((20, 3), dtype=np.float32)
    yc, yr = rng.integers(0, 3, 20), rng.random((20, 1), dtype=np.float32)
    logs = model.fit({"a": xa, "b": xb}, {"cls": yc, "reg": yr}, epochs=1, verbose=0).history
    assert set(logs) == {"loss", "cls_loss", "reg_loss", "cls_accuracy"}
    np.testing.assert_allclose(logs["loss"][0], logs["cls_loss"][0] + 0.5 * logs["reg_loss"][0], rtol=1e-5)
    pred = model.predict({"a": xa, "b": xb})
    np.testing.assert_allclose(logs["reg_loss"][0], ((pred["reg"] - yr) ** 2).mean(), rtol=1e-5)
    with pytest.raises(InvalidArgumentError, match=r"\['b'\]"):
        model.predict({"a": xa})


def test_predict_matches_numpy_and_does_not_depend_on_batch_size():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)])
    x = np.random.default_rng(7).random((1037, 6), dtype=np.float32)
    w1, b1, w2, b2 = model.get_weights()
    expected = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(x, batch_size=10), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x[:3]), expected[:3], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(x[:3]), expected[:3], rtol=1e-5, atol=1e-6)


def test_on_batch_methods():
    rng = np.random.default_rng(8)
    x, y = rng.random((8, 3), dtype=np.float32), rng.random((8, 2), dtype=np.float32)
    model = _linear()
    model.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"])
    w, b = model.get_weights()
    before = ((x @ w + b - y) ** 2).mean()
    loss, mae = model.test_on_batch(x, y)
    np.testing.assert_allclose(loss, before, rtol=1e-5)
    logs = model.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["loss"], before, rtol=1e-5)   # the loss before the update
    assert model.test_on_batch(x, y)[0] < before


def test_dropout_and_batchnorm_differ_between_training_and_inference():
    rng = np.random.default_rng(9)
    x, y = rng.normal(3.0, 2.0, (64, 4)).astype(np.float32), rng.random((64, 1), dtype=np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(momentum=0.5),
                              keras.layers.Dropout(0.5), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    mean_before = model.layers[0].moving_mean.numpy().copy()
    h = model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    # one training step moved the moving mean halfway to the batch mean (momentum 0.5)
    np.testing.assert_allclose(model.layers[0].moving_mean.numpy(), 0.5 * mean_before + 0.5 * x.mean(0), rtol=1e-5)
    ev1 = model.evaluate(x, y, verbose=0)
    assert ev1 == model.evaluate(x, y, verbose=0)          # inference is deterministic
    assert abs(h.history["loss"][0] - ev1) > 1e-6          # training used batch statistics and dropout


def test_frozen_layers_and_regularization_loss():
    rng = np.random.default_rng(10)
    x, y = rng.random((16, 3), dtype=np.float32), rng.random((16, 2), dtype=np.float32)
    frozen = keras.layers.Dense(3, name="frozen")
    head = keras.layers.Dense(2, kernel_regularizer=keras.regularizers.l2(0.1), name="head")
    model = keras.Sequential([keras.Input((3,)), frozen, head])
    frozen.trainable = False
    model.compile(keras.optimizers.SGD(0.0), "mse")
    wf = frozen.get_weights()
    h = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    k, b = head.get_weights()
    hid = x @ wf[0] + wf[1]
    # loss = mse + 0.1 * sum(kernel^2)
    np.testing.assert_allclose(h.history["loss"][0], ((hid @ k + b - y) ** 2).mean() + 0.1 * (k ** 2).sum(),
                               rtol=1e-5)
    model.compile(keras.optimizers.SGD(0.5), "mse")
    model.fit(x, y, epochs=2, verbose=0)
    for a, b_ in zip(frozen.get_weights(), wf):
        np.testing.assert_array_equal(a, b_)
    assert not np.allclose(head.get_weights()[0], k)
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2


def test_subclassed_model_trains_and_predicts():
    class TwoLayer(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(4, activation="relu")
            self.out = keras.layers.Dense(1)

        def call(self, inputs, training=None):
            return self.out(self.hidden(inputs))
    rng = np.random.default_rng(11)
    x, y = rng.random((32, 3), dtype=np.float32), rng.random((32, 1), dtype=np.float32)
    model = TwoLayer()
    model.compile(keras.optimizers.SGD(0.1), "mse")
    h = model.fit(x, y, epochs=3, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    w1, b1, w2, b2 = model.get_weights()
    np.testing.assert_allclose(model.predict(x), np.maximum(x @ w1 + b1, 0) @ w2 + b2, rtol=1e-5, atol=1e-6)


def test_step_plans_compiled_once_per_feed_signature(monkeypatch):
    calls = []
    original = Session._plan_for

    def counting(self, tensors, targets, feed_tensors, feed_values, trace=False):
        calls.append(tuple(v.shape for v in feed_values))
        return original(self, tensors, targets, feed_tensors, feed_values, trace)
    monkeypatch.setattr(Session, "_plan_for", counting)
    rng = np.random.default_rng(12)
    x, y = rng.random((70, 3), dtype=np.float32), rng.random((70, 2), dtype=np.float32)
    model = _linear()
    model.compile("sgd", "mse")
    model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    train_plans = [c for c in calls if len(c) == 2]
    # one plan for the full batches (32 rows) and one for the last batch (6 rows), not one per epoch
    assert sorted(train_plans) == [((6, 3), (6, 2)), ((32, 3), (32, 2))]


def test_errors_name_the_problem():
    model = _linear()
    x, y = np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)
    with pytest.raises(InvalidArgumentError, match="compile"):
        model.fit(x, y, verbose=0)
    model.compile("sgd", "mse")
    with pytest.raises(InvalidArgumentError, match="different numbers of samples"):
        model.fit(x, y[:3], verbose=0)
    with pytest.raises(InvalidArgumentError, match="shape"):
        model.fit(np.zeros((4, 5), np.float32), y, verbose=0)
    with pytest.raises(InvalidArgumentError, match="unknown optimizer"):
        model.compile("nope", "mse")


def test_generator_input_keeps_its_first_batch():
    rng = np.random.default_rng(13)
    x, y = rng.random((12, 3), dtype=np.float32), rng.random((12, 2), dtype=np.float32)
    a, b = _linear(), _linear()
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(keras.optimizers.SGD(0.1), "mse")
    a.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    b.fit(((x[i:i + 4], y[i:i + 4]) for i in range(0, 12, 4)), steps_per_epoch=3, epochs=1, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
