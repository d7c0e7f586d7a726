"""What an OSError from writing a file means to a user: a full disk or a read-only folder, as a ks.errors error.

Every kestimator writer of checkpoints, Keras .h5 files and indexes writes a temporary file and renames it
over the target, so a failed write leaves the previous file as it was. When the failure is the disk (no space,
quota) or the folder (read-only file system, no permission), training has to stop with an error that says so
and names the file, instead of an ``OSError`` from deep inside HDF5. Writers call `reraise_write_error` in
their cleanup path after removing their temporary file::

    except BaseException as err:
        remove(tmp)
        reraise_write_error(err, path, "checkpoint")   # raises a KestimatorError for ENOSPC / EROFS / EACCES
        raise                                          # anything else goes up unchanged

h5py reports the errno of a failed HDF5 write in ``OSError.errno`` and in the message ("errno = 28, error
message = 'No space left on device'"); a write that fails while the file is closed (HDF5 flushes its metadata
then) comes out of h5py as a ``RuntimeError`` with only the message, which is why both are read. Seen on a real
256 KiB tmpfs.
"""
import errno
import os
import re

from ..errors import FailedPreconditionError, ResourceExhaustedError

__all__ = ["reraise_write_error", "write_error"]

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS}
_DENIED = {errno.EACCES, errno.EPERM}
_ERRNO_IN_TEXT = re.compile(r"errno = (\d+)")
_MESSAGE_IN_TEXT = re.compile(r"error message = '([^']*)'")


def _errno_of(err):
    if getattr(err, "errno", None) is not None:
        return err.errno
    found = _ERRNO_IN_TEXT.search(str(err))   # an HDF5 error message that h5py did not map to an errno
    return int(found.group(1)) if found else None


def write_error(err, path, what, replaces=True):
    """The KestimatorError standing for `err` raised while writing `path`, or None if it is another failure.

    Args:
        err: the exception raised by the write.
        path: the file being written (the target, not its temporary file).
        what: what the file is ("checkpoint", "Keras model file" ...), for the message.
        replaces: the writer writes a temporary file and renames it over `path` (the message then says
            that an existing file is unchanged).

    Returns:
        ResourceExhaustedError (no space / quota / file too large), FailedPreconditionError (read-only file
        system, permission denied) or None.
    """
    if not isinstance(err, (OSError, RuntimeError)):   # h5py raises RuntimeError when closing flushes fail
        return None
    code = _errno_of(err)
    if code is None:
        return None
    text = _MESSAGE_IN_TEXT.search(str(err))
    reason = getattr(err, "strerror", None) or (text.group(1) if text else os.strerror(code))
    kept = (f"; nothing was replaced: an existing {path} is unchanged and the partial temporary file was removed"
            if replaces else "")
    if code in _NO_SPACE:
        return ResourceExhaustedError(f"no space left on the device writing {what} {path} ({reason}){kept}")
    if code in _READ_ONLY:
        return FailedPreconditionError(f"cannot write {what} {path}: the file system is read-only ({reason}){kept}")
    if code in _DENIED:
        return FailedPreconditionError(f"cannot write {what} {path}: permission denied, the folder is not writable "
                                       f"({reason}){kept}")
    return None


def reraise_write_error(err, path, what, replaces=True):
    """Raise `write_error(err, path, what, replaces)` (chained to err) when there is one; return otherwise."""
    mapped = write_error(err, path, what, replaces)
    if mapped is not None:
        raise mapped from err
