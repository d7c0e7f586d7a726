"""Fashion-MNIST (Zalando): 60,000 training and 10,000 test images of clothing, 28x28, 10 classes.

Same IDX files and layout as MNIST, in ``~/.kestimator/datasets/fashion_mnist`` (see
:mod:`kestimator.datasets.mnist` for the folder rules); downloads are checked against the published MD5s.
"""
from ._mnist_like import load

BASE_URLS = ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
             "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")


def load_data(path=None):
    """Load Fashion-MNIST, as ``keras.datasets.fashion_mnist.load_data``.

    Args:
        path: folder holding the IDX files (default: the cache folder).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays ``[60000, 28, 28]``, ``[60000]``,
        ``[10000, 28, 28]``, ``[10000]``; label ``i`` names ``CLASS_NAMES[i]``.

    Raises:
        NotFoundError: the files are missing and cannot be downloaded; the message lists them.
        DataLossError: a file is corrupt.
    """
    return load("Fashion-MNIST", "fashion_mnist", BASE_URLS, MD5, path)
