"""CIFAR-10: 50,000 training and 10,000 test colour images, 32x32x3, in 10 classes.

Read from the **binary version** of the data set, ``cifar-10-binary.tar.gz``, never from the "python
version": those batches are pickle files, and kestimator does not unpickle (a pickle can run code). In
the binary version each of ``data_batch_1.bin`` ... ``data_batch_5.bin`` and ``test_batch.bin`` is 10,000
records of 3,073 bytes: one label byte, then 1,024 red, 1,024 green and 1,024 blue pixel bytes (rows of
32, top to bottom). The archive is read in place (nothing is extracted) from the cache folder
``~/.kestimator/datasets/cifar10`` (``$KESTIMATOR_DATASETS/cifar10``, or ``load_data(path=FOLDER)``); an
extracted ``cifar-10-batches-bin/`` folder there works too. A missing archive is downloaded and checked
against its published MD5.
"""
import os
import tarfile
import zlib

import numpy as np

from .._formats import MAX_INFLATE_RATIO
from ..errors import DataLossError
from ._files import Remote, dataset_folder, fetch

ARCHIVE = "cifar-10-binary.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
RECORD_BYTES = 1 + 32 * 32 * 3
MAX_BATCH_BYTES = 1 << 30
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _decode(data, where):
    """``(images [n, 32, 32, 3], labels [n, 1])`` from the records of one batch file."""
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, :1].copy()
    if labels.size and labels.max() > 9:
        raise DataLossError(f"{where}: label {int(labels.max())} is outside 0..9")
    # Stored channel-first (all red, then green, then blue); Keras gives channels last.
    images = np.ascontiguousarray(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def _check_size(size, where):
    if size == 0 or size % RECORD_BYTES or size > MAX_BATCH_BYTES:
        raise DataLossError(f"{where}: {size} bytes is not a whole number of {RECORD_BYTES}-byte records")


def _read_folder(folder, names):
    out = []
    for name in names:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise DataLossError(f"{folder} lacks {name} (it holds "
                                f"{', '.join(sorted(os.listdir(folder)))})")
        _check_size(os.path.getsize(path), path)
        with open(path, "rb") as f:
            out.append(_decode(f.read(), path))
    return out


def _read_archive(path, names):
    """Read the batch members of the archive in place; members that are not regular files are refused."""
    wanted = {f"{FOLDER}/{name}": name for name in names}
    found = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.name not in wanted:
                    continue
                where = f"{path}:{member.name}"
                if not member.isfile():
                    raise DataLossError(f"{where} is not a regular file in the archive")
                _check_size(member.size, where)
                if member.size > os.path.getsize(path) * MAX_INFLATE_RATIO:   # deflate's most
                    raise DataLossError(f"{where} declares {member.size} bytes, more than the archive can hold")
                data = archive.extractfile(member).read(member.size)
                if len(data) != member.size:
                    raise DataLossError(f"{where} is truncated")
                found[wanted[member.name]] = _decode(data, where)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:   # zlib.error: a damaged deflate stream (fuzzing)
        if isinstance(exc, DataLossError):
            raise
        raise DataLossError(f"{path}: corrupt or truncated archive: {exc}") from None
    lacking = [name for name in names if name not in found]
    if lacking:
        raise DataLossError(f"{path} lacks {', '.join(f'{FOLDER}/{n}' for n in lacking)}")
    return [found[name] for name in names]


def _join(parts):
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_data(path=None):
    """Load CIFAR-10, as ``keras.datasets.cifar10.load_data`` (channels last).

    Args:
        path: folder holding ``cifar-10-binary.tar.gz`` or ``cifar-10-batches-bin/`` (default: the cache
            folder, see the module docstring).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays ``[50000, 32, 32, 3]``, ``[50000, 1]``,
        ``[10000, 32, 32, 3]``, ``[10000, 1]``; label ``i`` names ``CLASS_NAMES[i]``.

    Raises:
        NotFoundError: neither form is there and the archive cannot be downloaded; the message says what
            to put where.
        DataLossError: a corrupt or incomplete archive or batch file.
    """
    folder = dataset_folder("cifar10", path)
    extracted = os.path.join(folder, FOLDER)
    names = TRAIN_FILES + TEST_FILES
    if os.path.isdir(extracted) and not os.path.isfile(os.path.join(folder, ARCHIVE)):
        parts = _read_folder(extracted, names)
    else:
        files = fetch("CIFAR-10 (binary version)", "cifar10", [Remote(ARCHIVE, [URL], ("md5", MD5))], path,
                      alternatives=f"(or the extracted folder {FOLDER}/ with {', '.join(names)}; the python "
                                   f"version's pickle batches are not read) ")
        parts = _read_archive(files[ARCHIVE], names)
    return _join(parts[:len(TRAIN_FILES)]), _join(parts[len(TRAIN_FILES):])
