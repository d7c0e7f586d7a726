"""DNNClassifier.train against the equivalent ks.keras Model.fit, in one run, pair by pair.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/estimator_dnn.py [--runs 5]

The seed MLP (28x28 -> Dense 128 relu -> Dense 10, softmax cross-entropy, Adam 1e-3), 60,000 random
examples, batch 32, one epoch (1,875 steps). Both sides pay for what a user's call pays for: building the
graph, compiling it, shuffling and slicing the input. The Estimator also writes its step-0 and final
checkpoints; figures are given with summaries and step logging off ("lean") and with RunConfig's
defaults (a loss summary every 100 steps). The target: the Estimator path no more than 1.2x slower than
fit(), i.e. ratio (estimator steps/s over keras steps/s) >= 0.83. (TensorFlow 2.21 no longer ships
tf.estimator, so ks.keras is the peer here.)
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kestimator as ks  # noqa: E402
from _common import header, median  # noqa: E402

N, BATCH = 60_000, 32


def make_data():
    rng = np.random.default_rng(0)
    return rng.random((N, 28, 28), dtype=np.float32), rng.integers(0, 10, N).astype(np.int32)


def estimator_epoch(x, y, lean):
    model_dir = tempfile.mkdtemp(prefix="bench_est_")
    config = ks.estimators.RunConfig(save_checkpoints_secs=None, save_summary_steps=0, log_step_count_steps=None,
                                     tf_random_seed=0) if lean else ks.estimators.RunConfig(tf_random_seed=0)
    est = ks.estimators.DNNClassifier([128], [ks.feature_column.numeric_column("x", shape=[28, 28])], n_classes=10,
                                      optimizer=ks.optimizers.Adam(1e-3), model_dir=model_dir, config=config)
    input_fn = ks.estimators.inputs.numpy_input_fn({"x": x}, y, batch_size=BATCH, num_epochs=1, shuffle=True)
    t0 = time.perf_counter()
    est.train(input_fn)
    seconds = time.perf_counter() - t0
    steps = -(-len(x) // BATCH)
    assert est.get_variable_value("global_step") == steps
    shutil.rmtree(model_dir, ignore_errors=True)
    return steps / seconds


def keras_epoch(x, y):
    keras = ks.keras
    model = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)
    return -(-len(x) // BATCH) / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    header("estimator_dnn")
    x, y = make_data()
    estimator_epoch(x[:3200], y[:3200], True)   # warm-up: imports, thread pools
    keras_epoch(x[:3200], y[:3200])
    lean, default, kr = [], [], []
    for _ in range(args.runs):   # alternate the three so machine noise hits each alike
        kr.append(keras_epoch(x, y))
        lean.append(estimator_epoch(x, y, True))
        default.append(estimator_epoch(x, y, False))
    print(f"# per run steps/s: keras {[round(v) for v in kr]} estimator lean {[round(v) for v in lean]} "
          f"estimator default {[round(v) for v in default]}")
    for name, est in (("dnn_classifier_b32_lean", lean), ("dnn_classifier_b32_default_config", default)):
        ratios = [e / k for e, k in zip(est, kr)]
        print(f"{name} kestimator_estimator_steps_per_s={median(est):.0f} "
              f"ks_keras_fit_steps_per_s={median(kr):.0f} ratio={median(ratios):.2f}")


if __name__ == "__main__":
    main()
