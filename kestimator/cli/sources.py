"""Data sources of a config's ``data`` section, loaded into NumPy arrays.

One source spec names exactly one of:

``dataset: sklearn.<name>``
    a data set bundled with scikit-learn (digits, iris, wine, breast_cancer, diabetes); features float32,
    labels int64 (float32 for the diabetes regression target). scikit-learn is imported only here.
``csv: file.csv``
    a CSV file with a header row (see :mod:`kestimator.cli.sources_csv`): ``label`` names the label column,
    features come back as ``{column: array}``, numeric columns float32, others string arrays.
``npz: file.npz``
    arrays ``x`` and ``y`` (or the keys named by ``x:`` / ``y:``; ``x`` may map feature names to keys).
    Read with ``allow_pickle=False`` semantics: object arrays are refused, every declared shape is checked
    against the stored size before anything is allocated.
``h5: file.h5``
    datasets at the paths named by ``x:`` / ``y:``; external links, external storage and virtual datasets
    are refused.
``records: file(s)``
    record files of serialized ``tf.train.Example`` protos, parsed with ``feature_spec``.

Then, in this order: rows are permuted with the config's seed (``shuffle: true``, the default, so that two
specs over one file with the same seed, e.g. ``split: "0:0.8"`` and ``split: "0.8:"``, get disjoint parts of
one permutation), cut by ``split``, reshaped by ``image_shape``, multiplied by ``scale`` (giving float32),
and wrapped as ``{features: array}`` when ``features`` names the input key.
"""
import glob
import os
import zipfile

import numpy as np

from ..errors import (DataLossError, InvalidArgumentError, MissingDependencyError, NotFoundError,
                      ResourceExhaustedError, UnsafeFileError)
from .schema_core import suggest

SOURCE_KINDS = ("dataset", "csv", "npz", "h5", "records")

# name -> (scikit-learn loader, task); every one of them ships inside scikit-learn (no download).
SKLEARN_DATASETS = {
    "digits": ("load_digits", "classification"),
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}

DEFAULT_NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]

# Every optional key of a source spec and its default (the schema writes the same defaults out).
SOURCE_DEFAULTS = {
    "label": None, "x": None, "y": None, "split": None, "shuffle": True,
    "drop_missing": False, "fill_numeric": 0.0, "fill_string": "", "na_values": DEFAULT_NA_VALUES,
    "delimiter": ",", "columns": None, "label_dtype": "auto",
    "feature_spec": None, "compression": None,
    "image_shape": None, "scale": None, "features": None,
}

# A declared array bigger than this is refused before allocation (a corrupt or hostile header).
MAX_ARRAY_BYTES = 1 << 36


def parse_split(text):
    """Parse a ``split`` string: an index range ``"0:1500"`` / ``"1500:"`` or a fraction range ``"0:0.8"``.

    A side written with a decimal point makes the range a fraction range; then every side is a fraction in
    ``[0, 1]`` (``0`` and ``1`` may be written without a point). Index ranges follow Python slicing,
    negative indices included.

    Args:
        text: the split string.

    Returns:
        ``(start, stop, is_fraction)``; ``start`` / ``stop`` are ``None`` where a side is empty.

    Raises:
        InvalidArgumentError: anything else.
    """
    if not isinstance(text, str) or text.count(":") != 1:
        raise InvalidArgumentError(f"split {text!r} must be 'start:stop', e.g. '0:1500', '1500:' or '0:0.8'")
    sides = [s.strip() for s in text.split(":")]
    fraction = any("." in s for s in sides)
    values = []
    for side in sides:
        if not side:
            values.append(None)
            continue
        try:
            value = float(side) if fraction else int(side)
        except ValueError:
            raise InvalidArgumentError(f"split {text!r}: {side!r} is not a number") from None
        if fraction and not 0.0 <= value <= 1.0:
            raise InvalidArgumentError(f"split {text!r}: fractions must lie in [0, 1], got {side}")
        values.append(value)
    start, stop = values
    if fraction and start is not None and stop is not None and start >= stop:
        raise InvalidArgumentError(f"split {text!r}: start must be below stop")
    return start, stop, fraction


def split_slice(text, n):
    """The ``slice`` of ``n`` rows that ``split`` selects; fractions round down (``floor(f * n)``).

    Raises:
        InvalidArgumentError: a bad split, an index range past the data's end, or an empty selection.
    """
    start, stop, fraction = parse_split(text)
    if fraction:
        # round() first so that 0.7 * 10 = 7.000000000000001 and 0.29 * 100 = 28.999999999999996 land on 7, 29
        start = 0 if start is None else int(np.floor(round(start * n, 6)))
        stop = n if stop is None else int(np.floor(round(stop * n, 6)))
    else:
        for side in (start, stop):
            if side is not None and not -n <= side <= n:
                raise InvalidArgumentError(f"split {text!r} reaches row {side}, but the data has {n} rows")
    chosen = slice(start, stop)
    if len(range(*chosen.indices(n))) == 0:
        raise InvalidArgumentError(f"split {text!r} selects no rows of the {n} there are")
    return chosen


def _absolute(path, base_dir):
    path = os.path.expanduser(os.fspath(path))
    return os.path.normpath(os.path.join(base_dir or os.getcwd(), path))


def _read_sklearn(spec, base_dir):
    name = spec["dataset"]
    short = name[len("sklearn."):] if name.startswith("sklearn.") else None
    if short not in SKLEARN_DATASETS:
        raise NotFoundError(f"unknown dataset {name!r}{suggest(name, ['sklearn.' + k for k in SKLEARN_DATASETS])}"
                            f" (known: {', '.join('sklearn.' + k for k in SKLEARN_DATASETS)})")
    try:
        from sklearn import datasets as sk_datasets
    except ImportError:
        raise MissingDependencyError("scikit-learn", "test", f"dataset: {name}") from None
    loader, task = SKLEARN_DATASETS[short]
    bunch = getattr(sk_datasets, loader)()
    labels = bunch.target.astype(np.int64 if task == "classification" else np.float32)
    return np.asarray(bunch.data, dtype=np.float32), labels


def _read_csv(spec, base_dir):
    from .sources_csv import read_csv
    return read_csv(spec, _absolute(spec["csv"], base_dir))


def _npz_member(zf, key, path):
    """Read one ``key.npy`` member of an open .npz archive, checking its header before allocating."""
    try:
        info = zf.getinfo(key + ".npy")
    except KeyError:
        keys = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        raise NotFoundError(f"{path}: no array {key!r}{suggest(key, keys)} (arrays: {', '.join(keys)})") from None
    fmt = np.lib.format
    with zf.open(info) as f:
        try:
            version = fmt.read_magic(f)
            read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
            if read_header is None:
                raise DataLossError(f"{path}: array {key!r} uses .npy format version {version}, "
                                    f"which is not supported (1.0 and 2.0 are)")
            shape, fortran, dtype = read_header(f)
        except ValueError as exc:
            raise DataLossError(f"{path}: array {key!r} has a corrupt .npy header: {exc}") from None
        if dtype.hasobject:
            raise UnsafeFileError(f"{path}: array {key!r} holds Python objects (pickled data); refused")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes > MAX_ARRAY_BYTES or f.tell() + nbytes != info.file_size:
            raise DataLossError(f"{path}: array {key!r} declares shape {shape} of {dtype} ({nbytes} bytes), but "
                                f"the archive member holds {info.file_size - f.tell()} bytes of data")
        buffer = bytearray(nbytes)
        if f.readinto(buffer) != nbytes or f.read(1):
            raise DataLossError(f"{path}: array {key!r} is truncated")
    array = np.frombuffer(buffer, dtype=dtype)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _read_npz(spec, base_dir):
    path = _absolute(spec["npz"], base_dir)
    if not os.path.isfile(path):
        raise NotFoundError(f"npz file {path} does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            return _pick_arrays(spec, lambda key: _npz_member(zf, key, path))
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DataLossError(f"{path}: not a valid .npz (zip) archive: {exc}") from None


def _pick_arrays(spec, read):
    """x / y of an npz or h5 source: ``x`` is a key or ``{feature: key}``; ``y: null`` means no labels."""
    x, y = spec["x"], spec["y"]
    if not x:
        raise InvalidArgumentError("an npz / h5 source needs x: the array holding the features")
    features = {name: read(key) for name, key in x.items()} if isinstance(x, dict) else read(x)
    return features, (read(y) if y else None)


def _h5_dataset(f, name, path, depth=0):
    """The dataset at ``name``, walking every link on the way and refusing anything outside the file."""
    import h5py

    if depth > 16:
        raise UnsafeFileError(f"{path}: more than 16 soft links followed to reach {name!r}")
    node, walked = f["/"], ""
    for part in [p for p in name.split("/") if p]:
        if not isinstance(node, h5py.Group):
            raise NotFoundError(f"{path}: {walked or '/'} is a dataset, so {name!r} does not exist")
        link = node.get(part, getlink=True)
        if link is None:
            keys = list(node.keys())
            raise NotFoundError(f"{path}: no {part!r} in {walked or '/'}{suggest(part, keys)} "
                                f"(members: {', '.join(keys)})")
        walked = f"{walked}/{part}"
        if isinstance(link, h5py.ExternalLink):
            raise UnsafeFileError(f"{path}: {walked} is an external link to {link.filename}:{link.path}; "
                                  f"external links are refused")
        if isinstance(link, h5py.SoftLink):
            target = link.path if link.path.startswith("/") else f"{walked.rsplit('/', 1)[0]}/{link.path}"
            node = _h5_dataset(f, target, path, depth + 1)
            continue
        node = node[part]
    return node


def _read_h5_array(f, name, path):
    import h5py

    ds = _h5_dataset(f, name, path)
    if not isinstance(ds, h5py.Dataset):
        raise InvalidArgumentError(f"{path}: {name!r} is a group, not a dataset")
    if ds.is_virtual:
        raise UnsafeFileError(f"{path}: {name!r} is a virtual dataset (its data lives in other files); refused")
    if ds.external:
        raise UnsafeFileError(f"{path}: {name!r} keeps its data in external files {ds.external}; refused")
    if ds.dtype.names is not None or ds.dtype.kind == "V":
        raise InvalidArgumentError(f"{path}: {name!r} has a compound dtype {ds.dtype}; plain arrays only")
    nbytes = int(np.prod(ds.shape, dtype=np.int64)) * ds.dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise ResourceExhaustedError(f"{path}: {name!r} declares {nbytes} bytes, over the {MAX_ARRAY_BYTES} limit")
    try:
        return ds[()]
    except OSError as exc:
        raise DataLossError(f"{path}: reading {name!r} failed: {exc}") from None


def _read_h5(spec, base_dir):
    try:
        import h5py
    except ImportError:
        raise MissingDependencyError("h5py", "h5", "h5 data sources") from None
    path = _absolute(spec["h5"], base_dir)
    if not os.path.isfile(path):
        raise NotFoundError(f"HDF5 file {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataLossError(f"{path}: not a readable HDF5 file: {exc}") from None
    with f:
        return _pick_arrays(spec, lambda name: _read_h5_array(f, name, path))


def _read_records(spec, base_dir):
    from .sources_records import read_records
    patterns = spec["records"] if isinstance(spec["records"], list) else [spec["records"]]
    files = []
    for pattern in patterns:
        matched = sorted(glob.glob(_absolute(pattern, base_dir)))
        if not matched:
            raise NotFoundError(f"no record file matches {_absolute(pattern, base_dir)}")
        files.extend(matched)
    return read_records(spec, files)


_READERS = {"dataset": _read_sklearn, "csv": _read_csv, "npz": _read_npz, "h5": _read_h5,
            "records": _read_records}


def _num_rows(features, labels, where):
    arrays = list(features.values()) if isinstance(features, dict) else [features]
    arrays += [] if labels is None else [labels]
    counts = {len(a) if np.ndim(a) else None for a in arrays}
    if None in counts or len(counts) != 1:
        raise InvalidArgumentError(f"{where}: features and labels must share their first dimension; "
                                   f"found row counts {sorted(c for c in counts if c is not None)}")
    return counts.pop()


def _take(value, rows):
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: v[rows] for k, v in value.items()}
    return value[rows]


def _single_array(features, where, what):
    """One input array from a dict of columns: the only one, or 1-D numeric columns side by side."""
    if not isinstance(features, dict):
        return features
    if len(features) == 1:
        return next(iter(features.values()))
    strings = [k for k, v in features.items() if v.dtype.kind in "USO"]
    if strings:
        raise InvalidArgumentError(f"{where}: {what} needs numeric features, but column(s) {', '.join(strings)} "
                                   f"hold strings")
    wide = [k for k, v in features.items() if v.ndim != 1]
    if wide:
        raise InvalidArgumentError(f"{where}: {what} can only join one-value columns, but {', '.join(wide)} "
                                   f"hold arrays")
    return np.stack([v.astype(np.float32) for v in features.values()], axis=1)


def load_source(spec, base_dir=None, seed=0):
    """Load one data source of a config into NumPy arrays.

    Args:
        spec: the source mapping (validated by the schema, or written by hand: missing keys take
            :data:`SOURCE_DEFAULTS`).
        base_dir: folder that relative paths are relative to (the config file's folder).
        seed: the config's seed; the row permutation of ``shuffle`` uses it (``None`` means 0, so that
            train and eval splits of one file still get one permutation).

    Returns:
        ``(features, labels)``: features an array or ``{name: array}``; labels an array or ``None``.

    Raises:
        NotFoundError, DataLossError, UnsafeFileError, InvalidArgumentError, MissingDependencyError: as
        raised by the readers and the split, each naming the file.
    """
    spec = dict(spec)
    kinds = [k for k in SOURCE_KINDS if spec.get(k) is not None]
    if len(kinds) != 1:
        raise InvalidArgumentError(f"a data source needs exactly one of {', '.join(SOURCE_KINDS)}; got "
                                   f"{', '.join(kinds) or 'none'}")
    kind = kinds[0]
    if kind in ("npz", "h5"):
        spec.setdefault("x", "x")
        spec.setdefault("y", "y")
    spec = {**SOURCE_DEFAULTS, **spec}
    where = f"{kind} source {spec[kind]!r}"
    features, labels = _READERS[kind](spec, base_dir)
    n = _num_rows(features, labels, where)
    chosen = split_slice(spec["split"], n) if spec["split"] is not None else slice(None)
    if spec["shuffle"]:
        rows = np.random.default_rng(0 if seed is None else seed).permutation(n)[chosen]
    else:
        rows = chosen                            # a slice: views of the arrays, no copy
    features, labels = _take(features, rows), _take(labels, rows)
    if isinstance(features, dict) and any(spec[k] is not None for k in ("image_shape", "scale", "features")):
        # A CSV's columns become one (rows, columns) matrix when a single input array is asked for.
        features = _single_array(features, where, "image_shape / scale / features")
    if spec["image_shape"] is not None:
        shape = tuple(int(d) for d in spec["image_shape"])
        per_row = int(np.prod(shape))
        if features.ndim < 1 or features.reshape(len(features), -1).shape[1] != per_row:
            raise InvalidArgumentError(f"{where}: image_shape {list(shape)} holds {per_row} values per row, "
                                       f"but the rows have shape {list(features.shape[1:])}")
        features = features.reshape((len(features),) + shape)
    if spec["scale"] is not None:
        features = features.astype(np.float32) * np.float32(spec["scale"])
    if spec["features"] is not None:
        features = {spec["features"]: features}
    return features, labels
