"""The shared loader of MNIST and Fashion-MNIST: four IDX files, train and test images and labels."""
import os

from ..errors import DataLossError
from ._files import Remote, dataset_folder, fetch
from ._idx import read_idx

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _pick(folder, filename):
    """The .gz file, or its gunzipped copy when only that one is there; None when neither is."""
    for candidate in (filename, filename[:-3]):
        full = os.path.join(folder, candidate)
        if os.path.isfile(full):
            return full
    return None


def load(title, name, base_urls, md5s, path=None, num_classes=10):
    """``(x_train, y_train), (x_test, y_test)`` as uint8 arrays, images ``[n, rows, cols]``.

    Args:
        title: name in messages.
        name: cache folder name.
        base_urls: mirrors, each followed by the file name.
        md5s: ``{filename: md5}`` published for each file.
        path: explicit folder (else the cache folder).
        num_classes: labels must lie in ``[0, num_classes)``.

    Raises:
        NotFoundError: files missing and not downloadable.
        DataLossError: a corrupt file, or images and labels that do not pair up.
    """
    folder = dataset_folder(name, path)
    missing = [Remote(f, [u + f for u in base_urls], ("md5", md5s[f])) for f in FILES if _pick(folder, f) is None]
    if missing:
        fetch(title, name, missing, path, alternatives="(the same files gunzipped work too) ")
    arrays = []
    for images_file, labels_file in ((FILES[0], FILES[1]), (FILES[2], FILES[3])):
        images_path, labels_path = _pick(folder, images_file), _pick(folder, labels_file)
        images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
        if len(images) != len(labels):
            raise DataLossError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                                f"{len(labels)} labels")
        if labels.size and labels.max() >= num_classes:
            raise DataLossError(f"{labels_path}: label {int(labels.max())} is outside 0..{num_classes - 1}")
        arrays.append((images, labels))
    return tuple(arrays)
