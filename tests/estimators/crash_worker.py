"""Training run used by the crash tests: `python crash_worker.py MODEL_DIR MAX_STEPS`.

A DNN classifier with dropout and Adam on seeded data with a seeded shuffle, checkpointing every 3 steps,
so an interrupted run resumed from its checkpoints must reproduce weights, optimizer slots, dropout masks
and the data order to end where an uninterrupted run ends.
"""
import sys

import numpy as np


def train(model_dir, max_steps):
    import kestimator as ks
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] + x[:, 2] > 0).astype(np.int64)
    cols = [ks.feature_column.numeric_column("x", shape=[6])]
    config = ks.estimators.RunConfig(tf_random_seed=42, save_checkpoints_steps=3, keep_checkpoint_max=4,
                                     save_summary_steps=0, log_step_count_steps=None)
    est = ks.estimators.DNNClassifier([16, 8], cols, model_dir=model_dir, config=config, dropout=0.25,
                                      optimizer="Adam")
    input_fn = ks.estimators.inputs.numpy_input_fn({"x": x}, y, batch_size=16, num_epochs=None, shuffle=True)
    print("TRAINING", flush=True)
    est.train(input_fn, max_steps=max_steps)
    return est


if __name__ == "__main__":
    train(sys.argv[1], int(sys.argv[2]))
    print("DONE", flush=True)
