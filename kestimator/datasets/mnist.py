"""MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey levels, labels 0-9.

Read from the four canonical IDX files (``train-images-idx3-ubyte.gz`` ...) in the cache folder
``~/.kestimator/datasets/mnist`` (``$KESTIMATOR_DATASETS/mnist``, or ``load_data(path=FOLDER)``); missing
files are downloaded and checked against their published MD5 sums.
"""
from ._mnist_like import load

BASE_URLS = ("https://storage.googleapis.com/cvdf-datasets/mnist/",
             "https://ossci-datasets.s3.amazonaws.com/mnist/")
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def load_data(path=None):
    """Load MNIST, as ``keras.datasets.mnist.load_data``.

    Args:
        path: folder holding the IDX files (default: the cache folder, see the module docstring).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays of shapes ``[60000, 28, 28]``, ``[60000]``,
        ``[10000, 28, 28]``, ``[10000]``.

    Raises:
        NotFoundError: the files are missing and cannot be downloaded; the message lists them.
        DataLossError: a file is corrupt.
    """
    return load("MNIST", "mnist", BASE_URLS, MD5, path)
