"""Valid files written by kestimator itself: the seeds every fuzz input is mutated from.

Each function writes into a given folder and returns the path (or paths) plus what a correct load must
give back, so a test can also check that an unmutated seed loads to exactly what was written.
"""
import gzip
import os
import tarfile
import textwrap
import zlib

import numpy as np


# -- Keras .h5 -------------------------------------------------------------------------------------------------
def keras_sequential():
    import kestimator as ks
    model = ks.keras.Sequential([ks.layers.Dense(4, activation="relu", input_shape=(3,)), ks.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def keras_functional():
    import kestimator as ks
    a = ks.layers.Input((3,), name="a")
    b = ks.layers.Input((2,), name="b")
    h = ks.layers.Dense(4, activation="tanh", name="ha")(a)
    joined = ks.layers.Concatenate(name="join")([h, b])
    out = ks.layers.Dense(1, name="out")(joined)
    model = ks.models.Model([a, b], out)
    model.compile(optimizer="sgd", loss="mse")
    return model


def keras_files(folder):
    """{name: path} of a whole-model .h5 (Sequential and functional) and a weights-only .h5."""
    rng = np.random.default_rng(0)
    seq = keras_sequential()
    seq.fit(rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32),
            epochs=1, verbose=0)
    fun = keras_functional()
    fun.fit([rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32)],
            rng.normal(size=(8, 1)).astype(np.float32), epochs=1, verbose=0)
    paths = {"sequential": os.path.join(folder, "seq.h5"), "functional": os.path.join(folder, "fun.h5"),
             "weights": os.path.join(folder, "seq.weights.h5")}
    seq.save(paths["sequential"])
    fun.save(paths["functional"])
    seq.save_weights(paths["weights"])
    return paths, {"sequential": [w.numpy() for w in seq.weights], "functional": [w.numpy() for w in fun.weights]}


# -- checkpoints -------------------------------------------------------------------------------------------------
CHECKPOINT_TENSORS = {
    "dense/kernel": np.arange(12, dtype=np.float32).reshape(3, 4),
    "dense/kernel/Adam": np.full((3, 4), 0.5, np.float32),
    "dense/bias": np.zeros(4, np.float64),
    "global_step": np.int64(42),
    "vocab": np.array([b"a", b"bc", b""], dtype=object),
    "flags": np.array([True, False]),
}


def checkpoint(folder):
    from kestimator.engine import checkpoint as ckpt
    path = os.path.join(folder, "model.ckpt")
    ckpt.save_tensors(path, CHECKPOINT_TENSORS, {"global_step": 42, "note": "seed"})
    return path


def estimator_dir(folder):
    """A model_dir with two checkpoints and its index."""
    from kestimator.estimators.checkpoint_manager import CheckpointManager
    model_dir = os.path.join(folder, "model_dir")
    manager = CheckpointManager(model_dir, keep_checkpoint_max=3)
    for step in (1, 2):
        manager.save(step, {"w": np.full((2, 2), float(step), np.float32), "global_step": np.int64(step)},
                     {"rng_states": {}})
    return model_dir


# -- SavedModel --------------------------------------------------------------------------------------------------
def saved_model(folder):
    """An export of y = x @ w + c (w a variable, c a constant) with one signature."""
    from kestimator import engine as ke
    from kestimator.saved_model import write_saved_model
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, shape=(None, 2), name="x")
        w = ke.Variable(np.array([[1.0], [2.0]], np.float32), name="w")
        y = ke.matmul(x, w) + ke.constant(np.array([0.5], np.float32))
        init = ke.global_variables_initializer()
    sess = ke.Session(graph=g)
    sess.run(init)
    path = os.path.join(folder, "export")
    write_saved_model(path, sess, {"serving_default": {"inputs": {"x": x}, "outputs": {"y": y}}})
    sess.close()
    return path


# -- records and Examples ----------------------------------------------------------------------------------------
def example_bytes():
    from kestimator.data.example import Example
    return Example({"image": bytes(range(16)), "label": 3, "weights": [0.5, 1.5, -2.0],
                    "ids": np.array([1, -5, 1 << 40], np.int64), "name": ["a", "bc"]}).serialize()


def records(folder, compression=None):
    from kestimator.io.records import RecordWriter
    path = os.path.join(folder, f"data{'.' + compression.lower() if compression else ''}.tfrecord")
    with RecordWriter(path, compression_type=compression) as w:
        for i in range(4):
            w.write(example_bytes())
            w.write(b"x" * i)
    return path


# -- text --------------------------------------------------------------------------------------------------------
CSV_TEXT = 'a,b,name,label\n1,2.5,"x, y",0\n3,,"q""uote",1\n5,6e3,plain,0\n'


def csv_file(folder, compression=None):
    path = os.path.join(folder, "data.csv" + {None: "", "GZIP": ".gz", "ZLIB": ".zz"}[compression])
    data = CSV_TEXT.encode()
    if compression == "GZIP":
        data = gzip.compress(data)
    elif compression == "ZLIB":
        data = zlib.compress(data)
    with open(path, "wb") as f:
        f.write(data)
    return path


# -- YAML configs ------------------------------------------------------------------------------------------------
CONFIG_TEXT = textwrap.dedent("""\
    seed: 3
    device: cpu
    data:
      train: {csv: data.csv, label: label, split: "0:0.8"}
      validation: {csv: data.csv, label: label, split: "0.8:"}
    model:
      sequential:
        - Dense: {units: 8, activation: relu, input_shape: [3]}
        - Dropout: {rate: 0.1}
        - Dense: {units: 2, activation: softmax}
    compile:
      optimizer: {Adam: {learning_rate: 1e-3}}
      loss: sparse_categorical_crossentropy
      metrics: [accuracy]
    fit: {epochs: 2, batch_size: 16, verbose: 0}
    callbacks:
      - EarlyStopping: {monitor: val_loss, patience: 2}
    output: {dir: out}
    """)

ESTIMATOR_CONFIG_TEXT = textwrap.dedent("""\
    data:
      train: {csv: data.csv, label: label}
    estimator:
      DNNClassifier: {hidden_units: [8, 4], n_classes: 2}
    feature_columns: all_numeric
    run_config: {save_checkpoints_steps: 10, keep_checkpoint_max: 2}
    train: {max_steps: 20, batch_size: 8}
    evaluate: {steps: 2}
    """)


# -- IDX / CIFAR ---------------------------------------------------------------------------------------------------
def idx_files(folder, compressed):
    """An MNIST-like folder: 5 images of 4x3 and their labels (IDX, gzip or plain)."""
    images = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
    labels = np.array([0, 1, 2, 9, 3], np.uint8)
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
    paths = {}
    for name, arr in zip(names, (images, labels, images[:2], labels[:2])):
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        data = header + arr.tobytes()
        path = os.path.join(folder, name + (".gz" if compressed else ""))
        with open(path, "wb") as f:
            f.write(gzip.compress(data, mtime=0) if compressed else data)
        paths[name] = path
    return paths, (images, labels)


def cifar_archive(folder, records_per_batch=2):
    """A cifar-10-binary.tar.gz with tiny batches (records_per_batch records each)."""
    from kestimator.datasets import cifar10
    rng = np.random.default_rng(1)
    path = os.path.join(folder, cifar10.ARCHIVE)
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in cifar10.TRAIN_FILES + cifar10.TEST_FILES:
            labels = rng.integers(0, 10, records_per_batch, dtype=np.uint8)
            pixels = rng.integers(0, 256, (records_per_batch, cifar10.RECORD_BYTES - 1), dtype=np.uint8)
            data = np.concatenate([labels[:, None], pixels], axis=1).tobytes()
            batches[name] = data
            info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
            info.size = len(data)
            import io
            tar.addfile(info, io.BytesIO(data))
    return path, batches


# -- ks.data cache file --------------------------------------------------------------------------------------------
def cache_dataset():
    """The pipeline whose cache file the seed is (the fingerprint ties a file to its pipeline)."""
    from kestimator.data import Dataset
    xs = np.arange(12, dtype=np.float32).reshape(6, 2)
    return Dataset.from_tensor_slices({"x": xs, "y": np.arange(6, dtype=np.int64)})


def cache_file(folder):
    path = os.path.join(folder, "data.cache")
    ds = cache_dataset().cache(path)
    elements = list(ds.as_numpy_iterator()) if hasattr(ds, "as_numpy_iterator") else list(ds)
    return path, elements
