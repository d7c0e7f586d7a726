"""``ks.data.experimental``: tf.data.experimental's fused transformations and CSV helpers.

The fused transformations return functions for ``Dataset.apply`` and are compositions of the core
ones (which already amortise hand-offs, so fusing buys nothing extra here).
"""
import csv
import io

import numpy as np

from ..engine import dtypes
from ..errors import InvalidArgumentError
from .csv_dataset import CsvDataset
from .options import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from .readers import _check_compression, open_binary
from .sources import list_files
from .validation import check_positive_int

__all__ = ["AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "CsvDataset", "cardinality",
           "make_csv_dataset", "map_and_batch", "parallel_interleave", "shuffle_and_repeat"]


def map_and_batch(map_func, batch_size, num_parallel_batches=None, drop_remainder=False,
                  num_parallel_calls=None):
    """``ds.apply(map_and_batch(f, n))`` is ``ds.map(f, num_parallel_calls).batch(n, drop_remainder)``.

    Args:
        num_parallel_batches: TF 1.x knob; ``num_parallel_batches * batch_size`` parallel calls.
    """
    if num_parallel_batches is not None and num_parallel_calls is not None:
        raise InvalidArgumentError("give num_parallel_batches or num_parallel_calls, not both")
    if num_parallel_batches is not None:
        num_parallel_calls = check_positive_int(num_parallel_batches, "num_parallel_batches") * batch_size

    def _apply(dataset):
        return dataset.map(map_func, num_parallel_calls=num_parallel_calls).batch(batch_size, drop_remainder)
    return _apply


def shuffle_and_repeat(buffer_size, count=None, seed=None):
    """``ds.shuffle(buffer_size, seed).repeat(count)``, a new order each epoch."""
    def _apply(dataset):
        return dataset.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True).repeat(count)
    return _apply


def parallel_interleave(map_func, cycle_length, block_length=1, sloppy=False, buffer_output_elements=None,
                        prefetch_input_elements=None):
    """``ds.interleave(map_func, cycle_length, block_length, num_parallel_calls=cycle_length)``.

    ``sloppy=True`` is ``deterministic=False``; the buffer arguments are accepted for compatibility.
    """
    def _apply(dataset):
        return dataset.interleave(map_func, cycle_length=cycle_length, block_length=block_length,
                                  num_parallel_calls=cycle_length, deterministic=not sloppy)
    return _apply


def cardinality(dataset):
    """``dataset.cardinality()`` (the TF 2.2 function form)."""
    return dataset.cardinality()


# -- make_csv_dataset --------------------------------------------------------------------------------------
_INFERENCE_ORDER = (dtypes.int32, dtypes.int64, dtypes.float32, dtypes.string)


def _fits(text, dt):
    try:
        if dt.is_string:
            return True
        if dt.is_integer:
            value = int(text)
            info = np.iinfo(dt.np)
            return info.min <= value <= info.max
        float(text)
        return True
    except ValueError:
        return False


def _infer_defaults(names, columns, first_rows, na_value):
    """Per selected column the narrowest of int32, int64, float32, string holding all sampled values."""
    kinds = [0] * len(columns)
    for row in first_rows:
        for k, c in enumerate(columns):
            text = row[c] if c < len(row) else ""
            if text == "" or text == na_value:
                continue
            while not _fits(text, _INFERENCE_ORDER[kinds[k]]):
                kinds[k] += 1
    defaults = []
    for kind in kinds:
        dt = _INFERENCE_ORDER[kind]
        defaults.append(b"" if dt.is_string else dt.np.type(0))
    return defaults


def _read_rows(filenames, count, delim, quote, compression, header):
    """The header row (or None) and up to ``count`` data rows from the first files."""
    header_row, rows = None, []
    for name in filenames:
        with open_binary(name, compression) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            reader = csv.reader(text, delimiter=delim, quotechar='"' if quote else None,
                                quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE)
            for i, row in enumerate(reader):
                if i == 0 and header:
                    if header_row is None:
                        header_row = row
                    continue
                if row:
                    rows.append(row)
                if len(rows) >= count:
                    return header_row, rows
    return header_row, rows


def make_csv_dataset(file_pattern, batch_size, column_names=None, column_defaults=None, label_name=None,
                     select_columns=None, field_delim=",", use_quote_delim=True, na_value="", header=True,
                     num_epochs=None, shuffle=True, shuffle_buffer_size=10000, shuffle_seed=None,
                     prefetch_buffer_size=None, num_parallel_reads=None, sloppy=False,
                     num_rows_for_inference=100, compression_type=None, ignore_errors=False):
    """Batches of ``(features, label)`` (or ``features``) from CSV files, as tf.data's helper.

    Args:
        file_pattern: glob pattern(s) of the files.
        batch_size: rows per batch.
        column_names: names of all columns (default: the files' header row).
        column_defaults: record defaults of the selected columns (default: inferred from the first
            ``num_rows_for_inference`` rows as int32, int64, float32 or string, optional with 0 / b"").
        label_name: the column returned separately as the label.
        select_columns: names or indices of the columns to read (default all).
        num_epochs: passes over the data (None: forever; then the last partial batch is dropped).
        shuffle, shuffle_buffer_size, shuffle_seed: shuffle the files and the rows.
        num_parallel_reads: files read at once (default 1).
        sloppy: allow a non-deterministic order when reading files in parallel.

    Returns:
        A Dataset of ``(dict name -> array [batch], label array [batch])`` or of dicts.

    Raises:
        InvalidArgumentError: unknown label or selected column, no header to take names from, bad defaults.
        NotFoundError: no file matches.
    """
    if ignore_errors:
        raise InvalidArgumentError("make_csv_dataset(ignore_errors=True) is not supported: malformed rows "
                                   "raise InvalidArgumentError naming the file and line")
    compression = _check_compression(compression_type)
    files_ds = list_files(file_pattern, shuffle=shuffle, seed=shuffle_seed)
    filenames = sorted(f.decode() if isinstance(f, bytes) else f for f in list_files(file_pattern, shuffle=False))
    header_row, sample_rows = _read_rows(filenames, num_rows_for_inference, field_delim, use_quote_delim,
                                         compression, header)
    if column_names is None:
        if header_row is None:
            raise InvalidArgumentError("make_csv_dataset: column_names is needed when the files have no header")
        column_names = header_row
    column_names = list(column_names)
    if len(set(column_names)) != len(column_names):
        raise InvalidArgumentError(f"make_csv_dataset: duplicate column names {column_names}")
    if select_columns is None:
        columns = list(range(len(column_names)))
    else:
        columns = sorted(column_names.index(c) if isinstance(c, str) and c in column_names else
                         _bad_column(c, column_names) if isinstance(c, str) else int(c) for c in select_columns)
    names = [column_names[c] for c in columns]
    if label_name is not None and label_name not in names:
        raise InvalidArgumentError(f"make_csv_dataset: label_name {label_name!r} is not among the columns {names}")
    if column_defaults is None:
        column_defaults = _infer_defaults(names, columns, sample_rows, na_value)
    elif len(column_defaults) != len(columns):
        raise InvalidArgumentError(f"make_csv_dataset: {len(column_defaults)} column_defaults for "
                                   f"{len(columns)} columns")

    def read_file(filename):
        return CsvDataset(filename, column_defaults, compression_type=compression, header=header,
                          field_delim=field_delim, use_quote_delim=use_quote_delim, na_value=na_value,
                          select_cols=columns)

    cycle = 1 if num_parallel_reads is None else num_parallel_reads
    dataset = files_ds.interleave(read_file, cycle_length=cycle, block_length=1,
                                  num_parallel_calls=None if cycle == 1 else cycle, deterministic=not sloppy)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer_size, seed=shuffle_seed)
    if num_epochs != 1:
        dataset = dataset.repeat(num_epochs)
    dataset = dataset.batch(batch_size, drop_remainder=num_epochs is None)

    def to_features(*columns_batch):
        features = dict(zip(names, columns_batch))
        if label_name is None:
            return features
        label = features.pop(label_name)
        return features, label

    dataset = dataset.map(to_features)
    return dataset.prefetch(AUTOTUNE if prefetch_buffer_size is None else prefetch_buffer_size)


def _bad_column(name, column_names):
    raise InvalidArgumentError(f"make_csv_dataset: selected column {name!r} is not among {column_names}")
