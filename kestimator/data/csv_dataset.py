"""CsvDataset: records of CSV files as tuples of typed scalars (tf.data.experimental.CsvDataset).

Fields are parsed with Python's ``csv`` module (RFC 4180 quoting when ``use_quote_delim``). Each
column's type comes from ``record_defaults``: a dtype marks a required column, a value gives the
default used for an empty field (or one equal to ``na_value``). Errors name the file, the line and
the column.
"""
import csv
import io
import zlib

import numpy as np

from ..engine import dtypes
from ..errors import DataLossError, InvalidArgumentError, KestimatorError
from .iterator import NodeIterator
from .readers import FileReaderDataset, _check_compression, open_binary
from .structure import TensorSpec

_CSV_DTYPES = ("int32", "int64", "float32", "float64", "string")


def _is_dtype_like(value):
    if isinstance(value, dtypes.DType) or isinstance(value, np.dtype):
        return True
    return isinstance(value, type) and (issubclass(value, np.generic) or value in (int, float, str, bytes))


def parse_record_defaults(record_defaults):
    """``[(dtype, default or None), ...]`` from tf.data-style record defaults.

    A dtype (``ks.float32``, ``np.int64``, ``str``) is a required column; a value (``0.0``, ``"x"``,
    ``[0]``, ``np.array([1.5])``) is an optional column of that value's type; an empty list or array is
    a required column of its dtype (float32 for ``[]``).
    """
    columns = []
    for k, item in enumerate(record_defaults):
        if _is_dtype_like(item):
            dt, default = dtypes.as_dtype(item), None
        else:
            value = item
            if isinstance(value, (list, tuple, np.ndarray)):
                arr = np.asarray(value)
                if arr.size == 0:
                    columns.append((dtypes.float32 if arr.dtype == np.float64 else dtypes.as_dtype(arr.dtype),
                                    None))
                    continue
                if arr.size != 1:
                    raise InvalidArgumentError(f"record_defaults[{k}] must hold one value, got {arr.size}")
                value = arr.reshape(())[()]
            if isinstance(value, (str, bytes, np.str_, np.bytes_)):
                dt = dtypes.string
                default = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            elif isinstance(value, (bool, np.bool_)):
                raise InvalidArgumentError(f"record_defaults[{k}]: bool columns are not supported by CSV")
            elif isinstance(value, np.generic):
                dt, default = dtypes.as_dtype(value.dtype), value
            elif isinstance(value, int):
                dt, default = dtypes.int32, value       # a Python int is int32 in tf.data
            elif isinstance(value, float):
                dt, default = dtypes.float32, value
            else:
                raise InvalidArgumentError(f"record_defaults[{k}] has unsupported type {type(value).__name__}")
        if dt.name not in _CSV_DTYPES:
            raise InvalidArgumentError(f"record_defaults[{k}]: CSV columns must be one of {_CSV_DTYPES}, "
                                       f"got {dt.name}")
        if default is not None and not dt.is_string:
            default = dt.np.type(default)
        columns.append((dt, default))
    if not columns:
        raise InvalidArgumentError("record_defaults must name at least one column")
    return columns


def _converter(dt):
    scalar = dt.np.type
    if dt.is_string:
        return lambda s: s.encode("utf-8")
    if dt.is_integer:
        return lambda s: scalar(int(s))
    return lambda s: scalar(float(s))


class _CsvIterator(NodeIterator):
    def __init__(self, name, node):
        self._name = name
        self._node = node
        self._raw = open_binary(name, node._compression)
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8", newline="")
        quoting = csv.QUOTE_MINIMAL if node._quote else csv.QUOTE_NONE
        self._reader = csv.reader(self._text, delimiter=node._delim, quotechar='"' if node._quote else None,
                                  quoting=quoting, strict=False)
        self._converters = [_converter(dt) for dt, _ in node._columns]
        self._header_pending = node._header
        self._closed = False

    def __next__(self):
        if self._closed:
            raise StopIteration
        while True:
            try:
                fields = next(self._reader)
            except StopIteration:
                self.close()
                raise
            except (csv.Error, UnicodeDecodeError) as exc:
                line = self._reader.line_num
                self.close()
                raise InvalidArgumentError(f"{self._name}:{line}: malformed CSV ({exc})") from None
            except (OSError, EOFError, zlib.error) as exc:   # a corrupt or truncated GZIP / ZLIB stream
                line = self._reader.line_num
                self.close()
                if isinstance(exc, KestimatorError):
                    raise
                raise DataLossError(f"{self._name}:{line}: cannot read the file ({exc})") from None
            if self._header_pending:
                self._header_pending = False
                continue
            if fields:          # blank lines hold no record
                return self._parse(fields)

    def _parse(self, fields):
        node, line = self._node, self._reader.line_num
        cols = node._select
        if cols is None:
            if len(fields) != len(node._columns):
                raise InvalidArgumentError(f"{self._name}:{line}: expected {len(node._columns)} fields, "
                                           f"found {len(fields)}")
            cols = range(len(fields))
        elif cols[-1] >= len(fields):
            raise InvalidArgumentError(f"{self._name}:{line}: column {cols[-1]} was selected but the record "
                                       f"has {len(fields)} fields")
        out = []
        for k, c in enumerate(cols):
            text = fields[c]
            dt, default = node._columns[k]
            if text == "" or text == node._na_value:
                if default is None:
                    raise InvalidArgumentError(f"{self._name}:{line}: column {c} is empty and has no default "
                                               "(record_defaults gave a dtype, making it required)")
                out.append(default)
                continue
            try:
                out.append(self._converters[k](text))
            except (ValueError, OverflowError):
                raise InvalidArgumentError(f"{self._name}:{line}: column {c}: cannot parse {text!r} as "
                                           f"{dt.name}") from None
        return tuple(out)

    def close(self):
        if not self._closed:
            self._closed = True
            self._text.close()


class CsvDataset(FileReaderDataset):
    """Records of CSV files as tuples of scalars, one per selected column.

    Args:
        filenames: a path, a list of paths, or a Dataset of paths.
        record_defaults: one entry per selected column (see :func:`parse_record_defaults`).
        compression_type: None / "", "GZIP" or "ZLIB".
        buffer_size: accepted for tf.data compatibility.
        header: skip the first line of each file.
        field_delim: the one-character field separator.
        use_quote_delim: treat double quotes as quoting (RFC 4180); False reads them literally.
        na_value: a field equal to this is treated as empty.
        select_cols: sorted column indices to read (default all).
        exclude_cols: column indices to leave out (the file must then have exactly
            ``len(record_defaults) + len(exclude_cols)`` columns).

    Raises:
        InvalidArgumentError: bad arguments; while iterating, a malformed record (file:line, column).
    """

    _what = "CsvDataset"

    def __init__(self, filenames, record_defaults, compression_type=None, buffer_size=None, header=False,
                 field_delim=",", use_quote_delim=True, na_value="", select_cols=None, exclude_cols=None,
                 num_parallel_reads=None, name=None):
        super().__init__(filenames, num_parallel_reads)
        self._compression = _check_compression(compression_type)
        self._columns = parse_record_defaults(record_defaults)
        if not isinstance(field_delim, str) or len(field_delim) != 1:
            raise InvalidArgumentError(f"field_delim must be one character, got {field_delim!r}")
        self._delim, self._quote, self._header = field_delim, bool(use_quote_delim), bool(header)
        self._na_value = na_value
        if select_cols is not None and exclude_cols is not None:
            raise InvalidArgumentError("give select_cols or exclude_cols, not both")
        if exclude_cols is not None:
            excluded = sorted(set(int(c) for c in exclude_cols))
            total = len(self._columns) + len(excluded)
            select_cols = [c for c in range(total) if c not in excluded]
        if select_cols is not None:
            select_cols = [int(c) for c in select_cols]
            if select_cols != sorted(set(select_cols)) or (select_cols and select_cols[0] < 0):
                raise InvalidArgumentError(f"select_cols must be sorted, unique and >= 0, got {select_cols}")
            if len(select_cols) != len(self._columns):
                raise InvalidArgumentError(f"select_cols has {len(select_cols)} columns but record_defaults "
                                           f"has {len(self._columns)}")
        self._select = select_cols

    def _single_file(self, name):
        clone = object.__new__(CsvDataset)
        clone.__dict__.update(self.__dict__)
        FileReaderDataset.__init__(clone, name, None)
        return clone

    def _open_file(self, name):
        return _CsvIterator(name, self)

    def _compute_element_spec(self):
        return tuple(TensorSpec((), dt) for dt, _ in self._columns)

    def _describe_args(self):
        return {**super()._describe_args(), "columns": [dt.name for dt, _ in self._columns],
                "select": self._select, "header": self._header}
