"""Small classic data sets, as ``keras.datasets``: ``mnist``, ``fashion_mnist``, ``cifar10``.

Each module has ``load_data(path=None)`` returning ``(x_train, y_train), (x_test, y_test)`` as uint8
arrays, read from the data set's canonical files in a cache folder (``~/.kestimator/datasets/<name>``, or
``$KESTIMATOR_DATASETS/<name>``, or ``path``) and downloaded with checksum verification when missing.
No file is unpickled: CIFAR-10 is read from its binary version.
"""
from . import cifar10, fashion_mnist, mnist

__all__ = ["mnist", "fashion_mnist", "cifar10"]
