"""File readers: record files (TFRecord framing), text lines, CSV.

Each reader takes one file name, a list of them, or a Dataset of them (as ``list_files`` makes), and
reads the files one after another — or ``num_parallel_reads`` at a time, interleaved one element per
file in turn, each file read ahead on its own thread. A missing file raises NotFoundError and a
corrupt one DataLossError naming the file and byte offset, when iteration reaches it.
"""
import gzip
import io
import os
import zlib

import numpy as np

from ..engine import dtypes
from ..errors import DataLossError, InvalidArgumentError, NotFoundError
from .dataset import Dataset
from .iterator import NodeIterator
from .options import AUTOTUNE, UNKNOWN_CARDINALITY
from .structure import TensorSpec
from .validation import check_positive_int, resolve_parallelism

_COMPRESSIONS = (None, "", "GZIP", "ZLIB")


def _check_compression(compression_type):
    ctype = None if compression_type in (None, "") else str(compression_type).upper()
    if ctype not in _COMPRESSIONS:
        raise InvalidArgumentError(f"compression_type must be None, '', 'GZIP' or 'ZLIB', "
                                   f"got {compression_type!r}")
    return ctype


def _filenames(filenames, what):
    """Normalise the ``filenames`` argument: a str/bytes/path, a list of them, or a Dataset."""
    if isinstance(filenames, Dataset):
        return filenames
    if isinstance(filenames, (str, bytes, os.PathLike)):
        return [os.fsdecode(filenames)]
    if isinstance(filenames, np.ndarray):
        filenames = filenames.ravel().tolist()
    try:
        names = [os.fsdecode(f) for f in filenames]
    except TypeError:
        raise InvalidArgumentError(f"{what}: filenames must be a path, a list of paths or a Dataset of "
                                   f"paths, got {type(filenames).__name__}") from None
    return names


class _ZlibFile(io.RawIOBase):
    """A raw stream that inflates a ZLIB-compressed file as it is read."""

    def __init__(self, path):
        self._f = open(path, "rb")
        self._inflater = zlib.decompressobj()
        self._pending = b""
        self._path = path

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self._pending:
            raw = self._f.read(1 << 16)
            try:
                self._pending = self._inflater.decompress(raw) if raw else self._inflater.flush()
            except zlib.error as exc:
                raise DataLossError(f"corrupt ZLIB data in {self._path}: {exc}") from None
            if not raw:
                if not self._inflater.eof and self._pending == b"":
                    raise DataLossError(f"truncated ZLIB stream in {self._path}")
                break
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self):
        self._f.close()
        super().close()


def open_binary(path, compression_type):
    """Open ``path`` for reading, inflating GZIP / ZLIB on the fly.

    Raises:
        NotFoundError: the file does not exist.
    """
    try:
        if compression_type == "GZIP":
            return gzip.open(path, "rb")
        if compression_type == "ZLIB":
            return io.BufferedReader(_ZlibFile(path))
        return open(path, "rb")
    except FileNotFoundError:
        raise NotFoundError(f"file not found: {path}") from None


class _ChainIterator(NodeIterator):
    """Reads files one after another; ``open_file(name)`` gives a NodeIterator over one file."""

    def __init__(self, names, open_file):
        self._names = list(names)
        self._open_file = open_file
        self._index = -1
        self._it = None

    def _next_file(self):
        if self._it is not None:
            self._it.close()
            self._it = None
        self._index += 1
        if self._index >= len(self._names):
            return False
        self._it = self._open_file(self._names[self._index])
        return True

    def __next__(self):
        while True:
            if self._it is not None:
                try:
                    return next(self._it)
                except StopIteration:
                    pass
            if not self._next_file():
                raise StopIteration

    def skip(self, n):
        done = 0
        while done < n:
            if self._it is not None:
                done += self._it.skip(n - done)
                if done >= n:
                    break
            if not self._next_file():
                break
        return done

    def close(self):
        if self._it is not None:
            self._it.close()
            self._it = None
        self._index = len(self._names)


class FileReaderDataset(Dataset):
    """Base of the readers: files in order, or ``num_parallel_reads`` interleaved."""

    _what = "reader"

    def __init__(self, filenames, num_parallel_reads=None):
        super().__init__()
        self._names = _filenames(filenames, self._what)
        self._parallel = resolve_parallelism(num_parallel_reads, f"{self._what} num_parallel_reads")

    def _single_file(self, name):
        """A Dataset reading one file (same class, one name, sequential)."""
        raise NotImplementedError

    def _open_file(self, name):
        """A NodeIterator over one file's elements."""
        raise NotImplementedError

    def _inputs(self):
        return [self._names] if isinstance(self._names, Dataset) else []

    def _make_iterator(self, ctx, path):
        names = self._names
        if isinstance(names, Dataset) or (self._parallel not in (None, 1) and len(names) > 1):
            from .sources import TensorSliceDataset
            files = names if isinstance(names, Dataset) else TensorSliceDataset(np.array(names, dtype=object))
            parallel = self._parallel
            if parallel == AUTOTUNE:
                parallel = os.cpu_count() or 1
            cycle = parallel or 1
            inner = files.interleave(lambda f: self._single_file(os.fsdecode(f)), cycle_length=cycle,
                                     block_length=1, num_parallel_calls=parallel if cycle > 1 else None)
            return inner._make_iterator(ctx, path)
        return _ChainIterator(names, self._open_file)

    def _describe_args(self):
        return {"files": None if isinstance(self._names, Dataset) else list(self._names),
                "parallel": self._parallel}


# -- record files ------------------------------------------------------------------------------------------
class _RecordFileIterator(NodeIterator):
    def __init__(self, name, compression_type):
        from ..io.records import iter_records
        self._gen = iter_records(name, compression_type)
        self._done = False

    def __next__(self):
        if self._done:
            raise StopIteration
        try:
            return next(self._gen)[1]
        except StopIteration:
            self._done = True
            raise
        except Exception:
            self._done = True     # a corrupt file is not read past the damage
            self._gen.close()
            raise

    def close(self):
        self._done = True
        self._gen.close()


class RecordDataset(FileReaderDataset):
    """The records of record files (TFRecord framing) as ``bytes``; alias ``TFRecordDataset``.

    Args:
        filenames: a path, a list of paths, or a Dataset of paths.
        compression_type: None / "" , "GZIP" or "ZLIB".
        buffer_size: accepted for tf.data compatibility; reads are buffered by the OS and the reader.
        num_parallel_reads: read this many files at once, interleaved (AUTOTUNE: the CPU count).

    Raises (while iterating):
        NotFoundError: a file does not exist.
        DataLossError: a truncated or corrupt record (file name and byte offset in the message).
    """

    _what = "RecordDataset"

    def __init__(self, filenames, compression_type=None, buffer_size=None, num_parallel_reads=None, name=None):
        super().__init__(filenames, num_parallel_reads)
        self._compression = _check_compression(compression_type)

    def _single_file(self, name):
        return RecordDataset(name, self._compression)

    def _open_file(self, name):
        return _RecordFileIterator(name, self._compression)

    def _compute_element_spec(self):
        return TensorSpec((), dtypes.string)

    def _sample_element(self):
        return b""

    def _cardinality(self):
        return UNKNOWN_CARDINALITY

    def _describe_args(self):
        return {**super()._describe_args(), "compression": self._compression}


TFRecordDataset = RecordDataset


# -- text lines ------------------------------------------------------------------------------------------
class _LineIterator(NodeIterator):
    def __init__(self, name, compression_type, skip_lines):
        self._f = open_binary(name, compression_type)
        self._name = name
        try:
            for _ in range(skip_lines):
                if not self._f.readline():
                    break
        except (OSError, EOFError, zlib.error) as exc:   # a corrupt GZIP / ZLIB stream in the header lines
            self.close()
            if isinstance(exc, DataLossError):
                raise
            raise DataLossError(f"cannot read {name}: {exc}") from None

    def __next__(self):
        if self._f is None:
            raise StopIteration
        try:
            line = self._f.readline()
        except (OSError, EOFError, zlib.error) as exc:
            self.close()
            if isinstance(exc, DataLossError):
                raise
            raise DataLossError(f"cannot read {self._name}: {exc}") from None
        if not line:
            self.close()
            raise StopIteration
        if line.endswith(b"\n"):
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        return line

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


class TextLineDataset(FileReaderDataset):
    """The lines of text files as ``bytes``, without their ``\\n`` / ``\\r\\n``.

    Args:
        filenames: a path, a list of paths, or a Dataset of paths.
        compression_type: None / "", "GZIP" or "ZLIB".
        buffer_size: accepted for tf.data compatibility.
        num_parallel_reads: read this many files at once, interleaved.
        skip_header_lines: kestimator extension: lines to drop at the start of each file
            (``header=True`` is the same as ``skip_header_lines=1``).
    """

    _what = "TextLineDataset"

    def __init__(self, filenames, compression_type=None, buffer_size=None, num_parallel_reads=None,
                 skip_header_lines=0, header=False, name=None):
        super().__init__(filenames, num_parallel_reads)
        self._compression = _check_compression(compression_type)
        skip = check_positive_int(skip_header_lines, "skip_header_lines", allow=(0,))
        self._skip = max(skip, 1 if header else 0)

    def _single_file(self, name):
        return TextLineDataset(name, self._compression, skip_header_lines=self._skip)

    def _open_file(self, name):
        return _LineIterator(name, self._compression, self._skip)

    def _compute_element_spec(self):
        return TensorSpec((), dtypes.string)

    def _sample_element(self):
        return b""

    def _describe_args(self):
        return {**super()._describe_args(), "compression": self._compression, "skip": self._skip}
