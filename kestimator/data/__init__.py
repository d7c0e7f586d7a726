"""``ks.data``: tf.data-style input pipelines over NumPy values.

Sources (:class:`Dataset` static methods, readers), transformations (Dataset methods), the iterator
with a savable position, pipeline :class:`Options`, the record / Example formats, and
``experimental``. See :mod:`kestimator.data.dataset` for the execution model.

Heavy modules (h5py) load only when used; importing this package loads NumPy and the pipeline code.
"""
from ..engine.dtypes import float32, float64, int32, int64, string
from ..io.records import RecordWriter, iter_records
from . import experimental
from .csv_dataset import CsvDataset
from .dataset import Dataset
from .example import (Example, Features, FixedLenFeature, SparseTensorValue, VarLenFeature, parse_example,
                      parse_single_example)
from .hdf5 import HDF5Dataset
from .iterator import DatasetIterator
from .options import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Options, ThreadingOptions
from .readers import RecordDataset, TextLineDataset, TFRecordDataset
from .structure import DatasetSpec, TensorSpec

__all__ = ["Dataset", "DatasetIterator", "Options", "ThreadingOptions", "AUTOTUNE", "INFINITE_CARDINALITY",
           "UNKNOWN_CARDINALITY", "TensorSpec", "DatasetSpec", "RecordDataset", "TFRecordDataset",
           "TextLineDataset", "CsvDataset", "HDF5Dataset", "RecordWriter", "iter_records", "Example",
           "Features", "FixedLenFeature", "VarLenFeature", "SparseTensorValue", "parse_single_example",
           "parse_example", "experimental", "string", "int64", "float32", "int32", "float64"]
