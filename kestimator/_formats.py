"""Format versions of every file kestimator writes, the check readers make, and the read limits.

Every file kestimator writes records which format it is in and which kestimator wrote it:

=====================  ==========================================  ======================================
file                   where the version is kept                   constant
=====================  ==========================================  ======================================
checkpoint (.h5)       root attrs ``kestimator_format`` (int) and  :data:`CHECKPOINT_FORMAT`
                       ``kestimator_version``
estimator index        ``checkpoint_index.json``: ``"format":      :data:`ESTIMATOR_INDEX_FORMAT`
                       "kestimator.estimator_checkpoints/<N>"``,
                       ``"kestimator_version"``
Keras model / weights  root attrs ``kestimator_format`` (int) and  :data:`KERAS_H5_FORMAT`
(.h5)                  ``kestimator_version`` beside Keras's own
                       keys (files tf.keras wrote have neither)
SavedModel             ``saved_model.json``: ``"format":           :data:`SAVED_MODEL_FORMAT`
                       "kestimator.saved_model/<N>"``,
                       ``"kestimator_version"``; its variables file
                       is a checkpoint
ks.data cache file     header JSON ``"version"``,                  :data:`DATA_CACHE_FORMAT`
                       ``"kestimator_version"``
=====================  ==========================================  ======================================

Files in formats other programs define are not versioned here: record files (TFRecord framing), event
files (TensorBoard), the Saver's ``checkpoint`` state file (TensorFlow's text format) and resolved YAML
configs (plain YAML a user may edit).

A reader accepts every version from 1 up to the constant and refuses a newer one with
:func:`check_version`'s message ("written by kestimator 0.3.0 in checkpoint format 2; this kestimator
(0.1.0) reads up to format 1"). A file that lacks the version a reader looks for (written before the
field existed, or by tf.keras) is read as format 1. When a format changes, its constant goes up, the reader
keeps reading the old versions, and ``tests/fixtures/compat`` keeps files of every old version that must
still load (``tests/fixtures/make_compat_fixtures.py`` says how to add a version's fixtures).

Read limits: a reader never allocates what a file only *declares*. A declared size must be backed by the
bytes the file stores (times :data:`MAX_INFLATE_RATIO` where the data is deflate-compressed: no deflate
stream expands more than 1032-fold), and may not pass the process-wide limit set with
:func:`set_max_read_bytes` (none by default).
"""
import contextlib

from . import __version__ as KESTIMATOR_VERSION
from .errors import DataLossError, InvalidArgumentError, ResourceExhaustedError

__all__ = ["KESTIMATOR_VERSION", "CHECKPOINT_FORMAT", "ESTIMATOR_INDEX_FORMAT", "KERAS_H5_FORMAT",
           "SAVED_MODEL_FORMAT", "DATA_CACHE_FORMAT", "FORMAT_ATTR", "VERSION_ATTR", "check_version",
           "is_newer_format", "tagged_version", "MAX_INFLATE_RATIO", "max_read_bytes", "set_max_read_bytes",
           "read_limit", "check_declared_bytes", "reading", "naming_file", "allocation_budget", "charge",
           "declared_nbytes"]

CHECKPOINT_FORMAT = 1        # engine.checkpoint: HDF5 tensor files (Saver, estimators, save_weights)
ESTIMATOR_INDEX_FORMAT = 1   # estimators.checkpoint_manager: checkpoint_index.json
KERAS_H5_FORMAT = 1          # models.saving: Keras .h5 model and weights files written by kestimator
SAVED_MODEL_FORMAT = 1       # saved_model: saved_model.json (+ a checkpoint of the variables)
DATA_CACHE_FORMAT = 1        # data.cachefile: Dataset.cache(filename) files

FORMAT_ATTR = "kestimator_format"     # HDF5 root attribute: the format version (int)
VERSION_ATTR = "kestimator_version"   # HDF5 root attribute / JSON field: the writer's kestimator version

# Deflate (GZIP / ZLIB / zip) output is at most 1032 times its input; a little slack covers headers.
MAX_INFLATE_RATIO = 1032
_SLACK_BYTES = 1 << 16


def _as_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def check_version(found, newest, path, what, writer=None):
    """Check a file's format version before reading the rest of it.

    Args:
        found: the version the file declares (an int, or anything: a malformed value is refused).
        newest: the newest version this kestimator reads (one of the constants above).
        path: the file, for messages.
        what: the kind of file, for messages ("checkpoint", "SavedModel" ...).
        writer: the kestimator version recorded by the writer, if the file has one.

    Returns:
        The version as an int (1 <= version <= newest).

    Raises:
        DataLossError: the version is not a positive integer (a corrupt file).
        InvalidArgumentError: the file is in a newer format than this kestimator reads.
    """
    import numpy as np   # the attribute may be a NumPy scalar or a 0-d array
    try:
        arr = np.asarray(found)
    except (TypeError, ValueError):
        arr = np.asarray(None)
    if isinstance(found, (bool, np.bool_)) or arr.shape != () or arr.dtype.kind not in "iu":
        raise DataLossError(f"{path}: the {what} format version is {found!r:.60}, not an integer")
    version = int(arr)
    if version < 1:
        raise DataLossError(f"{path}: invalid {what} format version {version}")
    if version > newest:
        by = f"kestimator {_as_text(writer)[:40]}" if writer is not None else "a newer kestimator"
        err = InvalidArgumentError(
            f"{path} was written by {by} in {what} format {version}; this kestimator ({KESTIMATOR_VERSION}) "
            f"reads up to format {newest}: upgrade kestimator to load this newer format")
        err.newer_format = version   # lets a caller that skips corrupt files (CheckpointManager) tell this apart
        raise err
    return version


def is_newer_format(exc):
    """True when `exc` is :func:`check_version`'s refusal of a file in a newer format (not a corrupt file)."""
    return getattr(exc, "newer_format", None) is not None


def tagged_version(tag, prefix):
    """The N of a ``"<prefix>/<N>"`` format tag, or None when `tag` is not of that form."""
    if not isinstance(tag, str) or not tag.startswith(prefix + "/"):
        return None
    number = tag[len(prefix) + 1:]
    if not number.isdigit() or len(number) > 9:
        return None
    return int(number)


# -- read limits -----------------------------------------------------------------------------------------
_limit = [None]


def max_read_bytes():
    """The process-wide cap on one array a reader allocates from a file (None: no cap beyond the file's)."""
    return _limit[0]


def set_max_read_bytes(limit):
    """Set the cap on the bytes of one array read from a file (None removes it).

    Args:
        limit: a positive int, or None.

    Raises:
        InvalidArgumentError: `limit` is not a positive int or None.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise InvalidArgumentError(f"max read bytes must be a positive int or None, got {limit!r}")
    _limit[0] = limit


@contextlib.contextmanager
def read_limit(limit):
    """Within the block, readers refuse arrays over `limit` bytes (see :func:`set_max_read_bytes`)."""
    previous = _limit[0]
    set_max_read_bytes(limit)
    try:
        yield
    finally:
        _limit[0] = previous


def check_declared_bytes(nbytes, path, what, stored_bytes, compressed=False):
    """Refuse, before allocating, an array the file does not back or that passes the read limit.

    Args:
        nbytes: the bytes the file declares for the array.
        path: the file, for messages.
        what: what is being read ("tensor 'w'", "record at byte offset 12" ...).
        stored_bytes: the bytes the file actually stores for it (or the file's size).
        compressed: the stored bytes are deflate-compressed (then up to MAX_INFLATE_RATIO times more).

    Raises:
        DataLossError: the declared size is more than the stored bytes can hold.
        ResourceExhaustedError: the declared size passes :func:`max_read_bytes`.
    """
    backing = stored_bytes * MAX_INFLATE_RATIO + _SLACK_BYTES if compressed else stored_bytes
    if nbytes > backing:
        raise DataLossError(f"{path}: {what} declares {nbytes} bytes, but the file stores only {stored_bytes}"
                            f"{' compressed' if compressed else ''} bytes for it; truncated or corrupt")
    limit = _limit[0]
    if limit is not None and nbytes > limit:
        raise ResourceExhaustedError(f"{path}: {what} declares {nbytes} bytes, over the read limit of {limit} "
                                     "bytes (kestimator._formats.set_max_read_bytes)")


# -- errors that name the file ---------------------------------------------------------------------------------
# What decoding a file's content can raise when the content is malformed in a way no check foresaw.
_DECODE_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, RecursionError,
                  UnicodeError, ZeroDivisionError, AssertionError, LookupError)


def naming_file(exc, path):
    """`exc` (a KestimatorError) with `path` at the front of its message when the message lacks it."""
    path = str(path)
    if path in str(exc):
        return exc
    exc.args = (f"{path}: {exc}",) + tuple(exc.args[1:])
    return exc


@contextlib.contextmanager
def reading(path, what="file"):
    """The boundary of a reader: every error leaving the block names `path` and is a KestimatorError.

    A KestimatorError raised inside gets the path in its message when it lacks it; an error of the kinds
    malformed content provokes in decoding code (TypeError, KeyError, RecursionError ...) becomes a
    DataLossError naming the file, chained to the original (``__cause__``) for debugging.

    Args:
        path: the file or folder being read.
        what: what it is, for messages ("Keras model file", "SavedModel" ...).
    """
    from .errors import KestimatorError
    try:
        yield
    except KestimatorError as exc:
        raise naming_file(exc, path)
    except _DECODE_ERRORS as exc:
        raise DataLossError(f"{path}: malformed {what}: {type(exc).__name__}: {str(exc)[:300]}") from exc


# -- building objects a file describes ----------------------------------------------------------------------------
_budget = []   # stack of [path, bytes left] while a reader builds what a file describes


@contextlib.contextmanager
def allocation_budget(path, nbytes):
    """Within the block, `charge` refuses allocations past `nbytes` in all (the objects a file describes).

    A model file's config declares the shapes of weights that the loader creates before it reads their
    values; their bytes cannot exceed what the file stores, so a config asking for more is refused before
    anything is allocated.
    """
    _budget.append([str(path), int(nbytes)])
    try:
        yield
    finally:
        _budget.pop()


def declared_nbytes(shape, dtype):
    """Bytes of an array of `shape` and NumPy `dtype`, in Python ints (no overflow); 0 for a negative dim
    (the allocation itself then fails with a clear error)."""
    import numpy as np
    total = np.dtype(dtype).itemsize
    for d in shape:
        d = int(d)
        if d < 0:
            return 0
        total *= d
    return total


def charge(nbytes, what):
    """Count `nbytes` against the innermost allocation budget (no budget: nothing happens).

    Raises:
        ResourceExhaustedError: the budget would be exceeded (names the file and `what`).
    """
    if not _budget:
        return
    entry = _budget[-1]
    entry[1] -= int(nbytes)
    if entry[1] < 0:
        raise ResourceExhaustedError(f"{entry[0]}: {what} needs {int(nbytes)} bytes, more than the file can back "
                                     "(its config declares weights bigger than the weights it stores); refused "
                                     "before allocating")


def loads_json(text, path, what):
    """Decode JSON from a file, refusing what the decoder cannot take (invalid, or nested past the
    interpreter's recursion limit) with a DataLossError naming the file.

    Args:
        text: the JSON text (str or bytes).
        path: the file, for messages.
        what: what the JSON is ("checkpoint metadata", "attribute 'model_config'" ...).
    """
    import json
    try:
        return json.loads(text)
    except RecursionError:
        raise DataLossError(f"{path}: {what} is JSON nested too deeply to decode") from None
    except (ValueError, TypeError) as exc:   # UnicodeDecodeError is a ValueError
        raise DataLossError(f"{path}: {what} is not valid JSON: {exc}") from None
