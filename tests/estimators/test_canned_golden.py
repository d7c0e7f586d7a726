"""Canned estimators with fixed weights: losses, metrics, predictions and one training step by hand.

Weights are written into model_dir as a checkpoint (as TensorFlow's dnn_testing_utils does); variable
names are TensorFlow's.
"""
import numpy as np
import pytest

import kestimator as ks
from kestimator.estimators.checkpoint_manager import CheckpointManager
from kestimator.estimators.inputs import numpy_input_fn

fc = ks.feature_column

# TF's dnn_testing_utils network: hidden_units (2, 2)
DNN_WEIGHTS = {
    "dnn/hiddenlayer_0/kernel": [[.6, .5]], "dnn/hiddenlayer_0/bias": [.1, -.1],
    "dnn/hiddenlayer_1/kernel": [[1., .8], [-.8, -1.]], "dnn/hiddenlayer_1/bias": [.2, -.2],
    "dnn/logits/kernel": [[-1.], [1.]], "dnn/logits/bias": [.3],
}
# x = 10: hidden 0 = relu([6.1, 4.9]); hidden 1 = relu([6.1 - 3.92 + .2, 4.88 - 4.9 - .2]) = [2.38, 0]
# logits = -2.38 + .3 = -2.08


def write_checkpoint(model_dir, weights, step=5):
    tensors = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    tensors["global_step"] = np.int64(step)
    CheckpointManager(str(model_dir)).save(step, tensors)


def _input(x, y=None):
    x = {k: np.asarray(v, np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v) for k, v in x.items()}
    return numpy_input_fn(x, None if y is None else np.asarray(y), batch_size=10, shuffle=False)


def test_dnn_regressor_golden(tmp_path):
    write_checkpoint(tmp_path, DNN_WEIGHTS)
    est = ks.estimators.DNNRegressor((2, 2), [fc.numeric_column("x")], model_dir=str(tmp_path))
    res = est.evaluate(_input({"x": [[10.]]}, [[1.]]))
    # (1 - (-2.08))^2 = 9.4864
    np.testing.assert_allclose([res["loss"], res["average_loss"]], [9.4864, 9.4864], rtol=1e-5)
    np.testing.assert_allclose([res["label/mean"], res["prediction/mean"]], [1.0, -2.08], rtol=1e-5)
    assert res["global_step"] == 5
    pred = next(est.predict(_input({"x": [[10.]]})))
    np.testing.assert_allclose(pred["predictions"], [-2.08], rtol=1e-5)


def test_dnn_binary_classifier_golden(tmp_path):
    write_checkpoint(tmp_path, DNN_WEIGHTS)
    est = ks.estimators.DNNClassifier((2, 2), [fc.numeric_column("x")], model_dir=str(tmp_path))
    res = est.evaluate(_input({"x": [[10.]]}, [[0]]))
    # label 0, logit -2.08: log(1 + e^-2.08) = 0.117721; logistic = 1 / (1 + e^2.08) = 0.111056
    np.testing.assert_allclose(res["loss"], 0.117721, rtol=1e-5)
    np.testing.assert_allclose(res["prediction/mean"], 0.111056, rtol=1e-5)
    assert res["accuracy"] == 1.0 and res["label/mean"] == 0.0 and res["accuracy_baseline"] == 1.0
    pred = next(est.predict(_input({"x": [[10.]]})))
    np.testing.assert_allclose(pred["probabilities"], [0.888944, 0.111056], rtol=1e-5)
    assert pred["class_ids"].tolist() == [0] and pred["classes"].tolist() == [b"0"]


def test_dnn_multi_class_classifier_golden(tmp_path):
    weights = dict(DNN_WEIGHTS, **{"dnn/logits/kernel": [[-1., 1., .5], [1., -1., .25]],
                                   "dnn/logits/bias": [.3, .2, .1]})
    write_checkpoint(tmp_path, weights)
    est = ks.estimators.DNNClassifier((2, 2), [fc.numeric_column("x")], n_classes=3, model_dir=str(tmp_path))
    res = est.evaluate(_input({"x": [[10.]]}, [[1]]))
    # logits = [2.38, 0] @ kernel + bias = [-2.08, 2.58, 1.29]; softmax = [0.007368, 0.778369, 0.214262]
    # loss = -log(0.778369) = 0.250554
    np.testing.assert_allclose(res["loss"], 0.250554, rtol=1e-5)
    assert res["accuracy"] == 1.0
    pred = next(est.predict(_input({"x": [[10.]]})))
    np.testing.assert_allclose(pred["logits"], [-2.08, 2.58, 1.29], rtol=1e-5)
    np.testing.assert_allclose(pred["probabilities"], [0.007368, 0.778369, 0.214262], rtol=1e-4)


def test_linear_regressor_golden(tmp_path):
    write_checkpoint(tmp_path, {"linear/linear_model/age/weights": [[10.]],
                                "linear/linear_model/bias_weights": [5.]})
    est = ks.estimators.LinearRegressor([fc.numeric_column("age")], model_dir=str(tmp_path))
    res = est.evaluate(_input({"age": [[17.]]}, [[1000.]]))
    # 17 * 10 + 5 = 175; (1000 - 175)^2 = 680625
    np.testing.assert_allclose(res["average_loss"], 680625.0)
    np.testing.assert_allclose(res["prediction/mean"], 175.0)


def test_linear_classifier_with_categorical_and_weights_golden(tmp_path):
    write_checkpoint(tmp_path, {"linear/linear_model/color/weights": [[-1.], [2.]],
                                "linear/linear_model/age/weights": [[0.5]],
                                "linear/linear_model/bias_weights": [-1.]})
    cols = [fc.numeric_column("age"), fc.categorical_column_with_vocabulary_list("color", ["red", "blue"])]
    est = ks.estimators.LinearClassifier(cols, model_dir=str(tmp_path), weight_column="w")
    res = est.evaluate(_input({"age": [[2.], [4.]], "color": np.array([["blue"], ["red"]], object),
                               "w": [[1.], [3.]]}, [[1], [0]]))
    # logits: 2*.5 + 2 - 1 = 2 (label 1), 4*.5 - 1 - 1 = 0 (label 0)
    # losses: log(1 + e^-2) = 0.126928, log(1 + e^0) = 0.693147; weighted mean (1*0.126928 + 3*0.693147) / 4
    np.testing.assert_allclose(res["average_loss"], (0.126928 + 3 * 0.693147) / 4, rtol=1e-5)
    # logit 0 gives probability 0.5 -> class 0 (argmax takes the first of a tie): both correct
    assert res["accuracy"] == 1.0
    np.testing.assert_allclose(res["label/mean"], 0.25)


def test_dnn_linear_combined_regressor_golden(tmp_path):
    weights = dict(DNN_WEIGHTS, **{"linear/linear_model/age/weights": [[2.]],
                                   "linear/linear_model/bias_weights": [1.]})
    write_checkpoint(tmp_path, weights)
    est = ks.estimators.DNNLinearCombinedRegressor(
        model_dir=str(tmp_path), linear_feature_columns=[fc.numeric_column("age")],
        dnn_feature_columns=[fc.numeric_column("x")], dnn_hidden_units=(2, 2))
    pred = next(est.predict(_input({"x": [[10.]], "age": [[3.]]})))
    # dnn logits -2.08 + linear logits 3 * 2 + 1 = 7 -> 4.92
    np.testing.assert_allclose(pred["predictions"], [4.92], rtol=1e-5)


def test_baseline_estimators_golden(tmp_path):
    write_checkpoint(tmp_path / "r", {"baseline/bias": [13.]})
    est = ks.estimators.BaselineRegressor(model_dir=str(tmp_path / "r"))
    res = est.evaluate(_input({"x": [[0.], [5.]]}, [[10.], [20.]]))
    # ((13 - 10)^2 + (13 - 20)^2) / 2 = 29
    np.testing.assert_allclose(res["average_loss"], 29.0)
    write_checkpoint(tmp_path / "c", {"baseline/bias": [0., np.log(3.), 0.]})
    est = ks.estimators.BaselineClassifier(n_classes=3, model_dir=str(tmp_path / "c"))
    pred = next(est.predict(_input({"x": [[7.]]})))
    # softmax([0, log 3, 0]) = [1, 3, 1] / 5 for every example
    np.testing.assert_allclose(pred["probabilities"], [0.2, 0.6, 0.2], rtol=1e-6)


def test_baseline_regressor_learns_the_label_mean(tmp_path):
    y = np.array([[1.], [2.], [6.]], np.float32)
    est = ks.estimators.BaselineRegressor(model_dir=str(tmp_path), optimizer=ks.optimizers.SGD(0.2))
    est.train(numpy_input_fn({"x": np.zeros((3, 1), np.float32)}, y, batch_size=3, num_epochs=None, shuffle=False),
              steps=200)
    np.testing.assert_allclose(est.get_variable_value("baseline/bias"), [3.0], rtol=1e-4)


def test_linear_regressor_one_sgd_step(tmp_path):
    write_checkpoint(tmp_path / "init", {"linear/linear_model/x/weights": [[1.]],
                                         "linear/linear_model/bias_weights": [0.]})
    est = ks.estimators.LinearRegressor([fc.numeric_column("x")], model_dir=str(tmp_path / "run"),
                                        optimizer=ks.optimizers.SGD(0.1), warm_start_from=str(tmp_path / "init"))
    est.train(_input({"x": [[2.]]}, [[5.]]), steps=1)
    # prediction 2, loss (2 - 5)^2 = 9; dL/dw = 2 * (2 - 5) * 2 = -12, dL/db = -6
    # w = 1 + 0.1 * 12 = 2.2, b = 0 + 0.1 * 6 = 0.6
    np.testing.assert_allclose(est.get_variable_value("linear/linear_model/x/weights"), [[2.2]], rtol=1e-6)
    np.testing.assert_allclose(est.get_variable_value("linear/linear_model/bias_weights"), [0.6], rtol=1e-6)


def test_dnn_regressor_one_sgd_step(tmp_path):
    write_checkpoint(tmp_path / "init", {"dnn/hiddenlayer_0/kernel": [[2.]], "dnn/hiddenlayer_0/bias": [0.],
                                         "dnn/logits/kernel": [[3.]], "dnn/logits/bias": [1.]})
    est = ks.estimators.DNNRegressor([1], [fc.numeric_column("x")], model_dir=str(tmp_path / "run"),
                                     optimizer=ks.optimizers.SGD(0.01), warm_start_from=str(tmp_path / "init"))
    est.train(_input({"x": [[1.]]}, [[3.]]), steps=1)
    # h = relu(2 * 1) = 2, prediction 3 * 2 + 1 = 7, loss (7 - 3)^2 = 16, dL/dpred = 8
    # logits: dk = 8 * 2 = 16, db = 8; hidden: dh = 8 * 3 = 24 -> dk = 24 * x = 24, db = 24
    expected = {"dnn/logits/kernel": 3 - .16, "dnn/logits/bias": 1 - .08, "dnn/hiddenlayer_0/kernel": 2 - .24,
                "dnn/hiddenlayer_0/bias": -.24}
    for name, value in expected.items():
        np.testing.assert_allclose(est.get_variable_value(name).ravel(), [value], rtol=1e-6, err_msg=name)


def test_optimizer_arguments(tmp_path):
    from kestimator.estimators._canned_util import get_optimizer
    from kestimator.errors import InvalidArgumentError
    opt = get_optimizer("Adam", "Adagrad", 0.05, "DNN")
    assert type(opt).__name__ == "Adam" and opt.learning_rate == 0.05    # TF: names get the canned rate
    assert get_optimizer(ks.optimizers.SGD, "Adagrad", 0.05, "DNN").learning_rate == 0.05
    inst = ks.optimizers.RMSprop(0.3)
    assert get_optimizer(inst, "Adagrad", 0.05, "DNN") is inst
    assert type(get_optimizer(None, "Ftrl", 0.2, "Linear")).__name__ == "Ftrl"
    with pytest.raises(InvalidArgumentError, match="unknown optimizer 'Nope'"):
        get_optimizer("Nope", "Adagrad", 0.05, "DNN")
