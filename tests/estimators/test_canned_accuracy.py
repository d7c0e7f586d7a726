"""Canned estimators learn real data sets (scikit-learn's bundled ones) and CSV-style string features."""
import csv
import io

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

import kestimator as ks
from kestimator.estimators.inputs import numpy_input_fn

fc = ks.feature_column


def _split(x, y, n_train, seed=0):
    idx = np.random.default_rng(seed).permutation(len(x))
    x, y = x[idx], y[idx]
    mean, std = x[:n_train].mean(0), x[:n_train].std(0) + 1e-6
    x = ((x - mean) / std).astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _fns(xtr, ytr, xte, yte, batch=32):
    return (numpy_input_fn({"x": xtr}, ytr, batch_size=batch, num_epochs=None, shuffle=True, seed=0),
            numpy_input_fn({"x": xte}, yte, batch_size=256, shuffle=False))


def _config():
    return ks.estimators.RunConfig(tf_random_seed=0, save_checkpoints_secs=None, save_summary_steps=0)


def test_dnn_classifier_on_digits(tmp_path):
    x, y = load_digits(return_X_y=True)
    xtr, ytr, xte, yte = _split(x, y.astype(np.int32), 1400)
    train, test = _fns(xtr, ytr, xte, yte)
    est = ks.estimators.DNNClassifier([64], [fc.numeric_column("x", shape=[64])], n_classes=10,
                                      optimizer=ks.optimizers.Adam(3e-3), model_dir=str(tmp_path), config=_config())
    est.train(train, steps=600)
    res = est.evaluate(test)
    assert res["accuracy"] > 0.94, res
    probs = np.array([p["probabilities"] for p in est.predict(numpy_input_fn({"x": xte}, shuffle=False))])
    assert np.mean(probs.argmax(1) == yte) == pytest.approx(res["accuracy"], abs=1e-6)


def test_linear_classifier_on_breast_cancer(tmp_path):
    x, y = load_breast_cancer(return_X_y=True)
    xtr, ytr, xte, yte = _split(x, y, 450)
    train, test = _fns(xtr, ytr, xte, yte)
    est = ks.estimators.LinearClassifier([fc.numeric_column("x", shape=[30])], model_dir=str(tmp_path),
                                         config=_config())
    est.train(train, steps=400)
    res = est.evaluate(test)
    assert res["accuracy"] > 0.95 and res["auc"] > 0.98, res


def test_wide_and_deep_on_wine(tmp_path):
    x, y = load_wine(return_X_y=True)
    xtr, ytr, xte, yte = _split(x, y, 130)
    train, test = _fns(xtr, ytr, xte, yte, batch=16)
    col = fc.numeric_column("x", shape=[13])
    est = ks.estimators.DNNLinearCombinedClassifier(
        model_dir=str(tmp_path), linear_feature_columns=[col], dnn_feature_columns=[col], dnn_hidden_units=[16],
        n_classes=3, dnn_optimizer=ks.optimizers.Adam(1e-2), config=_config())
    est.train(train, steps=300)
    assert est.evaluate(test)["accuracy"] > 0.93


def test_regressors_on_diabetes_beat_the_baseline(tmp_path):
    x, y = load_diabetes(return_X_y=True)
    y = ((y - y.mean()) / y.std()).astype(np.float32)
    xtr, ytr, xte, yte = _split(x, y, 350)
    train, test = _fns(xtr, ytr, xte, yte)
    col = [fc.numeric_column("x", shape=[10])]
    base = ks.estimators.BaselineRegressor(model_dir=str(tmp_path / "b"), config=_config())
    base.train(train, steps=300)
    dnn = ks.estimators.DNNRegressor([16], col, optimizer="Adam", model_dir=str(tmp_path / "d"), config=_config())
    dnn.train(train, steps=400)
    lin = ks.estimators.LinearRegressor(col, model_dir=str(tmp_path / "l"), config=_config())
    lin.train(train, steps=400)
    b, d, l_ = (e.evaluate(test)["average_loss"] for e in (base, dnn, lin))
    from sklearn.linear_model import LinearRegression
    ref = np.mean((LinearRegression().fit(xtr, ytr).predict(xte) - yte) ** 2)
    # the baseline predicts the training mean (loss ~ the test labels' variance); least squares explains
    # about a third of it on this split: the linear estimator gets within 10% of the exact solution
    np.testing.assert_allclose(b, np.mean((ytr.mean() - yte) ** 2), rtol=0.02)
    assert l_ < 1.1 * ref and d < 0.8 * b, (b, d, l_, ref)


CSV_TEXT = None


def _csv_rows(n=600, seed=0):
    """A CSV file's text: city (string), plan (string), age (float), label ('churn' / 'stay')."""
    rng = np.random.default_rng(seed)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["city", "plan", "age", "label"])
    for _ in range(n):
        city = rng.choice(["paris", "rome", "oslo", "lima", "kyiv"])
        plan = rng.choice(["free", "pro", "team"])
        age = rng.uniform(18, 70)
        churn = (plan == "free" and city in ("paris", "oslo")) or (age > 60 and plan != "team")
        w.writerow([city, plan, f"{age:.1f}", "churn" if churn else "stay"])
    return out.getvalue()


def _read_csv(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    feats = {"city": np.array([r["city"] for r in rows], dtype=object),
             "plan": np.array([r["plan"] for r in rows], dtype=object),
             "age": np.array([float(r["age"]) for r in rows], dtype=np.float32)}
    return feats, np.array([r["label"] for r in rows], dtype=object)


def test_string_features_from_csv_end_to_end(tmp_path):
    feats, labels = _read_csv(_csv_rows())
    n = 450
    train = numpy_input_fn({k: v[:n] for k, v in feats.items()}, labels[:n], batch_size=32, num_epochs=None,
                           shuffle=True, seed=1)
    test = numpy_input_fn({k: v[n:] for k, v in feats.items()}, labels[n:], batch_size=64, shuffle=False)
    city = fc.categorical_column_with_hash_bucket("city", 20)
    plan = fc.categorical_column_with_vocabulary_list("plan", ["free", "pro", "team"])
    age = fc.bucketized_column(fc.numeric_column("age"), [30.0, 45.0, 60.0])
    deep = [fc.embedding_column(city, 4), fc.indicator_column(plan), age]
    wide = [city, plan, age, fc.crossed_column(["city", "plan"], 50)]
    est = ks.estimators.DNNLinearCombinedClassifier(
        model_dir=str(tmp_path), linear_feature_columns=wide, dnn_feature_columns=deep, dnn_hidden_units=[16],
        label_vocabulary=["stay", "churn"], dnn_optimizer=ks.optimizers.Adam(1e-2),
        linear_optimizer=ks.optimizers.Ftrl(0.1), config=_config())
    est.train(train, steps=500)
    res = est.evaluate(test)
    assert res["accuracy"] > 0.95, res
    preds = list(est.predict(numpy_input_fn({k: v[n:n + 3] for k, v in feats.items()}, shuffle=False)))
    assert all(p["classes"][0] in (b"stay", b"churn") for p in preds)
    with pytest.raises(ks.errors.InvalidArgumentError, match="categorical column 'plan' holds strings"):
        bad = dict(feats, plan=np.arange(len(labels)))
        est.evaluate(numpy_input_fn(bad, labels, shuffle=False))


def test_dnn_with_batch_norm_and_dropout(tmp_path):
    x, y = load_breast_cancer(return_X_y=True)
    xtr, ytr, xte, yte = _split(x, y, 450)
    train, test = _fns(xtr, ytr, xte, yte)
    est = ks.estimators.DNNClassifier([16, 8], [fc.numeric_column("x", shape=[30])], dropout=0.1, batch_norm=True,
                                      model_dir=str(tmp_path), config=_config())
    est.train(train, steps=300)
    assert est.evaluate(test)["accuracy"] > 0.93
    names = est.get_variable_names()
    assert "dnn/hiddenlayer_0/batchnorm_0/moving_mean" in names
    # the running statistics moved from their initial values toward the batches' (momentum 0.999)
    mean = est.get_variable_value("dnn/hiddenlayer_0/batchnorm_0/moving_mean")
    var = est.get_variable_value("dnn/hiddenlayer_0/batchnorm_0/moving_variance")
    assert np.abs(mean).max() > 1e-3 and np.abs(var - 1).max() > 1e-3
