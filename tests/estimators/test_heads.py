"""Heads: losses, predictions and eval metrics on fixed logits, with the arithmetic written out."""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError
from kestimator.estimators import ModeKeys
from kestimator.estimators.heads import BinaryClassHead, MultiClassHead, RegressionHead


def _eval(head, logits, labels, weights=None, mode=ModeKeys.EVAL):
    """(loss, {metric: value}, predictions) of `head` on constant logits / labels."""
    g = ke.Graph()
    with g.as_default():
        ke.train.get_or_create_global_step()
        features = {"x": ke.constant(np.zeros((len(logits), 1), np.float32))}
        if weights is not None:
            features["w"] = ke.constant(np.asarray(weights, np.float32))
        spec = head.create_estimator_spec(features, mode, ke.constant(np.asarray(logits, np.float32)),
                                          labels=ke.constant(labels) if labels is not None else None)
        with ke.Session() as sess:
            sess.run([ke.global_variables_initializer(), ke.local_variables_initializer()])
            preds = sess.run(spec.predictions)
            if mode == ModeKeys.PREDICT:
                return None, None, preds
            sess.run([m[1] for m in spec.eval_metric_ops.values()])
            metrics = sess.run({k: m[0] for k, m in spec.eval_metric_ops.items()})
            return sess.run(spec.loss), metrics, preds


def test_binary_head_loss_metrics_and_predictions():
    logits = [[-1.0], [2.0], [0.5], [-3.0]]
    labels = np.array([[0], [1], [0], [1]])
    w = [1.0, 2.0, 1.0, 0.5]
    loss, m, p = _eval(BinaryClassHead(weight_column="w"), logits, labels, w)
    # per-example sigmoid cross-entropy: log(1+e^-1)=0.31326, log(1+e^-2)=0.12693, log(1+e^.5)=0.97408,
    # log(1+e^3)=3.04859; weighted sum 0.31326 + 0.25386 + 0.97408 + 1.52429 = 3.06549
    np.testing.assert_allclose(loss, 3.06549 / 4, rtol=1e-4)                # sum over batch size
    np.testing.assert_allclose(m["average_loss"], 3.06549 / 4.5, rtol=1e-4)  # weighted mean
    # class ids [0, 1, 1, 0]: correct rows 0 and 1 -> (1 + 2) / 4.5
    np.testing.assert_allclose(m["accuracy"], 3 / 4.5, rtol=1e-6)
    np.testing.assert_allclose(m["precision"], 2 / 3, rtol=1e-6)            # tp w=2, fp w=1
    np.testing.assert_allclose(m["recall"], 2 / 2.5, rtol=1e-6)             # tp w=2, fn w=0.5
    np.testing.assert_allclose(m["label/mean"], 2.5 / 4.5, rtol=1e-6)
    np.testing.assert_allclose(m["accuracy_baseline"], 2.5 / 4.5, rtol=1e-6)  # max(0.556, 0.444)
    # logistic = [0.26894, 0.88080, 0.62246, 0.04743]; weighted mean = 2.67670 / 4.5
    np.testing.assert_allclose(m["prediction/mean"], 2.67670 / 4.5, rtol=1e-4)
    # weighted pairs (pos, neg) ordered correctly: (0.88, 0.27) w 2, (0.88, 0.62) w 2 out of 2.5 * 2 -> 0.8
    np.testing.assert_allclose(m["auc"], 0.8, atol=1e-4)
    assert 0 < m["auc_precision_recall"] <= 1
    np.testing.assert_allclose(p["logistic"], 1 / (1 + np.exp(-np.array(logits))), rtol=1e-6)
    np.testing.assert_allclose(p["probabilities"][:, 1] + p["probabilities"][:, 0], 1.0, rtol=1e-6)
    assert p["class_ids"].tolist() == [[0], [1], [1], [0]]
    assert p["classes"].tolist() == [[b"0"], [b"1"], [b"1"], [b"0"]]
    assert p["all_classes"].tolist() == [[b"0", b"1"]] * 4 and p["all_class_ids"].tolist() == [[0, 1]] * 4


def test_binary_head_label_vocabulary_and_bad_labels():
    head = BinaryClassHead(label_vocabulary=["no", "yes"])
    _, m, p = _eval(head, [[3.0], [-3.0]], np.array([["yes"], ["yes"]], object))
    assert m["accuracy"] == 0.5
    assert p["classes"].tolist() == [[b"yes"], [b"no"]]
    with pytest.raises(InvalidArgumentError, match="label_vocabulary"):
        _eval(head, [[3.0]], np.array([["maybe"]], object))
    with pytest.raises(InvalidArgumentError, match="outside"):
        _eval(BinaryClassHead(), [[1.0]], np.array([[2]]))


def test_multi_class_head():
    logits = [[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]]
    labels = np.array([[2], [1]])
    loss, m, p = _eval(MultiClassHead(3), logits, labels)
    # CE row 0 (label 2): log(e + 2) - 0 = 1.55144; row 1 (label 1): log(1 + e^2 + e) - 2 = 0.40761
    np.testing.assert_allclose(loss, (1.55144 + 0.40761) / 2, rtol=1e-4)
    np.testing.assert_allclose(m["average_loss"], (1.55144 + 0.40761) / 2, rtol=1e-4)
    assert m["accuracy"] == 0.5 and set(m) == {"accuracy", "average_loss"}
    assert p["class_ids"].tolist() == [[0], [1]] and p["classes"].tolist() == [[b"0"], [b"1"]]
    z = np.array(logits)
    np.testing.assert_allclose(p["probabilities"], np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match=r"class ids in \[0, 2\]"):
        _eval(MultiClassHead(3), logits, np.array([[3], [0]]))


def test_regression_head_with_label_dimension_and_weights():
    logits = [[1.0, 2.0], [3.0, 5.0]]
    labels = np.array([[1.5, 2.0], [1.0, 1.0]], np.float32)
    loss, m, p = _eval(RegressionHead(label_dimension=2, weight_column="w"), logits, labels, [1.0, 3.0])
    # squared errors [[0.25, 0], [4, 16]]; weights per row 1 and 3: 0.25 + 0 + 12 + 48 = 60.25
    np.testing.assert_allclose(loss, 60.25 / 4)                       # over the 4 elements
    np.testing.assert_allclose(m["average_loss"], 60.25 / 8)          # weights broadcast: 1+1+3+3
    np.testing.assert_allclose(m["label/mean"], (1.5 + 2 + 3 * 2) / 8)
    np.testing.assert_allclose(m["prediction/mean"], (1 + 2 + 3 * 8) / 8)
    np.testing.assert_allclose(p["predictions"], logits)


def test_head_predict_mode_and_export_outputs():
    g = ke.Graph()
    with g.as_default():
        spec = BinaryClassHead().create_estimator_spec({}, ModeKeys.PREDICT, ke.constant([[0.0]]))
        assert {"serving_default", "classification", "regression", "predict"} <= set(spec.export_outputs)
        assert set(spec.export_outputs["serving_default"].outputs) == {"scores", "classes"}
    with pytest.raises(InvalidArgumentError, match=r"logits must have shape \[batch, 3\]"):
        with ke.Graph().as_default():
            MultiClassHead(3).create_estimator_spec({}, ModeKeys.PREDICT, ke.constant([[0.0, 1.0]]))
