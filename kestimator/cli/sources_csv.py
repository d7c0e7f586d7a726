"""Reading a CSV data source into a dict of column arrays and a label array.

A column whose every present value parses as a number becomes ``float32``; any other column is kept as a
NumPy string array (``<U``), for categorical feature columns. The first row names the columns. Missing
values (empty fields and the ``na_values`` markers such as ``NA``) either drop their row
(``drop_missing: true``) or are filled (``fill_numeric`` / ``fill_string``); a missing label is never
filled: it is an error unless ``drop_missing`` is set.
"""
import csv

import numpy as np

from ..errors import DataLossError, InvalidArgumentError, NotFoundError
from .schema_core import suggest


def _read_rows(path, delimiter):
    """Header and data rows (with their line numbers); blank lines are skipped."""
    try:
        f = open(path, "r", encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise NotFoundError(f"CSV file {path} does not exist") from None
    with f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        header, rows, lines = None, [], []
        try:
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if header is None:
                    header = [name.strip() for name in row]
                    continue
                if len(row) != len(header):
                    raise DataLossError(f"{path}, line {reader.line_num}: expected {len(header)} fields "
                                        f"(the header has {len(header)}), found {len(row)}")
                rows.append(row)
                lines.append(reader.line_num)
        except csv.Error as exc:
            raise DataLossError(f"{path}, line {reader.line_num}: malformed CSV: {exc}") from None
        except UnicodeDecodeError as exc:
            raise DataLossError(f"{path}: not UTF-8 text (byte {exc.start} of a read block)") from None
    if header is None:
        raise DataLossError(f"{path}: the file is empty; a CSV source needs a header row naming its columns")
    seen = set()
    for name in header:
        if not name:
            raise InvalidArgumentError(f"{path}, line 1: a column has an empty name")
        if name in seen:
            raise InvalidArgumentError(f"{path}, line 1: column name {name!r} appears twice")
        seen.add(name)
    return header, rows, lines


def _column(rows, index, na_values):
    """``(values, missing)``: the raw strings of one column and a boolean mask of missing entries."""
    values = [row[index].strip() for row in rows]
    missing = np.fromiter((v in na_values for v in values), dtype=bool, count=len(values))
    return values, missing


def _as_numbers(values, missing):
    """float64 array (NaN where missing), or ``None`` when some present value is not a number."""
    present = [v for v, m in zip(values, missing) if not m]
    try:
        parsed = np.array(present, dtype=np.float64) if present else np.zeros(0)
    except ValueError:
        return None
    out = np.full(len(values), np.nan)
    out[~missing] = parsed
    return out


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label_array(path, name, values, missing, label_dtype):
    numbers = None if label_dtype == "string" else _as_numbers(values, missing)
    if numbers is None:
        if label_dtype in ("int64", "float32"):
            bad = next(v for v, m in zip(values, missing) if not m and not _is_number(v))
            raise InvalidArgumentError(f"{path}: label column {name!r} holds {bad!r}, not a number "
                                       f"(label_dtype: {label_dtype})")
        return np.array(values, dtype=str)
    integral = bool(np.all(numbers == np.round(numbers)))
    if label_dtype == "int64" or (label_dtype == "auto" and integral):
        if not integral:
            raise InvalidArgumentError(f"{path}: label column {name!r} holds non-integer values "
                                       f"(label_dtype: int64)")
        return numbers.astype(np.int64)
    return numbers.astype(np.float32)


def read_csv(spec, path):
    """Read a CSV source.

    Args:
        spec: the source spec with defaults filled (``label``, ``columns``, ``delimiter``, ``na_values``,
            ``drop_missing``, ``fill_numeric``, ``fill_string``, ``label_dtype``).
        path: absolute path of the file.

    Returns:
        ``(features, labels)``: ``{column: array}`` in file order (without the label column), and the
        label array (or ``None`` without ``label``).

    Raises:
        NotFoundError: no file, or a named column / label that the header lacks.
        DataLossError: a row with the wrong number of fields, an empty file, malformed quoting.
        InvalidArgumentError: a missing label without ``drop_missing``, a label of the wrong kind.
    """
    header, rows, lines = _read_rows(path, spec.get("delimiter", ","))
    label = spec.get("label")
    for name in ([label] if label else []) + list(spec.get("columns") or []):
        if name not in header:
            raise NotFoundError(f"{path}: no column named {name!r}{suggest(name, header)} "
                                f"(columns: {', '.join(header)})")
    wanted = list(spec.get("columns") or [c for c in header if c != label])
    if label in wanted:
        raise InvalidArgumentError(f"{path}: column {label!r} is the label; it cannot also be a feature")
    na_values = set(spec.get("na_values", ("", "NA")))
    raw = {name: _column(rows, header.index(name), na_values) for name in wanted + ([label] if label else [])}

    keep = np.ones(len(rows), dtype=bool)
    if spec.get("drop_missing"):
        for values, missing in raw.values():
            keep &= ~missing
    elif label:
        label_missing = raw[label][1]
        if label_missing.any():
            first = [lines[i] for i in np.flatnonzero(label_missing)[:5]]
            raise InvalidArgumentError(
                f"{path}: the label {label!r} is missing on {int(label_missing.sum())} rows (lines "
                f"{', '.join(map(str, first))}{', ...' if label_missing.sum() > 5 else ''}); set "
                f"drop_missing: true to skip them")

    features = {}
    for name in wanted:
        values, missing = raw[name]
        numbers = _as_numbers(values, missing)
        if numbers is not None:
            numbers[missing] = spec.get("fill_numeric", 0.0)
            features[name] = numbers[keep].astype(np.float32)
        else:
            fill = spec.get("fill_string", "")
            features[name] = np.array([fill if m else v for v, m in zip(values, missing)], dtype=str)[keep]
    labels = None
    if label:
        values, missing = raw[label]
        kept = [v for v, k in zip(values, keep) if k]
        labels = _label_array(path, label, kept, missing[keep], spec.get("label_dtype", "auto"))
    if not keep.any():
        why = "all with missing values" if rows else "the file has a header and no data"
        raise InvalidArgumentError(f"{path}: no rows left ({len(rows)} read, {why})")
    return features, labels

