"""AUC with several labels: per-label curves averaged (multi_label=True, label_weights honoured) and
label-weighted flattened counts, against tf_keras 2.21's numbers on the same inputs
(tests/fixtures/keras/auc_multi_label.json, written by tests/fixtures/make_keras_auc.py)."""
import json
import os

import numpy as np
import pytest

from kestimator import keras
from kestimator.errors import InvalidArgumentError
from kestimator.metrics import keras_metrics as M

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "keras", "auc_multi_label.json")
with open(FIXTURE) as _f:
    DATA = json.load(_f)
CASES = {c["name"]: c for c in DATA["cases"]}


def _batches(case):
    for b in DATA["batches"]:
        pred = b["logits"] if case["config"].get("from_logits") else b["y_pred"]
        sw = np.asarray(b["sample_weight"], np.float32) if case["sample_weight"] else None
        yield np.asarray(b["y_true"], np.float32), np.asarray(pred, np.float32), sw


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_tf_keras_eagerly(name):
    case = CASES[name]
    metric = M.AUC(**case["config"])
    for y_true, y_pred, sw in _batches(case):
        metric.update_state(y_true, y_pred, sample_weight=sw)
    # float32 counts and areas summed in another order than TF's: 1e-5 relative
    np.testing.assert_allclose(metric.result(), case["expected"], rtol=1e-5)
    again = M.deserialize(M.serialize(metric))
    assert again.get_config() == metric.get_config()


def _numpy_roc_auc(y_true, y_pred, thresholds):
    """Trapezoid ROC area from counts at `thresholds` (pred > t is positive), as Keras computes it."""
    pos = y_pred[None, :] > thresholds[:, None]
    tp = (pos & (y_true[None, :] > 0)).sum(1)
    fp = (pos & (y_true[None, :] == 0)).sum(1)
    p, n = (y_true > 0).sum(), (y_true == 0).sum()
    tpr = tp / p if p else np.zeros_like(tp, dtype=float)
    fpr = fp / n if n else np.zeros_like(fp, dtype=float)
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


def test_multi_label_is_the_weighted_mean_of_per_label_areas():
    case = CASES["roc_label_weights"]
    y_true = np.concatenate([b[0] for b in _batches(case)])
    y_pred = np.concatenate([b[1] for b in _batches(case)])
    eps = 1e-7
    thresholds = np.array([-eps] + [(i + 1) / 199 for i in range(198)] + [1 + eps], np.float32)
    areas = np.array([_numpy_roc_auc(y_true[:, j], y_pred[:, j], thresholds) for j in range(4)])
    assert areas[3] == 0.0        # label 3 has no positive example: recall 0 everywhere, area 0
    weights = np.array(case["config"]["label_weights"])
    metric = M.AUC(multi_label=True, label_weights=weights)
    metric.update_state(y_true, y_pred)
    np.testing.assert_allclose(metric.result(), (areas * weights).sum() / weights.sum(), rtol=1e-5)
    plain = M.AUC(multi_label=True)
    plain.update_state(y_true, y_pred)
    np.testing.assert_allclose(plain.result(), areas.mean(), rtol=1e-5)


def test_multi_label_auc_in_compile_matches_eager_metric():
    case = CASES["roc"]
    batches = list(_batches(case))
    x = np.concatenate([b[1] for b in batches])
    y = np.concatenate([b[0] for b in batches])
    # an identity model: its predictions are the fixture's scores, so fit's metric equals tf_keras's value
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t)])
    model.compile(keras.optimizers.SGD(0.0), "binary_crossentropy", metrics=[M.AUC(multi_label=True, name="auc")])
    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["auc"], case["expected"], rtol=1e-5)


def test_multi_label_errors():
    with pytest.raises(InvalidArgumentError, match="label_weights"):
        M.AUC(multi_label=True, num_labels=3, label_weights=[1.0, 2.0])
    with pytest.raises(InvalidArgumentError, match="non-negative"):
        M.AUC(multi_label=True, label_weights=[1.0, -2.0])
    metric = M.AUC(multi_label=True)
    metric.update_state(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))
    with pytest.raises(InvalidArgumentError, match="counts 3 labels, got a batch with 2"):
        metric.update_state(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
    with pytest.raises(InvalidArgumentError, match=r"shape \(batch, labels\)"):
        M.AUC(multi_label=True).update_state(np.zeros(4, np.float32), np.zeros(4, np.float32))
