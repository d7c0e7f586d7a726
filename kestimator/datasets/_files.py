"""Where data set files are cached, and how they are fetched (checksummed) when they are missing.

Files live in one folder per data set under ``~/.kestimator/datasets`` (``$KESTIMATOR_DATASETS`` replaces
that root; ``load_data(path=...)`` names the folder itself). A missing file is downloaded with ``urllib``
(short timeout), its MD5 / SHA-256 checked before it is renamed into place, so the cache never holds a
partial or wrong file. When every source fails, :class:`~kestimator.errors.NotFoundError` says which files
to put where, so the data sets work offline.

Files already in the cache are not re-hashed (users may place their own copies); their contents are
checked structurally by the readers instead.
"""
import hashlib
import os
import tempfile

from ..errors import DataLossError, NotFoundError

ENV_VAR = "KESTIMATOR_DATASETS"
DEFAULT_ROOT = os.path.join("~", ".kestimator", "datasets")
DOWNLOAD_TIMEOUT_S = 15
_CHUNK = 1 << 20


class Remote:
    """One file of a data set: its name, the URLs it can be fetched from, and its published checksum.

    Args:
        filename: the file's name in the cache folder.
        urls: download locations, tried in order.
        checksum: ``("md5" | "sha256", hexdigest)``.
    """

    def __init__(self, filename, urls, checksum):
        self.filename, self.urls, self.checksum = filename, tuple(urls), checksum

    def describe(self):
        algo, digest = self.checksum
        return f"{self.filename} ({self.urls[0]}, {algo} {digest})"


def dataset_folder(name, path=None):
    """The folder holding data set ``name``: ``path`` if given, else ``<root>/<name>``.

    Args:
        name: the data set's folder name (``mnist``, ``fashion_mnist``, ``cifar10``).
        path: an explicit folder (``load_data(path=...)``).

    Returns:
        An absolute path (it may not exist yet).
    """
    if path is not None:
        return os.path.abspath(os.path.expanduser(os.fspath(path)))
    root = os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return os.path.abspath(os.path.join(os.path.expanduser(root), name))


def http_get(url, out, timeout):
    """Stream ``url`` into the open binary file ``out`` (tests replace this to keep off the network)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            out.write(chunk)


def file_digest(path, algo):
    digest = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(remote, folder):
    """Fetch one file into ``folder``; returns an error text per failed URL (empty on success)."""
    algo, expected = remote.checksum
    failures, bad_checksum = [], False
    os.makedirs(folder, exist_ok=True)
    for url in remote.urls:
        fd, tmp = tempfile.mkstemp(prefix=f".{remote.filename}.", suffix=".part", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                http_get(url, out, DOWNLOAD_TIMEOUT_S)
            actual = file_digest(tmp, algo)
            if actual != expected:
                bad_checksum = True
                failures.append(f"{url}: {algo} {actual} differs from the published {expected}")
                continue
            os.replace(tmp, os.path.join(folder, remote.filename))
            return [], False
        except OSError as exc:          # URLError, timeouts and refused connections are OSErrors
            failures.append(f"{url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return failures, bad_checksum


def fetch(title, name, remotes, path=None, alternatives=""):
    """Make sure every file of a data set is in its folder, downloading the missing ones.

    Args:
        title: the data set's name in messages (``"MNIST"``).
        name: its cache folder name.
        remotes: the :class:`Remote` files it needs.
        path: an explicit folder (else the cache folder).
        alternatives: extra text for the not-found message (e.g. an extracted form that also works).

    Returns:
        ``{filename: absolute path}``.

    Raises:
        NotFoundError: a file is missing and could not be downloaded (the message lists what to put where).
        DataLossError: a download arrived with the wrong checksum from every source.
    """
    folder = dataset_folder(name, path)
    missing = [r for r in remotes if not os.path.isfile(os.path.join(folder, r.filename))]
    problems, bad_checksum = [], False
    for remote in missing:
        failures, bad = _download(remote, folder)
        problems.extend(failures)
        bad_checksum = bad_checksum or bad
        if failures and not bad:
            break   # the network is unreachable: waiting out more timeouts would not help
    still = [r for r in missing if not os.path.isfile(os.path.join(folder, r.filename))]
    if still:
        wanted = "\n".join(f"  {r.describe()}" for r in still)
        why = "\n".join(f"  {p}" for p in problems)
        text = (f"{title} files are missing from {folder} and could not be downloaded. Put these files "
                f"there:\n{wanted}\n{alternatives}(or pass load_data(path=FOLDER), or set ${ENV_VAR} to a "
                f"folder holding {name}/). Download attempts:\n{why}")
        raise (DataLossError if bad_checksum else NotFoundError)(text)
    return {r.filename: os.path.join(folder, r.filename) for r in remotes}
